//! Run id -> GitHub deployment id, for the last [`CAPACITY`] runs.
//!
//! The final event of a run needs the deployment its `started` event created. The map is
//! bounded (runs that never finish must not grow it forever) and in memory only: after a
//! restart the final event creates the deployment afresh.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use deeplo_core::model::RunId;

/// How many runs are remembered.
pub const CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Runs {
    inner: Mutex<(VecDeque<RunId>, HashMap<RunId, u64>)>,
}

impl Runs {
    pub(crate) fn insert(&self, run: RunId, deployment: u64) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (order, ids) = &mut *guard;
        if ids.insert(run.clone(), deployment).is_none() {
            order.push_back(run);
        }
        while order.len() > CAPACITY {
            if let Some(oldest) = order.pop_front() {
                ids.remove(&oldest);
            }
        }
    }

    /// Takes the deployment id of `run` out of the map (its last event is being reported).
    pub(crate) fn take(&self, run: &RunId) -> Option<u64> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (order, ids) = &mut *guard;
        let id = ids.remove(run)?;
        order.retain(|r| r != run);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_taken_once() {
        let runs = Runs::default();
        let id = |n: usize| RunId::parse(&format!("{n}-deadbeef")).unwrap();
        for n in 0..=CAPACITY {
            runs.insert(id(n), n as u64);
        }
        assert_eq!(runs.take(&id(0)), None, "the oldest run was forgotten");
        assert_eq!(runs.take(&id(CAPACITY)), Some(CAPACITY as u64));
        assert_eq!(runs.take(&id(CAPACITY)), None);
    }
}
