//! The file store against the conformance suite, and what only a file store does: the lock,
//! reopening, the Go tool's data directory, broken files, hostile names.

use std::fs;
use std::path::Path;

use deeplo_core::model::{CommitId, DeployStatus, Deployment, HostName, Pair, ProjectName, RunId, Trigger};
use deeplo_core::store::{HistoryQuery, conformance};
use deeplo_core::{ErrorKind, FileStore, Store};
use jiff::Timestamp;
use serde_json::json;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn pair(project: &str, host: &str) -> Pair {
    Pair::new(ProjectName::new(project).unwrap(), HostName::new(host).unwrap())
}

fn record(project: &str, host: &str, secs: i64, status: DeployStatus) -> Deployment {
    let mut d = Deployment::new(
        ProjectName::new(project).unwrap(),
        HostName::new(host).unwrap(),
        CommitId::new("c".repeat(40)).unwrap(),
        "main",
        Trigger::Webhook,
        at(secs),
    );
    if status != DeployStatus::Pending {
        d.start(at(secs)).unwrap();
    }
    match status {
        DeployStatus::Succeeded => d.succeed(at(secs + 1)).unwrap(),
        DeployStatus::Failed => d.fail(at(secs + 1), "boom").unwrap(),
        _ => {}
    }
    d
}

/// Every file under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn conforms() {
    let mut dirs = Vec::new();
    conformance::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path(), at(0)).unwrap();
        dirs.push(dir);
        async move { Box::new(store) as Box<dyn Store> }
    })
    .await;
}

#[tokio::test]
async fn one_store_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open(dir.path(), at(0)).unwrap();
    let err = FileStore::open(dir.path(), at(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(err.to_string().contains(&dir.path().join("deeplo.lock").display().to_string()), "{err}");
    drop(first);
    FileStore::open(dir.path(), at(0)).unwrap();
}

/// The lock holds across processes too: a child process (this test binary, running the
/// ignored test below) is refused while this one holds the store.
#[test]
fn another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = FileStore::open(dir.path(), at(0)).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "open_from_a_child_process", "--ignored", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(stdout.contains(&format!("locked by another deeplo process (pid {})", std::process::id())), "{stdout}");
}

const CHILD_DIR: &str = "DEEPLO_TEST_CHILD_DATA_DIR";

