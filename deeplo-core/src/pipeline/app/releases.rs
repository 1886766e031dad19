//! An application's releases on a host: the containers labelled with its name, as the
//! precheck lists them, and which of them a deploy keeps.

/// One release: a container of the application, running or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Release {
    pub container: String,
    /// Docker's state word: `running`, `exited`, `created`...
    pub state: String,
    pub commit: String,
    /// When its container last started, which is about when it last went live; `None` for
    /// one never started.
    pub started: Option<jiff::Timestamp>,
    pub image: String,
}

impl Release {
    /// Reads one line of `docker inspect` in the release format: name (with Docker's
    /// leading `/`), state, commit, last start (`0001-01-01T00:00:00Z` for never), image,
    /// tab-separated.
    pub fn parse(line: &str) -> Option<Self> {
        let mut f = line.split('\t');
        let (container, state, commit, started, image) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        Some(Self {
            container: container.trim_start_matches('/').to_owned(),
            state: state.to_owned(),
            commit: commit.to_owned(),
            started: started.parse::<jiff::Timestamp>().ok().filter(|t| t.as_second() > 0),
            image: image.to_owned(),
        })
    }
}

/// The releases to remove so that `keep` remain: the live one, then those live most
/// recently (the one it just replaced first: what a rollback goes back to).
pub(crate) fn beyond(releases: &[Release], live: &str, keep: u32) -> Vec<Release> {
    let mut others: Vec<&Release> = releases.iter().filter(|r| r.container != live).collect();
    others.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.container.cmp(&a.container)));
    others.into_iter().skip(keep.saturating_sub(1) as usize).cloned().collect()
}

/// The container name of a new release of `commit`: `<app>-<commit8>`, or with `-1` when
/// that name is the live release (the same commit deployed again).
pub(crate) fn container_name(app: &str, commit: &str, live: Option<&str>) -> String {
    let base = format!("{app}-{}", &commit[..commit.len().min(8)]);
    if live == Some(base.as_str()) { format!("{base}-1") } else { base }
}

/// A Docker image repository name made of an application's name: lowercase letters and
/// digits in runs joined by one `-`.
pub(crate) fn image_repo(app: &str) -> String {
    let mut out = String::from("deeplo/");
    let mut dash = false;
    for c in app.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if dash && !out.ends_with('/') {
                out.push('-');
            }
            out.push(c);
            dash = false;
        } else {
            dash = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str, started: &str) -> Release {
        Release::parse(&format!("/{name}\texited\tc0ffee\t{started}\tdeeplo/web:c0ffee")).unwrap()
    }

    #[test]
    fn keeps_the_live_release_and_the_last_live_others() {
        let all = [
            release("web-1", "2026-12-01T10:00:00.5Z"),
            release("web-4", "2026-12-01T13:00:00.123456789Z"),
            release("web-2", "2026-12-01T11:00:00Z"),
            release("web-3", "2026-12-01T12:00:00.12Z"),
            release("web-0", "0001-01-01T00:00:00Z"),
        ];
        assert_eq!(all[0].container, "web-1");
        assert_eq!(all[4].started, None, "never started");
        let names = |v: Vec<Release>| v.into_iter().map(|r| r.container).collect::<Vec<_>>();
        assert_eq!(names(beyond(&all, "web-2", 3)), ["web-1", "web-0"], "live web-2, then web-4 and web-3");
        assert_eq!(names(beyond(&all, "web-4", 1)), ["web-3", "web-2", "web-1", "web-0"]);
        assert!(beyond(&all, "web-4", 10).is_empty());
    }

    #[test]
    fn names() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(container_name("web", commit, None), "web-01234567");
        assert_eq!(container_name("web", commit, Some("web-01234567")), "web-01234567-1");
        assert_eq!(container_name("web", commit, Some("web-01234567-1")), "web-01234567");
        assert_eq!(image_repo("web"), "deeplo/web");
        assert_eq!(image_repo("a-_b__c"), "deeplo/a-b-c");
        assert!(Release::parse("too\tfew").is_none());
    }
}
