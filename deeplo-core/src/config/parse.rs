//! Walking the YAML value tree by hand, with a path for every value.
//!
//! Serde derive stops at the first problem; walking the tree lets the loader report every
//! problem at once, each with its path (`projects[1].targets[0]`), and lets `${VAR}`
//! expansion run per scalar after the parse. Every reader here records its own diagnostic
//! and returns `None` or [`Field::Invalid`], so that callers only combine results.

use std::time::Duration;

use serde_norway::Value;

use super::interpolate::expand;
use super::mapping::Fields;
use super::{Diagnostic, EnvMap, Severity};

/// Where a value is: the text shown to users and its position in the document, used to
/// sort diagnostics into document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Path {
    text: String,
    pos: Vec<usize>,
}

impl Path {
    pub fn root() -> Self {
        Self { text: String::new(), pos: Vec::new() }
    }

    /// The value of `key`, the `pos`-th entry of this mapping.
    pub fn key(&self, key: &str, pos: usize) -> Self {
        let text = if self.text.is_empty() { key.to_owned() } else { format!("{}.{key}", self.text) };
        let mut p = self.pos.clone();
        p.push(pos);
        Self { text, pos: p }
    }

    /// A key this mapping does not have: sorted after everything in the mapping.
    pub fn absent(&self, key: &str) -> Self {
        self.key(key, usize::MAX)
    }

    /// The path as users see it (`projects[1].listen`).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.pos.clone();
        p.push(i);
        Self { text: format!("{}[{i}]", self.text), pos: p }
    }
}

/// A value that may be absent (or null, or an empty string: the Go tool's "use the
/// default"), invalid (already reported), or present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field<T> {
    Absent,
    Invalid,
    Value(T),
}

impl<T> Field<T> {
    /// The value, or `default` when absent; `None` when invalid.
    pub fn or(self, default: T) -> Option<T> {
        match self {
            Self::Absent => Some(default),
            Self::Invalid => None,
            Self::Value(v) => Some(v),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Self::Absent => Field::Absent,
            Self::Invalid => Field::Invalid,
            Self::Value(v) => Field::Value(f(v)),
        }
    }
}

/// The items of a list of strings: the ones that were strings, and whether all were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TextList {
    pub items: Vec<(Path, String)>,
    pub complete: bool,
}

/// Holds the diagnostics and the environment while the tree is walked.
pub(super) struct Reader<'e> {
    env: &'e EnvMap,
    diagnostics: Vec<(Vec<usize>, Diagnostic)>,
    /// Unset variables with the position of their first use.
    missing: Vec<(Vec<usize>, String)>,
    first_missing: Option<Path>,
}

impl<'e> Reader<'e> {
    pub fn new(env: &'e EnvMap) -> Self {
        Self { env, diagnostics: Vec::new(), missing: Vec::new(), first_missing: None }
    }

