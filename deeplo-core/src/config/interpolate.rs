//! `${NAME}` and `${NAME:-default}` in config values, with the Go tool's rules.
//!
//! Expansion runs on each scalar after the YAML parse, so a value can never add YAML
//! structure. `NAME` is `[A-Za-z_][A-Za-z0-9_]*`; `${NAME:-default}` gives `default` when
//! `NAME` is unset or empty (the default runs to the first `}`); `${NAME}` gives the value,
//! which may be empty, and is an error when `NAME` is unset. `$NAME` without braces, and
//! anything that is not a complete reference, is left as written; there is no escape.

use super::EnvMap;

/// The result of expanding one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expansion {
    /// The expanded text; unset variables expand to nothing.
    pub value: String,
    /// Each unset variable referenced without a default, once, in order of first use.
    pub missing: Vec<String>,
}

/// Expands every reference in `input`.
pub(crate) fn expand(input: &str, env: &EnvMap) -> Expansion {
    let mut value = String::with_capacity(input.len());
    let mut missing: Vec<String> = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        value.push_str(&rest[..start]);
        let candidate = &rest[start..];
        match reference(candidate) {
            Some((reference, len)) => {
                match (env.get(reference.name), reference.default) {
                    (Some(""), Some(default)) => value.push_str(default),
                    (Some(v), _) => value.push_str(v),
                    (None, Some(default)) => value.push_str(default),
                    (None, None) => {
                        if !missing.iter().any(|m| m == reference.name) {
                            missing.push(reference.name.to_owned());
                        }
                    }
                }
                rest = &candidate[len..];
            }
            None => {
                // Not a reference: keep the `$` and look again from the next character, so
                // that `${A${B}` still expands `${B}` (as Go's leftmost regex match does).
                value.push('$');
                rest = &candidate[1..];
            }
        }
    }
    value.push_str(rest);
    Expansion { value, missing }
}

struct Reference<'a> {
    name: &'a str,
    default: Option<&'a str>,
}

/// Parses a reference at the start of `s` (which starts with `${`); returns it and its
/// length in bytes.
fn reference(s: &str) -> Option<(Reference<'_>, usize)> {
    let body = s.strip_prefix("${")?;
    let name_len =
        body.char_indices()
            .take_while(|&(i, c)| {
                if i == 0 { c.is_ascii_alphabetic() || c == '_' } else { c.is_ascii_alphanumeric() || c == '_' }
            })
            .count();
    if name_len == 0 {
        return None;
    }
    let (name, after) = body.split_at(name_len);
    if after.starts_with('}') {
        return Some((Reference { name, default: None }, 2 + name_len + 1));
    }
    let default_and_rest = after.strip_prefix(":-")?;
    let end = default_and_rest.find('}')?;
    let default = &default_and_rest[..end];
    Some((Reference { name, default: Some(default) }, 2 + name_len + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvMap {
        [("HOST", "web-1"), ("EMPTY", ""), ("PORT", "2222"), ("NL", "a\n  - evil: x")].into_iter().collect()
    }

    #[test]
    fn expands_like_go() {
        let table = [
            ("plain", "plain"),
            ("${HOST}", "web-1"),
            ("x-${HOST}-y", "x-web-1-y"),
            ("${HOST}${PORT}", "web-12222"),
            ("${EMPTY}", ""),
            ("${EMPTY:-fallback}", "fallback"),
            ("${HOST:-fallback}", "web-1"),
            ("${UNSET:-fallback}", "fallback"),
            ("${UNSET:-}", ""),
            ("${UNSET:-a:b-c}", "a:b-c"),
            ("${UNSET:-{x}", "{x"),
            ("$HOST", "$HOST"),
            ("$${HOST}", "$web-1"),
            ("${1X}", "${1X}"),
            ("${}", "${}"),
            ("${HOST", "${HOST"),
            ("${HOST:x}", "${HOST:x}"),
            ("${HOST-x}", "${HOST-x}"),
            ("${A${HOST}", "${Aweb-1"),
            ("${UNSET:-never closed", "${UNSET:-never closed"),
            ("${_u_1:-ok}", "ok"),
            ("${NL}", "a\n  - evil: x"),
            ("ünï ${HOST} ✓", "ünï web-1 ✓"),
        ];
        for (input, want) in table {
            let got = expand(input, &env());
            assert_eq!(got.value, want, "{input:?}");
            assert!(got.missing.is_empty(), "{input:?}");
        }
    }

    #[test]
    fn collects_each_missing_name_once_in_order() {
        let got = expand("${B}/${A}/${B}/${HOST}/${C:-c}", &env());
        assert_eq!(got.missing, ["B", "A"]);
        assert_eq!(got.value, "///web-1/c");
    }
}
