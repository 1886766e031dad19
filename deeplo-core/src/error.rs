//! The one public error of the engine.
//!
//! Backends keep their own `thiserror` enums and map them into [`Error`] at the boundary
//! (the `object_store` and OpenDAL way): callers match on an [`ErrorKind`], read the
//! context (which host, project, step) and ask [`Error::is_temporary`] before retrying.

use std::fmt;

/// What went wrong, coarsely enough to act on: the classification to `match` on (read it
/// with [`Error::kind`]). Backends map their own errors onto these kinds.
///
/// Kinds are added as deeplo grows, so a `match` needs a wildcard arm; treat an unknown kind
/// as a permanent failure unless [`Error::is_temporary`] says otherwise.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The config file, the settings or a credential is unusable: a config that fails
    /// validation, an empty secret file, an SSH key that cannot be read or decrypted, a bad
    /// GitHub App key. Fix the config; retrying will not help.
    Config,
    /// A request or argument is malformed or names something the config does not have: a bad
    /// commit id or revision, a project that is not configured, a host that is not a target
    /// of the project, an [`EngineBuilder`](crate::EngineBuilder) missing a part, a
    /// malformed host key.
    InvalidInput,
    /// Something asked for does not exist: a commit missing from the mirror, a file at a
    /// commit, a repository, a run, an earlier good deploy to roll back to, a local file
    /// ([`Error::io`] maps a missing file here).
    NotFound,
    /// Another process holds a lock this one needs: the data directory of a
    /// [`FileStore`](crate::FileStore) (one daemon per data directory). Temporary by default.
    Locked,
    /// The scheduler's queue is full and the job was not accepted. Temporary by default:
    /// submit again later.
    QueueFull,
    /// The engine or scheduler is shutting down and takes no new work.
    ShuttingDown,
    /// A host or remote repository could not be reached: connection refused or timed out, the
    /// SSH session or a remote script lost, a server error from GitHub. Temporary by default.
    Unreachable,
    /// A host key was refused: unknown under the strict policy, different from the recorded
    /// key, or revoked (also a git server's certificate). The message names the known_hosts
    /// file to edit. Not temporary.
    HostKey,
    /// Credentials were refused: SSH authentication, git credentials, a GitHub token or App
    /// (401/403).
    Auth,
    /// A command on a host ran and exited with a failure status (the message carries the tail
    /// of its output).
    RemoteCommand,
    /// A deadline passed before an answer, such as a host probe or an HTTP request.
    /// Temporary by default.
    Timeout,
    /// The work was stopped before it finished: cancelled, timed out by the scheduler, or
    /// stopped by shutdown; also a deploy whose run ended without a result.
    Cancelled,
    /// A git operation on the mirror failed for a reason other than the kinds above.
    Git,
    /// A local file-system operation failed (other than a missing file), or an SFTP transfer
    /// to a host.
    Io,
    /// The store failed or holds data it cannot read (a corrupt record, an unreadable
    /// applied-config baseline).
    Store,
    /// The backend does not support the operation; check its
    /// [`Capabilities`](crate::Capabilities) first.
    Unsupported,
    /// A deploy step failed on the host: preflight, `compose up`, verify or the health gate.
    Deploy,
}

impl ErrorKind {
    /// Whether an error of this kind may go away if the same operation is tried again:
    /// true for [`Unreachable`](Self::Unreachable), [`QueueFull`](Self::QueueFull),
    /// [`Timeout`](Self::Timeout) and [`Locked`](Self::Locked). [`Error::new`] starts from
    /// this; [`Error::temporary`] overrides it.
    pub fn is_temporary_by_default(self) -> bool {
        matches!(self, Self::Unreachable | Self::QueueFull | Self::Timeout | Self::Locked)
    }

    /// A short lowercase name, stable for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::Locked => "locked",
            Self::QueueFull => "queue_full",
            Self::ShuttingDown => "shutting_down",
            Self::Unreachable => "unreachable",
            Self::HostKey => "host_key",
            Self::Auth => "auth",
            Self::RemoteCommand => "remote_command",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Git => "git",
            Self::Io => "io",
            Self::Store => "store",
            Self::Unsupported => "unsupported",
            Self::Deploy => "deploy",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an error happened: every field is optional and shown when set. Read it with
/// [`Error::context`]; set it with [`Error::with_project`] and its siblings. Fields may be
/// added, so it cannot be built with a struct literal outside deeplo-core.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The project name.
    pub project: Option<String>,
    /// The host name.
    pub host: Option<String>,
    /// The repo name or URL (credentials masked).
    pub repo: Option<String>,
    /// The pipeline step (`preflight`, `up`...).
    pub step: Option<String>,
    /// A local or remote file path, or a store document.
    pub path: Option<String>,
}

