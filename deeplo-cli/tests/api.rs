//! The HTTP API against the real daemon over real HTTP: every route, for each role, a
//! non-member, no token, an expired, a revoked and a narrowed token, each answer checked.
//! The table below must have a row for every route of `deeplo_cli::ROUTES`, so that a route
//! added without its row fails here.

use deeplo_testbed::daemon::DaemonProcess;
use deeplo_testbed::scenario::Scenario;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

fn ok(out: std::process::Output) -> String {
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn call(d: &DaemonProcess, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    d.api(method, path, token)
}

fn token(d: &DaemonProcess, args: &[&str]) -> String {
    let mut all = vec!["tokens", "create"];
    all.extend(args);
    ok(d.cli(&all)).trim().to_owned()
}

/// The lowest role each route needs, written out here (not read from the route table):
/// `None` for what every authenticated caller may do; then the status of a success and the
/// body sent (`{commit}` is the deployed commit).
const TABLE: &[(&str, &str, Option<&str>, u16, &str)] = &[
    ("GET", "/api/v1/orgs", None, 200, ""),
    ("GET", "/api/v1/orgs/{org}", Some("viewer"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/servers", Some("viewer"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/projects", Some("viewer"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/deployments", Some("viewer"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/deployments/{id}", Some("viewer"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/deployments/{id}/log", Some("viewer"), 200, ""),
    ("POST", "/api/v1/orgs/{org}/projects/{project}/deploy", Some("developer"), 202, "{}"),
    ("POST", "/api/v1/orgs/{org}/projects/{project}/rollback", Some("developer"), 202, r#"{"to": "{commit}"}"#),
    (
        "POST",
        "/api/v1/orgs/{org}/projects/{project}/env",
        Some("manager"),
        200,
        r#"{"values": {"MATRIX": "m-value-5"}}"#,
    ),
    ("POST", "/api/v1/orgs/{org}/projects/{project}/env/unset", Some("manager"), 200, r#"{"names": ["MATRIX"]}"#),
    ("GET", "/api/v1/orgs/{org}/projects/{project}/env", Some("viewer"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/members", Some("admin"), 200, ""),
    ("POST", "/api/v1/orgs/{org}/members", Some("admin"), 200, r#"{"email": "new@example.com", "role": "viewer"}"#),
    ("DELETE", "/api/v1/orgs/{org}/members/{email}", Some("admin"), 200, ""),
    ("GET", "/api/v1/orgs/{org}/audit", Some("admin"), 200, ""),
    ("POST", "/api/v1/orgs/{org}/servers/{host}/token", Some("manager"), 200, "{}"),
    ("DELETE", "/api/v1/orgs/{org}/servers/{host}/token", Some("manager"), 200, ""),
    ("POST", "/api/v1/orgs/{org}/servers/{host}/decommission", Some("manager"), 200, "{}"),
];

const ROLES: [&str; 4] = ["viewer", "developer", "manager", "admin"];

#[test]
fn every_route_answers_every_kind_of_caller_as_the_roles_say() {
    let listed: Vec<(&str, &str)> = deeplo_cli::ROUTES.iter().map(|r| (r.method, r.path)).collect();
    let rows: Vec<(&str, &str)> = TABLE.iter().map(|(m, p, ..)| (*m, *p)).collect();
    assert_eq!(rows, listed, "every route has a row of TABLE, in order");
    for (route, (_, _, minimum, ..)) in deeplo_cli::ROUTES.iter().zip(TABLE) {
        assert_eq!(route.action.map(|a| a.minimum().as_str()), *minimum, "{}", route.path);
    }

    let s = Scenario::new("api-matrix").unwrap();
    let yaml = s.config_yaml("").replacen("    branch: main\n", "    branch: main\n    poll_interval: 1s\n", 1);
    let key = s.tmp.path().join("secrets.key").display().to_string();
    let d = DaemonProcess::start(BIN.as_ref(), &s, &yaml, &[("DEEPLO_SECRETS_KEY_FILE", &key)]).unwrap();
    let project = s.project.clone();
    ok(d.cli(&["deploy", &project]));
    let history: Value = serde_json::from_str(&ok(d.cli(&["deploys", "history", "-o", "json"]))).unwrap();
    let run = history[0]["id"].as_str().unwrap().to_owned();
    let commit = history[0]["commit"].as_str().unwrap().to_owned();

    let mut callers: Vec<(String, Option<String>, Option<&str>)> = Vec::new();
    for role in ROLES {
        let email = format!("{role}@example.com");
        ok(d.cli(&["users", "add", &email, "--org", "default", "--role", role]));
        callers.push((role.to_owned(), Some(token(&d, &["--user", &email])), Some(role)));
    }
    ok(d.cli(&["users", "add", "outsider@example.com", "--org", "other", "--role", "admin"]));
    callers.push(("non-member".into(), Some(token(&d, &["--user", "outsider@example.com"])), None));
    callers.push((
        "narrowed to another org".into(),
        Some(token(&d, &["--user", "admin@example.com", "--org", "other"])),
        None,
    ));
    let capped = token(&d, &["--user", "admin@example.com", "--role", "viewer"]);
    callers.push(("admin capped at viewer".into(), Some(capped), Some("viewer")));
    let revoked = token(&d, &["--user", "admin@example.com"]);
    let listed: Value = serde_json::from_str(&ok(d.cli(&["tokens", "list", "-o", "json"]))).unwrap();
    let id = listed.as_array().unwrap().iter().find(|t| revoked[5..13] == *t["id"].as_str().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(d.cli(&["tokens", "revoke", &id]));
    let expired = token(&d, &["--user", "admin@example.com", "--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let unauthenticated: [(&str, Option<String>); 4] = [
        ("no token", None),
        ("revoked", Some(revoked)),
        ("expired", Some(expired)),
        ("a stolen hash", Some("0".repeat(64))),
    ];

    let mut checked = 0;
    for (method, template, minimum, success, body) in TABLE {
        let path = template
            .replace("{org}", "default")
            .replace("{id}", &run)
            .replace("{project}", &project)
            .replace("{host}", "h1")
            .replace("{email}", "new@example.com");
        let body = body.replace("{commit}", &commit);
        for (who, bearer, role) in &callers {
            let (status, answer) = d.api_with(method, &path, bearer.as_deref(), &body);
            let want = match (role, minimum) {
                (_, None) => *success,
                (None, Some(_)) => 404,
                (Some(role), Some(min)) => {
                    let rank = |r: &str| ROLES.iter().position(|x| *x == r).unwrap();
                    if rank(role) >= rank(min) { *success } else { 403 }
                }
            };
            assert_eq!(status, want, "{method} {path} as {who}: {answer}");
            if status >= 400 {
                let error: Value =
                    serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{method} {path}: {answer}"));
                let code = error["error"]["code"].as_str().unwrap();
                assert_eq!(code, if status == 404 { "not_found" } else { "forbidden" }, "{answer}");
            }
            checked += 1;
        }
        for (who, bearer) in &unauthenticated {
            let (status, answer) = d.api_with(method, &path, bearer.as_deref(), &body);
            assert_eq!(status, 401, "{method} {path} with {who}: {answer}");
            assert!(answer.contains("\"code\":\"unauthenticated\""), "{answer}");
            checked += 1;
        }
    }
    eprintln!("{checked} answers checked");

    // The other org's view of the same resources is empty or not found, never the resource.
    let outsider = &callers[4].1;
    let (_, orgs) = call(&d, "GET", "/api/v1/orgs", outsider.as_deref());
    assert!(orgs.contains("\"other\"") && !orgs.contains("\"default\""), "{orgs}");
    let (status, _) = call(&d, "GET", "/api/v1/orgs/other/projects", outsider.as_deref());
    assert_eq!(status, 200);
    let (_, projects) = call(&d, "GET", "/api/v1/orgs/other/projects", outsider.as_deref());
    assert_eq!(projects, "[]");
    let (status, _) = call(&d, "GET", &format!("/api/v1/orgs/other/deployments/{run}"), outsider.as_deref());
    assert_eq!(status, 404, "a record of another org through one's own org");

    // The audit log has the deploys, with the right users, and the refusals.
    let audit: Value =
        serde_json::from_str(&call(&d, "GET", "/api/v1/orgs/default/audit", callers[3].1.as_deref()).1).unwrap();
    let deploys: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "deploy")
        .map(|e| {
            (
                e["actor"]["email"].as_str().unwrap_or("-").to_owned(),
                e["outcome"]["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (who, outcome) in [("developer", "ok"), ("manager", "ok"), ("admin", "ok"), ("viewer", "denied")] {
        assert!(deploys.contains(&(format!("{who}@example.com"), outcome.to_owned())), "{who} {outcome}: {deploys:?}");
    }
    // What root asked for on the socket, and what the poller started, are there too.
    s.repo.write("deploy/www/index.html", "a push the poller finds\n").unwrap();
    s.repo.commit("a push").unwrap();
    let admin = callers[3].1.clone();
    let kinds = || {
        let (_, body) = call(&d, "GET", "/api/v1/orgs/default/audit?limit=500", admin.as_deref());
        let audit: Value = serde_json::from_str(&body).unwrap();
        let kinds: Vec<String> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "deploy")
            .map(|e| e["actor"]["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds
    };
    let seen = deeplo_testbed::daemon::wait_for(std::time::Duration::from_secs(20), || {
        let kinds = kinds();
        kinds.iter().any(|k| k == "root") && kinds.iter().any(|k| k == "system")
    });
    assert!(seen.is_ok(), "a root and a system deploy are audited: {:?}", kinds());
    assert!(!d.log().contains("m-value-5"), "an env value is in the daemon's log");
    for (_, bearer, _) in &callers {
        let secret = bearer.as_deref().unwrap();
        assert!(!d.log().contains(&secret[5..]), "a token is in the daemon's log");
        assert_eq!(deeplo_testbed::file_holding(s.tmp.path(), &secret[5..]), None, "a token is on disk");
    }
}
