//! Commands: status, words, output, input, concurrency and cancellation.

use std::pin::pin;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{Collect, remove_scratch, run_ok, scratch, sh, until_started, within};
use crate::transport::{ExitStatus, OutputStream, RemoteCommand, Transport};

/// A command's exit status comes back as it is: 0, another code (3), and 127 for a
/// program that does not exist (what a shell answers, which the pipeline reads as "not
/// installed"); a non-zero status is `Ok`, not an error.
pub async fn exit_codes(t: &dyn Transport) {
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("true", 0), ("false", 1)] {
        let out = run_ok(t, &sh(script)).await;
        assert_eq!(out.status, ExitStatus::Code(code), "sh -c {script:?} should end with status {code}");
    }
    let missing = RemoteCommand::new("deeplo-conformance-no-such-program").arg("x");
    let out = run_ok(t, &missing).await;
    assert_eq!(out.status, ExitStatus::Code(127), "a missing program should end with status 127");
}

/// Every word of a command reaches the program unchanged, whatever it holds (spaces,
/// quotes, shell metacharacters, a newline, an empty word), and none of it runs.
pub async fn words_reach_the_program_unchanged(t: &dyn Transport) {
    let words = [
        "plain",
        "a b",
        "$(echo injected)",
        "`echo injected`",
        "it's \"quoted\"",
        "back\\slash",
        "new\nline",
        "*",
        ";|&",
        "",
    ];
    let out = run_ok(t, &RemoteCommand::new("printf").arg("%s\\0").args(words)).await;
    assert!(out.status.success(), "printf: {} ({})", out.status, out.stderr_str());
    let stdout = out.stdout_str();
    let got: Vec<&str> = stdout.split('\0').collect();
    assert_eq!(got[..got.len() - 1], words, "the program received other words than the command's");
}

/// Output reaches the sink while the command runs: the command prints a line, then waits
/// for its input, which the check sends only once that line is in the sink. Skipped when
/// the transport does not claim [`Capabilities::streaming_output`](crate::Capabilities).
pub async fn output_streams_while_running(t: &dyn Transport) {
    if !t.capabilities().streaming_output {
        return;
    }
    let (mut writer, mut reader) = tokio::io::duplex(64);
    let sink = Collect::default();
    let command = sh("echo first; read reply; echo \"second $reply\"");
    let mut run = pin!(t.run_with_input(&command, &mut reader, &sink));
    within("the first line to reach the sink while the command still runs (output not streamed?)", async {
        tokio::select! {
            out = &mut run => panic!("the command ended before its input was sent: {out:?}"),
            () = sink.wait_for(OutputStream::Stdout, "first\n") => {}
        }
    })
    .await;
    writer.write_all(b"go\n").await.unwrap();
    drop(writer);
    let out = within("the command to end once its input came (input not forwarded while it runs?)", run)
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    assert_eq!(out.status, ExitStatus::Code(0), "{command}");
    assert_eq!(out.stdout_str(), "first\nsecond go\n", "the command's output");
}

