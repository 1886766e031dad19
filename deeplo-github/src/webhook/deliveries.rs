//! Delivery dedup: GitHub may deliver one event twice (a redelivery from its UI or API, a
//! retry after a timeout), and each delivery carries a unique `X-GitHub-Delivery` id.
//!
//! The last [`CAPACITY`] ids are kept in a ring with a set beside it for lookups: bounded
//! memory however many deliveries arrive. An id is claimed before the delivery is
//! processed (two concurrent copies cannot both pass) and released again when the answer
//! asks GitHub to redeliver (503).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How many delivery ids are remembered.
pub const CAPACITY: usize = 1000;

#[derive(Debug)]
pub(crate) struct Deliveries {
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Deliveries {
    pub(crate) fn new() -> Self {
        Self { inner: Mutex::new(Ring::default()) }
    }

    /// Records `id`; `false` when it was already there (a repeated delivery).
    pub(crate) fn claim(&self, id: &str) -> bool {
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if ring.seen.contains(id) {
            return false;
        }
        if ring.order.len() == CAPACITY
            && let Some(oldest) = ring.order.pop_front()
        {
            ring.seen.remove(&oldest);
        }
        ring.order.push_back(id.to_owned());
        ring.seen.insert(id.to_owned());
        true
    }

    /// Forgets `id`, so that a redelivery is processed.
    pub(crate) fn release(&self, id: &str) {
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if ring.seen.remove(id) {
            ring.order.retain(|x| x != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_thousand() {
        let d = Deliveries::new();
        assert!(d.claim("a"));
        assert!(!d.claim("a"));
        for i in 0..CAPACITY {
            assert!(d.claim(&i.to_string()));
        }
        assert!(d.claim("a"), "the oldest id was forgotten");
        assert!(!d.claim(&(CAPACITY - 1).to_string()));
        let ring = d.inner.lock().unwrap();
        assert_eq!(ring.order.len(), CAPACITY);
        assert_eq!(ring.seen.len(), CAPACITY);
    }

    #[test]
    fn released_ids_can_be_claimed_again() {
        let d = Deliveries::new();
        assert!(d.claim("x"));
        d.release("x");
        assert!(d.claim("x"));
    }
}
