//! The registry and base image for push tests: the lab's sandboxes, plus a look at what the
//! registry itself says about a tag.

use std::sync::OnceLock;

pub use headroom_docker::local::Registry as LocalRegistry;

/// A running registry with its own temporary directory and password (the lab's
/// [`headroom_lab::sandbox::Registry`]); stopped on drop.
#[derive(Debug)]
pub struct Registry(headroom_lab::sandbox::Registry);

impl Registry {
    pub fn start() -> Registry {
        Registry(
            headroom_lab::sandbox::Registry::temp("headroom")
                .unwrap_or_else(|e| panic!("starting the registry: {e:#}")),
        )
    }

    pub fn resume(&mut self) {
        self.0
            .resume()
            .unwrap_or_else(|e| panic!("restarting the registry: {e:#}"));
    }
}

impl std::ops::Deref for Registry {
    type Target = headroom_lab::sandbox::Registry;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Registry {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
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