#[test]
#[ignore = "run by another_process_is_refused in a child process"]
fn open_from_a_child_process() {
    let dir = std::env::var_os(CHILD_DIR).expect("run by another_process_is_refused");
    let err = FileStore::open(Path::new(&dir), at(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    println!("{err}");
}

#[tokio::test]
async fn creates_a_private_tree_in_the_go_layout() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let store = FileStore::open(&data, at(0)).unwrap();
    assert_eq!(store.data_dir(), data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
    let r = record("web", "h1", 0, DeployStatus::Succeeded);
    store.save(&r).await.unwrap();
    store.append_log(&r.id, b"hello\n").await.unwrap();
    store.set_cursor("https://example.com/app.git main", &r.commit).await.unwrap();
    store.save_document("applied_config", &json!({})).await.unwrap();
    let files = tree(&data);
    let id = r.id.as_str();
    for want in [
        "deeplo.lock".to_owned(),
        format!("history/runs/{id}.json"),
        format!("runs/{id}.log"),
        "state/applied_config.json".to_owned(),
        "state/last_success.json".to_owned(),
        "state/projects.json".to_owned(),
    ] {
        assert!(files.contains(&want), "{want} in {files:?}");
    }
    assert_eq!(files.iter().filter(|f| f.starts_with("state/poll/")).count(), 1, "{files:?}");
    let projects: serde_json::Value =
        serde_json::from_slice(&fs::read(data.join("state/projects.json")).unwrap()).unwrap();
    assert_eq!(projects["h1/web"]["id"], id, "keyed host/project as the Go tool does");
}

#[tokio::test]
async fn reopening_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (record("web", "h1", 0, DeployStatus::Succeeded), record("web", "h1", 10, DeployStatus::Failed));
    {
        let store = FileStore::open(dir.path(), at(0)).unwrap();
        store.save(&good).await.unwrap();
        store.save(&bad).await.unwrap();
        store.append_log(&bad.id, b"log").await.unwrap();
        store.set_cursor("k", &good.commit).await.unwrap();
        store.save_document("observed", &json!([1, 2])).await.unwrap();
    }
    let store = FileStore::open(dir.path(), at(100)).unwrap();
    assert!(store.problems().is_empty(), "{:?}", store.problems());
    assert!(store.interrupted_at_open().is_empty());
    let p = pair("web", "h1");
    assert_eq!(store.latest(&p).await.unwrap(), Some(bad.clone()));
    assert_eq!(store.last_success(&p).await.unwrap(), Some(good.clone()));
    assert_eq!(store.history(&HistoryQuery::default()).await.unwrap(), vec![bad.clone(), good.clone()]);
    assert_eq!(store.read_log(&bad.id).await.unwrap(), Some(b"log".to_vec()));
    assert_eq!(store.cursor("k").await.unwrap(), Some(good.commit.clone()));
    assert_eq!(store.load_document("observed").await.unwrap(), Some(json!([1, 2])));
}

#[tokio::test]
async fn runs_of_an_earlier_process_are_interrupted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let running = record("web", "h1", 0, DeployStatus::Running);
    let pending = record("web", "h2", 1, DeployStatus::Pending);
    let done = record("api", "h1", 2, DeployStatus::Succeeded);
    {
        let store = FileStore::open(dir.path(), at(0)).unwrap();
        for r in [&running, &pending, &done] {
            store.save(r).await.unwrap();
        }
    }
    let store = FileStore::open(dir.path(), at(50)).unwrap();
    let mut ids: Vec<_> = store.interrupted_at_open().iter().map(|r| r.id.clone()).collect();
    ids.sort();
    let mut want = vec![running.id.clone(), pending.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    for r in store.interrupted_at_open() {
        let saved = store.get(&r.id).await.unwrap().unwrap();
        assert_eq!(
            (saved.status, saved.error.as_deref(), saved.finished_at),
            (DeployStatus::Failed, Some("interrupted"), Some(at(50)))
        );
    }
    drop(store);
    let store = FileStore::open(dir.path(), at(60)).unwrap();
    assert!(store.interrupted_at_open().is_empty(), "the marks were saved");
}

#[tokio::test]
async fn reads_the_go_tools_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let go = |id: &str, status: &str, started: &str| {
        json!({
            "id": id, "project": "site", "host": "web-1", "commit_sha": "ab".repeat(20), "branch": "main",
            "status": status, "trigger_source": "poll", "started_at": started,
            "completed_at": "2024-03-01T10:05:00.5+01:00", "report_token": "ghs_do_not_keep"
        })
    };
    let old = go("1709283600-0000000a", "success", "2024-03-01T10:00:00+01:00");
    let newest = go("1709287200-0000000b", "running", "2024-03-01T11:00:00+01:00");
    fs::create_dir_all(dir.path().join("history/runs")).unwrap();
    fs::create_dir_all(dir.path().join("state/poll/app")).unwrap();
    fs::write(dir.path().join("history/runs/1709283600-0000000a.json"), serde_json::to_vec_pretty(&old).unwrap())
        .unwrap();
    // The Go tool's log retention removed the newest run file; projects.json still has it.
    fs::write(dir.path().join("state/projects.json"), serde_json::to_vec(&json!({"web-1/site": newest})).unwrap())
        .unwrap();
    fs::write(dir.path().join("state/poll/app/main.json"), br#"{"repo":"app","branch":"main"}"#).unwrap();

    let store = FileStore::open(dir.path(), at(0)).unwrap();
    assert!(store.problems().is_empty(), "{:?}", store.problems());
    let p = pair("site", "web-1");
    let last = store.last_success(&p).await.unwrap().unwrap();
    assert_eq!(last.id.as_str(), "1709283600-0000000a");
    assert_eq!(last.created_at, "2024-03-01T09:00:00Z".parse::<Timestamp>().unwrap());
    assert_eq!((last.trigger, last.commit.as_str()), (Trigger::Poll, "ab".repeat(20).as_str()));
    let interrupted = store.interrupted_at_open();
    assert_eq!(interrupted.len(), 1, "the Go run left running is interrupted");
    assert_eq!(store.latest(&p).await.unwrap().as_ref(), Some(&interrupted[0]));
    let rewritten = fs::read_to_string(dir.path().join("history/runs/1709287200-0000000b.json")).unwrap();
    assert!(rewritten.contains("\"created_at\"") && !rewritten.contains("ghs_do_not_keep"), "{rewritten}");
    assert_eq!(store.history(&HistoryQuery::default()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_broken_record_names_its_file_and_spares_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let fine = record("web", "h1", 0, DeployStatus::Succeeded);
    let broken_id = RunId::parse("1700000005-0badf00d").unwrap();
    let misnamed_id = RunId::parse("1700000006-00000001").unwrap();
    {
        let store = FileStore::open(dir.path(), at(0)).unwrap();
        store.save(&fine).await.unwrap();
        store.append_log(&broken_id, b"keep me").await.unwrap();
    }
    let runs = dir.path().join("history/runs");
    fs::write(runs.join(format!("{broken_id}.json")), b"{\"id\": ").unwrap();
    fs::copy(runs.join(format!("{}.json", fine.id)), runs.join(format!("{misnamed_id}.json"))).unwrap();
    fs::write(runs.join("not-a-run.json"), b"{}").unwrap();
    fs::write(dir.path().join("state/last_success.json"), b"garbage").unwrap();

    let store = FileStore::open(dir.path(), at(0)).unwrap();
    assert_eq!(store.get(&fine.id).await.unwrap(), Some(fine.clone()), "the others load");
    assert_eq!(store.last_success(&pair("web", "h1")).await.unwrap(), Some(fine.clone()), "rebuilt from the runs");
    let err = store.get(&broken_id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains(&format!("history/runs/{broken_id}.json")), "{err}");
    let err = store.get(&misnamed_id).await.unwrap_err();
    assert!(err.to_string().contains("is named for run"), "{err}");
    let problems: Vec<String> = store.problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems.iter().all(|p| p.contains(&dir.path().display().to_string())), "{problems:#?}");
    assert!(tree(dir.path()).iter().any(|f| f.starts_with("state/last_success.json.corrupt-")), "moved aside");
    store.prune(at(10_000)).await.unwrap();
    assert_eq!(store.read_log(&broken_id).await.unwrap(), Some(b"keep me".to_vec()), "its log is kept");
}

#[tokio::test]
async fn hostile_names_stay_inside_the_data_directory() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let store = FileStore::open(&data, at(0)).unwrap();
    for name in ["../escape", "../../escape", "/tmp/escape", "state/x", "projects", "last_success"] {
        let err = store.save_document(name, &json!(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
    }
    let commit = CommitId::new("d".repeat(40)).unwrap();
    for key in ["../../escape", "../../../tmp/escape.json", "/etc/passwd", "a/../../b"] {
        store.set_cursor(key, &commit).await.unwrap();
        assert_eq!(store.cursor(key).await.unwrap(), Some(commit.clone()));
    }
    for bad in ["../1700000000-deadbeef", "1700000000-deadbeef/..", "..", "/etc/passwd"] {
        assert!(RunId::parse(bad).is_err(), "{bad} is not a run id, so it never reaches the store");
    }
    let outside: Vec<_> = fs::read_dir(parent.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("data")], "nothing was written beside the data directory");
    let poll = tree(&data.join("state/poll"));
    assert_eq!(poll.len(), 4);
    assert!(poll.iter().all(|f| f.len() == 69 && !f.contains('/')), "{poll:?}");
}
