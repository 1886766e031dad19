use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::{ErrorKind, FileStore, Store};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn email(s: &str) -> Email {
    Email::new(s).unwrap()
}

fn org(s: &str) -> OrgName {
    OrgName::new(s).unwrap()
}

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(FileStore::open(dir, at(0)).unwrap())
}

fn new_token(user: &str) -> NewToken {
    NewToken { user: email(user), name: "ci".into(), expires_at: None, org: None, max_role: None }
}

#[tokio::test]
async fn memberships_are_per_org_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let dir = Directory::new(store(tmp.path()));
        assert!(dir.create_org(&org("acme"), at(1)).await.unwrap());
        assert!(!dir.create_org(&org("acme"), at(2)).await.unwrap(), "created once");
        assert_eq!(dir.set_member(&email("Ada@Example.com"), &org("acme"), Role::Admin, at(3)).await.unwrap(), None);
        dir.set_member(&email("ada@example.com"), &org("umbrella"), Role::Viewer, at(4)).await.unwrap();
        dir.set_member(&email("bob@example.com"), &org("acme"), Role::Developer, at(5)).await.unwrap();
        let before = dir.set_member(&email("bob@example.com"), &org("acme"), Role::Manager, at(6)).await.unwrap();
        assert_eq!(before, Some(Role::Developer), "a second add changes the role");
    }
    let dir = Directory::new(store(tmp.path()));
    let members = dir.members(&org("acme")).await.unwrap();
    assert_eq!(
        members,
        [
            Member { email: email("ada@example.com"), role: Role::Admin },
            Member { email: email("bob@example.com"), role: Role::Manager }
        ]
    );
    let ada = dir.user(&email("ada@example.com")).await.unwrap().unwrap();
    assert_eq!(ada.created_at, at(3));
    assert_eq!(ada.memberships.len(), 2);
    assert_eq!(dir.remove_member(&email("ada@example.com"), &org("acme")).await.unwrap(), Some(Role::Admin));
    assert_eq!(dir.remove_member(&email("ada@example.com"), &org("acme")).await.unwrap(), None);
    assert_eq!(dir.role(&email("ada@example.com"), &org("acme")).await.unwrap(), None);
    assert_eq!(dir.role(&email("ada@example.com"), &org("umbrella")).await.unwrap(), Some(Role::Viewer));
    assert_eq!(dir.users().await.unwrap().len(), 2, "a user out of one org stays");
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_or_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::new(store(tmp.path()));
    let missing = dir.create_token(&new_token("ada@example.com"), at(0)).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    dir.set_member(&email("ada@example.com"), &org("acme"), Role::Manager, at(0)).await.unwrap();

    let (token, record) = dir.create_token(&new_token("ada@example.com"), at(1)).await.unwrap();
    assert_eq!(record.id, token.id());
    let caller = dir.authenticate(token.secret().expose(), at(2)).await.unwrap().unwrap();
    assert_eq!(caller.user, email("ada@example.com"));
    assert_eq!(caller.token, token.id());

    let expiring = NewToken { expires_at: Some(at(100)), ..new_token("ada@example.com") };
    let (short, _) = dir.create_token(&expiring, at(1)).await.unwrap();
    assert!(dir.authenticate(short.secret().expose(), at(99)).await.unwrap().is_ok());
    assert_eq!(dir.authenticate(short.secret().expose(), at(100)).await.unwrap(), Err(Refusal::Expired));

    assert!(dir.revoke_token(&token.id(), at(3)).await.unwrap().is_some());
    assert!(dir.revoke_token(&token.id(), at(4)).await.unwrap().is_none(), "revoked once");
    assert_eq!(dir.authenticate(token.secret().expose(), at(5)).await.unwrap(), Err(Refusal::Revoked));

    // The stored digest, or anything not shaped like a token, is no credential.
    let stored = dir.snapshot().await.unwrap().tokens.values().next().unwrap().hash.as_hex().to_owned();
    assert_eq!(dir.authenticate(&stored, at(5)).await.unwrap(), Err(Refusal::Malformed));
    let forged = format!("{API_TOKEN_PREFIX}{}", "A".repeat(43));
    assert_eq!(dir.authenticate(&forged, at(5)).await.unwrap(), Err(Refusal::Unknown));
    // The right id with other secret bytes: found by its id, refused by the digest.
    let text = token.secret().expose();
    let other = if &text[20..21] == "A" { "B" } else { "A" };
    let same_id = format!("{}{other}{}", &text[..20], &text[21..]);
    assert_eq!(
        dir.authenticate(&same_id, at(5)).await.unwrap(),
        Err(Refusal::Unknown),
        "not Revoked: the digest differs"
    );

    let bad_expiry = NewToken { expires_at: Some(at(1)), ..new_token("ada@example.com") };
    assert_eq!(dir.create_token(&bad_expiry, at(1)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    let bad_name = NewToken { name: " ".into(), ..new_token("ada@example.com") };
    assert_eq!(dir.create_token(&bad_name, at(1)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn the_document_holds_no_token_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::new(store(tmp.path()));
    dir.set_member(&email("ada@example.com"), &org("acme"), Role::Admin, at(0)).await.unwrap();
    let (token, _) = dir.create_token(&new_token("ada@example.com"), at(1)).await.unwrap();
    let file = std::fs::read_to_string(tmp.path().join("state").join("access.json")).unwrap();
    assert!(!file.contains(token.secret().expose()), "{file}");
    assert!(!file.contains(&token.secret().expose()[API_TOKEN_PREFIX.len()..]), "{file}");
}

#[tokio::test]
async fn narrowed_tokens_act_in_one_org_with_at_most_their_role() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::new(store(tmp.path()));
    dir.set_member(&email("ada@example.com"), &org("acme"), Role::Admin, at(0)).await.unwrap();
    dir.set_member(&email("ada@example.com"), &org("umbrella"), Role::Developer, at(0)).await.unwrap();
    let check = |new: NewToken| {
        let dir = dir.clone();
        async move {
            let (token, _) = dir.create_token(&new, at(1)).await.unwrap();
            let caller = dir.authenticate(token.secret().expose(), at(2)).await.unwrap().unwrap();
            let mut roles = Vec::new();
            for o in ["acme", "umbrella", "other"] {
                roles.push(dir.role_of(&caller, &org(o)).await.unwrap());
            }
            roles
        }
    };
    assert_eq!(check(new_token("ada@example.com")).await, [Some(Role::Admin), Some(Role::Developer), None]);
    let capped = NewToken { max_role: Some(Role::Viewer), ..new_token("ada@example.com") };
    assert_eq!(check(capped).await, [Some(Role::Viewer), Some(Role::Viewer), None]);
    let narrowed =
        NewToken { org: Some(org("umbrella")), max_role: Some(Role::Manager), ..new_token("ada@example.com") };
    assert_eq!(check(narrowed).await, [None, Some(Role::Developer), None], "a cap never raises a role");
}

#[tokio::test]
async fn a_use_is_written_down_once_a_minute() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::new(store(tmp.path()));
    dir.set_member(&email("ada@example.com"), &org("acme"), Role::Admin, at(0)).await.unwrap();
    let (token, _) = dir.create_token(&new_token("ada@example.com"), at(0)).await.unwrap();
    let id = token.id();
    let last_use = |dir: Directory| {
        let id = id.clone();
        async move { dir.token(&id).await.unwrap().unwrap().last_used_at }
    };
    assert_eq!(last_use(dir.clone()).await, None);
    let text = token.secret().expose().to_owned();
    dir.authenticate(&text, at(10)).await.unwrap().unwrap();
    assert_eq!(last_use(dir.clone()).await, Some(at(10)));
    dir.authenticate(&text, at(30)).await.unwrap().unwrap();
    assert_eq!(last_use(dir.clone()).await, Some(at(10)), "within the precision");
    let later = at(10).checked_add(LAST_USE_PRECISION + SignedDuration::from_secs(1)).unwrap();
    dir.authenticate(&text, later).await.unwrap().unwrap();
    assert_eq!(last_use(dir.clone()).await, Some(later));
    let file = std::fs::read_to_string(tmp.path().join("state").join("access.json")).unwrap();
    assert!(file.contains(&later.to_string()), "the use is on disk for the next process: {file}");
}

#[tokio::test]
async fn every_change_is_audited_with_its_outcome_and_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let accounts = Accounts::new(Arc::clone(&store));
    let root = Actor::Root;
    accounts.add_member(&root, &email("ada@example.com"), &org("acme"), Role::Admin, at(1)).await.unwrap();
    assert_eq!(
        accounts.directory().snapshot().await.unwrap().orgs.len(),
        1,
        "the org is created with its first member"
    );
    accounts.change_role(&root, &email("ada@example.com"), &org("acme"), Role::Manager, at(2)).await.unwrap();
    let missing = accounts.change_role(&root, &email("bob@example.com"), &org("acme"), Role::Viewer, at(3)).await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    let (token, record) = accounts.create_token(&root, &new_token("ada@example.com"), at(4)).await.unwrap();
    accounts.revoke_token(&root, &record.id, at(5)).await.unwrap();
    assert_eq!(accounts.revoke_token(&root, &record.id, at(6)).await.unwrap_err().kind(), ErrorKind::NotFound);
    accounts.remove_member(&root, &email("ada@example.com"), &org("acme"), at(7)).await.unwrap();

    let log = store.audit(&AuditQuery::default()).await.unwrap();
    let summary: Vec<(i64, &str, bool)> = log
        .iter()
        .rev()
        .map(|e| (e.at.as_second() - 1_700_000_000, e.action.as_str(), e.outcome == Outcome::Ok))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "manage_members", true),
            (2, "manage_members", true),
            (3, "manage_members", false),
            (4, "create_token", true),
            (5, "revoke_token", true),
            (6, "revoke_token", false),
            (7, "manage_members", true),
        ]
    );
    assert!(log.iter().all(|e| e.actor == Actor::Root));
    assert_eq!(log.last().unwrap().target, "user ada@example.com as admin");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&token.secret().expose()[API_TOKEN_PREFIX.len()..]), "{text}");
    assert!(text.contains(&format!("token {} of ada@example.com", record.id)));
}

#[tokio::test]
async fn outsiders_are_told_not_found_and_low_roles_forbidden() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::new(store(tmp.path()));
    dir.set_member(&email("ada@example.com"), &org("acme"), Role::Developer, at(0)).await.unwrap();
    let (token, _) = dir.create_token(&new_token("ada@example.com"), at(0)).await.unwrap();
    let caller = dir.authenticate(token.secret().expose(), at(1)).await.unwrap().unwrap();
    assert_eq!(authorize(&dir, &caller, &org("acme"), Action::Deploy).await.unwrap(), Ok(Role::Developer));
    assert_eq!(
        authorize(&dir, &caller, &org("acme"), Action::ManageEnv).await.unwrap(),
        Err(Denied::Forbidden { role: Role::Developer, needed: Role::Manager })
    );
    assert_eq!(authorize(&dir, &caller, &org("umbrella"), Action::ReadOrg).await.unwrap(), Err(Denied::NotFound));
}
