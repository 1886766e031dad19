//! Checks of records: save, the latest and last-success indexes, history, interrupted runs
//! and pruning.

use super::{at, ids, pair, record, save_all};
use crate::model::DeployStatus::{Failed, Pending, Running, Succeeded};
use crate::model::{HostName, ProjectName, RunId};
use crate::store::{HistoryQuery, PruneReport, Store};

pub(super) async fn save_then_get(store: &dyn Store) {
    let r = record("web", "h1", 0, 1, Succeeded);
    assert_eq!(store.get(&r.id).await.unwrap(), None, "get before save");
    store.save(&r).await.unwrap();
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r.clone()), "get returns the saved record unchanged");
    let other = RunId::parse("1700000000-ffffffff").unwrap();
    assert_eq!(store.get(&other).await.unwrap(), None, "get of an unknown id");
}

pub(super) async fn save_replaces_by_id(store: &dyn Store) {
    let mut r = record("web", "h1", 0, 1, Running);
    store.save(&r).await.unwrap();
    r.succeed(at(5)).unwrap();
    r.steps.clear();
    store.save(&r).await.unwrap();
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r.clone()), "the second save replaces the first");
    let all = store.history(&HistoryQuery::default()).await.unwrap();
    assert_eq!(all, vec![r.clone()], "a replaced record is in the history once");
    let p = pair("web", "h1");
    assert_eq!(store.latest(&p).await.unwrap(), Some(r.clone()), "latest shows the replacement");
    assert_eq!(store.last_success(&p).await.unwrap(), Some(r), "the replacement succeeded");
}

pub(super) async fn latest_is_newest_by_created_time_then_id(store: &dyn Store) {
    let p = pair("web", "h1");
    assert_eq!(store.latest(&p).await.unwrap(), None, "latest of an unknown pair");
    let newer = record("web", "h1", 20, 1, Failed);
    let older = record("web", "h1", 10, 2, Succeeded);
    save_all(store, &[&newer, &older]).await;
    assert_eq!(store.latest(&p).await.unwrap(), Some(newer.clone()), "an older record saved later does not win");

    let tie_low = record("web", "h1", 30, 0x0a, Running);
    let tie_high = record("web", "h1", 30, 0x0b, Pending);
    save_all(store, &[&tie_high, &tie_low]).await;
    assert_eq!(store.latest(&p).await.unwrap(), Some(tie_high.clone()), "same creation time: the higher id wins");

    let mut updated = tie_high.clone();
    updated.start(at(31)).unwrap();
    store.save(&updated).await.unwrap();
    assert_eq!(store.latest(&p).await.unwrap(), Some(updated), "saving the latest again updates it");
}

pub(super) async fn latest_is_per_pair(store: &dyn Store) {
    let a = record("web", "h1", 10, 1, Succeeded);
    let b = record("web", "h2", 5, 2, Failed);
    let c = record("api", "h1", 1, 3, Running);
    save_all(store, &[&a, &b, &c]).await;
    assert_eq!(store.latest(&pair("web", "h1")).await.unwrap(), Some(a));
    assert_eq!(store.latest(&pair("web", "h2")).await.unwrap(), Some(b));
    assert_eq!(store.latest(&pair("api", "h1")).await.unwrap(), Some(c));
    assert_eq!(store.latest(&pair("api", "h2")).await.unwrap(), None);
}

pub(super) async fn last_success_is_newest_success(store: &dyn Store) {
    let p = pair("web", "h1");
    let failed_first = record("web", "h1", 0, 1, Failed);
    store.save(&failed_first).await.unwrap();
    assert_eq!(store.last_success(&p).await.unwrap(), None, "no success yet");

    let good = record("web", "h1", 10, 2, Succeeded);
    let bad = record("web", "h1", 20, 3, Failed);
    save_all(store, &[&good, &bad]).await;
    assert_eq!(store.latest(&p).await.unwrap(), Some(bad), "latest is the failure");
    assert_eq!(store.last_success(&p).await.unwrap(), Some(good.clone()), "a failure keeps the last success");

    let older_good = record("web", "h1", 5, 4, Succeeded);
    store.save(&older_good).await.unwrap();
    assert_eq!(store.last_success(&p).await.unwrap(), Some(good), "an older success does not displace a newer one");

    let newer_good = record("web", "h1", 30, 5, Succeeded);
    store.save(&newer_good).await.unwrap();
    assert_eq!(store.last_success(&p).await.unwrap(), Some(newer_good));
    assert_eq!(store.last_success(&pair("web", "h2")).await.unwrap(), None, "other pairs have none");
}

pub(super) async fn latest_all_is_sorted_by_project_then_host(store: &dyn Store) {
    assert!(store.latest_all().await.unwrap().is_empty(), "an empty store");
    let records = [
        record("web", "h2", 1, 1, Succeeded),
        record("api", "h9", 2, 2, Failed),
        record("web", "h1", 3, 3, Running),
        record("api", "h1", 4, 4, Succeeded),
        record("web", "h1", 0, 5, Succeeded),
    ];
    save_all(store, &records.iter().collect::<Vec<_>>()).await;
    let all = store.latest_all().await.unwrap();
    let got: Vec<_> = all.iter().map(|r| (r.project.to_string(), r.host.to_string(), r.id.clone())).collect();
    let want = [("api", "h1", 3), ("api", "h9", 1), ("web", "h1", 2), ("web", "h2", 0)]
        .map(|(p, h, i)| (p.to_owned(), h.to_owned(), records[i].id.clone()));
    assert_eq!(got, want, "one record per pair, sorted by project then host");
}

