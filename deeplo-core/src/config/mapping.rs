//! Reading a YAML mapping into [`Fields`]: `${VAR}` in keys, unknown keys with a
//! suggestion, `x-` extension keys, and `<<` merge keys.

use serde_norway::Value;

use super::parse::{Path, Reader, describe};

/// The keys of one mapping, expanded, in document order, with `<<` merges applied.
pub(super) struct Fields<'v> {
    pub path: Path,
    entries: Vec<(String, Path, &'v Value)>,
}

impl<'v> Fields<'v> {
    /// The value of `key`, unless it is absent or null.
    pub fn get(&self, key: &str) -> Option<(&Path, &'v Value)> {
        self.entries.iter().find(|(k, _, v)| k == key && !v.is_null()).map(|(_, p, v)| (p, *v))
    }

    /// The path of `key`, present or not.
    pub fn path_of(&self, key: &str) -> Path {
        self.entries.iter().find(|(k, _, _)| k == key).map_or_else(|| self.path.absent(key), |(_, p, _)| p.clone())
    }
}

impl<'e> Reader<'e> {
    /// A mapping whose keys must be among `known`. Keys starting with `x-` are extension
    /// fields (as in Compose files): skipped, so that they can hold YAML anchors.
    pub fn fields<'v>(&mut self, path: &Path, value: &'v Value, what: &str, known: &[&str]) -> Option<Fields<'v>> {
        let Value::Mapping(mapping) = value else {
            self.error(
                path,
                format!("expected {what} (a mapping with keys {}), got {}", known.join(", "), describe(value)),
            );
            return None;
        };
        let mut fields = Fields { path: path.clone(), entries: Vec::new() };
        let mut merged: Vec<(String, Path, &'v Value)> = Vec::new();
        for (pos, (key, value)) in mapping.iter().enumerate() {
            let key_path = path.key(&key_text(key), pos);
            let Some(key) = self.key(&key_path, key) else {
                continue;
            };
            if key == "<<" {
                self.merge(path, pos, value, &mut merged, 0);
                continue;
            }
            if key.starts_with("x-") {
                continue;
            }
            let key_path = path.key(&key, pos);
            if !known.contains(&key.as_str()) {
                self.error(&key_path, unknown_key(&key, known));
                continue;
            }
            if fields.entries.iter().any(|(k, _, _)| *k == key) {
                self.error(&key_path, format!("duplicate key {key:?}"));
                continue;
            }
            fields.entries.push((key, key_path, value));
        }
        // Merged keys never override keys written in the mapping itself.
        for (key, key_path, value) in merged {
            if key.starts_with("x-") || fields.entries.iter().any(|(k, _, _)| *k == key) {
                continue;
            }
            if known.contains(&key.as_str()) {
                fields.entries.push((key, key_path, value));
            } else {
                self.error(&key_path, format!("{} (merged in with <<)", unknown_key(&key, known)));
            }
        }
        Some(fields)
    }

    fn key(&mut self, path: &Path, key: &Value) -> Option<String> {
        match key {
            Value::String(s) => self.expand(path, s),
            Value::Bool(_) | Value::Number(_) => Some(key_text(key)),
            other => {
                self.error(path, format!("expected a key name, got {}", describe(other)));
                None
            }
        }
    }

    /// Collects the entries of a `<<: *anchor` (a mapping or a list of mappings; earlier
    /// ones win, as YAML's merge key says).
    fn merge<'v>(
        &mut self,
        parent: &Path,
        pos: usize,
        value: &'v Value,
        into: &mut Vec<(String, Path, &'v Value)>,
        depth: usize,
    ) {
        match value {
            Value::Mapping(mapping) if depth < 8 => {
                let mut nested = Vec::new();
                for (key, value) in mapping {
                    let Some(key) = self.key(&parent.key("<<", pos), key) else {
                        continue;
                    };
                    if key == "<<" {
                        self.merge(parent, pos, value, &mut nested, depth + 1);
                    } else if !into.iter().any(|(k, _, _)| *k == key) {
                        into.push((key.clone(), parent.key(&key, pos), value));
                    }
                }
                for (key, p, v) in nested {
                    if !into.iter().any(|(k, _, _)| *k == key) {
                        into.push((key, p, v));
                    }
                }
            }
            Value::Sequence(items) if depth == 0 => {
                for item in items {
                    self.merge(parent, pos, item, into, depth + 1);
                }
            }
            other => self.error(
                &parent.key("<<", pos),
                format!("<< merges a mapping or a list of mappings, got {}", describe(other)),
            ),
        }
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => describe(other),
    }
}

/// `unknown key; did you mean "x"?` when a known key is close, else the list of keys.
fn unknown_key(key: &str, known: &[&str]) -> String {
    match suggest(key, known.iter().copied()) {
        Some(near) => format!("unknown key; did you mean {near:?}?"),
        None => format!("unknown key; expected one of {}", known.join(", ")),
    }
}

/// The candidate closest to `word`, when it is close enough to be a likely typo: a small
/// edit distance, or a high Jaro-Winkler similarity (which favours a shared prefix, as in
/// `retry` / `retries`).
pub(super) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count().max(3) / 3).max(1);
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let similarity = strsim::jaro_winkler(word, candidate);
        let close = similarity >= 0.8 || strsim::damerau_levenshtein(word, candidate) <= limit;
        if close && best.is_none_or(|(s, _)| similarity > s) {
            best = Some((similarity, candidate));
        }
    }
    best.map(|(_, c)| c)
}
