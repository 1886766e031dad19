//! The one public error of the engine.
//!
//! Backends keep their own `thiserror` enums and map them into [`Error`] at the boundary
//! (the `object_store` and OpenDAL way): callers match on an [`ErrorKind`], read the
//! context (which host, project, step) and ask [`Error::is_temporary`] before retrying.

use std::fmt;

/// What went wrong, coarsely enough to act on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The configuration or settings are invalid.
    Config,
    /// A request or argument is malformed (bad commit id, unknown host on the command line...).
    InvalidInput,
    /// Something asked for does not exist (a file at a commit, a run, a commit in a repository).
    NotFound,
    /// Another process holds a lock this one needs (the data directory).
    Locked,
    /// The scheduler's queue is full; try again later.
    QueueFull,
    /// The engine or scheduler is shutting down and takes no new work.
    ShuttingDown,
    /// A host or remote repository could not be reached.
    Unreachable,
    /// A host key is unknown under the strict policy, or differs from the recorded one.
    HostKey,
    /// Authentication was refused.
    Auth,
    /// A remote command ran and failed.
    RemoteCommand,
    /// A deadline passed.
    Timeout,
    /// The work was cancelled.
    Cancelled,
    /// A git operation failed.
    Git,
    /// A local file-system operation failed.
    Io,
    /// The store failed or holds data it cannot read.
    Store,
    /// The backend does not support the operation.
    Unsupported,
    /// A deploy step failed (preflight, verify, health gate...).
    Deploy,
}

impl ErrorKind {
    /// Whether an error of this kind may go away if the same operation is tried again.
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

/// Where an error happened: every field is optional and shown when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    pub project: Option<String>,
    pub host: Option<String>,
    pub repo: Option<String>,
    pub step: Option<String>,
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
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    message: String,
    /// Boxed and absent when empty, so that `Result<T, Error>` stays small.
    context: Option<Box<ErrorContext>>,
    temporary: bool,
    source: Option<BoxError>,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` raised by `operation` (a short verb phrase such as `"git fetch"`).
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

    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_project(mut self, project: impl fmt::Display) -> Self {
        self.context_mut().project.get_or_insert_with(|| project.to_string());
        self
    }

    pub fn with_host(mut self, host: impl fmt::Display) -> Self {
        self.context_mut().host.get_or_insert_with(|| host.to_string());
        self
    }

    pub fn with_repo(mut self, repo: impl fmt::Display) -> Self {
        self.context_mut().repo.get_or_insert_with(|| repo.to_string());
        self
    }

    pub fn with_step(mut self, step: impl fmt::Display) -> Self {
        self.context_mut().step.get_or_insert_with(|| step.to_string());
        self
    }

    pub fn with_path(mut self, path: impl fmt::Display) -> Self {
        self.context_mut().path.get_or_insert_with(|| path.to_string());
        self
    }

    /// Overrides whether retrying can help.
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The message alone, without context or source.
    pub fn message(&self) -> &str {
        &self.message
    }

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

    /// Shorthand for an I/O error on a local path.
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
