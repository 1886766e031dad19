//! One module per verb.

mod accounts;
mod authorize;
mod config;
mod deploy;
mod deploys;
mod env;
mod health;
mod hosts;
mod plan;
mod project_env;
mod remote;
mod server_states;
mod servers;
mod service;
mod uninstall;
mod update;

use std::process::ExitCode;

use crate::cli::{
    Cli, Command, ConfigCommand, DeploysCommand, EnvCommand, OrgsCommand, SecretsCommand, ServersCommand,
    TokensCommand, UsersCommand,
};
use crate::context::Context;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Version => {
            println!("deeplo {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "deeplo", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check) => config::check(&Context::new(&cli.global)?),
        Command::Config(ConfigCommand::Edit) => config::edit(&Context::new(&cli.global)?),
        Command::Config(ConfigCommand::Reload) => config::reload(&Context::new(&cli.global)?).await,
        Command::Daemon => crate::daemon::run(&Context::new(&cli.global)?).await,
        Command::Config(ConfigCommand::Path) => {
            println!("{}", Context::new(&cli.global)?.config_path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => plan::run(&Context::new(&cli.global)?, &args).await,
        Command::Deploy(args) => {
            let ctx = Context::new(&cli.global)?;
            deploy::deploy(&ctx, &args.project, args.host.as_deref(), args.commit.as_deref(), args.wait).await
        }
        Command::Rollback(args) => {
            let ctx = Context::new(&cli.global)?;
            deploy::rollback(&ctx, &args.project, args.host.as_deref(), args.to.as_deref()).await
        }
        Command::Deploys(cmd) => {
            let ctx = Context::new(&cli.global)?;
            match cmd {
                DeploysCommand::State => deploys::state(&ctx).await,
                DeploysCommand::History { project, host, limit } => {
                    deploys::history(&ctx, project.as_deref(), host.as_deref(), limit).await
                }
                DeploysCommand::Logs { run } => deploys::logs(&ctx, &run).await,
                DeploysCommand::Containers => hosts::containers(&ctx, false).await,
            }
        }
        Command::Refresh => hosts::containers(&Context::new(&cli.global)?, true).await,
        Command::Probe => hosts::probe(&Context::new(&cli.global)?).await,
        Command::Servers(ServersCommand::List) => server_states::list(&Context::new(&cli.global)?).await,
        Command::Servers(ServersCommand::Show { host }) => {
            server_states::show(&Context::new(&cli.global)?, &host).await
        }
        Command::Servers(ServersCommand::Decommission { host }) => {
            server_states::decommission(&Context::new(&cli.global)?, &host).await
        }
        Command::Servers(ServersCommand::Token { host }) => servers::token(&Context::new(&cli.global)?, &host).await,
        Command::Servers(ServersCommand::Revoke { host }) => servers::revoke(&Context::new(&cli.global)?, &host).await,
        Command::Health => health::run(&Context::new(&cli.global)?).await,
        Command::Orgs(cmd) => {
            let ctx = Context::new(&cli.global)?;
            match cmd {
                OrgsCommand::List => accounts::orgs_list(&ctx).await,
                OrgsCommand::Create { name } => accounts::orgs_create(&ctx, &name).await,
            }
        }
        Command::Users(cmd) => {
            let ctx = Context::new(&cli.global)?;
            match cmd {
                UsersCommand::List { org } => accounts::users_list(&ctx, org.as_deref()).await,
                UsersCommand::Add { email, org, role } => accounts::users_set(&ctx, &email, &org, &role, false).await,
                UsersCommand::Remove { email, org } => accounts::users_remove(&ctx, &email, &org).await,
                UsersCommand::Role { email, role, org } => accounts::users_set(&ctx, &email, &org, &role, true).await,
            }
        }
        Command::Tokens(cmd) => {
            let ctx = Context::new(&cli.global)?;
            match cmd {
                TokensCommand::List { user } => accounts::tokens_list(&ctx, user.as_deref()).await,
                TokensCommand::Create { user, name, expires, org, role } => {
                    let expires_in_secs = expires.as_deref().map(accounts::expiry_secs).transpose()?;
                    let request = crate::daemon::CreateToken { user, name, expires_in_secs, org, role };
                    accounts::tokens_create(&ctx, request).await
                }
                TokensCommand::Revoke { id } => accounts::tokens_revoke(&ctx, &id).await,
            }
        }
        Command::Audit { org, limit } => accounts::audit(&Context::new(&cli.global)?, org.as_deref(), limit).await,
        Command::Env(EnvCommand::Path) => {
            println!("{}", env::path().display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Env(EnvCommand::Edit) => env::edit(crate::native::SERVICE),
        Command::Env(EnvCommand::Check { service_user }) => {
            env::check(cli.global.format == crate::cli::Format::Json, &service_user)
        }
        Command::Env(EnvCommand::Set { project, values, from_file }) => {
            project_env::set(&Context::new(&cli.global)?, &project, &values, from_file.as_deref()).await
        }
        Command::Env(EnvCommand::Unset { project, names }) => {
            project_env::unset(&Context::new(&cli.global)?, &project, &names).await
        }
        Command::Env(EnvCommand::List { project }) => project_env::list(&Context::new(&cli.global)?, &project).await,
        Command::Secrets(SecretsCommand::RotateKey) => project_env::rotate_key(&Context::new(&cli.global)?).await,
        Command::Service(cmd) => service::run(&cmd),
        Command::Uninstall(args) => uninstall::run(&args),
        Command::Update(args) => update::run(&Context::new(&cli.global)?, &args).await,
        Command::Authorize { hosts } => authorize::run(&Context::new(&cli.global)?, &hosts).await,
    }
}
