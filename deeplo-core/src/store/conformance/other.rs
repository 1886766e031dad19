//! Checks of run logs, poll cursors and documents.

use serde_json::json;

use super::{commit, record};
use crate::ErrorKind;
use crate::model::DeployStatus::Running;
use crate::store::Store;

pub(super) async fn logs_append_in_order(store: &dyn Store) {
    let a = record("web", "h1", 0, 1, Running);
    let b = record("web", "h1", 1, 2, Running);
    assert_eq!(store.read_log(&a.id).await.unwrap(), None, "no log yet");
    store.append_log(&a.id, b"first line\n").await.unwrap();
    store.append_log(&b.id, b"other run\n").await.unwrap();
    store.append_log(&a.id, b"second ").await.unwrap();
    store.append_log(&a.id, b"line\n").await.unwrap();
    store.append_log(&a.id, &[0, 159, 255, b'\n']).await.unwrap();
    let mut want = b"first line\nsecond line\n".to_vec();
    want.extend_from_slice(&[0, 159, 255, b'\n']);
    assert_eq!(store.read_log(&a.id).await.unwrap(), Some(want), "every chunk, in order, bytes as given");
    assert_eq!(store.read_log(&b.id).await.unwrap(), Some(b"other run\n".to_vec()), "logs are per run");
    store.append_log(&b.id, b"").await.unwrap();
    assert_eq!(store.read_log(&b.id).await.unwrap(), Some(b"other run\n".to_vec()), "an empty chunk adds nothing");
}

pub(super) async fn cursors_round_trip_any_key(store: &dyn Store) {
    let keys = [
        "https://github.com/acme/app.git main".to_owned(),
        "https://github.com/acme/app.git feature/x".to_owned(),
        "git@github.com:acme/app.git main".to_owned(),
        "../../etc/passwd".to_owned(),
        String::new(),
        "ключ 🔑".to_owned(),
        "x".repeat(2000),
    ];
    for key in &keys {
        assert_eq!(store.cursor(key).await.unwrap(), None, "no cursor for {key:?} yet");
    }
    for (n, key) in keys.iter().enumerate() {
        store.set_cursor(key, &commit(n as u8)).await.unwrap();
    }
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(store.cursor(key).await.unwrap(), Some(commit(n as u8)), "cursor of {key:?}");
    }
    store.set_cursor(&keys[0], &commit(99)).await.unwrap();
    assert_eq!(store.cursor(&keys[0]).await.unwrap(), Some(commit(99)), "set_cursor replaces");
    assert_eq!(store.cursor(&keys[1]).await.unwrap(), Some(commit(1)), "other keys are untouched");
}

pub(super) async fn documents_round_trip(store: &dyn Store) {
    assert_eq!(store.load_document("applied_config").await.unwrap(), None, "no document yet");
    let config = json!({"hosts": [{"name": "web-1", "port": 22}], "nested": {"empty": [], "null": null}});
    store.save_document("applied_config", &config).await.unwrap();
    store.save_document("observed-state_2", &json!("a string")).await.unwrap();
    assert_eq!(store.load_document("applied_config").await.unwrap(), Some(config));
    store.save_document("applied_config", &json!({"v": 2})).await.unwrap();
    assert_eq!(store.load_document("applied_config").await.unwrap(), Some(json!({"v": 2})), "save replaces");
    assert_eq!(store.load_document("observed-state_2").await.unwrap(), Some(json!("a string")));
}

pub(super) async fn invalid_document_names_are_refused(store: &dyn Store) {
    for name in ["", "Config", "a.json", "../escape", "a/b", "..", " x", "naïve", "a\0b"] {
        let err = store.save_document(name, &json!(1)).await.expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "save_document({name:?}): {err}");
        let err = store.load_document(name).await.expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "load_document({name:?}): {err}");
    }
}
