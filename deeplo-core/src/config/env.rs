//! [`EnvMap`]: the environment variables the config and the settings are read from.
//!
//! The loader never calls `std::env` itself: the caller takes a snapshot once
//! ([`EnvMap::from_process`], optionally topped up from the env file with
//! [`EnvMap::merge_missing`]) and passes it in. Tests build one from a literal list, and a
//! reload can use a fresh snapshot without any global state.

use std::collections::BTreeMap;
use std::fmt;

/// A snapshot of environment variables, for [`parse`](super::parse), [`load`](super::load)
/// and [`Settings::from_env`](super::Settings::from_env). Build one from the process
/// ([`EnvMap::from_process`]) or from pairs (`[("DEEPLO_SSH_USER", "ops")].into_iter().collect()`).
/// `Debug` shows the names only, never the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvMap {
    vars: BTreeMap<String, String>,
}

impl EnvMap {
    /// The current process environment. Variables whose name or value is not valid UTF-8
    /// are left out: no config or setting can refer to them.
    pub fn from_process() -> Self {
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
    }

    /// The value of `key`, which may be empty; `None` when unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The value of `key` when it is set and not empty: the Go tool treats an empty
    /// setting as "use the default".
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Sets `key` to `value`, replacing any value it had.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// Adds each pair whose key is not set yet; keys already present (even empty) win, as
    /// real environment variables win over the env file.
    pub fn merge_missing<K, V>(&mut self, pairs: impl IntoIterator<Item = (K, V)>)
    where
        K: Into<String>,
        V: Into<String>,
    {
        for (key, value) in pairs {
            self.vars.entry(key.into()).or_insert_with(|| value.into());
        }
    }

    /// The variable names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self { vars: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
}

/// Names only: the environment of a daemon holds secrets (tokens, passwords) that must not
/// reach a log through `{:?}`.
impl fmt::Debug for EnvMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvMap").field("keys", &self.vars.keys().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_missing_keeps_existing_values_even_empty() {
        let mut env: EnvMap = [("A", "1"), ("B", "")].into_iter().collect();
        env.merge_missing([("A", "file"), ("B", "file"), ("C", "file")]);
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("B"), Some(""));
        assert_eq!(env.non_empty("B"), None);
        assert_eq!(env.get("C"), Some("file"));
        assert_eq!(env.get("D"), None);
    }

    #[test]
    fn debug_hides_values() {
        let mut env = EnvMap::default();
        env.set("GITHUB_TOKEN", "ghp_secret");
        let shown = format!("{env:?}");
        assert!(shown.contains("GITHUB_TOKEN"), "{shown}");
        assert!(!shown.contains("ghp_secret"), "{shown}");
    }
}
