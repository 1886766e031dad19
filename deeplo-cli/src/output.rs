//! Printing: aligned tables (two spaces between columns, like the Go tool's tabwriter) and
//! JSON for `-o json`.

use std::io::Write;

use deeplo_core::model::Deployment;
use jiff::Timestamp;

/// Prints rows under a header, each column padded to its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// A column of a table of deployment records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Run,
    Project,
    Host,
    Status,
    Commit,
    Trigger,
    When,
    Error,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Self::Id => "ID",
            Self::Run => "RUN",
            Self::Project => "PROJECT",
            Self::Host => "HOST",
            Self::Status => "STATUS",
            Self::Commit => "COMMIT",
            Self::Trigger => "TRIGGER",
            Self::When => "WHEN",
            Self::Error => "ERROR",
        }
    }

    fn cell(self, d: &Deployment, now: Timestamp) -> String {
        match self {
            Self::Id | Self::Run => d.id.to_string(),
            Self::Project => d.project.to_string(),
            Self::Host => d.host.to_string(),
            Self::Status => d.status.to_string(),
            Self::Commit => d.commit.as_str()[..7].to_owned(),
            Self::Trigger => d.trigger.to_string(),
            Self::When => relative_time(d.created_at, now),
            Self::Error => d.error.clone().unwrap_or_default(),
        }
    }
}

/// Deployment records as a table of the given columns.
pub fn records_table(records: &[Deployment], columns: &[Column]) -> String {
    let now = Timestamp::now();
    let header: Vec<&str> = columns.iter().map(|c| c.header()).collect();
    let rows: Vec<Vec<String>> = records.iter().map(|d| columns.iter().map(|c| c.cell(d, now)).collect()).collect();
    table(&header, &rows)
}

/// Writes a value as pretty JSON with a trailing newline.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// "just now", "5m ago", "3h ago", "2d ago", or the date past a week (the Go tool's WHEN).
pub fn relative_time(then: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second() - then.as_second();
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s if s < 7 * 86_400 => format!("{}d ago", s / 86_400),
        _ => then.strftime("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_trims_line_ends() {
        let out =
            table(&["PROJECT", "HOST"], &[vec!["web".into(), "h1".into()], vec!["a-long-name".into(), "h2".into()]]);
        assert_eq!(out, "PROJECT      HOST\nweb          h1\na-long-name  h2\n");
    }

    #[test]
    fn relative_times() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let ago = |s: i64| relative_time(Timestamp::from_second(1_000_000 - s).unwrap(), now);
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(300), "5m ago");
        assert_eq!(ago(7200), "2h ago");
        assert_eq!(ago(3 * 86_400), "3d ago");
        assert_eq!(ago(8 * 86_400), "1970-01-04");
    }
}
