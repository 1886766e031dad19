//! The bounds both sides keep: frame and chunk sizes, command sizes, buffers, requests in
//! flight; and the check that a message stays within them ([`validate`]).

use super::messages::{Frame, ToAgent, ToDaemon, Welcome};

/// The largest frame, encoded, in bytes (1 MiB). A larger WebSocket message is refused
/// before it is parsed and the connection closed with
/// [`CloseCode::MessageTooBig`](super::CloseCode::MessageTooBig); WebSocket libraries should
/// be set to the same maximum message size.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// The largest data chunk in one frame (64 KiB): [`ToAgent::Stdin`], [`ToAgent::BundleData`]
/// and [`ToDaemon::Output`]. Small chunks keep one busy command from holding the socket: the
/// frames of other requests interleave between them.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// The most arguments of one [`ToAgent::Exec`] (the pipeline's longest command line has
/// a few dozen; Linux allows far more, but a frame stays small).
pub const MAX_ARGS: usize = 1024;

/// The most environment variables of one [`ToAgent::Exec`].
pub const MAX_ENV: usize = 256;

/// The most requests one connection has in flight (sent, not yet ended by
/// [`ToDaemon::Exited`], [`ToDaemon::Failed`], [`ToDaemon::BundleWritten`] or
/// [`ToDaemon::Facts`]). The daemon waits before sending more; an agent that receives more
/// answers the extra ones with [`ToDaemon::Failed`]. It also bounds the ids of one
/// [`ToAgent::Reattach`]. A deploy runs a handful at once (the host lock holder beside each
/// step), so 64 leaves room for several deploys on one server.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;

/// The most output of one command held by either side and not yet passed on (4 MiB): on the
/// agent, output read from the command and not yet sent (kept across a short disconnect for
/// [`ToAgent::Reattach`]); on the daemon, output received and not yet taken by the run log.
/// When the agent's buffer is full it stops reading the command's pipes, so the command
/// blocks on its writes: output is slowed, never dropped. The same bound applies to standard
/// input the agent has received and not yet written to the command; the daemon keeps its
/// own queue of unsent input to this size too, and stops reading the input past it.
pub const MAX_BUFFERED_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// The heartbeat interval a daemon offers unless configured otherwise (10 s: a dead agent
/// is noticed within half a minute, not after a global timeout, for one small frame per
/// agent every 10 s).
pub const DEFAULT_HEARTBEAT_INTERVAL_SECS: u32 = 10;

/// The missed heartbeats a daemon tolerates unless configured otherwise (3: about 30 s).
pub const DEFAULT_HEARTBEAT_ALLOWANCE: u32 = 3;

/// Checks that `frame` keeps the semantic bounds: chunks within [`MAX_CHUNK_BYTES`], a
/// non-empty program, at most [`MAX_ARGS`] arguments and [`MAX_ENV`] variables, no NUL byte
/// in what becomes an `execve` word or a path, absolute directories, bundle paths that stay
/// inside the bundle, a reattach list within [`MAX_IN_FLIGHT_REQUESTS`], heartbeat
/// settings of at least 1. [`encode`](super::encode) and [`decode`](super::decode) both
/// call it, so a sender cannot produce a frame its peer refuses.
///
/// # Errors
///
/// The first broken bound, as a sentence naming the field.
pub fn validate(frame: &Frame) -> Result<(), String> {
    match frame {
        Frame::ToAgent(message) => validate_to_agent(message),
        Frame::ToDaemon(message) => validate_to_daemon(message),
    }
}

/// [`validate`] for a message to the agent, without wrapping it in a [`Frame`] (and so
/// without copying it).
///
/// # Errors
///
/// As [`validate`].
pub fn validate_to_agent(message: &ToAgent) -> Result<(), String> {
    match message {
        ToAgent::Welcome(welcome) => validate_welcome(welcome),
        ToAgent::Exec { program, args, env, cwd, .. } => validate_exec(program, args, env, cwd.as_deref()),
        ToAgent::Stdin { data, .. } | ToAgent::BundleData { data, .. } => chunk(data),
        ToAgent::WriteBundle { dir, .. } => absolute("dir", dir),
        ToAgent::BundleFile { path, .. } => bundle_path(path),
        ToAgent::BundleSymlink { path, target, .. } => {
            bundle_path(path)?;
            if target.is_empty() { Err("a symlink target is empty".into()) } else { no_nul("target", target) }
        }
        ToAgent::Reattach { requests } if requests.len() > MAX_IN_FLIGHT_REQUESTS => {
            Err(format!("{} requests to reattach, more than {MAX_IN_FLIGHT_REQUESTS}", requests.len()))
        }
        ToAgent::StdinEnd { .. }
        | ToAgent::Cancel { .. }
        | ToAgent::BundleEnd { .. }
        | ToAgent::DockerFacts { .. }
        | ToAgent::Reattach { .. } => Ok(()),
    }
}

/// [`validate`] for a message to the daemon, without wrapping it in a [`Frame`].
///
/// # Errors
///
/// As [`validate`].
pub fn validate_to_daemon(message: &ToDaemon) -> Result<(), String> {
    match message {
        ToDaemon::Output { data, .. } => chunk(data),
        _ => Ok(()),
    }
}

fn validate_welcome(welcome: &Welcome) -> Result<(), String> {
    if welcome.heartbeat_interval_secs == 0 {
        return Err("heartbeat_interval_secs is 0".into());
    }
    if welcome.heartbeat_allowance == 0 {
        return Err("heartbeat_allowance is 0".into());
    }
    Ok(())
}

