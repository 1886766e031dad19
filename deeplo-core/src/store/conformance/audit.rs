//! The audit log: appended in order, read newest first, filtered, never lost.

use super::at;
use crate::Store;
use crate::access::{Actor, AuditEntry, AuditQuery, Email, OrgName, Outcome, TokenId};

fn entry(secs: i64, org: Option<&str>, action: &str) -> AuditEntry {
    AuditEntry {
        at: at(secs),
        actor: Actor::User {
            email: Email::new("ada@example.com").unwrap(),
            token: TokenId::parse("abcd1234").unwrap(),
        },
        org: org.map(|o| OrgName::new(o).unwrap()),
        action: action.to_owned(),
        target: format!("project p{secs}"),
        outcome: if secs % 2 == 0 { Outcome::Ok } else { Outcome::Failed { message: "no route".into() } },
    }
}

pub(super) async fn audit_is_newest_first_with_filters_and_limit(store: &dyn Store) {
    assert!(store.audit(&AuditQuery::default()).await.unwrap().is_empty(), "an empty log reads as empty");
    let entries = [
        entry(1, Some("acme"), "deploy"),
        entry(2, Some("umbrella"), "deploy"),
        entry(3, None, "create_token"),
        entry(4, Some("acme"), "manage_env"),
        AuditEntry { actor: Actor::System, ..entry(5, Some("acme"), "deploy") },
    ];
    for e in &entries {
        store.append_audit(e).await.unwrap();
    }
    let all = store.audit(&AuditQuery::default()).await.unwrap();
    let want: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    assert_eq!(all, want, "every entry, unchanged, newest first");

    let acme = AuditQuery { org: Some(OrgName::new("acme").unwrap()), ..AuditQuery::default() };
    let got: Vec<i64> = store.audit(&acme).await.unwrap().iter().map(|e| e.at.as_second() - 1_700_000_000).collect();
    assert_eq!(got, [5, 4, 1]);

    let recent = AuditQuery { since: Some(at(3)), limit: Some(2), ..AuditQuery::default() };
    let got: Vec<i64> = store.audit(&recent).await.unwrap().iter().map(|e| e.at.as_second() - 1_700_000_000).collect();
    assert_eq!(got, [5, 4], "filters, then the newest up to the limit");
}

pub(super) async fn audit_appends_concurrently_lose_nothing(store: &dyn Store) {
    let entries: Vec<AuditEntry> = (0..40).map(|i| entry(i, Some("acme"), "deploy")).collect();
    for result in futures::future::join_all(entries.iter().map(|e| store.append_audit(e))).await {
        result.unwrap();
    }
    let all = store.audit(&AuditQuery::default()).await.unwrap();
    let mut seconds: Vec<i64> = all.iter().map(|e| e.at.as_second() - 1_700_000_000).collect();
    seconds.sort_unstable();
    assert_eq!(seconds, (0..40).collect::<Vec<_>>(), "each entry once");
}
