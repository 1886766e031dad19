//! Reaching a host: a [`Connector`] opens a [`Transport`], which runs commands and writes
//! bundles on it.

#[cfg(feature = "testing")]
pub mod conformance;

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::Result;
use crate::config::Host;
use crate::source::Bundle;

/// A remote command as a program and its arguments: never a string with user data pasted in.
///
/// Transports that go through a shell (SSH's `exec` does) quote every word with
/// [`shell_quote`]; transports that exec directly pass the words as they are.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    /// The program to run: a name looked up in the remote `PATH`, or an absolute path.
    pub program: String,
    /// The arguments, each one word as the program receives it (no shell splitting).
    pub args: Vec<String>,
}

impl RemoteCommand {
    /// A command with no arguments yet; add them with [`arg`](Self::arg) and
    /// [`args`](Self::args).
    pub fn new(program: impl Into<String>) -> Self {
        Self { program: program.into(), args: Vec::new() }
    }

    /// Appends one argument, passed as one word whatever it contains.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments, each passed as one word.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// A fixed POSIX `sh` script that receives data only as positional parameters
    /// (`"$1"`, `"$2"`...): the script text must be a constant, never built from user data.
    pub fn script(script: &'static str, params: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new("sh").arg("-c").arg(script).arg("sh").args(params)
    }

    /// The command as one line for a POSIX shell, every word quoted as needed.
    pub fn to_shell(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    }
}

impl fmt::Display for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_shell())
    }
}

impl fmt::Debug for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteCommand({})", self.to_shell())
    }
}

/// Quotes one word for a POSIX shell: words made only of safe characters are left alone,
/// anything else is wrapped in single quotes (a single quote becomes `'\''`).
pub fn shell_quote(word: &str) -> Cow<'_, str> {
    let safe = !word.is_empty()
        && word.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b'@' | b',' | b'+')
        });
    if safe { Cow::Borrowed(word) } else { Cow::Owned(format!("'{}'", word.replace('\'', "'\\''"))) }
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

/// Receives a command's output as it arrives (for run logs and live progress).
///
/// # Contract
///
/// [`output`](OutputSink::output) is called from the transport's task while the command
/// runs, so it must return quickly and never block on the command itself. Chunks of one
/// stream arrive in order; a chunk may split a line (or a UTF-8 character) anywhere.
pub trait OutputSink: Send + Sync {
    /// Takes one chunk of output, `data` as the command wrote it.
    fn output(&self, stream: OutputStream, data: &[u8]);
}

/// A sink that drops everything, for commands whose output only matters at their end
/// (it is still in the returned [`CommandOutput`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl OutputSink for Discard {
    fn output(&self, _: OutputStream, _: &[u8]) {}
}

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this status; `0` is success.
    Code(i32),
    /// Killed by a signal (its name when the transport knows it).
    Signal(&'static str),
    /// The transport lost the command's status (the connection dropped).
    Unknown,
}

impl ExitStatus {
    /// Whether the command exited with status 0 (a signal or an unknown status is not).
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit status {c}"),
            Self::Signal(s) => write!(f, "killed by signal {s}"),
            Self::Unknown => f.write_str("unknown exit status"),
        }
    }
}

/// A finished command: its status and everything it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// How the command ended.
    pub status: ExitStatus,
    /// Everything written to standard output, as bytes.
    pub stdout: Vec<u8>,
    /// Everything written to standard error, as bytes.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// Standard output as text (invalid UTF-8 replaced with `U+FFFD`).
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text (invalid UTF-8 replaced with `U+FFFD`).
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// The last non-empty lines of stderr (or stdout), for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text =
            if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) { self.stderr_str() } else { self.stdout_str() };
        let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }
}

/// What a transport supports, so that callers check up front
/// ([`Transport::capabilities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Bundles keep symbolic links.
    pub symlinks: bool,
    /// Bundles keep the executable bit.
    pub file_modes: bool,
    /// Output reaches the [`OutputSink`] while the command runs, not only at its end.
    pub streaming_output: bool,
}

/// Opens transports to hosts.
///
/// # Contract
///
/// - `connect` verifies the host's identity (for SSH: its host key under the configured
///   policy) before anything else and authenticates; a changed key is refused.
/// - One transport serves one deploy: every command of the deploy runs over it. The engine
///   also connects to probe and observe hosts and to tear projects down, each time with a
///   transport of its own that it closes when done.
/// - `connect` may be called concurrently, for different hosts and for the same host; the
///   engine keeps one connector for its whole life, behind an `Arc`.
/// - A failed `connect` leaves nothing open; the host's state (reachable or not) is read
///   from the error's kind, so a network failure must be
///   [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable).
///
/// # Errors
///
/// [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable) (temporary) when the host does
/// not answer, [`ErrorKind::HostKey`](crate::ErrorKind::HostKey) when its identity is refused
/// (the message names the host, the key's fingerprint and where to fix it),
/// [`ErrorKind::Auth`](crate::ErrorKind::Auth) when the credentials are refused.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// Opens an authenticated transport to `host` (its address, port, user and key as the
    /// config gives them).
    async fn connect(&self, host: &Host) -> Result<Box<dyn Transport>>;
}