    pub fn env(&self) -> &'e EnvMap {
        self.env
    }

    pub fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.push(path, Severity::Error, message.into());
    }

    pub fn warning(&mut self, path: &Path, message: impl Into<String>) {
        self.push(path, Severity::Warning, message.into());
    }

    fn push(&mut self, path: &Path, severity: Severity, message: String) {
        let diagnostic = Diagnostic { severity, path: path.text.clone(), message };
        self.diagnostics.push((path.pos.clone(), diagnostic));
    }

    pub fn has_errors(&self) -> bool {
        !self.missing.is_empty() || self.diagnostics.iter().any(|(_, d)| d.severity == Severity::Error)
    }

    /// Every diagnostic in document order; unset variables become one error at their first
    /// use, listing each name once.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        if let Some(path) = self.first_missing.take() {
            self.missing.sort_by(|a, b| a.0.cmp(&b.0));
            let names: Vec<&str> = self.missing.iter().map(|(_, name)| name.as_str()).collect();
            let message = format!(
                "missing environment variable(s): {}; set them, or give a default with ${{NAME:-default}}",
                names.join(", ")
            );
            self.error(&path, message);
        }
        // A stable sort keeps the order in which checks of one place ran.
        self.diagnostics.sort_by(|a, b| a.0.cmp(&b.0));
        self.diagnostics.into_iter().map(|(_, d)| d).collect()
    }

    /// Expands `${VAR}` references; `None` when one is unset (reported once, at the end).
    pub fn expand(&mut self, path: &Path, s: &str) -> Option<String> {
        let expansion = expand(s, self.env);
        if expansion.missing.is_empty() {
            return Some(expansion.value);
        }
        for name in expansion.missing {
            match self.missing.iter_mut().find(|(_, n)| *n == name) {
                Some((pos, _)) if path.pos < *pos => pos.clone_from(&path.pos),
                Some(_) => {}
                None => self.missing.push((path.pos.clone(), name)),
            }
        }
        if self.first_missing.as_ref().is_none_or(|first| path.pos < first.pos) {
            self.first_missing = Some(path.clone());
        }
        None
    }

    /// A scalar as text, expanded. Integers and booleans are taken as written (the Go tool
    /// accepts them in string fields); other values are reported.
    pub fn text(&mut self, path: &Path, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => self.expand(path, s),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Value::Number(n) => {
                self.error(
                    path,
                    format!("expected a string, got the number {n}; quote it (YAML reads it as a number and loses how it was written)"),
                );
                None
            }
            other => {
                self.error(path, format!("expected a string, got {}", describe(other)));
                None
            }
        }
    }

    /// An optional text field: absent, null and empty all mean "use the default".
    pub fn opt_text(&mut self, fields: &Fields<'_>, key: &str) -> Field<(Path, String)> {
        let Some((path, value)) = fields.get(key) else {
            return Field::Absent;
        };
        let path = path.clone();
        match self.text(&path, value) {
            Some(text) if text.is_empty() => Field::Absent,
            Some(text) => Field::Value((path, text)),
            None => Field::Invalid,
        }
    }

    /// A required text field; absent, null or empty is reported as `<key> is required`.
    pub fn req_text(&mut self, fields: &Fields<'_>, key: &str) -> Option<(Path, String)> {
        match self.opt_text(fields, key) {
            Field::Value(v) => Some(v),
            Field::Invalid => None,
            Field::Absent => {
                self.error(&fields.path_of(key), format!("{key} is required"));
                None
            }
        }
    }

    /// A whole number in `min..=max`, written as a number or as a string of digits.
    pub fn number(&mut self, path: &Path, value: &Value, min: u64, max: u64) -> Option<u64> {
        let parsed = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => {
                let text = self.expand(path, s)?;
                text.parse::<u64>().ok()
            }
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let got = match value {
                    Value::String(s) => format!("{:?}", expand(s, self.env).value),
                    other => describe(other),
                };
                self.error(path, format!("expected a number from {min} to {max}, got {got}"));
                None
            }
        }
    }

    /// An optional whole number in `min..=max`; absent, null and `""` mean the default.
    pub fn opt_number(&mut self, fields: &Fields<'_>, key: &str, min: u64, max: u64) -> Field<(Path, u64)> {
        let Some((path, value)) = fields.get(key) else {
            return Field::Absent;
        };
        if self.is_empty_text(value) {
            return Field::Absent;
        }
        let path = path.clone();
        match self.number(&path, value, min, max) {
            Some(n) => Field::Value((path, n)),
            None => Field::Invalid,
        }
    }

    /// An optional Go duration such as `30s` or `1h30m`; absent, null and `""` mean the
    /// default.
    pub fn opt_duration(&mut self, fields: &Fields<'_>, key: &str) -> Field<(Path, Duration)> {
        let Some((path, value)) = fields.get(key) else {
            return Field::Absent;
        };
        let path = path.clone();
        let Some(text) = self.text(&path, value) else {
            return Field::Invalid;
        };
        if text.is_empty() {
            return Field::Absent;
        }
        match super::parse_duration(&text) {
            Ok(d) => Field::Value((path, d)),
            Err(message) => {
                self.error(&path, message);
                Field::Invalid
            }
        }
    }

    /// Whether `value` is a string that expands to nothing (unset variables are not
    /// reported here: the reader that follows reports them).
    fn is_empty_text(&self, value: &Value) -> bool {
        let Value::String(s) = value else {
            return false;
        };
        let expansion = expand(s, self.env);
        expansion.value.is_empty() && expansion.missing.is_empty()
    }

    /// A list; anything else is reported.
    pub fn list<'v>(&mut self, path: &Path, value: &'v Value, hint: &str) -> Option<Vec<(Path, &'v Value)>> {
        match value {
            Value::Sequence(items) => Some(items.iter().enumerate().map(|(i, v)| (path.index(i), v)).collect()),
            other => {
                self.error(path, format!("expected a list{hint}, got {}", describe(other)));
                None
            }
        }
    }

    /// An optional list of strings; absent or null is [`Field::Absent`], `[]` is an empty
    /// list.
    pub fn text_list(&mut self, fields: &Fields<'_>, key: &str) -> Field<TextList> {
        let Some((path, value)) = fields.get(key) else {
            return Field::Absent;
        };
        let Some(items) = self.list(&path.clone(), value, " of strings") else {
            return Field::Invalid;
        };
        let mut list = TextList { items: Vec::new(), complete: true };
        for (item_path, item) in items {
            match self.text(&item_path, item) {
                Some(text) => list.items.push((item_path, text)),
                None => list.complete = false,
            }
        }
        Field::Value(list)
    }
}

/// How a value is named in "expected X, got Y".
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(tagged) => format!("a value tagged {} (YAML tags are not supported)", tagged.tag),
    }
}
