//! The native install and the verbs around it, for real: `scripts/install` into a scratch
//! root (accounts in its own /etc), `uninstall`, `update`, `env check|edit`, `config edit`
//! with an `$EDITOR` that is a script, `health` without a daemon, and the `service` verbs
//! where systemd does not run.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs `deeplo ARGS` with `env`, `stdin` as its input, and no env file or daemon of this
/// machine in sight.
fn deeplo(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("DEEPLO_ENV_FILE", dir.join("no-env-file"))
        .env("DEEPLO_UNIX_SOCKET", dir.join("no-daemon.sock"))
        .env("DEEPLO_CONFIG_FILE", dir.join("no-config.yml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn install(root: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("scripts/install"))
        .args(["--root", root.to_str().unwrap(), "--bin", BIN])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A path's type and mode, owner and group, size, modification time (s, ns) and contents.
type Entry = (u32, u32, u32, u64, i64, i64, Vec<u8>);

/// Every path under `root`, as an [`Entry`].
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let contents = if m.is_file() { std::fs::read(&path).unwrap() } else { Vec::new() };
            out.insert(path.clone(), (m.mode(), m.uid(), m.gid(), m.size(), m.mtime(), m.mtime_nsec(), contents));
            if m.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

fn field(root: &Path, file: &str, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(root.join("etc").join(file)).ok()?;
    text.lines().map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>()).find(|f| f[0] == name)
}

#[test]
fn install_twice_then_uninstall_then_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("usr/share/bash-completion/completions")).unwrap();

    let first = install(&root, &[]);
    assert!(first.status.success(), "{}", text(&first));
    let user = field(&root, "passwd", "deeplo").expect("the deeplo user in the root's passwd");
    let group = field(&root, "group", "deeplo").expect("the deeplo group");
    assert_eq!(user[3], group[2], "the user's primary group is deeplo");
    assert_eq!(user[6], "/usr/sbin/nologin");
    let (uid, gid): (u32, u32) = (user[2].parse().unwrap(), group[2].parse().unwrap());

    let mode = |p: &str| {
        let m = std::fs::metadata(root.join(p)).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    };
    assert_eq!(mode("usr/local/bin/deeplo"), (0o755, 0, 0));
    assert_eq!(mode("etc/deeplo"), (0o755, 0, 0));
    assert_eq!(mode("etc/deeplo/keys"), (0o750, 0, gid));
    assert_eq!(mode("etc/deeplo/keys/deploy_key"), (0o640, 0, gid), "the daemon's group reads the key");
    assert_eq!(mode("etc/deeplo/keys/deploy_key.pub").0, 0o644);
    assert_eq!(mode("var/lib/deeplo"), (0o700, uid, gid));
    assert_eq!(mode("etc/deeplo/config.yml"), (0o644, 0, 0));
    assert_eq!(mode("etc/deeplo/deeplo.env"), (0o644, 0, 0));
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/deeplo.service")).unwrap();
    assert_eq!(unit, std::fs::read_to_string(repo_root().join("dist/systemd/deeplo.service")).unwrap());
    let completion = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/deeplo")).unwrap();
    assert!(completion.contains("deeplo"), "{completion}");
    assert!(!root.join("usr/share/zsh").exists(), "completions only where the shell keeps them");
    assert!(std::fs::read_to_string(root.join("etc/deeplo/keys/deploy_key")).unwrap().contains("OPENSSH PRIVATE KEY"));

    // The installed env file passes its own check, for the installed service user.
    let env_file = root.join("etc/deeplo/deeplo.env");
    let out = deeplo(tmp.path(), &["env", "check"], &[("DEEPLO_ENV_FILE", env_file.to_str().unwrap())], "");
    // The key path in the file is the real /etc/deeplo one, absent on this machine: named.
    assert!(text(&out).contains("DEEPLO_SSH_PRIVATE_KEY_FILE"), "{}", text(&out));

    // A second run changes nothing at all; what an operator changed is kept.
    std::fs::write(root.join("etc/deeplo/config.yml"), "# mine\n").unwrap();
    std::fs::write(root.join("etc/deeplo/deeplo.env"), "DEEPLO_SSH_USER=ops\n").unwrap();
    let before = snapshot(&root);
    let second = install(&root, &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("nothing to change"), "{}", text(&second));
    let after = snapshot(&root);
    let changed: Vec<&PathBuf> =
        after.keys().chain(before.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
    assert!(changed.is_empty(), "the second install changed {changed:?}");

    // Uninstall, answering nothing (end of input is no): config, data and user stay.
    let out = deeplo(tmp.path(), &["uninstall", "--root", root.to_str().unwrap()], &[], "");
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("Also remove config, data, and the deeplo user and group? [y/N]"), "{said}");
    assert!(said.contains("Config and data preserved"), "{said}");
    assert!(!root.join("usr/local/bin/deeplo").exists());
    assert!(!root.join("etc/systemd/system/deeplo.service").exists());
    assert!(!root.join("usr/share/bash-completion/completions/deeplo").exists());
    assert_eq!(std::fs::read_to_string(root.join("etc/deeplo/config.yml")).unwrap(), "# mine\n");
    assert!(root.join("etc/deeplo/keys/deploy_key").exists());
    assert!(root.join("var/lib/deeplo").is_dir());
    assert!(field(&root, "passwd", "deeplo").is_some());

    // Installing again finds the key and config it left, and keeps them.
    let key = std::fs::read(root.join("etc/deeplo/keys/deploy_key")).unwrap();
    assert!(install(&root, &[]).status.success());
    assert_eq!(std::fs::read(root.join("etc/deeplo/keys/deploy_key")).unwrap(), key, "an existing key is kept");
    assert_eq!(std::fs::read_to_string(root.join("etc/deeplo/config.yml")).unwrap(), "# mine\n");

    let out = deeplo(tmp.path(), &["uninstall", "--purge", "--root", root.to_str().unwrap()], &[], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deeplo fully purged."), "{}", text(&out));
    assert!(!root.join("etc/deeplo").exists());
    assert!(!root.join("var/lib/deeplo").exists());
    assert!(field(&root, "passwd", "deeplo").is_none(), "the user is gone");
    assert!(field(&root, "group", "deeplo").is_none(), "the group is gone");

    // A yes to the question purges as well.
    assert!(install(&root, &[]).status.success());
    let out = deeplo(tmp.path(), &["uninstall", "--root", root.to_str().unwrap()], &[], "y\n");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!root.join("etc/deeplo").exists() && field(&root, "passwd", "deeplo").is_none(), "{}", text(&out));
}

