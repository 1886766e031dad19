//! A connection lost under a running command.

use std::future::Future;
use std::pin::pin;

use super::{Collect, sh, until_started, within};
use crate::ErrorKind;
use crate::transport::{ExitStatus, Transport};

/// When the connection is cut under a running command (`cut` does it from outside, see
/// the [module docs](super)), the command ends with an
/// [`ErrorKind::Unreachable`] error or an [`ExitStatus::Unknown`] status, never hangs and
/// never reports a status it did not see; the next command fails with
/// [`ErrorKind::Unreachable`], and `close` returns.
pub async fn lost_connection_ends_commands(t: &dyn Transport, cut: impl Future<Output = ()>) {
    let sink = Collect::default();
    // Bounded, so that a host process that outlives its connection ends on its own.
    let command = sh("echo started; exec sleep 45");
    let mut run = pin!(t.run(&command, &sink));
    until_started(t, &sink, &mut run, "the command ended before the connection was cut").await;
    let ((), out) =
        within("the running command to end once its connection was cut", async { tokio::join!(cut, &mut run) }).await;
    match out {
        Err(e) if e.kind() == ErrorKind::Unreachable => {}
        Ok(out) if out.status == ExitStatus::Unknown => {}
        Err(e) => panic!("a lost connection should be an Unreachable error, got a {} error: {e}", e.kind()),
        Ok(out) => panic!("a lost connection should not yield a status, got {} ({out:?})", out.status),
    }
    let next = within("a command on the lost connection", t.run(&sh("echo after"), &sink)).await;
    match next {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unreachable, "a command on a lost connection: {e}"),
        Ok(out) => panic!("a command on a lost connection should fail with Unreachable, got {out:?}"),
    }
    let _ = within("close after the connection was lost", t.close()).await;
}
