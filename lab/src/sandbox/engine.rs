//! The throwaway engine: a second `dockerd`, managed like a runner's.
//!
//! It has a directory of its own (socket, pid file, exec root), a `daemon.json` where the
//! runner keeps it, a data root where the caller says (a loop filesystem), a bridge of its
//! own and no iptables — so it touches neither docker0 nor the host's firewall — and a
//! service program, `engine start` / `engine stop`, that the code under test restarts it
//! through. It listens on a socket in its directory, or on loopback TCP with TLS.
//!
//! Stopped, and what it mounted unmounted, on drop. [`stop_leftovers`] finds the processes
//! of one that a killed run left, by its paths.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::sandbox::bridge::Bridge;
use crate::sandbox::loopfs;
use crate::sh::{Cmd, cmd};
use crate::signals;

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `unix://DIR/docker.sock`.
    Socket,
    /// `tcp://127.0.0.1:PORT` with TLS, the certificates made by [`make_certs`] in `certs`.
    Tls { port: u16, certs: PathBuf },
}

/// What `engine start` does, as the two kinds of service managers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// As systemd's start job: done when the engine answers, failed when dockerd exits
    /// first.
    Waits,
    /// As an init script: starts dockerd in the background and returns; the caller waits.
    Returns,
}

/// How to start an engine.
#[derive(Debug)]
pub struct EngineSpec {
    /// Its own directory. Short: a socket's path must stay under 108 bytes.
    pub dir: PathBuf,
    /// Its `daemon.json`, where a runner keeps it.
    pub config: PathBuf,
    /// What `daemon.json` holds besides the bridge, `iptables: false` and the data root.
    pub settings: serde_json::Value,
    pub data_root: PathBuf,
    /// Pass `--data-root` on dockerd's command line, as some unit files do, rather than in
    /// `daemon.json` (the service reads it from [`Engine::unit_data_root`]).
    pub data_root_as_flag: bool,
    pub bridge: Bridge,
    pub log: PathBuf,
    pub listen: Listen,
    pub start: Start,
    /// A directory put first on dockerd's `PATH` (a fake `nvidia-container-runtime-hook`:
    /// dockerd registers its NVIDIA device driver only when it finds that program).
    pub extra_path: Option<PathBuf>,
}

/// A running throwaway engine.
#[derive(Debug)]
pub struct Engine {
    pub dir: PathBuf,
    pub config: PathBuf,
    /// The service program: `engine start`, `engine stop`.
    pub service: PathBuf,
    pub pidfile: PathBuf,
    /// `DOCKER_HOST` for it.
    pub host: String,
    pub log: PathBuf,
    pub bridge: Bridge,
    /// The data root it was started on.
    pub data_root: PathBuf,
    certs: Option<PathBuf>,
    extra_path: Option<PathBuf>,
    stopped: bool,
}

impl Engine {
    /// Write its `daemon.json` and service program and start it; done when it answers.
    pub fn start(spec: EngineSpec) -> Result<Engine> {
        let EngineSpec {
            dir,
            config,
            settings,
            data_root,
            data_root_as_flag,
            bridge,
            log,
            listen,
            start,
            extra_path,
        } = spec;
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        let mut daemon_json = serde_json::Map::new();
        daemon_json.insert("bridge".into(), serde_json::json!(bridge.name));
        daemon_json.insert("iptables".into(), serde_json::json!(false));
        match settings {
            serde_json::Value::Object(extra) => daemon_json.extend(extra),
            serde_json::Value::Null => {}
            other => bail!("an engine's settings must be a JSON object, not {other}"),
        }
        if !data_root_as_flag {
            daemon_json.insert("data-root".into(), serde_json::json!(data_root));
        }
        if let Some(parent) = config.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        std::fs::write(&config, serde_json::to_string_pretty(&daemon_json)? + "\n")
            .with_context(|| config.display().to_string())?;
        let (host, certs) = match &listen {
            Listen::Socket => (
                format!("unix://{}", dir.join("docker.sock").display()),
                None,
            ),
            Listen::Tls { port, certs } => (format!("tcp://127.0.0.1:{port}"), Some(certs.clone())),
        };
        let mut engine = Engine {
            service: dir.join("engine"),
            pidfile: dir.join("docker.pid"),
            dir,
            config,
            host,
            log,
            bridge,
            data_root,
            certs,
            extra_path,
            // Nothing to stop until the service has been asked to start it.
            stopped: true,
        };
        if data_root_as_flag {
            let unit = engine.unit_data_root();
            std::fs::write(&unit, engine.data_root.display().to_string())
                .with_context(|| unit.display().to_string())?;
        }
        engine.write_service(start)?;
        engine.stopped = false;
        engine.service_run("start")?;
        engine.wait_answering()?;
        Ok(engine)
    }

