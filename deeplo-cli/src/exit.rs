//! The exit status of a failed verb, so that scripts can tell why it failed:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | it worked |
//! | 1 | the operation failed |
//! | 2 | usage: a bad command line (clap's own status) |
//! | 3 | not authenticated: no token, or one the daemon does not accept |
//! | 4 | denied: the caller's role does not allow it |
//! | 5 | not found: no such project, host, run, user or token (or not in the caller's org) |
//! | 7 | the daemon could not be reached |

use std::process::ExitCode;

use hyper::StatusCode;

use crate::daemon::client::ApiFailure;

/// Not authenticated.
pub const UNAUTHENTICATED: u8 = 3;
/// Denied.
pub const DENIED: u8 = 4;
/// Not found.
pub const NOT_FOUND: u8 = 5;
/// The daemon could not be reached.
pub const UNREACHABLE: u8 = 7;

/// The status for `err`: the first cause in its chain that says more than "failed".
pub fn status_of(err: &anyhow::Error) -> ExitCode {
    // A context value is found by `downcast_ref` on the error itself, not in its chain.
    if err.downcast_ref::<crate::daemon::client::Unreachable>().is_some() {
        return ExitCode::from(UNREACHABLE);
    }
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<ApiFailure>() {
            return ExitCode::from(match failure.status {
                StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
                StatusCode::FORBIDDEN => DENIED,
                StatusCode::NOT_FOUND => NOT_FOUND,
                _ => 1,
            });
        }
        if let Some(core) = cause.downcast_ref::<deeplo_core::Error>()
            && core.kind() == deeplo_core::ErrorKind::NotFound
        {
            return ExitCode::from(NOT_FOUND);
        }
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: anyhow::Error) -> ExitCode {
        status_of(&err)
    }

    #[test]
    fn statuses() {
        let api = |status| anyhow::Error::new(ApiFailure { status, message: "x".into() });
        assert_eq!(code(api(StatusCode::UNAUTHORIZED)), ExitCode::from(3));
        assert_eq!(code(api(StatusCode::FORBIDDEN)), ExitCode::from(4));
        assert_eq!(code(api(StatusCode::NOT_FOUND).context("revoke")), ExitCode::from(5));
        assert_eq!(code(api(StatusCode::INTERNAL_SERVER_ERROR)), ExitCode::FAILURE);
        let missing = deeplo_core::Error::new(deeplo_core::ErrorKind::NotFound, "find", "no such run");
        assert_eq!(code(anyhow::Error::new(missing)), ExitCode::from(5));
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let unreachable = anyhow::Error::new(io).context(crate::daemon::client::Unreachable("/run/deeplo.sock".into()));
        assert_eq!(code(unreachable), ExitCode::from(7));
        assert_eq!(code(anyhow::anyhow!("anything else")), ExitCode::FAILURE);
    }
}
