//! The spool: where the commands the agent runs keep their output, input and end on disk,
//! so that they survive the agent itself (see [`keeper`](super::keeper)).
//!
//! Each command has an entry, the directory `STATE/commands/ID` (`ID` the request's id):
//!
//! | file         | written by | holds                                                    |
//! |--------------|------------|----------------------------------------------------------|
//! | `stdout`     | command    | its standard output, whole                               |
//! | `stderr`     | command    | its standard error, whole                                |
//! | `input.sock` | keeper     | the socket its standard input is fed through, while open |
//! | `pids`       | keeper     | `KEEPER COMMAND BOOT`: both pids and the kernel's boot id |
//! | `status`     | keeper     | `code N`, `signal NAME` or `unknown`: its end            |
//! | `keeper.log` | keeper     | what went wrong in the keeper, if anything               |
//!
//! An entry with a `status` has ended; one whose keeper still runs (same boot, the pid a
//! keeper) is running; any other is lost (the machine restarted, or the keeper was killed).
//! Ended entries are removed [`RETAIN`] after their end; the daemon has had its chance to
//! read them by then. The directory is the agent's alone (mode 0700): output may hold what
//! the deploy printed of its secrets.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::executor::TERMINATE_GRACE;
use crate::protocol::{ExitStatus, RequestId};

/// The command's standard output.
pub(super) const STDOUT: &str = "stdout";
/// The command's standard error.
pub(super) const STDERR: &str = "stderr";
/// The keeper's input socket.
pub(super) const INPUT: &str = "input.sock";
/// The keeper's and the command's pids, and the boot they belong to.
pub(super) const PIDS: &str = "pids";
/// The command's end.
pub(super) const STATUS: &str = "status";
/// What went wrong in the keeper.
pub(super) const KEEPER_LOG: &str = "keeper.log";

/// How long an ended command's entry is kept: well past the daemon's default grace
/// (90 s), within which it re-attaches to read the end of a command that ended while the
/// connection was down.
pub const RETAIN: Duration = Duration::from_secs(10 * 60);

/// The agent's spool of commands, and the program that keeps each one.
#[derive(Debug, Clone)]
pub struct Spool {
    commands: PathBuf,
    keeper: PathBuf,
}

impl Spool {
    /// The spool under `state_dir` (created, mode 0700), whose commands are kept by
    /// `keeper keep ...` (the agent's own binary).
    ///
    /// # Errors
    ///
    /// When the directory cannot be created.
    pub fn open(state_dir: &Path, keeper: impl Into<PathBuf>) -> io::Result<Self> {
        let commands = state_dir.join("commands");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&commands)?;
        Ok(Self { commands, keeper: keeper.into() })
    }

    /// The program run as `KEEPER keep ...` for each command.
    pub(super) fn keeper(&self) -> &Path {
        &self.keeper
    }

    /// The entry of the request `id` (which may not exist).
    pub(super) fn entry(&self, id: RequestId) -> Entry {
        Entry { dir: self.commands.join(id.0.to_string()) }
    }

    /// Stops the commands that still run and that nobody waits for (not in `wanted`), and
    /// removes the entries past their use: ended more than [`RETAIN`] ago, or lost.
    pub(super) fn sweep(&self, wanted: &HashSet<RequestId>) {
        let Ok(dir) = fs::read_dir(&self.commands) else { return };
        for item in dir.flatten() {
            let Some(id) = item.file_name().to_str().and_then(|name| name.parse().ok()).map(RequestId) else {
                continue;
            };
            if wanted.contains(&id) {
                continue;
            }
            let entry = Entry { dir: item.path() };
            match entry.state() {
                State::Running(_) => {
                    tracing::info!(id = id.0, "stopping a command of an earlier connection that nobody waits for");
                    entry.stop();
                }
                State::Ended(_) if entry.age(STATUS).is_some_and(|age| age < RETAIN) => {}
                // Being started (no pids yet) by a connection that is going away.
                State::Lost if entry.age(PIDS).is_none() && entry.age("").is_some_and(|age| age < RETAIN) => {}
                State::Ended(_) | State::Lost => entry.remove(),
            }
        }
    }
}

/// One command's directory in the spool.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    dir: PathBuf,
}

/// Where a command stands, as its entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// It ended so.
    Ended(ExitStatus),
    /// Its keeper still runs.
    Running(Pids),
    /// No entry, or nothing keeps it any more and its end is unknown.
    Lost,
}

