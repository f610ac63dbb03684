//! A remote engine on this machine: the lab's throwaway engine listening on loopback TCP with
//! TLS (a CA, server and client certificates made here with openssl), its data root on a loop
//! filesystem of its own and its own bridge, so nothing it does touches the runner's disk or
//! docker0. Stopped, unmounted and removed on drop. And an sshd through which this machine's
//! engine is reached as a remote one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use headroom_lab::sandbox::{Engine, EngineSpec, Listen, Start};

use crate::{LoopFs, sh, test_bridge};

#[derive(Debug)]
pub struct TlsEngine {
    // Dropped in this order: the engine, its filesystem, its directory.
    engine: Engine,
    pub fs: LoopFs,
    pub port: u16,
    /// ca.pem, cert.pem, key.pem: what DOCKER_CERT_PATH points to.
    pub certs: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A CA, and a server (`127.0.0.1`, `localhost`) and client certificate it signed.
pub fn make_certs(dir: &Path) {
    headroom_lab::sandbox::engine::make_certs(dir)
        .unwrap_or_else(|e| panic!("certificates in {}: {e:#}", dir.display()));
}

impl TlsEngine {
    /// Start it (root only); `fs_mib`: the size of its data root's filesystem.
    pub fn start(fs_mib: u64) -> TlsEngine {
        let dir = tempfile::Builder::new()
            .prefix("hr-tls-")
            .tempdir_in("/run")
            .expect("tempdir in /run");
        let certs = dir.path().join("certs");
        make_certs(&certs);
        let fs = LoopFs::new(fs_mib);
        let port = headroom_docker::local::free_port().expect("a free port");
        let engine = Engine::start(EngineSpec {
            dir: dir.path().to_path_buf(),
            config: dir.path().join("daemon.json"),
            settings: serde_json::json!({"log-level": "warn"}),
            data_root: fs.mount.join("docker"),
            data_root_as_flag: true,
            bridge: test_bridge("hrtls", port),
            log: dir.path().join("dockerd.log"),
            listen: Listen::Tls {
                port,
                certs: certs.clone(),
            },
            start: Start::Waits,
            extra_path: None,
        })
        .unwrap_or_else(|e| panic!("the TLS engine: {e:#}"));
        TlsEngine {
            engine,
            fs,
            port,
            certs,
            dir,
        }
    }

    pub fn host(&self) -> String {
        self.engine.host.clone()
    }

    /// The environment a client needs: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.
    pub fn env(&self) -> Vec<(String, String)> {
        self.engine.env()
    }

    /// The docker CLI against this engine: its stdout, or `None` when it failed.
    pub fn docker(&self, args: &[&str]) -> Option<String> {
        self.engine.docker(args).read().ok()
    }

    /// Copy an image from the host's engine (nothing can be pulled here).
    pub fn load_from_host(&self, image: &str) {
        headroom_lab::sh::cmd("docker", ["save", image])
            .pipe(self.engine.docker(&["load", "-q"]))
            .read()
            .unwrap_or_else(|e| panic!("copying {image} to the TLS engine: {e:#}"));
    }

    /// Bytes used on the engine's own filesystem.
    pub fn used_bytes(&self) -> u64 {
        let u = headroom_disk::usage(&self.fs.mount).expect("statvfs");
        u.used_bytes
    }
}

/// Its paths: `pidfile`, `log`, `bridge`, `config`.
impl std::ops::Deref for TlsEngine {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        let _ = self.engine.stop();
        crate::unmount_below(&[&self.fs.mount]);
    }
}

/// An sshd on loopback, with a host key and a client key made here, and a `Host` alias for it
/// in root's `~/.ssh/config` (which is where ssh, and the Docker CLI through it, look): the
/// config is put back as it was on drop. Through it, `ssh://ALIAS` reaches this machine's
/// engine as a remote one.
#[derive(Debug)]
pub struct SshServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub alias: String,
    child: std::process::Child,
    user_config: PathBuf,
    user_config_before: Option<Vec<u8>>,
}

impl SshServer {
    pub fn start() -> SshServer {
        let dir = tempfile::Builder::new()
            .prefix("hr-ssh-")
            .tempdir()
            .expect("tempdir");
        let d = |name: &str| dir.path().join(name).display().to_string();
        for key in ["host_key", "id"] {
            sh(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", &d(key)],
            );
        }
        std::fs::copy(
            dir.path().join("id.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let port = headroom_docker::local::free_port().expect("a free port");
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {}\n",
                d("host_key"),
                d("authorized_keys"),
                d("sshd.pid")
            ),
        )
        .expect("sshd_config");
        // Privilege separation wants its empty directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &d("sshd_config")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).expect("log"))
            .spawn()
            .expect("starting sshd (run scripts/provision)");
        let alias = format!("headroom-ssh-test-{port}");
        let home = PathBuf::from("/root/.ssh");
        std::fs::create_dir_all(&home).expect("/root/.ssh");
        let user_config = home.join("config");
        let user_config_before = std::fs::read(&user_config).ok();
        let block = format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             LogLevel ERROR\n\n",
            d("id")
        );
        let mut text = block.into_bytes();
        text.extend(user_config_before.clone().unwrap_or_default());
        std::fs::write(&user_config, text).expect("~/.ssh/config");
        let server = SshServer {
            dir,
            port,
            alias,
            child,
            user_config,
            user_config_before,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new("ssh")
                .args(["-o", "BatchMode=yes", &server.alias, "true"])
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not let us in within 20 s:\n{}",
                std::fs::read_to_string(server.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    pub fn docker_host(&self) -> String {
        format!("ssh://{}", self.alias)
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        match &self.user_config_before {
            Some(bytes) => {
                let _ = std::fs::write(&self.user_config, bytes);
            }
            None => {
                let _ = std::fs::remove_file(&self.user_config);
            }
        }
    }
}
