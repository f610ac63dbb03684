//! A remote engine on this machine: a second `dockerd` listening on loopback TCP with TLS
//! (a CA, server and client certificates made here with openssl), its data root on a loop
//! filesystem of its own and its own bridge, so nothing it does touches the runner's disk
//! or docker0. Stopped, unmounted and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LoopFs, TestBridge, docker_with, sh};

#[derive(Debug)]
pub struct TlsEngine {
    pub dir: tempfile::TempDir,
    pub fs: LoopFs,
    pub port: u16,
    /// ca.pem, cert.pem, key.pem: what DOCKER_CERT_PATH points to.
    pub certs: PathBuf,
    pub bridge: TestBridge,
    pub log: PathBuf,
    pub pidfile: PathBuf,
    /// dockerd itself (setsid execs it): waited for on drop.
    child: std::process::Child,
}

/// A CA, and a server (`127.0.0.1`, `localhost`) and client certificate it signed.
pub fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("certs dir");
    let p = |name: &str| dir.join(name).display().to_string();
    sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=headroom test CA",
            "-keyout",
            &p("ca-key.pem"),
            "-out",
            &p("ca.pem"),
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("client.ext");
    for (who, key, cert, ext) in [
        ("server", "server-key.pem", "server-cert.pem", "server.ext"),
        ("client", "key.pem", "cert.pem", "client.ext"),
    ] {
        let csr = p(&format!("{who}.csr"));
        sh(
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=headroom test {who}"),
                "-keyout",
                &p(key),
                "-out",
                &csr,
            ],
        );
        sh(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca-key.pem"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &p(ext),
                "-out",
                &p(cert),
            ],
        );
    }
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
        let bridge = TestBridge::new("hrtls", port);
        let log = dir.path().join("dockerd.log");
        let pidfile = dir.path().join("docker.pid");
        let c = |name: &str| certs.join(name).display().to_string();
        let logfile = std::fs::File::create(&log).expect("log");
        let child = Command::new("setsid")
            .arg("dockerd")
            .args([
                "--data-root",
                &fs.mount.join("docker").display().to_string(),
            ])
            .args([
                "--exec-root",
                &dir.path().join("exec").display().to_string(),
            ])
            .args(["--pidfile", &pidfile.display().to_string()])
            .args(["-H", &format!("tcp://127.0.0.1:{port}")])
            .args([
                "--tlsverify",
                "--tlscacert",
                &c("ca.pem"),
                "--tlscert",
                &c("server-cert.pem"),
                "--tlskey",
                &c("server-key.pem"),
            ])
            .args([
                "--bridge",
                &bridge.name,
                "--iptables=false",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("log"))
            .stderr(logfile)
            .spawn()
            .expect("starting dockerd");
        let engine = TlsEngine {
            child,
            dir,
            fs,
            port,
            certs,
            bridge,
            log,
            pidfile,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while engine
            .docker(&["version", "--format", "{{.Server.Version}}"])
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "the TLS engine did not answer within 60 s:\n{}",
                std::fs::read_to_string(&engine.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        engine
    }

    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The environment a client needs: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DOCKER_HOST".into(), self.host()),
            ("DOCKER_TLS_VERIFY".into(), "1".into()),
            ("DOCKER_CERT_PATH".into(), self.certs.display().to_string()),
        ]
    }

    /// The docker CLI against this engine: its stdout, or `None` when it failed.
    pub fn docker(&self, args: &[&str]) -> Option<String> {
        docker_with(&self.env(), args)
    }

    /// Copy an image from the host's engine (nothing can be pulled here).
    pub fn load_from_host(&self, image: &str) {
        let env: Vec<String> = self
            .env()
            .iter()
            .map(|(k, v)| format!("{k}='{v}'"))
            .collect();
        sh(
            "sh",
            &[
                "-c",
                &format!(
                    "docker save '{image}' | env {} docker load -q",
                    env.join(" ")
                ),
            ],
        );
    }

    /// Bytes used on the engine's own filesystem.
    pub fn used_bytes(&self) -> u64 {
        let u = headroom_disk::usage(&self.fs.mount).expect("statvfs");
        u.used_bytes
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        crate::unmount_below(&[self.dir.path(), &self.fs.mount]);
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
