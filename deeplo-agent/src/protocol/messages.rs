//! The messages: what the daemon asks ([`ToAgent`]), what the agent answers ([`ToDaemon`]),
//! and the [`Frame`] that carries either one on the wire.
//!
//! The order of the variants of [`Frame`], [`ToAgent`] and [`ToDaemon`] is part of the
//! protocol (postcard encodes a variant as its index): new kinds are appended at the end,
//! never inserted, removed or reordered. The fields of a message are fixed once released; a
//! message that needs more fields becomes a new kind. [`ToDaemon::Hello`],
//! [`ToAgent::Welcome`] and everything inside them ([`Hello`], [`Welcome`], [`Fingerprint`])
//! are frozen for all versions, so that any two builds can read each other's handshake.

use serde::{Deserialize, Serialize};

/// Identifies one request on one connection, chosen by the daemon; every reply carries it
/// back. The daemon never reuses an id on a connection, nor across the reconnects of one
/// agent (a [`ToAgent::Reattach`] names ids from before the reconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the daemon to the agent: a [`ToAgent`].
    ToAgent,
    /// From the agent to the daemon: a [`ToDaemon`].
    ToDaemon,
}

/// One WebSocket binary message: a message for the agent or a message for the daemon.
///
/// The split into two enums makes sending from the wrong side a type error in either
/// program. The direction travels on the wire too (the first byte), so a peer that sends a
/// frame meant for the other side is caught exactly ([`Frame::into_to_agent`] and
/// [`Frame::into_to_daemon`]) rather than misread as whatever kind has the same index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Wire index 0: daemon to agent.
    ToAgent(ToAgent),
    /// Wire index 1: agent to daemon.
    ToDaemon(ToDaemon),
}

/// What the daemon sends to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToAgent {
    /// The answer to [`ToDaemon::Hello`]: the connection is accepted. Frozen (index 0).
    Welcome(Welcome),
    /// Run `program` with `args` directly (no shell). Answered by [`ToDaemon::Output`]
    /// chunks, then one [`ToDaemon::Exited`], or one [`ToDaemon::Failed`] when the program
    /// could not be started.
    Exec {
        /// The request this command is.
        id: RequestId,
        /// A name looked up in the agent's `PATH`, or an absolute path; never empty.
        program: String,
        /// The arguments, each one word as the program receives it.
        args: Vec<String>,
        /// Variables added to the agent's environment, in order (a later one wins).
        env: Vec<(String, String)>,
        /// The working directory (absolute); the agent's own when `None`.
        cwd: Option<String>,
        /// Whether [`ToAgent::Stdin`] chunks follow; when `false` the standard input is
        /// empty (closed at once).
        stdin: bool,
    },
    /// A chunk of standard input for the command `id`, in order.
    Stdin {
        /// The command.
        id: RequestId,
        /// At most [`MAX_CHUNK_BYTES`](super::MAX_CHUNK_BYTES) bytes.
        data: Vec<u8>,
    },
    /// The standard input of the command `id` ends (the agent closes the pipe).
    StdinEnd {
        /// The command.
        id: RequestId,
    },
    /// Stop the command `id` (the agent sends it SIGTERM, then SIGKILL); it still ends with
    /// [`ToDaemon::Exited`]. Cancelling a bundle write abandons it, answered by
    /// [`ToDaemon::Failed`].
    Cancel {
        /// The request to stop.
        id: RequestId,
    },
    /// Start writing a bundle under the absolute directory `dir` (created with its parents).
    /// Its entries follow as [`ToAgent::BundleFile`] (then its [`ToAgent::BundleData`]
    /// chunks) and [`ToAgent::BundleSymlink`], closed by [`ToAgent::BundleEnd`]; answered by
    /// [`ToDaemon::BundleWritten`] or [`ToDaemon::Failed`].
    WriteBundle {
        /// The request this bundle write is.
        id: RequestId,
        /// An absolute directory on the server.
        dir: String,
    },
    /// Start a file of the bundle `id`; its content is the [`ToAgent::BundleData`] chunks
    /// that follow, up to the next entry or [`ToAgent::BundleEnd`]. Mode 0644, or 0755 when
    /// executable; an existing file is replaced.
    BundleFile {
        /// The bundle write.
        id: RequestId,
        /// Relative to the bundle's directory: `/`-separated, no `.`, `..` or empty part.
        path: String,
        /// Whether the file gets mode 0755.
        executable: bool,
    },
    /// A chunk of the file most recently started in the bundle `id`.
    BundleData {
        /// The bundle write.
        id: RequestId,
        /// At most [`MAX_CHUNK_BYTES`](super::MAX_CHUNK_BYTES) bytes.
        data: Vec<u8>,
    },
    /// A symbolic link of the bundle `id`.
    BundleSymlink {
        /// The bundle write.
        id: RequestId,
        /// The link's own path, relative as for [`ToAgent::BundleFile`].
        path: String,
        /// What the link points to, stored as it is.
        target: String,
    },
    /// Every entry of the bundle `id` has been sent.
    BundleEnd {
        /// The bundle write.
        id: RequestId,
    },
    /// Report the Docker engine and its containers, answered by [`ToDaemon::Facts`].
    DockerFacts {
        /// The request.
        id: RequestId,
        /// Only the containers of this Compose project; every container when `None`.
        project: Option<String>,
    },
    /// The daemon's first request on every connection: the requests of an earlier
    /// connection of this agent that it still waits for (none on a fresh start). Answered by
    /// one [`ToDaemon::Reattached`] per request; the output of each one resumed then flows
    /// again from where the daemon's copy ends. A command of an earlier connection that is
    /// not named is one nobody waits for: the agent stops it.
    Reattach {
        /// At most [`MAX_IN_FLIGHT_REQUESTS`](super::MAX_IN_FLIGHT_REQUESTS) requests.
        requests: Vec<Resume>,
    },
}