#[test]
fn install_refuses_what_is_not_a_deeplo_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/install"))
        .args(["--root", tmp.path().join("r").to_str().unwrap(), "--bin", "/bin/true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("is not a deeplo binary"), "{}", text(&out));
    assert!(!tmp.path().join("r/etc/passwd").exists(), "nothing was laid out");
    let out =
        Command::new("bash").arg(repo_root().join("scripts/install")).args(["--version", "v1.2.3"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot be downloaded"), "{}", text(&out));
}

#[test]
fn update_swaps_the_binary_only_for_one_that_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    assert!(install(&root, &[]).status.success());
    let installed = root.join("usr/local/bin/deeplo");
    let r = root.to_str().unwrap();
    let update = |from: &str, extra: &[&str]| {
        let mut args = vec!["update", "--root", r, "--from", from];
        args.extend_from_slice(extra);
        deeplo(tmp.path(), &args, &[], "")
    };

    // Without --from it says how to get a binary, and fails.
    let out = deeplo(tmp.path(), &["update", "--root", r], &[], "");
    assert!(!out.status.success());
    assert!(text(&out).contains("cargo build --release -p deeplo-cli"), "{}", text(&out));

    // Not a deeplo binary, not a file, not executable: refused, nothing touched.
    let before = std::fs::read(&installed).unwrap();
    let script = tmp.path().join("not-deeplo");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plain = tmp.path().join("plain");
    std::fs::write(&plain, "data").unwrap();
    for (from, says) in [
        (script.to_str().unwrap(), "is not a deeplo binary"),
        ("/nonexistent/deeplo", "cannot use /nonexistent/deeplo"),
        (plain.to_str().unwrap(), "does not run here"),
    ] {
        let out = update(from, &[]);
        assert!(!out.status.success(), "{from}: {}", text(&out));
        assert!(text(&out).contains(says), "{from}: {}", text(&out));
        assert_eq!(std::fs::read(&installed).unwrap(), before);
    }

    // The same binary again is already installed.
    let out = update(BIN, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is already installed"), "{}", text(&out));

    // Another build (here: the same program with bytes after its end) goes in.
    let newer = tmp.path().join("deeplo-new");
    let mut bytes = std::fs::read(BIN).unwrap();
    bytes.extend_from_slice(b"another build");
    std::fs::write(&newer, &bytes).unwrap();
    std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = update(newer.to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deeplo updated to"), "{}", text(&out));
    assert_eq!(std::fs::read(&installed).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&installed).unwrap().mode() & 0o7777, 0o755);
    assert!(!root.join("usr/local/bin/deeplo.old").exists(), "the old binary goes once the new one runs");
    assert!(!root.join("usr/local/bin/.deeplo.new").exists());
    let out = Command::new(&installed).arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("deeplo "));

    // --force reinstalls the same file.
    let out = update(newer.to_str().unwrap(), &["--force"]);
    assert!(out.status.success() && text(&out).contains("deeplo updated to"), "{}", text(&out));
}

#[test]
fn env_check_names_each_bad_value_and_unreadable_file() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("deploy_key");
    std::fs::write(&key, "secret").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let readable = tmp.path().join("token");
    std::fs::write(&readable, "t").unwrap();
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env_file = tmp.path().join("deeplo.env");
    let check = |contents: &str| {
        std::fs::write(&env_file, contents).unwrap();
        deeplo(
            tmp.path(),
            &["env", "check", "--service-user", "nobody"],
            &[("DEEPLO_ENV_FILE", env_file.to_str().unwrap())],
            "",
        )
    };

    let good = format!(
        "# settings\nDEEPLO_HTTP_PORT=8480\nDEEPLO_SSH_USER=ops\nDEEPLO_GITHUB_TOKEN_FILE={}\n",
        readable.display()
    );
    let out = check(&good);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("Env OK: {}", env_file.display()));

    let bad = format!(
        "DEEPLO_HTTP_PORT=99999\nDEEPLO_LOG_LEVEL=loud\nDEEPLO_SSH_PRIVATE_KEY_FILE={}\n\
         DEEPLO_GITHUB_WEBHOOK_SECRET_FILE={}/missing\nDEEPLO_SSH_USR=x\nnot a setting\n",
        key.display(),
        tmp.path().display()
    );
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    for line in [
        "ERROR  DEEPLO_HTTP_PORT ",
        "ERROR  DEEPLO_LOG_LEVEL ",
        "ERROR  DEEPLO_GITHUB_WEBHOOK_SECRET_FILE ",
        "ERROR  line 6 ",
        "WARN   DEEPLO_SSH_USR ",
    ] {
        assert!(said.contains(line), "{line:?} missing in:\n{said}");
    }
    assert!(said.contains(&format!("{} is not readable by the nobody service user", key.display())), "{said}");
    assert!(said.contains(&format!("Env INVALID: 5 error(s) in {}", env_file.display())), "{said}");

    let json = deeplo(
        tmp.path(),
        &["env", "check", "--service-user", "nobody", "-o", "json"],
        &[("DEEPLO_ENV_FILE", env_file.to_str().unwrap())],
        "",
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["errors"].as_array().unwrap().len(), 5, "{report}");

    let missing = tmp.path().join("absent.env");
    let out = deeplo(tmp.path(), &["env", "check"], &[("DEEPLO_ENV_FILE", missing.to_str().unwrap())], "");
    assert!(!out.status.success());
    assert!(text(&out).contains(&format!("env file not found: {}", missing.display())), "{}", text(&out));
    let out = deeplo(tmp.path(), &["env", "path"], &[("DEEPLO_ENV_FILE", missing.to_str().unwrap())], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), missing.display().to_string());
}

