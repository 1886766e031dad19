//! What every verb starts from: the environment (with the env file merged in), the settings
//! read from it, and where the config file is.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use deeplo_core::config::{self, EnvMap, Loaded, Settings};

use crate::cli::{Format, GlobalArgs};

/// The env file every invocation reads first, as the Go tool does: keys already in the
/// environment win. `DEEPLO_ENV_FILE` points elsewhere.
const DEFAULT_ENV_FILE: &str = "/etc/deeplo/deeplo.env";

#[derive(Debug)]
pub struct Context {
    pub env: EnvMap,
    pub settings: Settings,
    pub config_path: PathBuf,
    pub format: Format,
}

impl Context {
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Self> {
        let env = environment()?;
        let settings = match Settings::from_env(&env) {
            Ok(settings) => settings,
            Err(problems) => {
                for p in &problems {
                    eprintln!("ERROR  {:<35}  {}", p.path, p.message);
                }
                bail!("{} invalid environment setting(s)", problems.len());
            }
        };
        let config_path = global.config.clone().unwrap_or_else(|| settings.config_file.clone());
        Ok(Self { env, settings, config_path, format: global.format })
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Loads and validates the config file; on failure prints every problem and fails.
    pub fn load_config(&self) -> anyhow::Result<Loaded> {
        match config::load(&self.config_path, &self.env) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("WARN   {:<45}  {}", w.path, w.message);
                }
                Ok(loaded)
            }
            Err(errors) => {
                for d in &errors.diagnostics {
                    let label = match d.severity {
                        config::Severity::Error => "ERROR",
                        config::Severity::Warning => "WARN ",
                    };
                    eprintln!("{label}  {:<45}  {}", d.path, d.message);
                }
                bail!("invalid config in {}: run `deeplo config check` for details", self.config_path.display());
            }
        }
    }
}

/// The process environment plus the env file's keys that it lacks.
pub fn environment() -> anyhow::Result<EnvMap> {
    let mut env = EnvMap::from_process();
    let file = env_file(&env);
    merge_env_file(&mut env, &file)?;
    Ok(env)
}

/// The env file: `DEEPLO_ENV_FILE`, else `/etc/deeplo/deeplo.env`.
pub fn env_file(process_env: &EnvMap) -> PathBuf {
    process_env.non_empty("DEEPLO_ENV_FILE").map_or_else(|| PathBuf::from(DEFAULT_ENV_FILE), PathBuf::from)
}

fn merge_env_file(env: &mut EnvMap, file: &Path) -> anyhow::Result<()> {
    match config::load_env_file(file) {
        Ok(pairs) => {
            env.merge_missing(pairs);
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot read env file {}", file.display())),
    }
}
