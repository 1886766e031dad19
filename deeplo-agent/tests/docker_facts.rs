//! The Docker facts read from the real local engine: containers started here with Compose's
//! labels, the versions compared with what the `docker` CLI says, and the same facts asked
//! for through an [`Executor`].

mod common;

use std::process::Command;
use std::sync::OnceLock;

use deeplo_agent::agent::Executor;
use deeplo_agent::agent::facts::{docker_facts, docker_versions};
use deeplo_agent::agent::fingerprint;
use deeplo_agent::protocol::{Container, RequestId, Resume, ToAgent, ToDaemon};
use tokio::sync::mpsc;

const IMAGE: &str = "deeplo-agent-facts-busybox:test";

/// A Dockerfile for a `FROM scratch` image holding only the static busybox.
const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\n";

/// Runs `docker args...` and returns its trimmed standard output; panics with its stderr.
fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap_or_else(|e| {
        panic!("docker {args:?} could not start ({e}): these tests need the Docker CLI and a running engine")
    });
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}; these tests need a running Docker engine (start dockerd)",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Builds the busybox image once per test binary.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", dir.path().join("busybox"))
            .expect("a static busybox is needed at /bin/busybox (apt-get install busybox-static)");
        std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
        docker(&["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()]);
    });
    IMAGE
}

/// Two running containers of a fresh Compose project (services `web` and `worker`) and one
/// exited container outside it; all removed on drop.
struct Project {
    name: String,
    outsider: String,
}

impl Project {
    fn start() -> Self {
        let name = format!("facts-{:08x}", rand::random::<u32>());
        let project = Self { outsider: format!("{name}-outsider"), name };
        for service in ["web", "worker"] {
            docker(&[
                "run",
                "-d",
                "--name",
                &format!("{}-{service}-1", project.name),
                "--label",
                &format!("com.docker.compose.project={}", project.name),
                "--label",
                &format!("com.docker.compose.service={service}"),
                image(),
                "/bin/busybox",
                "sleep",
                "600",
            ]);
        }
        // Exited, and so listed only because every container is asked for, not just the
        // running ones.
        let outsider = docker(&["run", "-d", "--name", &project.outsider, image(), "/bin/busybox", "true"]);
        docker(&["wait", &outsider]);
        project
    }

    fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.name)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.container("web"), &self.container("worker"), &self.outsider])
            .output();
    }
}

fn assert_project_containers(project: &Project, containers: &[Container]) {
    let seen: Vec<(&str, &str, &str)> =
        containers.iter().map(|c| (c.name.as_str(), c.service.as_str(), c.state.as_str())).collect();
    let (web, worker) = (project.container("web"), project.container("worker"));
    assert_eq!(seen, [(web.as_str(), "web", "running"), (worker.as_str(), "worker", "running")]);
    assert!(containers.iter().all(|c| c.status.starts_with("Up")), "{containers:?}");
}

#[tokio::test]
async fn the_facts_list_the_project_and_the_versions_the_cli_reports() {
    let project = Project::start();
    let facts = docker_facts(Some(&project.name)).await.unwrap();
    assert_project_containers(&project, &facts.containers);
    assert_eq!(facts.engine_version, docker(&["version", "--format", "{{.Server.Version}}"]));
    assert_eq!(facts.api_version, docker(&["version", "--format", "{{.Server.APIVersion}}"]));
    assert_eq!(facts.compose_version.as_deref(), Some(docker(&["compose", "version", "--short"]).as_str()));
}

#[tokio::test]
async fn without_a_project_every_container_is_listed_running_or_not() {
    let project = Project::start();
    let facts = docker_facts(None).await.unwrap();
    let outsider = facts.containers.iter().find(|c| c.name == project.outsider).expect("the outsider is listed");
    assert_eq!((outsider.service.as_str(), outsider.state.as_str()), ("", "exited"));
    assert!(facts.containers.iter().any(|c| c.name == project.container("web")));
    assert!(facts.containers.is_sorted_by(|a, b| a.name <= b.name), "sorted by name");
}

#[tokio::test]
async fn the_fingerprint_carries_the_docker_versions() {
    let (engine, compose) = docker_versions().await;
    assert_eq!(engine.as_deref(), Some(docker(&["version", "--format", "{{.Server.Version}}"]).as_str()));
    assert_eq!(compose.as_deref(), Some(docker(&["compose", "version", "--short"]).as_str()));
    let collected = fingerprint::collect(std::path::Path::new("/nonexistent/deeplo/deploys")).await;
    assert_eq!((collected.docker_version, collected.compose_version), (engine, compose));
}

#[tokio::test]
async fn the_executor_answers_docker_facts() {
    let project = Project::start();
    let (to_agent, incoming) = mpsc::channel(8);
    let (outgoing, mut from_agent) = mpsc::channel(8);
    let (spool, _state) = common::spool();
    let agent = tokio::spawn(Executor::new(outgoing, spool).run(incoming));

    let id = RequestId(7);
    to_agent.send(ToAgent::DockerFacts { id, project: Some(project.name.clone()) }).await.unwrap();
    // Asked while the facts are being read, and so answered as running.
    let resume = Resume { id, stdout: 0, stderr: 0, input: 0, input_ended: false };
    to_agent.send(ToAgent::Reattach { requests: vec![resume] }).await.unwrap();
    assert_eq!(from_agent.recv().await, Some(ToDaemon::Reattached { id, running: true }));
    match from_agent.recv().await {
        Some(ToDaemon::Facts { id: replied, facts }) => {
            assert_eq!(replied, id);
            assert_project_containers(&project, &facts.containers);
        }
        other => panic!("expected the facts, got {other:?}"),
    }

    drop(to_agent);
    agent.await.unwrap();
}

#[tokio::test]
async fn the_daemon_asks_through_the_agent_transport() {
    let project = Project::start();
    let wire = common::connect("facts-host");
    let transport = wire.connection.transport();
    let facts = transport.docker_facts(Some(&project.name)).await.unwrap();
    assert_project_containers(&project, &facts.containers);
    assert!(!facts.engine_version.is_empty());
}