pub(super) async fn history_is_newest_first_with_filters_and_limit(store: &dyn Store) {
    let r = [
        record("web", "h1", 10, 1, Succeeded),
        record("web", "h2", 20, 2, Failed),
        record("api", "h1", 30, 3, Succeeded),
        record("web", "h1", 40, 4, Running),
        record("web", "h1", 40, 5, Pending),
    ];
    save_all(store, &[&r[3], &r[0], &r[4], &r[2], &r[1]]).await;
    let query = |project: Option<&str>, host: Option<&str>, limit: Option<usize>| HistoryQuery {
        project: project.map(|p| ProjectName::new(p).unwrap()),
        host: host.map(|h| HostName::new(h).unwrap()),
        limit,
    };
    let run = async |q: HistoryQuery| ids(&store.history(&q).await.unwrap());
    let want = |idx: &[usize]| idx.iter().map(|i| r[*i].id.to_string()).collect::<Vec<_>>();
    assert_eq!(run(query(None, None, None)).await, want(&[4, 3, 2, 1, 0]), "all, newest first");
    assert_eq!(run(query(Some("web"), None, None)).await, want(&[4, 3, 1, 0]), "by project");
    assert_eq!(run(query(None, Some("h1"), None)).await, want(&[4, 3, 2, 0]), "by host");
    assert_eq!(run(query(Some("web"), Some("h1"), Some(2))).await, want(&[4, 3]), "by pair, limited");
    assert_eq!(run(query(None, None, Some(0))).await, want(&[]), "limit 0");
    assert_eq!(run(query(None, None, Some(99))).await, want(&[4, 3, 2, 1, 0]), "limit above the count");
    assert_eq!(run(query(Some("nope"), None, None)).await, want(&[]), "unknown project");
}

pub(super) async fn mark_interrupted_fails_pending_and_running(store: &dyn Store) {
    let pending = record("web", "h1", 1, 1, Pending);
    let running = record("web", "h2", 2, 2, Running);
    let done = record("api", "h1", 3, 3, Succeeded);
    let failed = record("api", "h2", 4, 4, Failed);
    save_all(store, &[&pending, &running, &done, &failed]).await;

    let now = at(100);
    let mut marked = store.mark_interrupted(now).await.unwrap();
    marked.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(ids(&marked), ids(&[pending.clone(), running.clone()]), "pending and running are returned");
    for r in &marked {
        assert_eq!(r.status, Failed, "{} is failed", r.id);
        assert_eq!(r.error.as_deref(), Some("interrupted"), "{} says why", r.id);
        assert_eq!(r.finished_at, Some(now), "{} ended now", r.id);
        assert_eq!(store.get(&r.id).await.unwrap().as_ref(), Some(r), "{} is saved", r.id);
    }
    assert_eq!(store.latest(&pair("web", "h2")).await.unwrap().unwrap().status, Failed, "latest is updated");
    assert_eq!(store.get(&done.id).await.unwrap(), Some(done), "a succeeded record is left alone");
    assert_eq!(store.get(&failed.id).await.unwrap(), Some(failed), "a failed record is left alone");
    assert!(store.mark_interrupted(at(200)).await.unwrap().is_empty(), "a second call finds nothing");
}

pub(super) async fn prune_keeps_latest_and_last_success(store: &dyn Store) {
    let old_success = record("web", "h1", 10, 1, Succeeded);
    let old_failure = record("web", "h1", 20, 2, Failed);
    let last_success = record("web", "h1", 30, 3, Succeeded);
    let newer_failure = record("web", "h1", 40, 4, Failed);
    let other_pair_only = record("api", "h1", 5, 5, Failed);
    let at_cutoff = record("web", "h1", 50, 6, Failed);
    let after = record("web", "h1", 60, 7, Running);
    let all = [&old_success, &old_failure, &last_success, &newer_failure, &other_pair_only, &at_cutoff, &after];
    save_all(store, &all).await;
    for r in all {
        store.append_log(&r.id, b"log\n").await.unwrap();
    }
    // Created before the cutoff: the first four and `other_pair_only`; of those, the
    // pairs' latest (`other_pair_only`) and last success (`last_success`) must stay.
    let report = store.prune(at(35)).await.unwrap();
    assert_eq!(report, PruneReport { records: 2, logs: 2 }, "two old records and their logs go");
    for gone in [&old_success, &old_failure] {
        assert_eq!(store.get(&gone.id).await.unwrap(), None, "{} is pruned", gone.id);
        assert_eq!(store.read_log(&gone.id).await.unwrap(), None, "the log of {} is pruned", gone.id);
    }
    for kept in [&last_success, &newer_failure, &other_pair_only, &at_cutoff, &after] {
        assert!(store.get(&kept.id).await.unwrap().is_some(), "{} is kept", kept.id);
        assert!(store.read_log(&kept.id).await.unwrap().is_some(), "the log of {} is kept", kept.id);
    }
    assert_eq!(store.last_success(&pair("web", "h1")).await.unwrap(), Some(last_success.clone()));

    let report = store.prune(at(1000)).await.unwrap();
    assert_eq!(report, PruneReport { records: 2, logs: 2 }, "everything but the heads goes");
    let left = ids(&store.history(&HistoryQuery::default()).await.unwrap());
    assert_eq!(left, ids(&[after, last_success, other_pair_only]), "latest and last success stay");
}
