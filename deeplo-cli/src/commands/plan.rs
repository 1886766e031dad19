//! `deeplo plan`: what a push from one commit to another would deploy, and which projects of
//! the repo it would not, with why.

use std::process::ExitCode;

use anyhow::Context as _;
use deeplo_core::Source;
use deeplo_core::plan::{ChangedPaths, Job, PushEvent, Skipped, plan_explained};
use serde::Serialize;

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
    let planned = plan_explained(config, &push);
    if ctx.json() {
        let skipped = planned.skipped.iter().map(SkippedView::of).collect();
        output::json(&PlanView { jobs: &planned.jobs, skipped })?;
        return Ok(ExitCode::SUCCESS);
    }
    if planned.jobs.is_empty() {
        println!("Nothing to deploy between {} and {}.", from.short(), to.short());
    } else {
        let rows: Vec<Vec<String>> = planned
            .jobs
            .iter()
            .map(|j| vec![j.project.to_string(), j.host.to_string(), j.commit.short().to_owned()])
            .collect();
        print!("{}", output::table(&["PROJECT", "HOST", "COMMIT"], &rows));
    }
    if !planned.skipped.is_empty() {
        println!("Not deployed:");
        for skipped in &planned.skipped {
            println!("  {}: {}", skipped.project, skipped.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `-o json`: `{"jobs": [...], "skipped": [{"project", "reason", "message"}]}`.
#[derive(Serialize)]
struct PlanView<'a> {
    jobs: &'a [Job],
    skipped: Vec<SkippedView<'a>>,
}

#[derive(Serialize)]
struct SkippedView<'a> {
    #[serde(flatten)]
    skipped: &'a Skipped,
    message: String,
}

impl<'a> SkippedView<'a> {
    fn of(skipped: &'a Skipped) -> Self {
        Self { skipped, message: skipped.reason.to_string() }
    }
}