/// An `$EDITOR` that writes its Nth version of the file (its last argument) on its Nth run,
/// and keeps its arguments in `args`.
fn scripted_editor(dir: &Path, versions: &[&str]) -> PathBuf {
    for (i, v) in versions.iter().enumerate() {
        std::fs::write(dir.join(format!("version-{}", i + 1)), v).unwrap();
    }
    let editor = dir.join("editor");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nn=$(( $(cat {d}/runs 2>/dev/null || echo 0) + 1 ))\necho $n > {d}/runs\n\
             echo \"$*\" > {d}/args\nfor file; do :; done\ncp {d}/version-$n \"$file\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    editor
}

#[test]
fn config_edit_checks_and_reopens_until_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.yml");
    let valid = "hosts:\n  - name: web-1\n    address: 127.0.0.1\n    deploy_dir: /srv\nrepos:\n  - name: app\n    url: https://example.com/app.git\n    branch: main\nprojects:\n  - name: app\n    repo: app\n    repo_subdir: .\n    targets: [web-1]\n";
    std::fs::write(&config, valid).unwrap();
    let editor = scripted_editor(tmp.path(), &["hosts: [\n", valid]);
    let env = [("EDITOR", editor.to_str().unwrap()), ("VISUAL", ""), ("DEEPLO_CONFIG_FILE", config.to_str().unwrap())];

    let out = deeplo(tmp.path(), &["config", "edit"], &env, "y\n");
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.matches("Opening ").count(), 2, "reopened once:\n{said}");
    assert!(said.contains("Config INVALID"), "{said}");
    assert!(said.contains("is invalid. Reopen it? [Y/n]"), "{said}");
    assert!(said.contains("Config OK:"), "{said}");
    assert!(said.contains("deeplo config reload"), "{said}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), valid);

    // Declining leaves the file as the editor left it, and fails.
    std::fs::remove_file(tmp.path().join("runs")).unwrap();
    let out = deeplo(tmp.path(), &["config", "edit"], &env, "n\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "hosts: [\n");

    // An editor given with arguments runs as the shell would run it.
    std::fs::write(tmp.path().join("runs"), "1\n").unwrap();
    let with_args = format!("{} --wait", editor.display());
    let env = [("EDITOR", with_args.as_str()), ("VISUAL", ""), ("DEEPLO_CONFIG_FILE", config.to_str().unwrap())];
    let out = deeplo(tmp.path(), &["config", "edit"], &env, "");
    assert!(out.status.success(), "{}", text(&out));
    let args = std::fs::read_to_string(tmp.path().join("args")).unwrap();
    assert_eq!(args.trim(), format!("--wait {}", config.display()));

    let missing = tmp.path().join("nope.yml");
    let out = deeplo(tmp.path(), &["config", "edit"], &[("DEEPLO_CONFIG_FILE", missing.to_str().unwrap())], "");
    assert!(text(&out).contains(&format!("config file not found: {}", missing.display())), "{}", text(&out));
}

#[test]
fn env_edit_opens_the_env_file_and_checks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let env_file = tmp.path().join("deeplo.env");
    std::fs::write(&env_file, "DEEPLO_HTTP_PORT=8470\n").unwrap();
    let editor = scripted_editor(tmp.path(), &["DEEPLO_HTTP_PORT=eighty\n", "DEEPLO_HTTP_PORT=8480\n"]);
    let env = [("VISUAL", editor.to_str().unwrap()), ("DEEPLO_ENV_FILE", env_file.to_str().unwrap())];
    let out = deeplo(tmp.path(), &["env", "edit"], &env, "\n");
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("ERROR  DEEPLO_HTTP_PORT"), "{said}");
    assert!(said.contains(&format!("Env OK: {}", env_file.display())), "{said}");
    assert!(said.contains("deeplo service restart"), "{said}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), "DEEPLO_HTTP_PORT=8480\n");
}

#[test]
fn health_fails_without_a_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let out = deeplo(tmp.path(), &["health"], &[], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Daemon:   unreachable"), "{}", text(&out));
    assert!(text(&out).contains("deeplo daemon is not reachable"), "{}", text(&out));
    // A socket file nobody answers on (a daemon that died) is no better.
    let stale = tmp.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = deeplo(tmp.path(), &["health", "-o", "json"], &[("DEEPLO_UNIX_SOCKET", stale.to_str().unwrap())], "");
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reachable"], false);
    assert_eq!(report["socket_state"], "present");
}

#[test]
fn service_verbs_say_when_systemd_is_absent() {
    if Path::new("/run/systemd/system").exists() {
        return; // A machine run by systemd: the verbs act on the real unit, not tested here.
    }
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["service", "status"][..],
        &["service", "start"],
        &["service", "restart"],
        &["service", "enable", "--now"],
        &["service", "logs", "-f"],
    ] {
        let out = deeplo(tmp.path(), args, &[], "");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("systemd is not running on this machine"), "{args:?}: {}", text(&out));
    }
}
