//! `deeplo orgs|users|tokens|audit` as the machine's root: the first admin and their token
//! are made through a running daemon's admin socket and on the store directly, every change
//! lands in the audit log as root, and a token's text is shown once and stored nowhere.

use deeplo_testbed::daemon::DaemonProcess;
use deeplo_testbed::scenario::Scenario;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", said(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(d: &DaemonProcess, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&ok(d.cli(&args))).unwrap()
}

#[test]
fn the_first_admin_and_their_token_are_made_by_root_and_audited() {
    let s = Scenario::new("accounts-cli").unwrap();
    let mut d = DaemonProcess::start(BIN.as_ref(), &s, &s.config_yaml(""), &[]).unwrap();

    let added = ok(d.cli(&["users", "add", "Ada@Example.com", "--org", "acme", "--role", "admin"]));
    assert!(added.contains("Added ada@example.com to acme as admin"), "{added}");
    ok(d.cli(&["users", "add", "bob@example.com", "--org", "acme", "--role", "developer"]));
    let changed = ok(d.cli(&["users", "role", "bob@example.com", "manager", "--org", "acme"]));
    assert!(changed.contains("now manager in acme (was developer)"), "{changed}");
    let bad_role = d.cli(&["users", "add", "eve@example.com", "--org", "acme", "--role", "owner"]);
    assert!(!bad_role.status.success() && said(&bad_role).contains("unknown role \"owner\""), "{}", said(&bad_role));
    let bad_email = d.cli(&["users", "add", "not-an-address", "--org", "acme", "--role", "viewer"]);
    assert!(!bad_email.status.success() && said(&bad_email).contains("has no '@'"), "{}", said(&bad_email));
    let not_member = d.cli(&["users", "remove", "eve@example.com", "--org", "acme"]);
    assert!(
        !not_member.status.success() && said(&not_member).contains("not a member of acme"),
        "{}",
        said(&not_member)
    );

    let orgs = json(&d, &["orgs", "list"]);
    let names: Vec<&str> = orgs.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme", "default"], "the directory's org and the config's: {orgs}");
    assert_eq!(orgs[0]["members"], 2);
    assert_eq!(orgs[1]["projects"], 1);

    // The token: on stdout alone, once.
    let created = d.cli(&["tokens", "create", "--user", "ada@example.com", "--name", "ci", "--expires", "90d"]);
    let token = ok(created.clone()).trim().to_owned();
    assert!(token.starts_with("dplu_") && token.len() == 48, "{token}");
    assert!(String::from_utf8_lossy(&created.stderr).contains("shown once"));
    let listed = json(&d, &["tokens", "list", "--user", "ada@example.com"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(&token[5..13], id);
    assert!(listed[0]["expires_at"].is_string());
    let table = ok(d.cli(&["tokens", "list"]));
    assert!(table.contains(&id) && table.contains("valid") && !table.contains(&token), "{table}");

    // Without the daemon the CLI works on the store itself.
    d.signal("TERM");
    let narrowed = ok(d.cli(&["tokens", "create", "--user", "bob@example.com", "--org", "acme", "--role", "viewer"]));
    assert!(narrowed.trim().starts_with("dplu_"));
    ok(d.cli(&["tokens", "revoke", &id]));
    let again = d.cli(&["tokens", "revoke", &id]);
    assert!(said(&again).contains(&format!("no valid token {id}")), "{}", said(&again));
    assert_eq!(again.status.code(), Some(5), "not found");
    ok(d.cli(&["users", "remove", "bob@example.com", "--org", "acme"]));

    let audit = json(&d, &["audit", "--org", "acme"]);
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["outcome"]["result"].as_str().unwrap().to_owned()))
        .collect();
    let want = [
        ("manage_members", "ok"),
        ("manage_members", "ok"),
        ("manage_members", "ok"),
        ("manage_members", "failed"),
        ("create_token", "ok"),
        ("manage_members", "ok"),
    ];
    assert_eq!(actions, want.map(|(a, o)| (a.to_owned(), o.to_owned())), "{audit:#}");
    assert!(audit.as_array().unwrap().iter().all(|e| e["actor"]["kind"] == "root"), "{audit:#}");
    let all = ok(d.cli(&["audit"]));
    assert!(all.contains("revoke_token") && all.contains(&format!("token {id}")), "{all}");

    for secret in [&token[5..], narrowed.trim().get(5..).unwrap()] {
        assert_eq!(deeplo_testbed::file_holding(s.tmp.path(), secret), None, "a token is on disk");
        assert!(!d.log().contains(secret), "a token is in the daemon's log");
    }
}
