//! The verbs and flags, compatible with the Go tool's (`config check`, `deploy`, `deploys
//! state|history|logs|containers`, `probe`...), plus `-o json` everywhere for scripts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "deeplo",
    version,
    about = "Git commits become running Docker Compose projects on servers you own",
    propagate_version = true,
    long_about = None
)]
/// The whole command line: the global flags and one verb.
pub struct Cli {
    /// `--config` and `-o`, which every verb takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The verb and its own arguments.
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
    /// Servers: their states (list, show, decommission) and the runner tokens of their agents
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Run unattended: poll, take GitHub webhooks, serve the admin API, reload on change
    Daemon,
    /// Whether the daemon runs and answers: its service (when installed), socket, version, uptime
    Health,
    /// Environment: the projects' values (set, unset, list) and the daemon's env file (path, edit, check)
    #[command(subcommand, long_about = ENV_ABOUT)]
    Env(EnvCommand),
    /// The master key that seals the projects' environment values (DEEPLO_SECRETS_KEY_FILE)
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Organizations: list them, create one
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Users and their roles in organizations (viewer, developer, manager, admin)
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens of users, for the HTTP API and the remote CLI: shown once, stored hashed
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The audit log: every change, who made it and how it ended, newest first
    Audit {
        /// Only this organization's entries
        #[arg(long, env = "DEEPLO_ORG", value_name = "ORG")]
        org: Option<String>,
        /// At most this many entries
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Manage the deeplo systemd service (wraps systemctl and journalctl)
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Remove the native install: service, binary, completions (config, data and user with --purge)
    Uninstall(UninstallArgs),
    /// Replace the installed binary with a built one, and restart the service on it
    #[command(disable_version_flag = true)]
    Update(UpdateArgs),
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
    /// Open the config file in $VISUAL or $EDITOR (sudoedit when not writable), then check it
    Edit,
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

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Every server: transport, state, since when, last seen, agent and Docker versions
    List,
    /// One server: its record, its agent's facts and its state's history
    Show {
        /// The host (`hosts[].name`)
        host: String,
    },
    /// Retire a server for good: it takes no more deploys and its agent is refused
    #[command(long_about = DECOMMISSION_ABOUT)]
    Decommission {
        /// The host (`hosts[].name`)
        host: String,
    },
    /// Issue a new runner token for a host (revoking its old one) and print it once
    Token {
        /// The host (`hosts[].name`)
        host: String,
    },
    /// Revoke a host's runner token: its agent can no longer connect
    Revoke {
        /// The host (`hosts[].name`)
        host: String,
    },
}

const DECOMMISSION_ABOUT: &str = "Retire a server for good: it takes no more deploys (each one is refused \
before any step runs) and its agent is refused and disconnected. Final: a decommissioned server never becomes \
active again; to bring the machine back, give it a new name in hosts. Nothing on the server is stopped or removed. \
Goes through the daemon when it runs; without one it is saved in the data directory, and the daemon refuses \
the server's agent from its next start.";

const ENV_ABOUT: &str = "The daemon's env file: /etc/deeplo/deeplo.env, or the file DEEPLO_ENV_FILE names. \
It holds the daemon's own DEEPLO_* settings (data dir, SSH key, ports, GitHub secrets), one KEY=VALUE a line, \
read by every deeplo command and by the daemon at start: `path`, `edit` and `check` are about that file. \
`set`, `unset` and `list` manage the environment of a deployed project: its values are sealed in the store \
under the key of DEEPLO_SECRETS_KEY_FILE and delivered at deploy time, never printed.";

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Print the path of the env file
    Path,
    /// Open the env file in $VISUAL or $EDITOR (sudoedit when not writable), then check it
    Edit,
    /// Validate every DEEPLO_* value as the daemon does at start, and that the files it names
    /// are readable by the service user
    Check {
        /// The user the daemon runs as, who must be able to read the key and secret files
        #[arg(long, value_name = "USER", default_value = "deeplo")]
        service_user: String,
    },
    /// Set environment values of a project: sealed in the store, delivered at deploy time
    Set {
        /// The project (`projects[].name`)
        project: String,
        /// KEY=VALUE, or a bare KEY whose value is read from stdin (kept out of shell history)
        #[arg(value_name = "KEY=VALUE")]
        values: Vec<String>,
        /// Also set every KEY=VALUE line of this dotenv file
        #[arg(long, value_name = "FILE")]
        from_file: Option<std::path::PathBuf>,
    },
    /// Remove environment values of a project
    Unset {
        /// The project (`projects[].name`)
        project: String,
        /// The variables to remove
        #[arg(value_name = "KEY", required = true)]
        names: Vec<String>,
    },
    /// List a project's environment variables: names and when each was set, never values
    List {
        /// The project (`projects[].name`)
        project: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Every organization: the directory's and those the config names, with counts
    List,
    /// Create an organization (a slug: lowercase letters, digits and '-')
    Create {
        /// Its name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Every user and their roles
    List {
        /// Only members of this organization
        #[arg(long, env = "DEEPLO_ORG", value_name = "ORG")]
        org: Option<String>,
    },
    /// Add a user to an organization with a role (the user and the organization are created when new)
    Add {
        /// The user's email address
        email: String,
        /// The organization
        #[arg(long, env = "DEEPLO_ORG", value_name = "ORG", default_value = "default")]
        org: String,
        /// viewer, developer, manager or admin
        #[arg(long, value_name = "ROLE")]
        role: String,
    },
    /// Take a user out of an organization
    Remove {
        /// The user's email address
        email: String,
        /// The organization
        #[arg(long, env = "DEEPLO_ORG", value_name = "ORG", default_value = "default")]
        org: String,
    },
    /// Change a member's role
    Role {
        /// The user's email address
        email: String,
        /// viewer, developer, manager or admin
        role: String,
        /// The organization
        #[arg(long, env = "DEEPLO_ORG", value_name = "ORG", default_value = "default")]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// API tokens: id, user, name, scope, state, last use; never a secret
    List {
        /// Only this user's tokens
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
    },
    /// Create an API token for a user and print it once
    Create {
        /// Whose token it is
        #[arg(long, value_name = "EMAIL")]
        user: String,
        /// A name to tell it apart (`ci`, `laptop`)
        #[arg(long, default_value = "cli")]
        name: String,
        /// When it expires: days (`90d`) or a duration (`12h`) [default: never]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Act only in this organization
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        /// Act with at most this role
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
    },
    /// Revoke an API token by its id
    Revoke {
        /// The id `deeplo tokens list` shows
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every environment value again under a new master key (safe to interrupt)
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Show the service's status (systemctl status)
    Status,
    /// Start the service
    Start,
    /// Stop the service (running deploys get DEEPLO_SHUTDOWN_GRACE to finish)
    Stop,
    /// Restart the service
    Restart,
    /// Start the service at boot
    Enable {
        /// Also start it now
        #[arg(long)]
        now: bool,
    },
    /// Do not start the service at boot
    Disable,
    /// Show the service's log (journalctl)
    Logs {
        /// Keep printing new lines as they come
        #[arg(short, long)]
        follow: bool,
        /// How many recent lines to show first
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: u32,
    },
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Also remove the config, data, keys and the deeplo user and group, without asking
    #[arg(long)]
    pub purge: bool,
    /// The install's root directory, for an install laid out under another root (an image)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A built deeplo binary to install in place of the current one
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// A release to download: not available on this build (pass --from)
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Install even when the file is the binary already installed
    #[arg(long)]
    pub force: bool,
    /// The install's root directory, for an install laid out under another root (an image)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