/// What the agent sends to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToDaemon {
    /// The agent's first frame on every connection. Frozen (index 0).
    Hello(Hello),
    /// The agent is alive; sent every [`Welcome::heartbeat_interval_secs`].
    Heartbeat,
    /// The server's facts changed (sent when they do, or periodically).
    FingerprintUpdate(Fingerprint),
    /// A chunk of the output of the command `id`; chunks of one stream arrive in order.
    Output {
        /// The command.
        id: RequestId,
        /// Which stream.
        stream: Stream,
        /// Where `data` starts in the stream (the bytes of the stream before it). After a
        /// [`ToAgent::Reattach`] a chunk may repeat bytes the daemon already has, which it
        /// skips; a chunk past the end of what it has is a protocol violation.
        offset: u64,
        /// At most [`MAX_CHUNK_BYTES`](super::MAX_CHUNK_BYTES) bytes.
        data: Vec<u8>,
    },
    /// The command `id` ended; its last frame.
    Exited {
        /// The command.
        id: RequestId,
        /// How it ended.
        status: ExitStatus,
    },
    /// The request `id` could not be carried out (program not found, disk full, too many
    /// requests in flight...); its last frame.
    Failed {
        /// The request.
        id: RequestId,
        /// What went wrong, for the run log.
        message: String,
    },
    /// Every entry of the bundle `id` is on disk.
    BundleWritten {
        /// The bundle write.
        id: RequestId,
    },
    /// The answer to [`ToAgent::DockerFacts`].
    Facts {
        /// The request.
        id: RequestId,
        /// What Docker reported.
        facts: DockerFacts,
    },
    /// The answer to [`ToAgent::Reattach`] for one request.
    Reattached {
        /// The request asked about.
        id: RequestId,
        /// Whether it is resumed: its output from the daemon's offsets follows, then its
        /// end (it may have ended while no connection was up). When `false` the agent does
        /// not know it, lost its end (the machine restarted), or lost input the daemon had
        /// sent: it fails, and a command still running is stopped.
        running: bool,
    },
}

