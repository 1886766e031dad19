//! From a repo URL in the config to GitHub's `owner/name`.
//!
//! The config accepts every URL form git does (`https://`, `ssh://`, scp-style
//! `git@host:owner/name.git`, `file://`, plain paths), while a webhook names its repository
//! by `repository.full_name` and the REST API by `/repos/{owner}/{name}`. Two questions come
//! up: which config entries a webhook is about ([`repo_full_name`], any form, so a mirror
//! or a local test repository laid out as `.../owner/name` matches too), and whether a
//! deployment can be reported to GitHub at all ([`github_full_name`], the host must be
//! GitHub's).

/// `owner/name` from the last two path segments of any URL form, `.git` removed.
///
/// `https://github.com/o/r.git`, `ssh://git@host:22/o/r.git`, `git@github.com:o/r.git`,
/// `file:///srv/git/o/r.git` and `/srv/git/o/r` all give `o/r`. Compare the result with
/// a webhook's `repository.full_name` case-insensitively, as GitHub does.
///
/// ```
/// use deeplo_github::repo_full_name;
/// assert_eq!(repo_full_name("git@github.com:acme/app.git").as_deref(), Some("acme/app"));
/// assert_eq!(repo_full_name("https://github.com/acme").as_deref(), None);
/// ```
pub fn repo_full_name(url: &str) -> Option<String> {
    full_name_of(split(url).path)
}

/// `owner/name` when `url` points at a repository on `host` (`github.com`, or a GitHub
/// Enterprise host), compared case-insensitively; `None` for local paths, `file://` URLs
/// and other hosts.
///
/// ```
/// use deeplo_github::github_full_name;
/// assert_eq!(github_full_name("https://github.com/acme/app", "github.com").as_deref(), Some("acme/app"));
/// assert_eq!(github_full_name("/srv/git/acme/app.git", "github.com"), None);
/// ```
pub fn github_full_name(url: &str, host: &str) -> Option<String> {
    let parts = split(url);
    let url_host = parts.host?;
    if !url_host.eq_ignore_ascii_case(host) {
        return None;
    }
    full_name_of(parts.path)
}

struct Parts<'a> {
    host: Option<&'a str>,
    path: &'a str,
}

fn split(url: &str) -> Parts<'_> {
    let url = url.trim();
    let url = url.split(['?', '#']).next().unwrap_or(url);
    if let Some((_scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        return Parts { host: host_of(authority), path };
    }
    // scp-style `[user@]host:path`: a colon before any slash.
    if let Some(colon) = url.find(':')
        && !url[..colon].contains('/')
    {
        return Parts { host: host_of(&url[..colon]), path: &url[colon + 1..] };
    }
    Parts { host: None, path: url }
}

/// The host of an authority (`user@host:port`); `None` when empty (`file:///path`).
fn host_of(authority: &str) -> Option<&str> {
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next().unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

fn full_name_of(path: &str) -> Option<String> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let name = segments.next_back()?;
    let owner = segments.next_back()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    let valid = |s: &str| !s.is_empty() && s != "." && s != "..";
    (valid(owner) && valid(name)).then(|| format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_gives_owner_and_name() {
        for url in [
            "https://github.com/o/r.git",
            "https://github.com/o/r",
            "https://github.com/o/r/",
            "https://user:pw@github.com:443/o/r.git",
            "ssh://git@host:22/o/r.git",
            "ssh://git@github.com/o/r",
            "git@github.com:o/r.git",
            "github.com:o/r",
            "file:///srv/git/o/r.git",
            "/srv/git/o/r",
            "  /srv/git/o/r.git  ",
            "https://github.com/o/r.git?x=1#frag",
        ] {
            assert_eq!(repo_full_name(url).as_deref(), Some("o/r"), "{url}");
        }
    }

    #[test]
    fn too_short_or_odd_paths_give_none() {
        for url in ["", "r.git", "https://github.com/o", "git@github.com:r.git", "/r", "/o/..", "/./r"] {
            assert_eq!(repo_full_name(url), None, "{url}");
        }
    }

    #[test]
    fn github_host_is_required_for_reporting() {
        assert_eq!(github_full_name("git@GitHub.com:o/r.git", "github.com").as_deref(), Some("o/r"));
        assert_eq!(github_full_name("ssh://git@github.com:22/o/r.git", "github.com").as_deref(), Some("o/r"));
        assert_eq!(github_full_name("https://ghe.example.com/o/r", "ghe.example.com").as_deref(), Some("o/r"));
        assert_eq!(github_full_name("https://gitlab.com/o/r", "github.com"), None);
        assert_eq!(github_full_name("file:///srv/git/o/r.git", "github.com"), None);
        assert_eq!(github_full_name("/srv/github.com/o/r", "github.com"), None);
    }
}