fn validate_exec(program: &str, args: &[String], env: &[(String, String)], cwd: Option<&str>) -> Result<(), String> {
    if program.is_empty() {
        return Err("the program is empty".into());
    }
    no_nul("program", program)?;
    if args.len() > MAX_ARGS {
        return Err(format!("{} arguments, more than {MAX_ARGS}", args.len()));
    }
    if env.len() > MAX_ENV {
        return Err(format!("{} environment variables, more than {MAX_ENV}", env.len()));
    }
    args.iter().try_for_each(|arg| no_nul("an argument", arg))?;
    for (name, value) in env {
        if name.is_empty() || name.contains('=') {
            return Err(format!("environment variable name {name:?} is empty or holds '='"));
        }
        no_nul("an environment variable", name)?;
        no_nul("an environment variable", value)?;
    }
    cwd.map_or(Ok(()), |cwd| absolute("cwd", cwd))
}

fn chunk(data: &[u8]) -> Result<(), String> {
    if data.len() > MAX_CHUNK_BYTES {
        return Err(format!("a chunk of {} bytes, more than {MAX_CHUNK_BYTES}", data.len()));
    }
    Ok(())
}

fn no_nul(what: &str, text: &str) -> Result<(), String> {
    if text.contains('\0') { Err(format!("{what} holds a NUL byte")) } else { Ok(()) }
}

fn absolute(what: &str, path: &str) -> Result<(), String> {
    no_nul(what, path)?;
    if path.starts_with('/') { Ok(()) } else { Err(format!("{what} {path:?} is not absolute")) }
}

/// A bundle path stays under the bundle's directory: relative, and every `/`-separated part
/// a plain name.
fn bundle_path(path: &str) -> Result<(), String> {
    no_nul("a bundle path", path)?;
    if path.starts_with('/') || path.split('/').any(|part| matches!(part, "" | "." | "..")) {
        return Err(format!("bundle path {path:?} is not a plain relative path"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{RequestId, Resume};

    fn exec(program: &str, args: Vec<String>, env: Vec<(String, String)>, cwd: Option<&str>) -> Frame {
        let cwd = cwd.map(str::to_owned);
        Frame::ToAgent(ToAgent::Exec { id: RequestId(1), program: program.into(), args, env, cwd, stdin: false })
    }

    #[test]
    fn exec_bounds() {
        assert!(validate(&exec("docker", vec!["ps".into()], vec![("A".into(), "b=c".into())], Some("/srv"))).is_ok());
        assert!(validate(&exec("", vec![], vec![], None)).unwrap_err().contains("program is empty"));
        assert!(validate(&exec("a\0b", vec![], vec![], None)).unwrap_err().contains("NUL"));
        assert!(validate(&exec("x", vec![String::new(); MAX_ARGS], vec![], None)).is_ok());
        assert!(
            validate(&exec("x", vec![String::new(); MAX_ARGS + 1], vec![], None)).unwrap_err().contains("arguments")
        );
        let env = vec![("A".to_owned(), String::new()); MAX_ENV + 1];
        assert!(validate(&exec("x", vec![], env, None)).unwrap_err().contains("environment variables"));
        assert!(validate(&exec("x", vec![], vec![("A=B".into(), "c".into())], None)).is_err());
        assert!(validate(&exec("x", vec![], vec![(String::new(), "c".into())], None)).is_err());
        assert!(validate(&exec("x", vec![], vec![], Some("srv"))).unwrap_err().contains("not absolute"));
    }

    #[test]
    fn chunk_bounds() {
        let stdin = |n| Frame::ToAgent(ToAgent::Stdin { id: RequestId(1), data: vec![0; n] });
        assert!(validate(&stdin(MAX_CHUNK_BYTES)).is_ok());
        assert!(validate(&stdin(MAX_CHUNK_BYTES + 1)).is_err());
        let output = Frame::ToDaemon(ToDaemon::Output {
            id: RequestId(1),
            stream: crate::protocol::Stream::Stderr,
            offset: 0,
            data: vec![0; MAX_CHUNK_BYTES + 1],
        });
        assert!(validate(&output).is_err());
    }

    #[test]
    fn bundle_paths_stay_inside() {
        for good in ["a", "a/b.txt", "dir/.hidden", "a..b"] {
            assert!(bundle_path(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/", "a\0b"] {
            assert!(bundle_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reattach_and_welcome_bounds() {
        let resume = Resume { id: RequestId(1), stdout: 0, stderr: 0, input: 0, input_ended: false };
        let reattach = |n| Frame::ToAgent(ToAgent::Reattach { requests: vec![resume.clone(); n] });
        assert!(validate(&reattach(MAX_IN_FLIGHT_REQUESTS)).is_ok());
        assert!(validate(&reattach(MAX_IN_FLIGHT_REQUESTS + 1)).is_err());
        let welcome = |interval, allowance| {
            Frame::ToAgent(ToAgent::Welcome(Welcome {
                protocol: 1,
                daemon_version: "0.1.0".into(),
                heartbeat_interval_secs: interval,
                heartbeat_allowance: allowance,
            }))
        };
        assert!(validate(&welcome(5, 3)).is_ok());
        assert!(validate(&welcome(0, 3)).is_err());
        assert!(validate(&welcome(5, 0)).is_err());
    }
}
