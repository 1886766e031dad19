//! Applications end to end: a Dockerfile built on the host, its releases swapped
//! blue-green behind the real Caddy proxy container, with an HTTP client counting every
//! answer through a deploy, a failed build, a release that never gets healthy and a
//! rollback. Each scenario runs once over SSH and once through the real `deeplo-agent`.

use std::path::Path;

use deeplo_core::engine::{SubmitOutcome, Submitted};
use deeplo_core::model::{DeployStatus, Deployment, Trigger};
use deeplo_core::{DeployRequest, Engine};
use deeplo_testbed::apps::{self, App, Load};
use deeplo_testbed::scenario::{Scenario, Via};

macro_rules! both {
    ($name:ident) => {
        mod $name {
            use deeplo_testbed::scenario::Via;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ssh() {
                super::$name(Via::Ssh).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn agent() {
                super::$name(Via::Agent).await;
            }
        }
    };
}

both!(blue_green_with_zero_failed_requests);

fn request(project: &str) -> DeployRequest {
    DeployRequest { project: project.into(), host: None, commit: None, trigger: Trigger::Manual, force: true }
}

async fn finish(submitted: Vec<Submitted>) -> Deployment {
    assert_eq!(submitted.len(), 1);
    match submitted.into_iter().next().unwrap().outcome {
        SubmitOutcome::Queued(h) => h.wait().await.expect("run completed"),
        SubmitOutcome::Skipped(d) => panic!("skipped: {d:?}"),
    }
}

async fn deploy(engine: &Engine) -> Deployment {
    finish(engine.deploy(request("site")).await.expect("submitted")).await
}

async fn log_of(engine: &Engine, record: &Deployment) -> String {
    String::from_utf8(engine.store().read_log(&record.id).await.unwrap().unwrap_or_default()).unwrap()
}

fn steps(record: &Deployment) -> Vec<&str> {
    record.steps.iter().map(|s| s.name.as_str()).collect()
}

fn commit_version(s: &Scenario, text: &str, dockerfile: &str) -> String {
    apps::write_web_app(&s.repo, Path::new("web"), text, dockerfile).unwrap();
    s.repo.commit(text).unwrap()
}

async fn blue_green_with_zero_failed_requests(via: Via) {
    apps::ensure_caddy_image().unwrap();
    let s = Scenario::new(&format!("app-bg-{}", via.name())).unwrap();
    let app = App::new("bg", via);
    let yaml = app.yaml(&s, via, "");
    let key_file = s.tmp.path().join("secrets.key");
    let (engine, vault) = s.engine_via_vault(via, &yaml, &key_file).await.unwrap();
    let secret = format!("greeting-{}-7f3a", via.name());
    vault.set("site", &[("GREETING".into(), secret.clone())], jiff::Timestamp::now()).await.unwrap();

    // The first deploy: built, started, checked, routed.
    let v1 = commit_version(&s, "version 1", &apps::web_dockerfile(8080, ""));
    let first = deploy(&engine).await;
    let log = log_of(&engine, &first).await;
    assert_eq!(first.status, DeployStatus::Succeeded, "{:?}\n{log}", first.error);
    assert_eq!(
        steps(&first),
        ["fetch", "extract", "connect", "precheck", "stage", "build", "start", "health", "switch", "drain", "cleanup"]
    );
    assert!(log.contains("left out by .dockerignore"), "{log}");
    assert_eq!(apps::get(app.port, "/").unwrap(), (200, "version 1\n".to_owned()));
    assert_eq!(
        apps::get(app.port, "/greeting.txt").unwrap(),
        (200, format!("{secret}\n")),
        "the value reached the container"
    );
    assert!(apps::image_exists(&app.image(&v1)));

    let load = Load::start(app.port);
    // A change: the new release starts beside the old one; the switch is atomic.
    let v2 = commit_version(&s, "version 2", &apps::web_dockerfile(8080, ""));
    let second = deploy(&engine).await;
    assert_eq!(second.status, DeployStatus::Succeeded, "{:?}\n{}", second.error, log_of(&engine, &second).await);
    assert_eq!(apps::get(app.port, "/").unwrap().1, "version 2\n");
    let mut want = vec![
        (format!("{}-{}", app.name, &v1[..8]), "exited".to_owned()),
        (format!("{}-{}", app.name, &v2[..8]), "running".to_owned()),
    ];
    want.sort();
    assert_eq!(apps::containers(&app.name), want, "the old release is kept, stopped");

    // A Dockerfile that fails to build: nothing changes.
    commit_version(&s, "version 3", &apps::web_dockerfile(8080, "RUN exit 3\n"));
    let broken = deploy(&engine).await;
    assert_eq!(broken.status, DeployStatus::Failed);
    assert_eq!(broken.steps.last().map(|st| st.name.as_str()), Some("build"), "{:?}", broken.steps);
    assert!(broken.error.as_deref().unwrap_or("").contains("docker build failed"), "{:?}", broken.error);
    assert_eq!(apps::get(app.port, "/").unwrap().1, "version 2\n");

    // A release that never answers: removed, the live one untouched.
    let v4 = commit_version(&s, "version 4", &apps::web_dockerfile(9999, ""));
    let sick = deploy(&engine).await;
    let error = sick.error.clone().unwrap_or_default();
    assert_eq!(sick.status, DeployStatus::Failed);
    assert_eq!(sick.steps.last().map(|st| st.name.as_str()), Some("health"), "{:?}", sick.steps);
    assert!(error.contains("not healthy after 4 attempt(s)") && error.contains("the last answers"), "{error}");
    assert!(error.contains("kept serving"), "{error}");
    assert!(!apps::containers(&app.name).iter().any(|(n, _)| n.contains(&v4[..8])), "the sick release is removed");
    assert_eq!(apps::get(app.port, "/").unwrap().1, "version 2\n");

    // A rollback: the kept release starts again, nothing is built.
    let back = finish(engine.rollback("site", None, None).await.expect("rollback submitted")).await;
    assert_eq!(back.status, DeployStatus::Succeeded, "{:?}\n{}", back.error, log_of(&engine, &back).await);
    assert_eq!(back.commit.as_str(), v1);
    assert_eq!(steps(&back), ["connect", "precheck", "start", "health", "switch", "drain", "cleanup"]);
    assert_eq!(apps::get(app.port, "/").unwrap().1, "version 1\n");

    let counts = load.stop();
    println!(
        "zero-downtime ({}): {} requests, by answer {:?}, failed {}",
        via.name(),
        counts.total(),
        counts.ok,
        counts.failed.len()
    );
    assert!(counts.failed.is_empty(), "failed requests: {:?}", &counts.failed[..counts.failed.len().min(10)]);
    assert!(
        counts.ok.get("version 1\n").is_some_and(|n| *n > 0) && counts.ok.get("version 2\n").is_some_and(|n| *n > 0)
    );

    // keep_releases: 2, the live one included: a new release removes the oldest.
    let v5 = commit_version(&s, "version 5", &apps::web_dockerfile(8080, ""));
    let fifth = deploy(&engine).await;
    assert_eq!(fifth.status, DeployStatus::Succeeded, "{:?}", fifth.error);
    let names: Vec<String> = apps::containers(&app.name).into_iter().map(|(n, _)| n).collect();
    let mut want = [format!("{}-{}", app.name, &v1[..8]), format!("{}-{}", app.name, &v5[..8])];
    want.sort();
    assert_eq!(names, want, "the live v5 and the kept v1; v2 went");
    assert!(!apps::image_exists(&app.image(&v2)), "the removed release's image went with it");

    // The value is in no log, no record, no file deeplo wrote.
    for record in [&first, &second, &broken, &sick, &back, &fifth] {
        assert!(!log_of(&engine, record).await.contains(&secret));
        assert!(!format!("{record:?}").contains(&secret));
    }
    for dir in [s.data_dir(), s.deploy_dir()] {
        assert!(deeplo_testbed::file_holding(&dir, &secret).is_none(), "{} holds the value", dir.display());
    }
}