    /// While it exists, the service passes `--data-root` (its contents) on dockerd's command
    /// line, as some unit files do.
    pub fn unit_data_root(&self) -> PathBuf {
        self.dir.join("unit-data-root")
    }

    /// `engine start` or `engine stop`, as the code under test runs it.
    pub fn service_run(&self, verb: &str) -> Result<()> {
        cmd(&self.service, [verb]).read().map(drop)
    }

    /// What a client needs: `DOCKER_HOST`, and for TLS `DOCKER_TLS_VERIFY` and
    /// `DOCKER_CERT_PATH`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("DOCKER_HOST".to_string(), self.host.clone())];
        if let Some(certs) = &self.certs {
            env.push(("DOCKER_TLS_VERIFY".into(), "1".into()));
            env.push(("DOCKER_CERT_PATH".into(), certs.display().to_string()));
        }
        env
    }

    /// The docker CLI against this engine (and no other: no context, no TLS settings of
    /// the caller's).
    pub fn docker<S: AsRef<str>>(&self, args: &[S]) -> Cmd {
        let cli = ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]
            .into_iter()
            .fold(
                cmd("docker", args.iter().map(|a| a.as_ref())),
                Cmd::env_remove,
            );
        self.env().into_iter().fold(cli, |c, (k, v)| c.env(k, v))
    }

    /// The data root it runs on now, as `docker info` says.
    pub fn data_root_now(&self) -> Option<PathBuf> {
        self.docker(&["info", "--format", "{{.DockerRootDir}}"])
            .read()
            .ok()
            .map(PathBuf::from)
    }

    /// Wait up to 60 s for it to answer (sooner when interrupted).
    pub fn wait_answering(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            signals::check()?;
            if self
                .docker(&["version", "--format", "{{.Server.Version}}"])
                .succeeds()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the throwaway dockerd did not answer on {} within 60 s; its log {} ends \
                     with:\n{}",
                    self.host,
                    self.log.display(),
                    tail(&self.log, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop it (`engine stop`) and unmount what it left below its directory and its data
    /// root. Done once; also on drop.
    pub fn stop(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        let stopped = self.service_run("stop");
        loopfs::unmount_under(&[&self.dir, &self.data_root], true);
        stopped
    }

    /// The runner's service manager for this engine, as a script: `start` runs dockerd
    /// detached (setsid: a terminal's Ctrl-C must reach the lab, not the engine) with its
    /// daemon.json; `stop` ends it and waits until it has removed its pid file.
    fn write_service(&self, start: Start) -> Result<()> {
        let q = |p: &Path| crate::sh::quote(&p.display().to_string());
        let tls = match (&self.certs, self.host.starts_with("tcp://")) {
            (Some(certs), true) => format!(
                " --tlsverify --tlscacert {} --tlscert {} --tlskey {}",
                q(&certs.join("ca.pem")),
                q(&certs.join("server-cert.pem")),
                q(&certs.join("server-key.pem"))
            ),
            _ => String::new(),
        };
        let client_env: String = self
            .env()
            .iter()
            .map(|(k, v)| format!("{k}={} ", crate::sh::quote(v)))
            .collect();
        let wait = match start {
            Start::Returns => String::new(),
            Start::Waits => format!(
                "\x20 child=$!\n\
                 \x20 # Like systemd's start job: done when the engine answers, failed if it exits.\n\
                 \x20 i=0\n\
                 \x20 while [ \"$i\" -lt 600 ]; do\n\
                 \x20   state=$(cut -d' ' -f3 /proc/$child/stat 2>/dev/null || echo gone)\n\
                 \x20   case \"$state\" in Z|gone) echo \"dockerd exited at start; see {log}\" >&2; exit 1 ;; esac\n\
                 \x20   {client_env}docker version >/dev/null 2>&1 && exit 0\n\
                 \x20   sleep 0.1; i=$((i + 1))\n\
                 \x20 done\n\
                 \x20 echo \"dockerd did not answer in 60 s; see {log}\" >&2; exit 1\n",
                log = q(&self.log),
            ),
        };
        let path = match &self.extra_path {
            Some(dir) => format!("PATH={}:\"$PATH\" ", q(dir)),
            None => String::new(),
        };
        let script = format!(
            "#!/bin/sh\n\
             # A throwaway engine's service manager (headroom-lab): engine start|stop.\n\
             set -eu\n\
             pidfile={pid}\n\
             case \"${{1:-}}\" in\n\
             start)\n\
             \x20 # A unit file that passes --data-root itself.\n\
             \x20 if [ -f {unit} ]; then set -- --data-root \"$(cat {unit})\"; else set --; fi\n\
             \x20 {path}setsid dockerd --config-file {config} --exec-root {exec} --pidfile \"$pidfile\" \\\n\
             \x20   -H {host}{tls} \"$@\" </dev/null >>{log} 2>&1 &\n\
             {wait}\
             \x20 ;;\n\
             stop)\n\
             \x20 pid=$(cat \"$pidfile\" 2>/dev/null) || exit 0\n\
             \x20 kill -TERM \"$pid\" 2>/dev/null || exit 0\n\
             \x20 i=0\n\
             \x20 while [ -e \"$pidfile\" ] && [ \"$i\" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\n\
             \x20 [ ! -e \"$pidfile\" ] || {{ echo \"dockerd $pid did not stop in 60 s\" >&2; exit 1; }}\n\
             \x20 ;;\n\
             *) echo \"usage: $0 start|stop\" >&2; exit 2 ;;\n\
             esac\n",
            pid = q(&self.pidfile),
            unit = q(&self.unit_data_root()),
            config = q(&self.config),
            exec = q(&self.dir.join("exec")),
            host = self.host,
            log = q(&self.log),
        );
        std::fs::write(&self.service, script)
            .with_context(|| self.service.display().to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.service, std::fs::Permissions::from_mode(0o755))
            .with_context(|| self.service.display().to_string())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The last `lines` lines of a log.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A CA, and a server (`127.0.0.1`, `localhost`) and client certificate it signed, in `dir`:
/// `ca.pem`, `cert.pem` and `key.pem` are what `DOCKER_CERT_PATH` points to.
pub fn make_certs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let p = |name: &str| dir.join(name).display().to_string();
    cmd(
        "openssl",
        [
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
    )
    .read()?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .context("server.ext")?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
        .context("client.ext")?;
    for (who, key, cert, ext) in [
        ("server", "server-key.pem", "server-cert.pem", "server.ext"),
        ("client", "key.pem", "cert.pem", "client.ext"),
    ] {
        let csr = p(&format!("{who}.csr"));
        let subject = format!("/CN=headroom test {who}");
        cmd(
            "openssl",
            [
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &subject,
                "-keyout",
                &p(key),
                "-out",
                &csr,
            ],
        )
        .read()?;
        cmd(
            "openssl",
            [
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
        )
        .read()?;
    }
    Ok(())
}

/// Processes a throwaway engine may have started (dockerd starts containerd, which starts
/// shims), and the registry beside it.
const ENGINE_COMMANDS: &[&str] = &[
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "docker-proxy",
    "docker-registry",
];

/// Stop what a killed run left of an engine whose directory is `dir`: the dockerd of its
/// pid file gracefully (it stops its containers and containerd), then anything of an
/// engine's still running whose command line names `dir` or one of `others`.
pub fn stop_leftovers(dir: &Path, others: &[&Path]) {
    let mut ours: Vec<&Path> = vec![dir];
    ours.extend(others);
    if let Some(pid) = std::fs::read_to_string(dir.join("docker.pid"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|pid| engine_process(*pid, &ours))
    {
        signals::signal(pid, rustix::process::Signal::TERM);
        wait_gone(pid, Duration::from_secs(30));
    }
    for pid in engine_processes(&ours) {
        signals::signal(pid, rustix::process::Signal::KILL);
        wait_gone(pid, Duration::from_secs(5));
    }
}

/// Is `pid` one of an engine's processes (by name), pointed at one of `paths`?
fn engine_process(pid: u32, paths: &[&Path]) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !ENGINE_COMMANDS.contains(&comm.trim()) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    paths
        .iter()
        .any(|p| cmdline.contains(&*p.to_string_lossy()))
}

fn engine_processes(paths: &[&Path]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id() && engine_process(*pid, paths))
        .collect()
}

fn wait_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        // A child of ours stays a zombie until reaped; its /proc entry says so.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
