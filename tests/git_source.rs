//! The git mirror source against real repositories: local paths, `file://`, and `ssh://`
//! served by a real sshd on 127.0.0.1.

use deeplo_core::config::Repo;
use deeplo_core::git::GitAuth;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::{CommitId, RepoName};
use deeplo_core::path::RelPath;
use deeplo_core::{BundleRequest, EntryKind, ErrorKind, GitSource, Source};
use deeplo_testbed::{GitRepo, Sshd, SshdOptions};

fn repo_entry(url: &str) -> Repo {
    Repo::new(RepoName::new("app").unwrap(), url)
}

fn source(dir: &std::path::Path, policy: HostKeyPolicy, key: Option<std::path::PathBuf>) -> GitSource {
    GitSource::new(
        dir.join("repos"),
        GitAuth {
            private_key: key,
            passphrase: None,
            known_hosts: KnownHosts::new(dir.join("known_hosts"), policy),
            https_token: None,
        },
    )
}

fn id(s: &str) -> CommitId {
    CommitId::new(s).unwrap()
}

fn rel(p: &str) -> RelPath {
    RelPath::new(p).unwrap()
}

/// A repository with a project under `deploy/`.
fn project_repo(dir: &std::path::Path) -> (GitRepo, String) {
    let repo = GitRepo::init(&dir.join("work"), "main").unwrap();
    repo.write("deploy/compose.yml", "services: {}\n").unwrap();
    repo.write("deploy/conf/a.conf", "a\n").unwrap();
    repo.write("deploy/conf/nested/b.conf", "b\n").unwrap();
    repo.write("deploy/run.sh", "#!/bin/sh\necho hi\n").unwrap();
    repo.write("outside.txt", "not shipped\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(repo.path().join("deploy/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("conf/a.conf", repo.path().join("deploy/link.conf")).unwrap();
    let first = repo.commit("first").unwrap();
    (repo, first)
}

#[tokio::test]
async fn head_fetch_diff_ancestry_and_resolve_over_a_local_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, first) = project_repo(tmp.path());
    let src = source(tmp.path(), HostKeyPolicy::AcceptNew, None);
    let repo = repo_entry(work.path().to_str().unwrap());

    // head is an ls-remote: the mirror gets no objects.
    assert_eq!(src.head(&repo).await.unwrap(), id(&first));
    let mirror = git2::Repository::open_bare(src.mirror_path(&repo.url)).unwrap();
    assert!(mirror.find_commit(git2::Oid::from_str(&first).unwrap()).is_err(), "head fetched objects");

    assert_eq!(src.fetch(&repo, None).await.unwrap(), id(&first));

    work.write("deploy/compose.yml", "services: {web: {image: x}}\n").unwrap();
    work.git(&["mv", "deploy/conf/a.conf", "deploy/conf/renamed.conf"]).unwrap();
    work.remove("outside.txt").unwrap();
    let second = work.commit("second").unwrap();
    assert_eq!(src.fetch(&repo, Some(&id(&second))).await.unwrap(), id(&second));

    let changed = src.changed_paths(&repo, &id(&first), &id(&second)).await.unwrap();
    assert_eq!(changed, ["deploy/compose.yml", "deploy/conf/a.conf", "deploy/conf/renamed.conf", "outside.txt"]);

    assert!(src.is_ancestor(&repo, &id(&first), &id(&second)).await.unwrap());
    assert!(!src.is_ancestor(&repo, &id(&second), &id(&first)).await.unwrap());
    assert!(src.is_ancestor(&repo, &id(&second), &id(&second)).await.unwrap());

    assert_eq!(src.resolve(&repo, &second[..7]).await.unwrap(), id(&second));
    assert_eq!(src.resolve(&repo, "main").await.unwrap(), id(&second));
    assert_eq!(src.resolve(&repo, "nope").await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(src.resolve(&repo, "--upload-pack=x").await.unwrap_err().kind(), ErrorKind::InvalidInput);

    // A commit already in the mirror needs no network: the remote may even be gone.
    std::fs::rename(work.path(), tmp.path().join("gone")).unwrap();
    assert_eq!(src.fetch(&repo, Some(&id(&first))).await.unwrap(), id(&first));
    let err = src.fetch(&repo, None).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn bundles_keep_modes_and_symlinks_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, first) = project_repo(tmp.path());
    let src = source(tmp.path(), HostKeyPolicy::AcceptNew, None);
    let repo = repo_entry(&format!("file://{}", work.path().display()));
    src.fetch(&repo, None).await.unwrap();
    let subdir = rel("deploy");
    let required = [rel("compose.yml")];
    let extra = [rel("conf"), rel("run.sh"), rel("link.conf")];
    let bundle = src
        .bundle(&repo, &id(&first), BundleRequest { subdir: &subdir, required: &required, extra: &extra })
        .await
        .unwrap();
    let paths: Vec<&str> = bundle.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["compose.yml", "conf/a.conf", "conf/nested/b.conf", "link.conf", "run.sh"]);
    assert!(matches!(&bundle.get("run.sh").unwrap().kind, EntryKind::File { executable: true, .. }));
    assert!(
        matches!(&bundle.get("compose.yml").unwrap().kind, EntryKind::File { executable: false, data } if &data[..] == b"services: {}\n")
    );
    assert_eq!(bundle.get("link.conf").unwrap().kind, EntryKind::Symlink { target: "conf/a.conf".into() });

    let missing = [rel("nope.yml")];
    let err = src
        .bundle(&repo, &id(&first), BundleRequest { subdir: &subdir, required: &missing, extra: &[] })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.message(), format!("deploy/nope.yml not found at {}", &first[..8]));
}

