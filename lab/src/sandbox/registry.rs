//! The registry: a `docker-registry` on loopback that requires a username and a password
//! (headroom-docker's local stand-in), with a password made here from the system's
//! randomness, in a directory of its own. Stopped on drop.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use headroom_docker::local;

/// A running registry.
pub struct Registry {
    inner: local::Registry,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.host())
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Registry {
    /// Start one for `user` keeping its files in `dir`.
    pub fn start_in(dir: &Path, user: &str) -> Result<Registry> {
        let password = random_password()?;
        let inner =
            local::Registry::start(dir, user, &password).context("starting the registry")?;
        Ok(Registry {
            user: inner.user.clone(),
            password,
            inner,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.inner.host()
    }

    pub fn stop(&mut self) {
        self.inner.stop();
    }

    /// Start it again after [`Registry::stop`], on the same port with the same storage.
    pub fn resume(&mut self) -> Result<()> {
        Ok(self.inner.resume()?)
    }

    /// The registry's `Docker-Content-Digest` for `repo:tag` (`repo` without the host).
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.inner.manifest_digest(repo, tag)
    }

    /// A docker CLI configuration directory in `dir` that logs in to this registry, for
    /// plain `docker push` (`DOCKER_CONFIG`).
    pub fn docker_config(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.host()),
        )
        .with_context(|| path.display().to_string())?;
        Ok(dir.to_path_buf())
    }
}

/// 24 letters and digits from the system's randomness.
fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(24);
    let mut urandom = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut byte = [0u8; 1];
    while password.len() < 24 {
        urandom
            .read_exact(&mut byte)
            .context("reading /dev/urandom")?;
        // 248 = 4 × 62: below it every letter is equally likely.
        if byte[0] < 248 {
            password.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_plain_and_differ() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }
}
