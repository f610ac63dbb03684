//! A real registry for push tests: `docker-registry` on a free loopback port, with htpasswd
//! (bcrypt) authentication and its own storage directory; and a tiny local base image made
//! from busybox-static (nothing can be pulled here).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sh;

/// A running registry; stopped on drop.
#[derive(Debug)]
pub struct Registry {
    pub port: u16,
    pub user: String,
    pub password: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("headroom-registry-")
            .tempdir()
            .expect("tempdir");
        let user = "headroom".to_string();
        let password = format!("pw-{}-{}", std::process::id(), free_port());
        let htpasswd = sh("htpasswd", &["-Bbn", &user, &password]);
        std::fs::write(dir.path().join("htpasswd"), htpasswd).expect("htpasswd file");
        let mut r = Registry {
            port: free_port(),
            user,
            password,
            dir,
            child: None,
        };
        r.resume();
        r
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port with the same storage.
    pub fn resume(&mut self) {
        let config = self.dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\nauth:\n  htpasswd:\n    realm: headroom-test\n    path: {}\n",
                self.dir.path().join("data").display(),
                self.port,
                self.dir.path().join("htpasswd").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (run scripts/provision)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The registry's `Docker-Content-Digest` for `repo:tag` (`repo` without the host).
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", self.host());
        let out = Command::new("curl")
            .args([
                "-sS",
                "-I",
                "-u",
                &format!("{}:{}", self.user, self.password),
            ])
            .args([
                "-H",
                "Accept: application/vnd.docker.distribution.manifest.v2+json",
                "-H",
                "Accept: application/vnd.docker.distribution.manifest.list.v2+json",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
                "-H",
                "Accept: application/vnd.oci.image.index.v1+json",
            ])
            .arg(&url)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A local base image (`/bin/busybox` and its applet links) imported once per process.
pub fn base_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let name = "headroom-test/busybox:latest".to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
        std::fs::create_dir_all(rootfs.join("tmp")).expect("rootfs");
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
        for applet in [
            "sh", "echo", "cat", "ls", "rm", "mkdir", "true", "false", "dd", "sleep", "wc", "head",
            "touch", "find", "sort",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("applet link");
        }
        let tar = dir.path().join("rootfs.tar");
        sh(
            "tar",
            &[
                "-C",
                rootfs.to_str().expect("utf-8"),
                "-cf",
                tar.to_str().expect("utf-8"),
                ".",
            ],
        );
        sh(
            "docker",
            &[
                "import",
                "--change",
                "ENV PATH=/bin",
                tar.to_str().expect("utf-8"),
                &name,
            ],
        );
        name
    })
}