impl ErrorContext {
    fn is_empty(&self) -> bool {
        self.project.is_none()
            && self.host.is_none()
            && self.repo.is_none()
            && self.step.is_none()
            && self.path.is_none()
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(step) = &self.step {
            parts.push(format!("step {step}"));
        }
        if let Some(project) = &self.project {
            parts.push(format!("project \"{project}\""));
        }
        if let Some(host) = &self.host {
            parts.push(format!("host \"{host}\""));
        }
        if let Some(repo) = &self.repo {
            parts.push(format!("repo \"{repo}\""));
        }
        if let Some(path) = &self.path {
            parts.push(format!("path {path}"));
        }
        f.write_str(&parts.join(", "))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The engine's error: a kind, the operation that failed, where, a message for the user and
/// whether retrying can help.
///
/// `Display` shows `[context] operation: message` (the brackets only when a context is set,
/// and the source when the message does not already hold it): a line fit for the user. Match on [`kind`](Self::kind), ask
/// [`is_temporary`](Self::is_temporary) before retrying, and read
/// [`context`](Self::context) to tell which pair or step failed.
///
/// Backends build one with [`Error::new`] and the `with_*` methods:
///
/// ```
/// use deeplo_core::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::Unreachable, "connect", "connection refused").with_host("web-1");
/// assert!(err.is_temporary());
/// assert_eq!(err.to_string(), "[host \"web-1\"] connect: connection refused");
/// ```
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    message: String,
    /// Boxed and absent when empty, so that `Result<T, Error>` stays small.
    context: Option<Box<ErrorContext>>,
    temporary: bool,
    source: Option<BoxError>,
}

/// The engine's result type: `E` defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` raised by `operation` (a short verb phrase such as `"git fetch"`),
    /// with a message that tells the user what happened and, if possible, what to do.
    /// Whether it is temporary starts from [`ErrorKind::is_temporary_by_default`].
    pub fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            operation,
            message: message.into(),
            context: None,
            temporary: kind.is_temporary_by_default(),
            source: None,
        }
    }

    /// Attaches the underlying error, returned by [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the context's project, unless one is already set (the innermost wins).
    pub fn with_project(mut self, project: impl fmt::Display) -> Self {
        self.context_mut().project.get_or_insert_with(|| project.to_string());
        self
    }

    /// Sets the context's host, unless one is already set.
    pub fn with_host(mut self, host: impl fmt::Display) -> Self {
        self.context_mut().host.get_or_insert_with(|| host.to_string());
        self
    }

    /// Sets the context's repo, unless one is already set. Mask credentials in a URL first.
    pub fn with_repo(mut self, repo: impl fmt::Display) -> Self {
        self.context_mut().repo.get_or_insert_with(|| repo.to_string());
        self
    }

    /// Sets the context's pipeline step, unless one is already set.
    pub fn with_step(mut self, step: impl fmt::Display) -> Self {
        self.context_mut().step.get_or_insert_with(|| step.to_string());
        self
    }

    /// Sets the context's path, unless one is already set.
    pub fn with_path(mut self, path: impl fmt::Display) -> Self {
        self.context_mut().path.get_or_insert_with(|| path.to_string());
        self
    }

    /// Overrides whether retrying can help (the kind's default otherwise).
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// The classification to match on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed, as given to [`Error::new`] (`"git fetch"`).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The message alone, without context or source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where it happened; every field is `None` when no context was set.
    pub fn context(&self) -> &ErrorContext {
        static EMPTY: ErrorContext = ErrorContext { project: None, host: None, repo: None, step: None, path: None };
        self.context.as_deref().unwrap_or(&EMPTY)
    }

    fn context_mut(&mut self) -> &mut ErrorContext {
        self.context.get_or_insert_with(Box::default)
    }

    /// Whether trying the same operation again may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// Shorthand for an I/O error on a local path: [`ErrorKind::NotFound`] for a missing
    /// file, else [`ErrorKind::Io`], with `path` in the message and `err` as the source.
    pub fn io(operation: &'static str, path: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Io };
        let path = path.to_string();
        Self::new(kind, operation, format!("{path}: {err}")).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.context().is_empty() {
            write!(f, "[{}] ", self.context())?;
        }
        write!(f, "{}: {}", self.operation, self.message)?;
        // The source is shown when the message does not already carry it.
        if let Some(source) = &self.source {
            let source = source.to_string();
            if !self.message.contains(&source) {
                write!(f, ": {source}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("message", &self.message)
            .field("context", self.context())
            .field("temporary", &self.temporary)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_context_and_source_once() {
        let io = std::io::Error::other("disk full");
        let err = Error::new(ErrorKind::Io, "write record", "could not write")
            .with_source(io)
            .with_host("web-1")
            .with_step("stage");
        assert_eq!(err.to_string(), "[step stage, host \"web-1\"] write record: could not write: disk full");
        assert!(!err.is_temporary());
        let err = Error::new(ErrorKind::Unreachable, "connect", "refused");
        assert!(err.is_temporary());
        assert_eq!(err.to_string(), "connect: refused");
    }

    #[test]
    fn first_context_wins() {
        let err = Error::new(ErrorKind::Deploy, "up", "x").with_host("a").with_host("b");
        assert_eq!(err.context().host.as_deref(), Some("a"));
    }
}
