//! A second, throwaway `dockerd` managed like a runner's: a `daemon.json`, and a service
//! program (`engine start` / `engine stop`) that the code under test restarts it through.
//! Its data root is on a loop filesystem; it has a bridge of its own and no iptables, so it
//! touches neither docker0 nor the host's firewall. Stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{LoopFs, TestBridge};

#[derive(Debug)]
pub struct ServiceEngine {
    pub dir: tempfile::TempDir,
    /// The filesystem the data root starts on, and a second one to move it to.
    pub old_fs: LoopFs,
    pub new_fs: LoopFs,
    pub config: PathBuf,
    pub service: PathBuf,
    pub pidfile: PathBuf,
    pub host: String,
    pub log: PathBuf,
    /// Its network: a bridge of its own (never `bridge: none`, which deletes docker0).
    pub bridge: TestBridge,
}

impl ServiceEngine {
    /// Start an engine with `config` as its daemon.json and its data root on the first loop
    /// filesystem: set as `data-root` in daemon.json, or, `root_as_flag`, passed by the
    /// service on dockerd's command line (as a unit file's `ExecStart` may).
    pub fn start(config: &serde_json::Value, root_as_flag: bool) -> ServiceEngine {
        // Short: the socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("hr-eng-")
            .tempdir_in("/run")
            .expect("tempdir in /run");
        let old_fs = LoopFs::new(400);
        let new_fs = LoopFs::new(400);
        let old_root = old_fs.mount.join("docker");
        let bridge = TestBridge::new(
            "hrsvc",
            headroom_docker::local::free_port().expect("a free port"),
        );
        let mut config = config.clone();
        config["bridge"] = serde_json::json!(bridge.name);
        config["iptables"] = serde_json::json!(false);
        let extra = if root_as_flag {
            format!("--data-root '{}'", old_root.display())
        } else {
            config["data-root"] = serde_json::json!(old_root);
            String::new()
        };
        // Where a runner keeps it, below the directory a pipeline test passes as --root.
        let config_path = dir.path().join("etc/docker/daemon.json");
        std::fs::create_dir_all(config_path.parent().expect("etc/docker")).expect("mkdir");
        std::fs::write(
            &config_path,
            serde_json::to_string_pretty(&config).expect("json"),
        )
        .expect("write daemon.json");
        let pidfile = dir.path().join("docker.pid");
        let host = format!("unix://{}", dir.path().join("docker.sock").display());
        let log = dir.path().join("dockerd.log");
        let service = dir.path().join("engine");
        let script = format!(
            "#!/bin/sh\nset -eu\npidfile='{pid}'\ncase \"$1\" in\n\
             start) setsid dockerd --config-file '{config}' --exec-root '{exec}' \
             --pidfile \"$pidfile\" -H '{host}' {extra} </dev/null >>'{log}' 2>&1 & ;;\n\
             stop) pid=$(cat \"$pidfile\" 2>/dev/null) || exit 0\n\
             kill -TERM \"$pid\" 2>/dev/null || exit 0\n\
             i=0; while [ -e \"$pidfile\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done ;;\n\
             esac\n",
            pid = pidfile.display(),
            config = config_path.display(),
            exec = dir.path().join("exec").display(),
            log = log.display(),
        );
        std::fs::write(&service, script).expect("write the service script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&service, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let engine = ServiceEngine {
            dir,
            old_fs,
            new_fs,
            config: config_path,
            service,
            pidfile,
            host,
            log,
            bridge,
        };
        engine.service("start");
        engine.wait_answering();
        engine
    }

    pub fn service(&self, verb: &str) {
        let st = Command::new(&self.service)
            .arg(verb)
            .status()
            .expect("run the service script");
        assert!(st.success(), "engine {verb}: {st}");
    }

    pub fn wait_answering(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.docker(&["version"]).is_none() {
            assert!(
                Instant::now() < deadline,
                "the test engine did not answer within 60 s; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The docker CLI against this engine: its stdout, or `None` when it failed.
    pub fn docker(&self, args: &[&str]) -> Option<String> {
        crate::docker_with(&[("DOCKER_HOST".into(), self.host.clone())], args)
    }

    pub fn data_root(&self) -> Option<PathBuf> {
        self.docker(&["info", "--format", "{{.DockerRootDir}}"])
            .map(PathBuf::from)
    }

    pub fn endpoint(&self) -> headroom_docker::engine::Endpoint {
        headroom_docker::engine::Endpoint {
            host: self.host.clone(),
            tls: None,
            source: "the test's engine".into(),
        }
    }

    pub fn old_root(&self) -> PathBuf {
        self.old_fs.mount.join("docker")
    }

    pub fn new_root(&self) -> PathBuf {
        self.new_fs.mount.join("docker")
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ServiceEngine {
    fn drop(&mut self) {
        let _ = Command::new(&self.service).arg("stop").status();
        // Whatever dockerd left mounted below its directories (netns, overlay).
        crate::unmount_below(&[self.dir.path(), &self.old_fs.mount, &self.new_fs.mount]);
    }
}
