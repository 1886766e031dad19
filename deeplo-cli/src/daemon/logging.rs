//! The daemon's log: tracing to stderr in `pretty`, `text` (no colours) or `json`, at
//! `DEEPLO_LOG_LEVEL` (`RUST_LOG` refines it when set).

use deeplo_core::config::{LogFormat, LogLevel, Settings};
use tracing_subscriber::EnvFilter;

pub fn init(settings: &Settings) {
    let level = match settings.log_level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        _ => builder.try_init(),
    };
}
