//! `deeplo-agent`: the program on a server that connects out to the daemon. Flag parsing
//! and logging; the connection loop is [`deeplo_agent::client`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use deeplo_agent::agent::KeepArgs;
use deeplo_agent::client::{
    AGENT_VERSION, Client, ClientError, ClientOptions, DEFAULT_DEPLOY_DIR, DEFAULT_STATE_DIR, ProxyEnv,
};
use deeplo_agent::protocol::PROTOCOL_VERSION;
use tracing_subscriber::EnvFilter;

/// Exit status when the daemon refused this agent for good (bad token, decommissioned or
/// replaced server): the systemd unit does not restart on it (`RestartPreventExitStatus=3`).
const EXIT_REFUSED: u8 = 3;

/// Exit status for a bad flag or file.
const EXIT_CONFIG: u8 = 2;

/// deeplo's agent: connects out to the deeplo daemon over a WebSocket and runs its deploys
/// on this server.
#[derive(Debug, Parser)]
#[command(name = "deeplo-agent", version, disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connects to the daemon and serves it until stopped (SIGTERM, SIGINT) or refused.
    ///
    /// Exits 0 when stopped, 2 for a bad flag or file, 3 when the daemon refused the agent
    /// for good (bad token, server decommissioned or replaced). Proxies: HTTPS_PROXY,
    /// HTTP_PROXY and NO_PROXY. Log level: DEEPLO_AGENT_LOG (default info).
    Run(RunArgs),
    /// Prints the agent's version and protocol version.
    Version,
    /// Internal: keeps one command for `run`, so that it outlives the agent (started by the
    /// agent for each command; not for use by hand).
    #[command(hide = true)]
    Keep(KeepCli),
}

#[derive(Debug, clap::Args)]
struct KeepCli {
    /// The command's spool entry.
    #[arg(long)]
    dir: PathBuf,
    /// The command takes standard input through the entry's socket.
    #[arg(long)]
    input: bool,
    /// The command's working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<std::ffi::OsString>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The daemon's URL, wss://HOST[:PORT][/BASE] (ws:// only to a loopback address).
    #[arg(long, env = "DEEPLO_AGENT_URL")]
    url: String,
    /// The file that holds the runner token.
    #[arg(long, env = "DEEPLO_AGENT_TOKEN_FILE")]
    token_file: PathBuf,
    /// This server's name, sent to the daemon.
    #[arg(long, env = "DEEPLO_AGENT_HOST")]
    host: Option<String>,
    /// Trust only the certificates of this PEM file instead of the system's.
    #[arg(long, env = "DEEPLO_AGENT_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Also require this SHA-256 (hex, `:` allowed) of the daemon's certificate.
    #[arg(long, env = "DEEPLO_AGENT_PIN_SHA256")]
    pin_sha256: Option<String>,
    /// The deploys' directory, whose free space the agent reports.
    #[arg(long, env = "DEEPLO_AGENT_DEPLOY_DIR", default_value = DEFAULT_DEPLOY_DIR)]
    deploy_dir: PathBuf,
    /// Where the running commands' output, input and ends are kept, so that a deploy
    /// survives a restart of the agent (mode 0700: output may hold secrets).
    #[arg(long, env = "DEEPLO_AGENT_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Version => {
            println!("deeplo-agent {AGENT_VERSION} (protocol {PROTOCOL_VERSION})");
            ExitCode::SUCCESS
        }
        // No runtime for the keeper: it is a few threads and blocking calls.
        Command::Keep(keep) => {
            let mut command = keep.command.into_iter();
            let program = command.next().unwrap_or_default();
            deeplo_agent::agent::keep(&KeepArgs {
                dir: keep.dir,
                input: keep.input,
                cwd: keep.cwd,
                program,
                args: command.collect(),
            })
        }
        Command::Run(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(run(args)),
            Err(e) => {
                eprintln!("deeplo-agent: cannot start the runtime: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let filter = EnvFilter::try_from_env("DEEPLO_AGENT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // tungstenite traces the upgrade request, runner token included: never that.
    let filter = filter.add_directive("tungstenite::handshake::client=info".parse().expect("a valid directive"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let options = ClientOptions {
        url: args.url,
        token_file: args.token_file,
        host: args.host,
        ca_file: args.ca_file,
        pin_sha256: args.pin_sha256,
        deploy_dir: args.deploy_dir,
        state_dir: args.state_dir,
        keeper: None,
        proxy: ProxyEnv::from_env(),
    };
    let config = match options.build() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("deeplo-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match Client::new(config).run(terminated()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, plainly: the log goes to stderr too.
            eprintln!("deeplo-agent: {e}");
            // A bad proxy variable or server name is only found when connecting.
            let status = match e {
                ClientError::Config(_) => EXIT_CONFIG,
                _ if e.is_refusal() => EXIT_REFUSED,
                _ => 1,
            };
            ExitCode::from(status)
        }
    }
}

/// Completes on SIGTERM (systemd's stop) or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
