//! The env file of a native install (`/etc/deeplo/deeplo.env`), in the Go tool's format.
//!
//! Each line is trimmed; blank lines and lines starting with `#` are skipped; a leading
//! `export ` is dropped; the line is split at the first `=` and both sides are trimmed; one
//! matching pair of surrounding `"` or `'` is stripped from the value. There are no escapes,
//! no inline comments and no variable expansion, and a line without `=` is ignored.

use std::path::Path;

/// The default location of the env file of a native install.
pub const DEFAULT_ENV_FILE: &str = "/etc/deeplo/deeplo.env";

/// Reads `path` and returns its assignments in file order (a later one for the same key
/// follows the earlier one, so collecting into a map keeps the last, as the Go tool does).
///
/// The Go tool imports only `DEEPLO_*` keys from this file, and only those not already in
/// the environment: filter the pairs and pass them to [`super::EnvMap::merge_missing`].
///
/// # Errors
///
/// The file cannot be read; a missing file gives [`std::io::ErrorKind::NotFound`], which
/// callers that treat the file as optional (every CLI invocation) ignore.
pub fn load_env_file(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse_env_file(&text))
}

/// Parses the text of an env file; see the module docs for the format.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        pairs.push((key.to_owned(), unquote(value.trim()).to_owned()));
    }
    pairs
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_go_format() {
        let text = "\
# comment
  DEEPLO_DATA_DIR = /var/lib/deeplo  \n\
export DEEPLO_SSH_USER=ops
DEEPLO_A=\"quoted value\"
DEEPLO_B='single'
DEEPLO_C=\"mismatched'
DEEPLO_D=x # not a comment
DEEPLO_E=a=b
no equals sign here
=nokey
DEEPLO_F=\"\"
DEEPLO_G=\"
DEEPLO_A=again
";
        let pairs = parse_env_file(text);
        let want = [
            ("DEEPLO_DATA_DIR", "/var/lib/deeplo"),
            ("DEEPLO_SSH_USER", "ops"),
            ("DEEPLO_A", "quoted value"),
            ("DEEPLO_B", "single"),
            ("DEEPLO_C", "\"mismatched'"),
            ("DEEPLO_D", "x # not a comment"),
            ("DEEPLO_E", "a=b"),
            ("DEEPLO_F", ""),
            ("DEEPLO_G", "\""),
            ("DEEPLO_A", "again"),
        ];
        let got: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn crlf_lines_are_trimmed() {
        let pairs = parse_env_file("DEEPLO_X=1\r\nDEEPLO_Y=\"2\"\r\n");
        assert_eq!(pairs, [("DEEPLO_X".to_owned(), "1".to_owned()), ("DEEPLO_Y".to_owned(), "2".to_owned())]);
    }

    #[test]
    fn missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_env_file(&dir.path().join("absent.env")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        let path = dir.path().join("deeplo.env");
        std::fs::write(&path, "DEEPLO_HTTP_PORT=9000\n").unwrap();
        assert_eq!(load_env_file(&path).unwrap(), [("DEEPLO_HTTP_PORT".to_owned(), "9000".to_owned())]);
    }
}
