//! The local Docker engine and test images built from the static busybox binary.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::run;

/// Fails with instructions when the engine or Compose v2 is missing.
pub fn require_engine() -> anyhow::Result<()> {
    if run(Command::new("docker").arg("info")).is_err() {
        bail!(
            "the Docker engine is not reachable: run `bash .ci/install-deps` (it starts dockerd), or start dockerd yourself"
        );
    }
    if run(Command::new("docker").args(["compose", "version"])).is_err() {
        bail!("Docker Compose v2 is missing: run `bash .ci/install-deps` (it installs the compose CLI plugin)");
    }
    Ok(())
}

/// The static busybox binary that test images are built from.
pub fn busybox_path() -> anyhow::Result<&'static Path> {
    let path = Path::new("/bin/busybox");
    let ok = run(Command::new(path).arg("--list")).is_ok_and(|list| list.lines().any(|l| l == "httpd"));
    if !ok {
        bail!(
            "a static busybox with httpd is needed at /bin/busybox: run `bash .ci/install-deps` (apt-get install busybox-static)"
        );
    }
    Ok(path)
}

/// A Dockerfile that gives a `FROM scratch` image a shell, `httpd` and `wget`.
pub const BUSYBOX_DOCKERFILE: &str =
    "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

/// Writes a build context for the busybox base image into `dir` (the Dockerfile and the binary).
pub fn write_busybox_context(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::copy(busybox_path()?, dir.join("busybox"))?;
    std::fs::write(dir.join("Dockerfile"), BUSYBOX_DOCKERFILE)?;
    Ok(())
}

/// Builds the busybox base image as `tag` on the engine at `docker_host` (None: the default).
pub fn build_busybox_image(tag: &str, docker_host: Option<&str>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_busybox_context(dir.path())?;
    let mut cmd = Command::new("docker");
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    cmd.args(["build", "-q", "-t", tag]).arg(dir.path());
    run(&mut cmd).map(|_| ())
}

/// Removes every container of a compose project (cleanup after a test).
pub fn remove_project(project: &str) {
    let ids = run(Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}")))
    .unwrap_or_default();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = run(Command::new("docker").args(["rm", "-f"]).args(&ids));
    }
    let _ = run(Command::new("docker").args(["network", "rm"]).arg(format!("{project}_default")));
}
