//! The registry and base image for push tests: the lab's sandboxes, plus a look at what the
//! registry itself says about a tag.

use std::sync::OnceLock;

pub use headroom_docker::local::Registry as LocalRegistry;

/// A running registry with its own temporary directory and password (the lab's
/// [`headroom_lab::sandbox::Registry`]); stopped on drop.
#[derive(Debug)]
pub struct Registry {
    // Stopped before its directory goes.
    inner: headroom_lab::sandbox::Registry,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("headroom-registry-")
            .tempdir()
            .expect("tempdir");
        let inner = headroom_lab::sandbox::Registry::start_in(dir.path(), "headroom")
            .unwrap_or_else(|e| panic!("starting the registry: {e:#}"));
        Registry { inner, _dir: dir }
    }

    pub fn resume(&mut self) {
        self.inner
            .resume()
            .unwrap_or_else(|e| panic!("restarting the registry: {e:#}"));
    }
}

impl std::ops::Deref for Registry {
    type Target = headroom_lab::sandbox::Registry;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Registry {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

/// The local busybox base image, imported once per test process.
pub fn base_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let name = "headroom-test/busybox:latest".to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        headroom_lab::sandbox::base_image::busybox_image(&name, None, dir.path())
            .expect("importing busybox");
        name
    })
}
