//! The verbs and flags, compatible with the Go tool's (`config check`, `deploy`, `deploys
//! state|history|logs|containers`, `probe`...), plus `-o json` everywhere for scripts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "deeplo",
    version,
    about = "Git commits become running Docker Compose projects on servers you own",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every verb takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The config file [default: $DEEPLO_CONFIG_FILE, else /etc/deeplo/config.yml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and sentences for people
    Text,
    /// JSON for scripts
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect and validate the config file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show which (project, host) pairs a push from one commit to another would deploy
    Plan(PlanArgs),
    /// Deploy a project's branch head (or a given commit) to its targets, and wait
    Deploy(DeployArgs),
    /// Take a project back to its previous good commit (or a given one)
    Rollback(RollbackArgs),
    /// Inspect deployments: state, history, logs, containers
    #[command(subcommand, visible_alias = "deployments")]
    Deploys(DeploysCommand),
    /// Run `compose ps` on every host and keep the result as the observed state
    Refresh,
    /// Check that every host is reachable and has docker and compose
    Probe,
    /// Install the deploy key's public half into authorized_keys on each host
    Authorize {
        /// Hosts by name (`hosts[].name`) [default: every configured host]
        #[arg(value_name = "HOST")]
        hosts: Vec<String>,
    },
    /// Run unattended: poll, take GitHub webhooks, serve the admin API, reload on change
    Daemon,
    /// Print the version
    Version,
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and print every error and warning with its path
    Check,
    /// Print the path of the config file in use
    Path,
    /// Ask the running daemon to re-read and apply the config file
    Reload,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The repo entry (`repos[].name`) pushed to
    #[arg(long)]
    pub repo: String,
    /// The commit before the push
    #[arg(long, value_name = "SHA")]
    pub from: String,
    /// The commit after the push
    #[arg(long, value_name = "SHA")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The project (`projects[].name`)
    pub project: String,
    /// Deploy to this target host only
    #[arg(long)]
    pub host: Option<String>,
    /// A commit (full or abbreviated) or branch instead of the branch head
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Through a running daemon: follow the runs to their end (in-process deploys always do)
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The project (`projects[].name`)
    pub project: String,
    /// Roll back this target host only
    #[arg(long)]
    pub host: Option<String>,
    /// The commit to go back to [default: the previous good commit of each host]
    #[arg(long, value_name = "SHA")]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeploysCommand {
    /// The latest deployment of every (project, host) pair
    State,
    /// Past runs, newest first
    History {
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The log of one run
    Logs {
        /// A run id from `deeplo deploys history`
        run: String,
    },
    /// What compose reports on every host (PROJECT HOST SERVICE STATE STATUS)
    Containers,
}
