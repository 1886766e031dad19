use super::*;
use crate::FileStore;

struct Bed {
    vault: EnvVault,
    store: Arc<FileStore>,
    dir: tempfile::TempDir,
}

fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(&dir.path().join("store"), Timestamp::now()).unwrap());
    let vault = EnvVault::new(Arc::clone(&store) as Arc<dyn Store>, dir.path().join("keys/secrets.key"));
    Bed { vault, store, dir }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn opened(vault: &EnvVault, project: &str) -> Vec<(String, String)> {
    vault.values(project).await.unwrap().into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect()
}

/// Every file under the bed's directory, read whole.
fn every_byte(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(every_byte(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn values_are_set_listed_opened_and_unset_and_never_stored_in_the_clear() {
    let b = bed();
    let t = Timestamp::now();
    assert!(opened(&b.vault, "web").await.is_empty());
    assert!(!b.vault.key_file().exists(), "no key is made for a project without values");
    b.vault.set("web", &pairs(&[("DATABASE_URL", "postgres://u:hunter22@db"), ("MODE", "prod")]), t).await.unwrap();
    b.vault.set("api", &pairs(&[("MODE", "staging")]), t).await.unwrap();
    b.vault.set("web", &pairs(&[("MODE", "canary")]), t).await.unwrap();
    assert_eq!(
        opened(&b.vault, "web").await,
        pairs(&[("DATABASE_URL", "postgres://u:hunter22@db"), ("MODE", "canary")])
    );
    assert_eq!(opened(&b.vault, "api").await, pairs(&[("MODE", "staging")]));
    let names: Vec<String> = b.vault.list("web").await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["DATABASE_URL", "MODE"]);
    let everything = every_byte(b.dir.path());
    for value in ["hunter22", "canary", "staging"] {
        assert!(!contains(&everything, value), "{value} is on disk in the clear");
    }

    let removed = b.vault.unset("web", &["MODE".into(), "NOPE".into()]).await.unwrap();
    assert_eq!(removed, ["MODE"]);
    assert_eq!(opened(&b.vault, "web").await, pairs(&[("DATABASE_URL", "postgres://u:hunter22@db")]));
    drop(b.store);
}

#[tokio::test]
async fn bad_names_and_values_are_refused_naming_them() {
    let b = bed();
    for bad in ["", "1X", "A-B", "A B", "É"] {
        let err = b.vault.set("web", &pairs(&[(bad, "v")]), Timestamp::now()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    let err = b.vault.set("web", &pairs(&[("A", "x\0y")]), Timestamp::now()).await.unwrap_err();
    assert!(err.to_string().contains("NUL") && err.to_string().contains('A'), "{err}");
    let big = "x".repeat(MAX_VALUE_BYTES + 1);
    let err = b.vault.set("web", &[("BIG".into(), big)], Timestamp::now()).await.unwrap_err();
    assert!(err.to_string().contains("BIG"), "{err}");
    assert!(b.vault.list("web").await.unwrap().is_empty(), "nothing was set");
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_variable_does_not_open() {
    let b = bed();
    b.vault.set("web", &pairs(&[("A", "alpha"), ("B", "beta")]), Timestamp::now()).await.unwrap();
    let mut doc = b.store.load_document(DOCUMENT).await.unwrap().unwrap();
    let a = doc["projects"]["web"]["A"].clone();
    doc["projects"]["web"]["B"] = a;
    b.store.save_document(DOCUMENT, &doc).await.unwrap();
    let err = b.vault.values("web").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains('B') && !err.to_string().contains("alpha"), "{err}");
}

#[tokio::test]
async fn another_key_file_is_refused_with_what_to_do() {
    let b = bed();
    b.vault.set("web", &pairs(&[("A", "alpha")]), Timestamp::now()).await.unwrap();
    std::fs::remove_file(b.vault.key_file()).unwrap();
    MasterKey::generate().write_new(b.vault.key_file()).unwrap();
    let err = b.vault.values("web").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("restore the key file"), "{err}");
}

#[tokio::test]
async fn a_rotation_reseals_everything_under_a_new_key() {
    let b = bed();
    b.vault.set("web", &pairs(&[("A", "alpha"), ("B", "beta")]), Timestamp::now()).await.unwrap();
    b.vault.set("api", &pairs(&[("C", "gamma")]), Timestamp::now()).await.unwrap();
    let before = std::fs::read(b.vault.key_file()).unwrap();
    let rotated = b.vault.rotate_key().await.unwrap();
    assert_eq!(rotated.values, 3);
    assert_ne!(rotated.old_key, rotated.new_key);
    assert_ne!(std::fs::read(b.vault.key_file()).unwrap(), before);
    assert!(!b.vault.next_key_file().exists());
    assert_eq!(opened(&b.vault, "web").await, pairs(&[("A", "alpha"), ("B", "beta")]));
    assert_eq!(opened(&b.vault, "api").await, pairs(&[("C", "gamma")]));
    // The old key opens nothing any more.
    let doc = b.store.load_document(DOCUMENT).await.unwrap().unwrap();
    assert_eq!(doc["key_id"], rotated.new_key.as_str());
}

#[tokio::test]
async fn a_rotation_killed_at_any_step_loses_nothing() {
    for until in [Until::NextKeyWritten, Until::DocumentSaved] {
        let b = bed();
        b.vault.set("web", &pairs(&[("A", "alpha")]), Timestamp::now()).await.unwrap();
        // What a kill after that step leaves on disk.
        let stopped = b.vault.rotate_until(until).await.unwrap();
        assert!(b.vault.next_key_file().exists(), "{until:?}");
        // A new process (a new vault on the same files) reads every value.
        let again = EnvVault::new(Arc::clone(&b.store) as Arc<dyn Store>, b.vault.key_file());
        assert_eq!(opened(&again, "web").await, pairs(&[("A", "alpha")]), "{until:?}");
        let key = MasterKey::read(again.key_file()).unwrap().unwrap();
        let expected = if until == Until::DocumentSaved { &stopped.new_key } else { &stopped.old_key };
        assert_eq!(key.id(), expected, "{until:?}: the key file holds the key the values are sealed with");
        // And the next rotation goes through.
        again.rotate_key().await.unwrap();
        assert_eq!(opened(&again, "web").await, pairs(&[("A", "alpha")]), "{until:?}");
        assert!(!again.next_key_file().exists());
    }
}