/// A live connection to one host.
///
/// # Contract
///
/// - Every word of a [`RemoteCommand`] reaches the remote program unchanged: a transport
///   that goes through a shell sends [`RemoteCommand::to_shell`], one that execs directly
///   passes the words as they are. Nothing else is added to the command line.
/// - [`run_with_input`](Transport::run_with_input) runs one command to its end, feeding it
///   `input` as its standard input (closed when `input` ends), sends its output to `sink` as
///   it arrives and returns its status and output; a non-zero exit is `Ok` with that status,
///   not an error. When the command ends before `input` does, the rest of `input` is not
///   read. `input` is forwarded while the command runs, chunk by chunk as it becomes
///   readable, never collected first: the pipeline holds a lock on the host with a command
///   whose input stays open until the deploy ends. Commands may run concurrently on one
///   transport (that lock holder runs beside every other command of the deploy).
///   [`run`](Transport::run) is the same with an empty input.
/// - Deploys need [`Capabilities::streaming_output`]: the pipeline waits for a marker line
///   of a command that is still running (the lock holder). A transport that can only hand
///   the output over at the end still serves commands that end on their own (probes,
///   observe, teardowns); the returned [`CommandOutput`] always holds all of it.
/// - Dropping the future of a running command stops waiting for it and closes its channel;
///   the remote process may go on (as an `ssh` client's would).
/// - [`write_bundle`](Transport::write_bundle) creates `dir` and its parents if missing and
///   writes every entry under it: files with mode 0644 (0755 when executable), directories
///   0755, symlinks as symlinks when [`Capabilities::symlinks`] is set. Existing files are
///   replaced. A transport without symlink support fails on a bundle that holds one rather
///   than leaving the link out.
/// - When the connection is lost, a command that is running ends (it never hangs) with an
///   [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable) error or with an
///   [`ExitStatus::Unknown`] status (its status never came; SSH answers so); every later
///   command fails with [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable).
/// - [`close`](Transport::close) ends the connection; dropping a transport also does (the
///   engine only drops it on some error paths). The engine calls `close` at most once,
///   after the last command, and ignores its error.
///
/// # Errors
///
/// [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable) when the connection is lost,
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when a remote file cannot be written.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// What this transport supports; constant for the transport's life.
    fn capabilities(&self) -> Capabilities;

    /// Runs `command` with `input` as its standard input; see the contract above.
    async fn run_with_input(
        &self,
        command: &RemoteCommand,
        input: &mut (dyn AsyncRead + Send + Unpin),
        sink: &dyn OutputSink,
    ) -> Result<CommandOutput>;

    /// Runs a command with an empty standard input; see the contract above.
    async fn run(&self, command: &RemoteCommand, sink: &dyn OutputSink) -> Result<CommandOutput> {
        self.run_with_input(command, &mut tokio::io::empty(), sink).await
    }

    /// Writes every entry of `bundle` under the absolute remote directory `dir`; see the
    /// contract above.
    async fn write_bundle(&self, dir: &str, bundle: &Bundle) -> Result<()>;

    /// Ends the connection; commands still running lose their channel.
    async fn close(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("docker"), "docker");
        assert_eq!(shell_quote("/srv/app-1"), "/srv/app-1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(touch /tmp/x)"), "'$(touch /tmp/x)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("`x`;y|z&"), "'`x`;y|z&'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        let words =
            ["plain", "a b", "$(touch /tmp/deeplo-never)", "it's", "\"q\"", "back\\slash", "new\nline", "*", ""];
        let cmd = RemoteCommand::new("printf").arg("%s\\0").args(words);
        let out = std::process::Command::new("sh").arg("-c").arg(cmd.to_shell()).output().unwrap();
        let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().split('\0').collect();
        assert_eq!(&got[..words.len()], &words);
    }

    #[test]
    fn script_passes_data_as_parameters() {
        let cmd = RemoteCommand::script("echo \"$1\"", ["$(id)"]);
        assert_eq!(cmd.to_shell(), "sh -c 'echo \"$1\"' sh '$(id)'");
    }

    #[test]
    fn tail_prefers_stderr() {
        let out =
            CommandOutput { status: ExitStatus::Code(1), stdout: b"out\n".to_vec(), stderr: b"a\n\nb\nc\n".to_vec() };
        assert_eq!(out.tail(2), "b\nc");
    }
}
