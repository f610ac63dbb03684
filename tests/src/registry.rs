//! The registry and base image for push tests: headroom-docker's local stand-ins, plus a
//! look at what the registry itself says about a tag.

use std::sync::OnceLock;

pub use headroom_docker::local::Registry as LocalRegistry;

/// A running registry with its own temporary directory; stopped on drop.
#[derive(Debug)]
pub struct Registry {
    inner: LocalRegistry,
    pub user: String,
    pub password: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("headroom-registry-")
            .tempdir()
            .expect("tempdir");
        let password = format!(
            "pw-{}-{}",
            std::process::id(),
            headroom_docker::local::free_port().expect("port")
        );
        let inner =
            LocalRegistry::start(dir.path(), "headroom", &password).expect("starting the registry");
        Registry {
            user: inner.user.clone(),
            password,
            inner,
            _dir: dir,
        }
    }

    pub fn host(&self) -> String {
        self.inner.host()
    }

    pub fn stop(&mut self) {
        self.inner.stop();
    }

    pub fn resume(&mut self) {
        self.inner.resume().expect("restarting the registry");
    }

    /// The registry's `Docker-Content-Digest` for `repo:tag` (`repo` without the host).
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.inner.manifest_digest(repo, tag)
    }
}

/// The local busybox base image, imported once per test process.
pub fn base_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let name = "headroom-test/busybox:latest".to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        headroom_docker::local::busybox_image(&name, None, dir.path()).expect("importing busybox");
        name
    })
}
