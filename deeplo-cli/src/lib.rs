//! The `deeplo` command line. It wires the library crates together and prints; every
//! decision (what to deploy, what is valid) is made in `deeplo-core`.

#![warn(missing_docs)]

mod cli;
mod commands;
mod context;
mod daemon;
mod exit;
mod native;
mod output;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
/// The HTTP API's route table, for the tests that check every route's permissions and the
/// OpenAPI file against it.
pub use daemon::api::{ROUTES, Route};

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::status_of(&err)
        }
    }
}