/// Standard output and standard error stay apart and complete, interleaved or not, in the
/// returned output and in the sink alike (the last chunk of each has no newline).
pub async fn stdout_and_stderr_are_apart(t: &dyn Transport) {
    let command = sh(r#"i=0
while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
printf out-end; printf err-end >&2"#);
    let sink = Collect::default();
    let out = within(&format!("run {command}"), t.run(&command, &sink)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{command}: {}", out.status);
    let expected = |name: &str| (0..2000).map(|i| format!("{name} {i}\n")).collect::<String>() + name + "-end";
    assert_same("stdout", &out.stdout, expected("out").as_bytes());
    assert_same("stderr", &out.stderr, expected("err").as_bytes());
    assert_same("stdout in the sink", &sink.stream(OutputStream::Stdout), &out.stdout);
    assert_same("stderr in the sink", &sink.stream(OutputStream::Stderr), &out.stderr);
}

/// Several MiB on each stream at once arrive complete and in order.
pub async fn large_output_is_complete(t: &dyn Transport) {
    let command = sh("seq 1 1000000 & seq 1 300000 >&2; wait");
    let sink = Collect::default();
    let out = within(&format!("run {command}"), t.run(&command, &sink)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{command}: {}", out.status);
    let numbers = |n: u32| (1..=n).map(|i| format!("{i}\n")).collect::<String>();
    assert_same("stdout of seq 1 1000000", &out.stdout, numbers(1_000_000).as_bytes());
    assert_same("stderr of seq 1 300000", &out.stderr, numbers(300_000).as_bytes());
    assert_same("stdout in the sink", &sink.stream(OutputStream::Stdout), &out.stdout);
    assert_same("stderr in the sink", &sink.stream(OutputStream::Stderr), &out.stderr);
}

/// Standard input reaches the command complete and is closed when it ends; a command that
/// ends without reading all of an endless input, or that never reads an input that stays
/// open, still ends.
pub async fn input_is_fed(t: &dyn Transport) {
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sink = Collect::default();
    let out =
        within("cat of 3 MiB of input", t.run_with_input(&RemoteCommand::new("cat"), &mut data.as_slice(), &sink))
            .await
            .unwrap_or_else(|e| panic!("cat: {e}"));
    assert!(out.status.success(), "cat: {}", out.status);
    assert_same("cat's output (its input sent back)", &out.stdout, &data);

    let out = within("head -c 5 of an endless input", async {
        t.run_with_input(&RemoteCommand::new("head").args(["-c", "5"]), &mut tokio::io::repeat(b'x'), &sink).await
    })
    .await
    .unwrap_or_else(|e| panic!("head -c 5: {e}"));
    assert_eq!(out.status, ExitStatus::Code(0), "head -c 5 of an endless input");
    assert_eq!(out.stdout_str(), "xxxxx", "head -c 5 of an endless input");

    let (writer, mut open) = tokio::io::duplex(64);
    let out = within("a command that does not read an input that stays open", async {
        t.run_with_input(&RemoteCommand::new("echo").arg("done"), &mut open, &sink).await
    })
    .await
    .unwrap_or_else(|e| panic!("echo done: {e}"));
    drop(writer);
    assert_eq!((out.status, out.stdout_str().as_ref()), (ExitStatus::Code(0), "done\n"), "echo done");
}

/// Eight commands run at the same time on one transport, each with its own output: each
/// checks in to a directory, then waits until all eight have.
pub async fn commands_run_concurrently(t: &dyn Transport) {
    const SCRIPT: &str = r#"count() { set -- "$1"/*; echo $#; }
touch "$1/$2"
i=0
while [ $i -lt 150 ]; do
  [ "$(count "$1")" -ge 8 ] && { echo "together $2"; echo "err $2" >&2; exit 0; }
  sleep 0.1; i=$((i+1))
done
echo "alone $2"; exit 1"#;
    let dir = scratch(t).await;
    let sinks: Vec<Collect> = (0..8).map(|_| Collect::default()).collect();
    let commands: Vec<RemoteCommand> =
        (0..8).map(|i| RemoteCommand::script(SCRIPT, [dir.clone(), i.to_string()])).collect();
    let runs = commands.iter().zip(&sinks).map(|(c, s)| t.run(c, s));
    let outs = within(
        "eight concurrent commands (each waits for all eight: commands run one at a time hang here)",
        futures::future::join_all(runs),
    )
    .await;
    remove_scratch(t, &dir).await;
    for (i, (out, sink)) in outs.into_iter().zip(&sinks).enumerate() {
        let out = out.unwrap_or_else(|e| panic!("concurrent command {i}: {e}"));
        assert_eq!(
            (out.status, out.stdout_str().as_ref()),
            (ExitStatus::Code(0), format!("together {i}\n").as_str()),
            "concurrent command {i} (\"alone\": the commands did not run at the same time)"
        );
        assert_eq!(out.stderr_str(), format!("err {i}\n"), "concurrent command {i}'s stderr");
        assert_same(&format!("command {i}'s stdout in its own sink"), &sink.stream(OutputStream::Stdout), &out.stdout);
    }
}

/// Dropping the future of a running command returns at once, and the transport runs the
/// next command as if nothing happened.
pub async fn cancel_leaves_the_transport_usable(t: &dyn Transport) {
    const SCRIPT: &str = r#"echo started
i=0
while [ $i -lt 300 ] && [ ! -e "$1/stop" ]; do sleep 0.1; i=$((i+1)); done"#;
    let dir = scratch(t).await;
    let command = RemoteCommand::script(SCRIPT, [dir.as_str()]);
    let sink = Collect::default();
    {
        let mut run = pin!(t.run(&command, &sink));
        until_started(t, &sink, &mut run, "the command ended before it was cancelled").await;
        // `run` is dropped here, mid-command.
    }
    let out = run_ok(t, &RemoteCommand::new("echo").arg("after")).await;
    assert_eq!(
        (out.status, out.stdout_str().as_ref()),
        (ExitStatus::Code(0), "after\n"),
        "the command after a cancelled one"
    );
    // The cancelled command may still run on the host: stop it.
    let _ = run_ok(t, &RemoteCommand::new("touch").arg(format!("{dir}/stop"))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    remove_scratch(t, &dir).await;
}

/// Panics unless `got` equals `want`, naming the first byte where they differ rather
/// than printing megabytes.
fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    let around = |d: &[u8]| String::from_utf8_lossy(&d[at.saturating_sub(20)..(at + 20).min(d.len())]).into_owned();
    panic!(
        "{what}: {} bytes where {} were expected, first difference at byte {at}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    );
}
