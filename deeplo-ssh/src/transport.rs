//! [`SshTransport`]: commands on their own channels, and bundles over one SFTP session.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use deeplo_core::transport::OutputStream;
use deeplo_core::{
    Bundle, Capabilities, CommandOutput, Discard, Error, ExitStatus, OutputSink, RemoteCommand, Result, Transport,
};
use russh::ChannelMsg;
use russh::client::Handle;
use russh_sftp::client::{Config as SftpConfig, SftpSession};
use tokio::io::AsyncRead;
use tokio::sync::OnceCell;

use crate::error::SshError;
use crate::host_key::Handler;
use crate::{tar_stream, upload};

/// One SSH connection to one host.
pub struct SshTransport {
    handle: Handle<Handler>,
    host: String,
    sftp: OnceCell<SftpSession>,
    /// How long one SFTP request may wait for its answer.
    sftp_timeout: Duration,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport").field("host", &self.host).finish_non_exhaustive()
    }
}

impl SshTransport {
    pub(crate) fn new(handle: Handle<Handler>, host: String, sftp_timeout: Duration) -> Self {
        Self { handle, host, sftp: OnceCell::new(), sftp_timeout }
    }

    fn fail(&self, e: SshError, operation: &'static str) -> Error {
        e.into_core(operation).with_host(&self.host)
    }

    async fn sftp(&self) -> Result<&SftpSession> {
        self.sftp
            .get_or_try_init(|| async {
                let started = Instant::now();
                let channel =
                    self.handle.channel_open_session().await.map_err(|source| {
                        self.fail(SshError::Protocol { what: "open sftp channel", source }, "sftp")
                    })?;
                channel
                    .request_subsystem(true, "sftp")
                    .await
                    .map_err(|source| self.fail(SshError::Protocol { what: "start sftp subsystem", source }, "sftp"))?;
                let config = SftpConfig { request_timeout_secs: self.sftp_timeout.as_secs().max(1), ..Default::default() };
                let session = SftpSession::new_with_config(channel.into_stream(), config)
                    .await
                    .map_err(|source| self.fail(SshError::Sftp { what: "start", path: String::new(), source }, "sftp"))?;
                tracing::debug!(host = %self.host, millis = started.elapsed().as_millis() as u64, "sftp session started");
                Ok(session)
            })
            .await
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities { symlinks: true, file_modes: true, streaming_output: true }
    }

    async fn run_with_input(
        &self,
        command: &RemoteCommand,
        input: &mut (dyn AsyncRead + Send + Unpin),
        sink: &dyn OutputSink,
    ) -> Result<CommandOutput> {
        let started = Instant::now();
        let line = command.to_shell();
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|source| self.fail(SshError::Protocol { what: "open channel", source }, "run command"))?;
        channel
            .exec(true, line.as_bytes())
            .await
            .map_err(|source| self.fail(SshError::Protocol { what: "exec", source }, "run command"))?;
        let (mut reader, writer) = channel.split();
        // Standard input is sent while the output is read; a command that ends before its
        // input does simply stops the sending.
        let send = async {
            writer.data(input).await?;
            writer.eof().await
        };
        tokio::pin!(send);
        let mut sending = true;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut status = ExitStatus::Unknown;
        loop {
            let msg = tokio::select! {
                sent = &mut send, if sending => {
                    sending = false;
                    if let Err(e) = sent {
                        tracing::debug!(host = %self.host, error = %e, "standard input not fully sent");
                    }
                    continue;
                }
                msg = reader.wait() => msg,
            };
            match msg {
                None => break,
                Some(ChannelMsg::Data { data }) => {
                    sink.output(OutputStream::Stdout, &data);
                    stdout.extend_from_slice(&data);
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    sink.output(OutputStream::Stderr, &data);
                    stderr.extend_from_slice(&data);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => status = ExitStatus::Code(exit_status as i32),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    status = ExitStatus::Signal(signal_static(&signal_name))
                }
                Some(_) => {}
            }
        }
        tracing::debug!(host = %self.host, command = %line, millis = started.elapsed().as_millis() as u64, %status, "remote command");
        Ok(CommandOutput { status, stdout, stderr })
    }

    /// One `tar -x` fed the whole bundle as a stream: one round trip whatever the number
    /// of files. Hosts without `tar` get the files over SFTP instead.
    async fn write_bundle(&self, dir: &str, bundle: &Bundle) -> Result<()> {
        let started = Instant::now();
        let archive = tar_stream::archive(bundle).map_err(|e| self.fail(e, "upload"))?;
        let out = self.run_with_input(&tar_stream::extract(dir), &mut archive.as_slice(), &Discard).await?;
        if out.status == ExitStatus::Code(127) {
            tracing::debug!(host = %self.host, "no tar on the host; uploading over sftp");
            let sftp = self.sftp().await?;
            upload::write_bundle(sftp, dir, bundle).await.map_err(|e| self.fail(e, "upload"))?;
        } else if !out.status.success() {
            return Err(self.fail(SshError::Extract { dir: dir.to_owned(), output: out.tail(6) }, "upload"));
        }
        tracing::debug!(host = %self.host, dir, files = bundle.entries.len(), bytes = archive.len(), millis = started.elapsed().as_millis() as u64, "bundle uploaded");
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        if let Some(sftp) = self.sftp.get() {
            let _ = sftp.close().await;
        }
        self.handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await
            .map_err(|source| self.fail(SshError::Protocol { what: "disconnect", source }, "close"))
    }
}

fn signal_static(sig: &russh::Sig) -> &'static str {
    use russh::Sig::*;
    match sig {
        ABRT => "ABRT",
        ALRM => "ALRM",
        FPE => "FPE",
        HUP => "HUP",
        ILL => "ILL",
        INT => "INT",
        KILL => "KILL",
        PIPE => "PIPE",
        QUIT => "QUIT",
        SEGV => "SEGV",
        TERM => "TERM",
        USR1 => "USR1",
        Custom(_) => "other",
    }
}
