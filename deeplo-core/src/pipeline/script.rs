//! Reading a remote script that runs several steps in one command: its output goes to the
//! run log line by line, and the marker lines it prints as each step ends
//! (`\x1edeeplo <step> <status>`) become events that the pipeline awaits one step at a time,
//! so that each step is still timed and recorded on its own.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::runlog::RunLog;
use crate::transport::{CommandOutput, OutputSink, OutputStream};
use crate::{Error, ErrorKind, Result};

/// The start of a marker line.
const MARKER: &str = "\x1edeeplo ";
/// Output lines kept for an error message.
const TAIL: usize = 12;

enum Event {
    Marker { step: String, value: String },
    Output(String),
    Ended(Result<CommandOutput>),
}

/// What a script said about one step: its status word, and what it printed for it.
#[derive(Debug, Default)]
pub(crate) struct Marked {
    /// `0` for success, another exit status, or a word (`missing`).
    pub status: String,
    /// Values of other markers seen on the way, by name (`service`, `kept`).
    pub values: Vec<(String, String)>,
    /// The last output lines before the marker.
    pub tail: Vec<String>,
}

impl Marked {
    pub fn ok(&self) -> bool {
        self.status == "0"
    }

    pub fn values_of(&self, name: &str) -> Vec<String> {
        self.values.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    pub fn tail_text(&self) -> String {
        self.tail.join("\n")
    }
}

/// The sink given to the transport: whole lines to the log, markers to the events.
pub(crate) struct ScriptSink<'a> {
    log: &'a RunLog,
    tx: mpsc::UnboundedSender<Event>,
    partial: Mutex<Vec<u8>>,
}

/// The receiving side: the pipeline awaits one marker after another.
pub(crate) struct ScriptEvents {
    rx: mpsc::UnboundedReceiver<Event>,
    ended: Option<std::result::Result<CommandOutput, String>>,
}

pub(crate) fn channel(log: &RunLog) -> (ScriptSink<'_>, ScriptEvents) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ScriptSink { log, tx, partial: Mutex::new(Vec::new()) }, ScriptEvents { rx, ended: None })
}

impl ScriptSink<'_> {
    fn line(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if let Some(marker) = text.strip_prefix(MARKER) {
            let (step, value) = marker.split_once(' ').unwrap_or((marker, ""));
            let _ = self.tx.send(Event::Marker { step: step.to_owned(), value: value.to_owned() });
        } else {
            self.log.raw(format!("{text}\n").as_bytes());
            let _ = self.tx.send(Event::Output(text.to_owned()));
        }
    }

    /// Runs the command behind this sink and reports its end, so that a step awaiting a
    /// marker that never comes gets the command's end instead.
    pub async fn drive<F>(&self, run: F)
    where
        F: Future<Output = Result<CommandOutput>>,
    {
        let result = run.await;
        let rest = std::mem::take(&mut *self.partial.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            self.line(&rest);
        }
        let _ = self.tx.send(Event::Ended(result));
    }
}

impl OutputSink for ScriptSink<'_> {
    fn output(&self, _: OutputStream, data: &[u8]) {
        let lines: Vec<Vec<u8>> = {
            let mut partial = self.partial.lock().unwrap_or_else(|e| e.into_inner());
            partial.extend_from_slice(data);
            let Some(cut) = partial.iter().rposition(|b| *b == b'\n') else { return };
            let whole: Vec<u8> = partial.drain(..=cut).collect();
            whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
        };
        for line in lines {
            self.line(&line);
        }
    }
}

impl ScriptEvents {
    /// Waits for the marker of `step`. The script's end before it is an error that carries
    /// its exit status and last lines.
    pub async fn expect(&mut self, step: &str) -> Result<Marked> {
        let mut marked = Marked::default();
        loop {
            if let Some(ended) = &self.ended {
                return Err(ended_early(step, ended, &marked));
            }
            match self.rx.recv().await {
                Some(Event::Marker { step: name, value }) if name == step => {
                    marked.status = value;
                    return Ok(marked);
                }
                Some(Event::Marker { step: name, value }) => marked.values.push((name, value)),
                Some(Event::Output(line)) => {
                    if marked.tail.len() == TAIL {
                        marked.tail.remove(0);
                    }
                    marked.tail.push(line);
                }
                Some(Event::Ended(result)) => {
                    self.ended = Some(result.map_err(|e| e.to_string()));
                }
                None => self.ended = Some(Err("the command's output stopped".into())),
            }
        }
    }
}

fn ended_early(step: &str, ended: &std::result::Result<CommandOutput, String>, marked: &Marked) -> Error {
    match ended {
        Ok(out) => {
            let said = if marked.tail.is_empty() { out.tail(TAIL) } else { marked.tail_text() };
            Error::new(
                ErrorKind::RemoteCommand,
                "remote script",
                format!("the remote script ended before {step} ({}): {said}", out.status),
            )
        }
        Err(e) => {
            Error::new(ErrorKind::Unreachable, "remote script", format!("lost the remote script before {step}: {e}"))
                .temporary(true)
        }
    }
}

/// Runs `main` while `side` is polled alongside it, and returns `main`'s output; `side` is
/// dropped when `main` ends, whether or not it has ended too.
pub(crate) async fn alongside<M, S>(main: M, side: S) -> M::Output
where
    M: Future,
    S: Future<Output = ()>,
{
    tokio::pin!(main);
    tokio::pin!(side);
    let mut side_done = false;
    loop {
        tokio::select! {
            out = &mut main => return out,
            () = &mut side, if !side_done => side_done = true,
        }
    }
}
