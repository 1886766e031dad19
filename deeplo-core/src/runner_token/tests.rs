use std::sync::Arc;

use super::*;
use crate::FileStore;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn host(name: &str) -> HostName {
    HostName::new(name).unwrap()
}

fn open() -> (tempfile::TempDir, RunnerTokenStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), at(0)).unwrap();
    (dir, RunnerTokenStore::new(Arc::new(store)))
}

#[test]
fn format() {
    let token = RunnerToken::generate();
    let text = token.secret().expose();
    assert_eq!(text.len(), 48, "{}", text.len());
    let encoded = text.strip_prefix("dplr_").unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 32);
    assert!(encoded.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(token.prefix(), &encoded[..8]);
    assert_ne!(RunnerToken::generate().secret(), token.secret());
    assert_eq!(format!("{token:?} {token}"), "RunnerToken(***) ***");
}

#[test]
fn hash_is_sha256_hex() {
    // SHA-256 of "abc".
    assert_eq!(TokenHash::of("abc").as_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let token = RunnerToken::generate();
    assert_eq!(token.hash(), TokenHash::of(token.secret().expose()));
    assert!(!format!("{:?}", token.hash()).contains(token.hash().as_hex()));
}

#[test]
fn verify_true_and_false() {
    let token = RunnerToken::generate();
    let other = RunnerToken::generate();
    assert!(verify(token.secret().expose(), &token.hash()));
    assert!(!verify(other.secret().expose(), &token.hash()));
}

#[test]
fn malformed_tokens_are_false() {
    let token = RunnerToken::generate();
    let text = token.secret().expose().to_owned();
    let encoded = &text[5..];
    // Each of these is stored as if it were valid: only the shape check refuses them.
    let bad = [
        String::new(),
        encoded.to_owned(),
        format!("dplx_{encoded}"),
        format!("DPLR_{encoded}"),
        format!("{text}A"),
        text[..47].to_owned(),
        format!("dplr_{}=", &encoded[..42]),
        format!("dplr_{}+", &encoded[..42]),
        format!("dplr_{}/", &encoded[..42]),
        format!(" {text}"),
        format!("{text}\n"),
    ];
    for b in bad {
        assert!(!verify(&b, &TokenHash::of(&b)), "{b:?}");
    }
    assert!(verify(&text, &TokenHash::of(&text)));
}

#[tokio::test]
async fn issue_check_and_reissue() {
    let (_dir, tokens) = open();
    let web = host("web-1");
    let first = tokens.issue(&web, at(1)).await.unwrap();
    assert!(tokens.check(&web, first.secret().expose()).await.unwrap());
    let second = tokens.issue(&web, at(2)).await.unwrap();
    assert!(!tokens.check(&web, first.secret().expose()).await.unwrap(), "the old token still works");
    assert!(tokens.check(&web, second.secret().expose()).await.unwrap());
    let listed = tokens.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].prefix, second.prefix());
    assert_eq!(listed[0].issued_at, at(2));
}

#[tokio::test]
async fn revoke() {
    let (_dir, tokens) = open();
    let web = host("web-1");
    assert!(!tokens.revoke(&web, at(1)).await.unwrap(), "nothing to revoke");
    let token = tokens.issue(&web, at(1)).await.unwrap();
    assert!(tokens.revoke(&web, at(2)).await.unwrap());
    assert!(!tokens.check(&web, token.secret().expose()).await.unwrap());
    assert!(!tokens.revoke(&web, at(3)).await.unwrap(), "already revoked");
    let listed = tokens.list().await.unwrap();
    assert_eq!(listed[0].revoked_at, Some(at(2)));
}

#[tokio::test]
async fn another_hosts_token_is_refused() {
    let (_dir, tokens) = open();
    let web = tokens.issue(&host("web-1"), at(1)).await.unwrap();
    let db = tokens.issue(&host("db-1"), at(1)).await.unwrap();
    assert!(!tokens.check(&host("db-1"), web.secret().expose()).await.unwrap());
    assert!(!tokens.check(&host("web-1"), db.secret().expose()).await.unwrap());
    assert!(!tokens.check(&host("unknown"), web.secret().expose()).await.unwrap());
    assert!(tokens.check(&host("db-1"), db.secret().expose()).await.unwrap());
}

#[tokio::test]
async fn list_and_document_hide_the_token() {
    let (_dir, tokens) = open();
    let token = tokens.issue(&host("web-1"), at(1)).await.unwrap();
    let listed = serde_json::to_string(&tokens.list().await.unwrap()).unwrap();
    assert!(!listed.contains(token.hash().as_hex()), "{listed}");
    assert!(!listed.contains(token.secret().expose()), "{listed}");
    let doc = tokens.store.load_document(DOCUMENT).await.unwrap().unwrap().to_string();
    assert!(doc.contains(token.hash().as_hex()), "{doc}");
    assert!(!doc.contains(token.secret().expose()), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issues_lose_no_host() {
    let (_dir, tokens) = open();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(async move {
            let h = host(&format!("web-{i}"));
            let token = tokens.issue(&h, at(i)).await.unwrap();
            (h, token)
        }));
    }
    let mut issued = Vec::new();
    for t in tasks {
        issued.push(t.await.unwrap());
    }
    assert_eq!(tokens.list().await.unwrap().len(), 16);
    for (h, token) in issued {
        assert!(tokens.check(&h, token.secret().expose()).await.unwrap(), "{h}");
    }
}

#[tokio::test]
async fn unreadable_document_is_a_store_error() {
    let (_dir, tokens) = open();
    tokens.store.save_document(DOCUMENT, &serde_json::json!({"hosts": 3})).await.unwrap();
    let err = tokens.list().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
}

#[tokio::test]
async fn authenticate_finds_the_host_of_a_valid_token_only() {
    let (_dir, tokens) = open();
    let web = tokens.issue(&host("web-1"), at(1)).await.unwrap();
    let db = tokens.issue(&host("db-1"), at(1)).await.unwrap();
    assert_eq!(tokens.authenticate(web.secret().expose()).await.unwrap(), Some(host("web-1")));
    assert_eq!(tokens.authenticate(db.secret().expose()).await.unwrap(), Some(host("db-1")));
    assert_eq!(tokens.authenticate(RunnerToken::generate().secret().expose()).await.unwrap(), None, "forged");
    assert_eq!(tokens.authenticate("dplr_short").await.unwrap(), None, "malformed");
    tokens.revoke(&host("web-1"), at(2)).await.unwrap();
    assert_eq!(tokens.authenticate(web.secret().expose()).await.unwrap(), None, "revoked");
    let reissued = tokens.issue(&host("db-1"), at(3)).await.unwrap();
    assert_eq!(tokens.authenticate(db.secret().expose()).await.unwrap(), None, "replaced by a new one");
    assert_eq!(tokens.authenticate(reissued.secret().expose()).await.unwrap(), Some(host("db-1")));
}
