//! `deeplo plan`: what a push from one commit to another would deploy.

use std::process::ExitCode;

use anyhow::Context as _;
use deeplo_core::Source;
use deeplo_core::plan::{ChangedPaths, PushEvent, plan};

use crate::cli::PlanArgs;
use crate::context::Context;
use crate::output;

pub async fn run(ctx: &Context, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let loaded = ctx.load_config()?;
    let config = &loaded.config;
    let Some(repo) = config.repo(&args.repo) else {
        let names: Vec<&str> = config.repos.iter().map(|r| r.name.as_str()).collect();
        anyhow::bail!("repo \"{}\" is not in the config (repos: {})", args.repo, names.join(", "));
    };
    let source = crate::wiring::git_source(&ctx.settings, None)?;
    source.fetch(repo, None).await.with_context(|| format!("fetch {}", repo.url))?;
    let from = source.resolve(repo, &args.from).await?;
    let to = source.resolve(repo, &args.to).await?;
    let changed = source.changed_paths(repo, &from, &to).await?;
    let push = PushEvent {
        repo: repo.name.clone(),
        branch: repo.branch.clone(),
        before: Some(from.clone()),
        after: to.clone(),
        changed: ChangedPaths::Known(changed),
    };
    let jobs = plan(config, &push);
    if ctx.json() {
        output::json(&jobs)?;
    } else if jobs.is_empty() {
        println!("Nothing to deploy: no watched path changed between {} and {}.", from.short(), to.short());
    } else {
        let rows: Vec<Vec<String>> =
            jobs.iter().map(|j| vec![j.project.to_string(), j.host.to_string(), j.commit.short().to_owned()]).collect();
        print!("{}", output::table(&["PROJECT", "HOST", "COMMIT"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}