/// A request the daemon waits for across a reconnect, with what it has of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The request.
    pub id: RequestId,
    /// The bytes of standard output the daemon has received.
    pub stdout: u64,
    /// The bytes of standard error the daemon has received.
    pub stderr: u64,
    /// The bytes of standard input the daemon has sent: when the command has received
    /// fewer, that input is lost and the command cannot be resumed.
    pub input: u64,
    /// Whether the daemon has sent [`ToAgent::StdinEnd`].
    pub input_ended: bool,
}

/// The agent introduces itself. Frozen: every version reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The newest protocol version the agent speaks.
    pub protocol: u16,
    /// The agent's release (`0.1.0`), for the dashboard and for upgrade hints.
    pub agent_version: String,
    /// The server as the agent sees it.
    pub fingerprint: Fingerprint,
}

/// The daemon accepts the agent. Frozen: every version reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version both sides speak from now on (see [`negotiate`](super::negotiate)).
    pub protocol: u16,
    /// The daemon's release.
    pub daemon_version: String,
    /// How often the agent sends [`ToDaemon::Heartbeat`]; at least 1.
    pub heartbeat_interval_secs: u32,
    /// How many intervals may pass without a heartbeat before the daemon closes with
    /// [`CloseCode::HeartbeatMissed`](super::CloseCode::HeartbeatMissed); at least 1.
    pub heartbeat_allowance: u32,
}

/// What a server is, as its agent reports it (shown on the dashboard, used to choose hosts).
/// Frozen: it is inside [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The distribution (`Debian GNU/Linux 12`), from `/etc/os-release`.
    pub os: String,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// The machine (`x86_64`, `aarch64`).
    pub arch: String,
    /// The Docker engine's version, `None` when Docker does not answer.
    pub docker_version: Option<String>,
    /// The Compose plugin's version, `None` when it is missing.
    pub compose_version: Option<String>,
    /// Free bytes on the file system that holds the deploys, when known.
    pub disk_free_bytes: Option<u64>,
    /// Total memory, when known.
    pub memory_bytes: Option<u64>,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output (wire index 0).
    Stdout,
    /// Standard error (wire index 1).
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// Exited with this status; `0` is success (wire index 0).
    Code(i32),
    /// Killed by this signal, by name (`TERM`, `KILL`) (wire index 1).
    Signal(String),
    /// The agent lost the status (wire index 2).
    Unknown,
}

/// The Docker engine and its containers, as the agent read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerFacts {
    /// The engine's version (`27.3.1`).
    pub engine_version: String,
    /// The engine's API version (`1.47`).
    pub api_version: String,
    /// The Compose plugin's version, `None` when it is missing.
    pub compose_version: Option<String>,
    /// The containers asked for.
    pub containers: Vec<Container>,
}

/// One container, as `docker ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The container's name.
    pub name: String,
    /// Its `com.docker.compose.service` label, empty when it has none.
    pub service: String,
    /// The engine's state (`running`, `exited`, `restarting`...).
    pub state: String,
    /// The human status (`Up 3 hours (healthy)`).
    pub status: String,
}

impl Frame {
    /// Which way this frame travels.
    pub fn direction(&self) -> Direction {
        match self {
            Self::ToAgent(_) => Direction::ToAgent,
            Self::ToDaemon(_) => Direction::ToDaemon,
        }
    }

    /// The message's kind, for logs and errors (`"Exec"`, `"Hello"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ToAgent(m) => m.kind(),
            Self::ToDaemon(m) => m.kind(),
        }
    }

    /// The message for the agent, as the agent reads a frame.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::WrongDirection`](super::ProtocolError::WrongDirection) when the
    /// frame is one the agent itself sends.
    pub fn into_to_agent(self) -> Result<ToAgent, super::ProtocolError> {
        match self {
            Self::ToAgent(m) => Ok(m),
            Self::ToDaemon(m) => Err(super::ProtocolError::WrongDirection { kind: m.kind() }),
        }
    }

    /// The message for the daemon, as the daemon reads a frame.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::WrongDirection`](super::ProtocolError::WrongDirection) when the
    /// frame is one the daemon itself sends.
    pub fn into_to_daemon(self) -> Result<ToDaemon, super::ProtocolError> {
        match self {
            Self::ToDaemon(m) => Ok(m),
            Self::ToAgent(m) => Err(super::ProtocolError::WrongDirection { kind: m.kind() }),
        }
    }
}

