//! `deeplo service status|start|stop|restart|enable|disable|logs`: systemctl and journalctl
//! for the `deeplo` unit. Where systemd does not run, each says so and exits 1.

use std::process::ExitCode;

use crate::cli::ServiceCommand;
use crate::native::{SERVICE, systemd};

pub fn run(command: &ServiceCommand) -> anyhow::Result<ExitCode> {
    systemd::require()?;
    match command {
        // `systemctl status` exits 3 for a stopped unit: its output says so, and the exit
        // code is passed on for scripts.
        ServiceCommand::Status => {
            let status = std::process::Command::new("systemctl").args(["status", SERVICE]).status()?;
            return Ok(u8::try_from(status.code().unwrap_or(1)).map_or(ExitCode::FAILURE, ExitCode::from));
        }
        ServiceCommand::Start => systemd::privileged(&["start", SERVICE])?,
        ServiceCommand::Stop => systemd::privileged(&["stop", SERVICE])?,
        ServiceCommand::Restart => systemd::privileged(&["restart", SERVICE])?,
        ServiceCommand::Enable { now: true } => systemd::privileged(&["enable", "--now", SERVICE])?,
        ServiceCommand::Enable { now: false } => systemd::privileged(&["enable", SERVICE])?,
        ServiceCommand::Disable => systemd::privileged(&["disable", SERVICE])?,
        ServiceCommand::Logs { follow, lines } => {
            let lines = format!("--lines={lines}");
            let mut args = vec!["--unit", SERVICE, "--no-pager", lines.as_str()];
            if *follow {
                args.push("--follow");
            }
            systemd::journal(&args)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
