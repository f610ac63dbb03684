//! Local stand-ins for what CI cannot reach: a registry with authentication on loopback
//! (`docker-registry` with bcrypt htpasswd) and a base image made from busybox-static.
//! Used by tests, benchmarks and the simulated runner; nothing here pulls from a network.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a local stand-in could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{what}: {message}")]
    Failed { what: String, message: String },
}

fn failed(what: impl Into<String>, message: impl std::fmt::Display) -> LocalError {
    LocalError::Failed {
        what: what.into(),
        message: message.to_string(),
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, LocalError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed("finding a free loopback port", e))
}

/// A `docker-registry` on loopback that requires a username and password; stopped on drop.
pub struct Registry {
    pub port: u16,
    pub user: String,
    password: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Registry {
    /// Start a registry keeping its configuration and storage in `dir`.
    pub fn start(dir: &Path, user: &str, password: &str) -> Result<Registry, LocalError> {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir.display().to_string(), e))?;
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .map_err(|e| failed("htpasswd (apache2-utils; run scripts/provision)", e))?;
        if !out.status.success() {
            return Err(failed(
                "htpasswd",
                String::from_utf8_lossy(&out.stderr).trim(),
            ));
        }
        std::fs::write(dir.join("htpasswd"), &out.stdout)
            .map_err(|e| failed(dir.join("htpasswd").display().to_string(), e))?;
        let mut registry = Registry {
            port: free_port()?,
            user: user.to_string(),
            password: password.to_string(),
            dir: dir.to_path_buf(),
            child: None,
        };
        registry.resume()?;
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// What the registry itself serves for `repo:tag` (`repo` without the host): its
    /// `Docker-Content-Digest`, asked with curl; the password goes to curl on standard input,
    /// never on its command line.
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        use std::io::Write;
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", self.host());
        let config = format!(
            "user = \"{}:{}\"\n",
            self.user,
            self.password.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut child = Command::new("curl")
            .args(["-sf", "-I", "-K", "-", "-H"])
            .arg(
                "Accept: application/vnd.oci.image.index.v1+json, \
                 application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            )
            .arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(config.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
    }

    /// The registry process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the registry stores blobs and manifests.
    pub fn storage(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Start (again) on the same port with the same storage; wait until it listens.
    pub fn resume(&mut self) -> Result<(), LocalError> {
        let config = self.dir.join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\nauth:\n  htpasswd:\n    realm: headroom\n    path: {}\n",
            self.storage().display(),
            self.port,
            self.dir.join("htpasswd").display()
        );
        std::fs::write(&config, text).map_err(|e| failed(config.display().to_string(), e))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed("docker-registry (run scripts/provision)", e))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                self.stop();
                return Err(failed(
                    "docker-registry",
                    format!("did not listen on 127.0.0.1:{} within 20 s", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The applets [`busybox_image`] links: what the tests' Dockerfiles use.
const TEST_APPLETS: &[&str] = &[
    "sh",
    "echo",
    "cat",
    "ls",
    "rm",
    "mkdir",
    "true",
    "false",
    "dd",
    "sleep",
    "wc",
    "head",
    "touch",
    "find",
    "sort",
    "sha256sum",
];

/// Import a base image holding `/bin/busybox` (from busybox-static) and its applets as
/// `name`, through the docker CLI of `docker_host`. Nothing is pulled.
pub fn busybox_image(name: &str, docker_host: Option<&str>, work: &Path) -> Result<(), LocalError> {
    let applets: Vec<String> = TEST_APPLETS.iter().map(|a| a.to_string()).collect();
    import_busybox(name, docker_host, work, &applets)
}

/// [`busybox_image`] with every applet busybox has (`httpd`, `wget`, `stat`, …): a base for
/// images that serve and check themselves.
pub fn busybox_image_all_applets(
    name: &str,
    docker_host: Option<&str>,
    work: &Path,
) -> Result<(), LocalError> {
    let out = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .map_err(|e| {
            failed(
                "/bin/busybox --list (busybox-static; run scripts/provision)",
                e,
            )
        })?;
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(String::from)
        .collect();
    if applets.is_empty() {
        return Err(failed("/bin/busybox --list", "no applets listed"));
    }
    import_busybox(name, docker_host, work, &applets)
}

fn import_busybox(
    name: &str,
    docker_host: Option<&str>,
    work: &Path,
    applets: &[String],
) -> Result<(), LocalError> {
    let rootfs = work.join("busybox-rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| failed(bin.display().to_string(), e))?;
    std::fs::create_dir_all(rootfs.join("tmp")).map_err(|e| failed("rootfs/tmp", e))?;
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .map_err(|e| failed("/bin/busybox (busybox-static; run scripts/provision)", e))?;
    for applet in applets {
        let link = bin.join(applet);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("busybox", &link)
                .map_err(|e| failed(link.display().to_string(), e))?;
        }
    }
    let tar = work.join("busybox-rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|e| failed("tar", e))?;
    if !status.success() {
        return Err(failed("tar", status));
    }
    let mut cmd = Command::new("docker");
    cmd.args(["import", "--change", "ENV PATH=/bin"])
        .arg(&tar)
        .arg(name);
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    let out = cmd.output().map_err(|e| failed("docker import", e))?;
    if !out.status.success() {
        return Err(failed(
            "docker import",
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(())
}