impl From<ToAgent> for Frame {
    fn from(message: ToAgent) -> Self {
        Self::ToAgent(message)
    }
}

impl From<ToDaemon> for Frame {
    fn from(message: ToDaemon) -> Self {
        Self::ToDaemon(message)
    }
}

impl ToAgent {
    /// The kinds in wire order: a kind's position is its variant index.
    pub const KINDS: &'static [&'static str] = &[
        "Welcome",
        "Exec",
        "Stdin",
        "StdinEnd",
        "Cancel",
        "WriteBundle",
        "BundleFile",
        "BundleData",
        "BundleSymlink",
        "BundleEnd",
        "DockerFacts",
        "Reattach",
    ];

    /// This message's kind, one of [`KINDS`](Self::KINDS).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome(_) => "Welcome",
            Self::Exec { .. } => "Exec",
            Self::Stdin { .. } => "Stdin",
            Self::StdinEnd { .. } => "StdinEnd",
            Self::Cancel { .. } => "Cancel",
            Self::WriteBundle { .. } => "WriteBundle",
            Self::BundleFile { .. } => "BundleFile",
            Self::BundleData { .. } => "BundleData",
            Self::BundleSymlink { .. } => "BundleSymlink",
            Self::BundleEnd { .. } => "BundleEnd",
            Self::DockerFacts { .. } => "DockerFacts",
            Self::Reattach { .. } => "Reattach",
        }
    }

    /// The request this message belongs to; `None` for [`Welcome`](Self::Welcome) and
    /// [`Reattach`](Self::Reattach), which concern the connection.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Self::Welcome(_) | Self::Reattach { .. } => None,
            Self::Exec { id, .. }
            | Self::Stdin { id, .. }
            | Self::StdinEnd { id }
            | Self::Cancel { id }
            | Self::WriteBundle { id, .. }
            | Self::BundleFile { id, .. }
            | Self::BundleData { id, .. }
            | Self::BundleSymlink { id, .. }
            | Self::BundleEnd { id }
            | Self::DockerFacts { id, .. } => Some(*id),
        }
    }
}

impl ToDaemon {
    /// The kinds in wire order: a kind's position is its variant index.
    pub const KINDS: &'static [&'static str] = &[
        "Hello",
        "Heartbeat",
        "FingerprintUpdate",
        "Output",
        "Exited",
        "Failed",
        "BundleWritten",
        "Facts",
        "Reattached",
    ];

    /// This message's kind, one of [`KINDS`](Self::KINDS).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "Hello",
            Self::Heartbeat => "Heartbeat",
            Self::FingerprintUpdate(_) => "FingerprintUpdate",
            Self::Output { .. } => "Output",
            Self::Exited { .. } => "Exited",
            Self::Failed { .. } => "Failed",
            Self::BundleWritten { .. } => "BundleWritten",
            Self::Facts { .. } => "Facts",
            Self::Reattached { .. } => "Reattached",
        }
    }

    /// The request this message answers; `None` for the connection's own messages
    /// ([`Hello`](Self::Hello), [`Heartbeat`](Self::Heartbeat),
    /// [`FingerprintUpdate`](Self::FingerprintUpdate)). A reply whose id names no request
    /// of the connection is a [`CloseCode::ProtocolViolation`](super::CloseCode::ProtocolViolation).
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Self::Hello(_) | Self::Heartbeat | Self::FingerprintUpdate(_) => None,
            Self::Output { id, .. }
            | Self::Exited { id, .. }
            | Self::Failed { id, .. }
            | Self::BundleWritten { id }
            | Self::Facts { id, .. }
            | Self::Reattached { id, .. } => Some(*id),
        }
    }
}