#[tokio::test]
async fn a_symlink_out_of_the_project_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let work = GitRepo::init(&tmp.path().join("work"), "main").unwrap();
    work.write("deploy/compose.yml", "services: {}\n").unwrap();
    std::os::unix::fs::symlink("../../etc/passwd", work.path().join("deploy/evil")).unwrap();
    let sha = work.commit("evil").unwrap();
    let src = source(tmp.path(), HostKeyPolicy::AcceptNew, None);
    let repo = repo_entry(work.path().to_str().unwrap());
    src.fetch(&repo, None).await.unwrap();
    let subdir = rel("deploy");
    let err = src
        .bundle(
            &repo,
            &id(&sha),
            BundleRequest { subdir: &subdir, required: &[rel("compose.yml")], extra: &[rel("evil")] },
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("symlink evil points to \"../../etc/passwd\""), "{err}");
}

#[tokio::test]
async fn ssh_remote_with_host_key_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, first) = project_repo(tmp.path());
    let bare = tmp.path().join("served.git");
    deeplo_testbed::run(std::process::Command::new("git").args(["clone", "-q", "--bare"]).arg(work.path()).arg(&bare))
        .unwrap();

    let mut sshd = Sshd::start().unwrap();
    let port = sshd.port();
    let url = format!("ssh://{}@127.0.0.1:{port}{}", sshd.user(), bare.display());
    let repo = repo_entry(&url);

    // strict with nothing known: refused before any data moves.
    let strict = source(&tmp.path().join("strict"), HostKeyPolicy::Strict, Some(sshd.client_key()));
    let err = strict.head(&repo).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");

    // accept-new learns the key, then works as usual.
    let state = tmp.path().join("accept");
    let src = source(&state, HostKeyPolicy::AcceptNew, Some(sshd.client_key()));
    assert_eq!(src.head(&repo).await.unwrap(), id(&first));
    assert_eq!(src.fetch(&repo, None).await.unwrap(), id(&first));
    let known = std::fs::read_to_string(state.join("known_hosts")).unwrap();
    assert!(known.starts_with(&format!("[127.0.0.1]:{port} ")), "{known}");

    // The same address with a new host key is refused, naming the file to edit.
    let key = sshd.client_key();
    let key_copy = tmp.path().join("client_key");
    std::fs::copy(&key, &key_copy).unwrap();
    let client_pub = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    sshd.stop();
    let _imposter =
        Sshd::start_with(SshdOptions { port: Some(port), authorized_keys: vec![client_pub], ..Default::default() })
            .unwrap();
    let src = source(&state, HostKeyPolicy::AcceptNew, Some(key_copy));
    let err = src.head(&repo).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");
    assert!(err.to_string().contains(&state.join("known_hosts").display().to_string()), "{err}");
    assert_eq!(std::fs::read_to_string(state.join("known_hosts")).unwrap(), known, "a changed key was recorded");
}
