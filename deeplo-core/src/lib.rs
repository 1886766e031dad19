//! deeplo's engine: git commits become running Docker Compose projects on servers you own.
//!
//! This crate holds everything that decides: the config ([`config`]), the planner
//! ([`plan`]), dedup ([`dedup`]), the state machines ([`model`]), the scheduler
//! ([`schedule`]), every server's state ([`servers`]), and the traits that backends implement ([`Source`], [`Connector`] /
//! [`Transport`], [`Store`], [`Notifier`]), with two embedded backends: a file store
//! ([`FileStore`]) and a git mirror source ([`GitSource`], feature `git`).
//!
//! ```
//! use deeplo_core::config;
//! use deeplo_core::plan::{plan, ChangedPaths, PushEvent};
//! use deeplo_core::model::{CommitId, RepoName};
//!
//! let yaml = r#"
//! hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]
//! repos: [{name: app, url: /srv/git/app.git}]
//! projects: [{name: site, repo: app, repo_subdir: deploy, targets: [web-1]}]
//! "#;
//! let loaded = config::parse(yaml, &config::EnvMap::default()).expect("valid config");
//! let push = PushEvent {
//!     repo: RepoName::new("app").unwrap(),
//!     branch: "main".into(),
//!     before: None,
//!     after: CommitId::new("a".repeat(40)).unwrap(),
//!     changed: ChangedPaths::Known(vec!["deploy/compose.yml".into()]),
//! };
//! let jobs = plan(&loaded.config, &push);
//! assert_eq!(jobs.len(), 1);
//! assert_eq!(jobs[0].host, "web-1");
//! ```

#![warn(missing_docs)]

pub mod access;
pub mod config;
pub mod dedup;
pub mod engine;
mod error;
#[cfg(feature = "git")]
pub mod git;
pub mod known_hosts;
pub mod model;
pub mod notify;
pub mod path;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod runner_token;
pub mod schedule;
pub mod secret;
pub mod servers;
pub mod source;
pub mod store;
pub mod transport;
pub mod trigger;
pub mod vault;

pub use engine::{DeployRequest, Engine, EngineBuilder};
pub use error::{Error, ErrorContext, ErrorKind, Result};
#[cfg(feature = "git")]
pub use git::GitSource;
pub use notify::{DeployEvent, DeployEventKind, Notifier};
pub use runner_token::{RunnerToken, RunnerTokenStore, TokenHash, TokenInfo};
pub use secret::{Redactor, Secret, constant_time_eq};
pub use servers::{ServerRecord, ServerRegistry};
pub use source::{Bundle, BundleEntry, BundleRequest, EntryKind, Source};
pub use store::{FileStore, HistoryQuery, Store};
pub use transport::{
    Capabilities, CommandOutput, Connector, Discard, ExitStatus, OutputSink, RemoteCommand, Transport,
};
