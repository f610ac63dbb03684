//! A second, throwaway `dockerd` managed like a runner's: the lab's
//! [`headroom_lab::sandbox::Engine`], with a `daemon.json` and a service program (`engine
//! start` / `engine stop`, which returns at once as an init script does) that the code under
//! test restarts it through. Its data root is on a loop filesystem, with a second one to move
//! it to; it has a bridge of its own and no iptables, so it touches neither docker0 nor the
//! host's firewall. Stopped and removed on drop.

use std::path::{Path, PathBuf};

use headroom_lab::sandbox::{Engine, EngineSpec, Listen, Start};

use crate::{LoopFs, test_bridge};

#[derive(Debug)]
pub struct ServiceEngine {
    // Dropped in this order: the engine, its filesystems, its directory.
    engine: Engine,
    /// The filesystem the data root starts on, and a second one to move it to.
    pub old_fs: LoopFs,
    pub new_fs: LoopFs,
    pub dir: tempfile::TempDir,
}

impl ServiceEngine {
    /// A move of this engine's data root from its old root to its new one, through its
    /// service script (what `relocate` and `trust_move` ask of it).
    pub fn move_request(&self) -> headroom_docker::relocate::MoveRequest {
        headroom_docker::relocate::MoveRequest {
            config: self.config.clone(),
            from: self.old_root(),
            to: self.new_root(),
            containerd_store: None,
            carry_images: false,
            service: headroom_docker::relocate::ServiceManager::script(&self.service),
            endpoint: self.endpoint(),
            wait: std::time::Duration::from_secs(60),
        }
    }

    /// Start an engine with `config` as its daemon.json and its data root on the first loop
    /// filesystem: set as `data-root` in daemon.json, or, `root_as_flag`, passed by the
    /// service on dockerd's command line (as a unit file's `ExecStart` may).
    pub fn start(config: &serde_json::Value, root_as_flag: bool) -> ServiceEngine {
        ServiceEngine::start_with(config, root_as_flag, None)
    }

    /// [`ServiceEngine::start`] with `extra_path` first on dockerd's `PATH`.
    pub fn start_with(
        config: &serde_json::Value,
        root_as_flag: bool,
        extra_path: Option<&Path>,
    ) -> ServiceEngine {
        // Short: the socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("hr-eng-")
            .tempdir_in("/run")
            .expect("tempdir in /run");
        let old_fs = LoopFs::new(400);
        let new_fs = LoopFs::new(400);
        let bridge = test_bridge(
            "hrsvc",
            headroom_docker::local::free_port().expect("a free port"),
        );
        let engine = Engine::start(EngineSpec {
            dir: dir.path().to_path_buf(),
            // Where a runner keeps it, below the directory a pipeline test passes as --root.
            config: dir.path().join("etc/docker/daemon.json"),
            settings: config.clone(),
            data_root: old_fs.mount.join("docker"),
            data_root_as_flag: root_as_flag,
            bridge,
            log: dir.path().join("dockerd.log"),
            listen: Listen::Socket,
            start: Start::Returns,
            extra_path: extra_path.map(Path::to_path_buf),
        })
        .unwrap_or_else(|e| panic!("the test engine: {e:#}"));
        ServiceEngine {
            engine,
            old_fs,
            new_fs,
            dir,
        }
    }

    pub fn service(&self, verb: &str) {
        self.engine
            .service_run(verb)
            .unwrap_or_else(|e| panic!("engine {verb}: {e:#}"));
    }

    pub fn wait_answering(&self) {
        self.engine
            .wait_answering()
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// The docker CLI against this engine: its stdout, or `None` when it failed.
    pub fn docker(&self, args: &[&str]) -> Option<String> {
        self.engine.docker(args).read().ok()
    }

    pub fn data_root(&self) -> Option<PathBuf> {
        self.engine.data_root_now()
    }

    pub fn endpoint(&self) -> headroom_docker::engine::Endpoint {
        headroom_docker::engine::Endpoint {
            host: self.engine.host.clone(),
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

/// Its paths: `config`, `service`, `pidfile`, `host`, `log`, `bridge`.
impl std::ops::Deref for ServiceEngine {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for ServiceEngine {
    fn drop(&mut self) {
        let _ = self.engine.stop();
        // Whatever dockerd left mounted below the filesystems (overlays of a moved root).
        crate::unmount_below(&[&self.old_fs.mount, &self.new_fs.mount]);
    }
}