impl Entry {
    /// The entry's directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// One of the entry's files.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the directory for a new command, replacing an ended entry of the same id.
    pub(super) fn create(&self) -> io::Result<()> {
        if self.dir.exists() {
            if let State::Running(_) = self.state() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a command of this id still runs"));
            }
            fs::remove_dir_all(&self.dir)?;
        }
        fs::DirBuilder::new().mode(0o700).create(&self.dir)
    }

    /// The command's end, once the keeper wrote it.
    pub(super) fn status(&self) -> Option<ExitStatus> {
        fs::read_to_string(self.path(STATUS)).ok().map(|line| parse_status(&line))
    }

    /// Where the command stands.
    pub(super) fn state(&self) -> State {
        if let Some(status) = self.status() {
            return State::Ended(status);
        }
        let Some(pids) = fs::read_to_string(self.path(PIDS)).ok().and_then(|line| Pids::parse(&line)) else {
            return State::Lost;
        };
        if pids.keeper_runs() {
            State::Running(pids)
        } else {
            // The status may have been written between the two reads.
            self.status().map_or(State::Lost, State::Ended)
        }
    }

    /// Whether the command was given an input socket.
    pub(super) fn takes_input(&self) -> bool {
        self.path(INPUT).exists()
    }

    /// Sends `signal` to the command, while it runs (a pid read while there is no status
    /// is still the command's: the keeper writes the status before it reaps it).
    pub(super) fn signal(&self, signal: Signal) {
        if let State::Running(pids) = self.state()
            && let Ok(pid) = i32::try_from(pids.command)
        {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGTERM now, SIGKILL after [`TERMINATE_GRACE`] if it still runs (from a task, when a
    /// runtime is at hand).
    pub(super) fn stop(&self) {
        self.signal(Signal::SIGTERM);
        let entry = self.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(TERMINATE_GRACE).await;
                entry.signal(Signal::SIGKILL);
            });
        }
    }

    /// How long ago the file `name` (the directory itself for `""`) was last changed.
    fn age(&self, name: &str) -> Option<Duration> {
        let modified = fs::metadata(self.path(name)).and_then(|m| m.modified()).ok()?;
        Some(SystemTime::now().duration_since(modified).unwrap_or_default())
    }

    /// Removes the entry.
    pub(super) fn remove(&self) {
        if let Err(e) = fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a spool entry");
        }
    }
}

/// The pids of a keeper and its command, and the boot they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pids {
    pub keeper: u32,
    pub command: u32,
    pub boot: String,
}

impl Pids {
    pub(super) fn to_line(&self) -> String {
        format!("{} {} {}\n", self.keeper, self.command, self.boot)
    }

    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let keeper = words.next()?.parse().ok()?;
        let command = words.next()?.parse().ok()?;
        let boot = words.next().unwrap_or_default().to_owned();
        Some(Self { keeper, command, boot })
    }

    /// Whether the keeper still runs: the same boot, and its pid still a keeper's (not a
    /// pid reused by another program).
    fn keeper_runs(&self) -> bool {
        if self.boot != boot_id() {
            return false;
        }
        let Ok(cmdline) = fs::read(format!("/proc/{}/cmdline", self.keeper)) else { return false };
        cmdline.split(|b| *b == 0).any(|word| word == b"keep")
    }
}

/// The kernel's id of this boot (`/proc/sys/kernel/random/boot_id`), empty when unknown.
pub(super) fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|id| id.trim().to_owned()).unwrap_or_default()
}

/// Writes `content` to `dir/name` so that a reader sees all of it or nothing.
pub(super) fn write_atomically(dir: &Path, name: &str, content: &str) -> io::Result<()> {
    let partial = dir.join(format!(".{name}.partial"));
    fs::write(&partial, content)?;
    fs::rename(&partial, dir.join(name))
}

/// A status as the `status` file holds it.
pub(super) fn status_line(status: &ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("code {code}\n"),
        ExitStatus::Signal(name) => format!("signal {name}\n"),
        ExitStatus::Unknown => "unknown\n".to_owned(),
    }
}

fn parse_status(line: &str) -> ExitStatus {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("code"), Some(code)) => code.parse().map_or(ExitStatus::Unknown, ExitStatus::Code),
        (Some("signal"), Some(name)) => ExitStatus::Signal(name.to_owned()),
        _ => ExitStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_pids_read_back() {
        for status in
            [ExitStatus::Code(0), ExitStatus::Code(-3), ExitStatus::Signal("TERM".into()), ExitStatus::Unknown]
        {
            assert_eq!(parse_status(&status_line(&status)), status);
        }
        assert_eq!(parse_status("garbage"), ExitStatus::Unknown);
        let pids = Pids { keeper: 10, command: 11, boot: "b-1".into() };
        assert_eq!(Pids::parse(&pids.to_line()), Some(pids));
        assert_eq!(Pids::parse("x 1 b"), None);
    }

    #[test]
    fn an_entry_of_another_boot_or_no_keeper_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "/bin/false").unwrap();
        let entry = spool.entry(RequestId(4));
        entry.create().unwrap();
        assert_eq!(entry.state(), State::Lost);
        let me = Pids { keeper: std::process::id(), command: 1, boot: "another boot".into() };
        write_atomically(entry.dir(), PIDS, &me.to_line()).unwrap();
        assert_eq!(entry.state(), State::Lost);
        // This test's process is no keeper.
        let me = Pids { boot: boot_id(), ..me };
        write_atomically(entry.dir(), PIDS, &me.to_line()).unwrap();
        assert_eq!(entry.state(), State::Lost);
        write_atomically(entry.dir(), STATUS, "code 3\n").unwrap();
        assert_eq!(entry.state(), State::Ended(ExitStatus::Code(3)));
        // An ended entry is replaced by a new command of the same id.
        entry.create().unwrap();
        assert_eq!(entry.state(), State::Lost);
        // A lost one older than nothing is kept a while (it may be starting); an ended one
        // too, until its time is up.
        spool.sweep(&HashSet::new());
        assert!(entry.dir().exists());
    }
}
