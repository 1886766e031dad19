//! The in-memory index over every record, so that no read scans the disk.
//!
//! A pair's latest record and last success are not stored beside the records but derived
//! from them (the newest by creation time, then id), so that they can never disagree with
//! the records: saving an older record cannot displace a newer one, and replacing a record
//! moves it in every ordering at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;

use crate::model::{DeployStatus, Deployment, Pair, RunId};
use crate::store::HistoryQuery;

type Key = (Timestamp, RunId);

#[derive(Debug, Default)]
struct PairRuns {
    all: BTreeSet<Key>,
    succeeded: BTreeSet<Key>,
}

#[derive(Debug, Default)]
pub(super) struct Index {
    records: HashMap<RunId, Deployment>,
    by_time: BTreeSet<Key>,
    pairs: BTreeMap<Pair, PairRuns>,
}

fn key(record: &Deployment) -> Key {
    (record.created_at, record.id.clone())
}

fn pair(record: &Deployment) -> Pair {
    Pair::new(record.project.clone(), record.host.clone())
}

impl Index {
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn contains(&self, id: &RunId) -> bool {
        self.records.contains_key(id)
    }

    /// Inserts or replaces a record.
    pub(super) fn insert(&mut self, record: Deployment) {
        self.remove(&record.id);
        let key = key(&record);
        self.by_time.insert(key.clone());
        let runs = self.pairs.entry(pair(&record)).or_default();
        if record.status == DeployStatus::Succeeded {
            runs.succeeded.insert(key.clone());
        }
        runs.all.insert(key);
        self.records.insert(record.id.clone(), record);
    }

    pub(super) fn remove(&mut self, id: &RunId) -> Option<Deployment> {
        let old = self.records.remove(id)?;
        let key = key(&old);
        self.by_time.remove(&key);
        let pair = pair(&old);
        if let Some(runs) = self.pairs.get_mut(&pair) {
            runs.all.remove(&key);
            runs.succeeded.remove(&key);
            if runs.all.is_empty() {
                self.pairs.remove(&pair);
            }
        }
        Some(old)
    }

    pub(super) fn get(&self, id: &RunId) -> Option<&Deployment> {
        self.records.get(id)
    }

    pub(super) fn latest(&self, pair: &Pair) -> Option<&Deployment> {
        let (_, id) = self.pairs.get(pair)?.all.last()?;
        self.records.get(id)
    }

    pub(super) fn last_success(&self, pair: &Pair) -> Option<&Deployment> {
        let (_, id) = self.pairs.get(pair)?.succeeded.last()?;
        self.records.get(id)
    }

    /// The newest record of every pair, by project then host.
    pub(super) fn latest_all(&self) -> Vec<Deployment> {
        self.pairs.keys().filter_map(|p| self.latest(p)).cloned().collect()
    }

    /// The last success of every pair that has one, by project then host.
    pub(super) fn last_success_all(&self) -> Vec<Deployment> {
        self.pairs.keys().filter_map(|p| self.last_success(p)).cloned().collect()
    }

    pub(super) fn history(&self, query: &HistoryQuery) -> Vec<Deployment> {
        let limit = query.limit.unwrap_or(usize::MAX);
        self.by_time
            .iter()
            .rev()
            .filter_map(|(_, id)| self.records.get(id))
            .filter(|r| query.project.as_ref().is_none_or(|p| r.project == *p))
            .filter(|r| query.host.as_ref().is_none_or(|h| r.host == *h))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Records that have not ended (`pending` or `running`), oldest first.
    pub(super) fn unfinished(&self) -> Vec<Deployment> {
        self.by_time
            .iter()
            .filter_map(|(_, id)| self.records.get(id))
            .filter(|r| !r.status.is_terminal())
            .cloned()
            .collect()
    }

    /// Whether a record is its pair's latest or last success, which prune must keep.
    pub(super) fn is_protected(&self, record: &Deployment) -> bool {
        let pair = pair(record);
        let is = |found: Option<&Deployment>| found.is_some_and(|d| d.id == record.id);
        is(self.latest(&pair)) || is(self.last_success(&pair))
    }

    /// The records created before `before` that prune may remove.
    pub(super) fn prunable(&self, before: Timestamp) -> Vec<RunId> {
        self.by_time
            .iter()
            .take_while(|(created, _)| *created < before)
            .filter_map(|(_, id)| self.records.get(id))
            .filter(|r| !self.is_protected(r))
            .map(|r| r.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CommitId, HostName, ProjectName, Trigger};

    fn record(project: &str, id: &str, secs: i64, status: DeployStatus) -> Deployment {
        let mut d = Deployment::new(
            ProjectName::new(project).unwrap(),
            HostName::new("h1").unwrap(),
            CommitId::new("c".repeat(40)).unwrap(),
            "main",
            Trigger::Poll,
            Timestamp::from_second(secs).unwrap(),
        );
        d.id = RunId::parse(id).unwrap();
        d.status = status;
        d
    }

    #[test]
    fn replacing_a_record_moves_it_everywhere() {
        let mut index = Index::default();
        let pair = Pair::new(ProjectName::new("web").unwrap(), HostName::new("h1").unwrap());
        index.insert(record("web", "10-00000001", 10, DeployStatus::Succeeded));
        index.insert(record("web", "20-00000002", 20, DeployStatus::Running));
        assert_eq!(index.latest(&pair).unwrap().id.as_str(), "20-00000002");
        assert_eq!(index.last_success(&pair).unwrap().id.as_str(), "10-00000001");
        index.insert(record("web", "20-00000002", 20, DeployStatus::Succeeded));
        assert_eq!(index.last_success(&pair).unwrap().id.as_str(), "20-00000002");
        assert_eq!(index.len(), 2);
        assert_eq!(index.prunable(Timestamp::from_second(30).unwrap()), vec![RunId::parse("10-00000001").unwrap()]);
        index.remove(&RunId::parse("20-00000002").unwrap());
        index.remove(&RunId::parse("10-00000001").unwrap());
        assert!(index.latest_all().is_empty());
        assert!(index.pairs.is_empty() && index.by_time.is_empty());
    }
}
