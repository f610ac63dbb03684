//! Base images, made here because nothing can be pulled: the local Debian base of
//! `cargo xtask base-image` (debootstrap + `docker import`), and busybox-static images
//! (headroom-docker's local stand-ins) for tests and the simulator's workload.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::sh::cmd;

pub use headroom_docker::local::{busybox_image, busybox_image_all_applets};

/// Make a minimal Debian base image locally: `debootstrap --variant=minbase` piped into
/// `docker import`. The mirror is taken from this machine's own apt sources.
///
/// The root filesystem is kept as a tarball under target/headroom/, so a second run (or a
/// rebuilt engine) imports it again without downloading.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct BaseImage {
    /// Image name to create.
    #[arg(long, default_value = "headroom/debian:bookworm")]
    name: String,
    /// Debian suite.
    #[arg(long, default_value = "bookworm")]
    suite: String,
    /// Mirror URL [default: the first one in /etc/apt/sources.list.d/*.sources or sources.list].
    #[arg(long)]
    mirror: Option<String>,
    /// Rebuild even when the image or the cached tarball exists.
    #[arg(long)]
    force: bool,
}

impl BaseImage {
    pub fn run(self) -> Result<ExitCode> {
        if !self.force && image_exists(&self.name) {
            eprintln!("base-image: {} exists (use --force to rebuild)", self.name);
            println!("{}", self.name);
            return Ok(ExitCode::SUCCESS);
        }
        let cache = crate::repo::project_root()
            .join("target/headroom")
            .join(format!("base-{}.tar", self.suite));
        if self.force || !cache.exists() {
            self.debootstrap(&cache)?;
        }
        eprintln!("base-image: importing {} as {}", cache.display(), self.name);
        cmd(
            "docker",
            [
                "import".as_ref(),
                "--change".as_ref(),
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".as_ref(),
                "--change".as_ref(),
                "CMD [\"bash\"]".as_ref(),
                cache.as_os_str(),
                self.name.as_ref(),
            ],
        )
        .stdout_null()
        .run()?;
        println!("{}", self.name);
        Ok(ExitCode::SUCCESS)
    }

    fn debootstrap(&self, cache: &Path) -> Result<()> {
        let mirror = match &self.mirror {
            Some(m) => m.clone(),
            None => system_mirror().context(
                "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; pass --mirror URL",
            )?,
        };
        let dir = cache.with_extension("rootfs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        eprintln!(
            "base-image: debootstrap --variant=minbase {} from {mirror} (a few minutes)",
            self.suite
        );
        cmd(
            "debootstrap",
            [
                "--variant=minbase".as_ref(),
                self.suite.as_ref(),
                dir.as_os_str(),
                mirror.as_ref(),
            ],
        )
        .stdout_null()
        .run()?;
        // The image must not carry the build machine's apt lists or caches.
        for sub in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let p = dir.join(sub);
            if let Ok(entries) = std::fs::read_dir(&p) {
                for e in entries.flatten() {
                    if e.path().is_file() {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        let tmp = cache.with_extension("tar.partial");
        cmd(
            "tar",
            [
                "-C".as_ref(),
                dir.as_os_str(),
                "--numeric-owner".as_ref(),
                "-cf".as_ref(),
                tmp.as_os_str(),
                ".".as_ref(),
            ],
        )
        .run()?;
        std::fs::rename(&tmp, cache).with_context(|| cache.display().to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}

fn image_exists(name: &str) -> bool {
    cmd("docker", ["image", "inspect", name]).succeeds()
}

/// The first Debian archive URL in this machine's apt sources (deb822 or one-line format).
fn system_mirror() -> Option<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "sources"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            let suites = field("Suites:").unwrap_or_default();
            let is_main = !suites.contains("security") && !suites.contains("trixie");
            if let Some(uri) = field("URIs:").filter(|_| is_main)
                && let Some(first) = uri.split_whitespace().next()
            {
                return Some(first.to_string());
            }
        }
    }
    let text = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some("deb"))
            .then(|| parts.find(|p| p.starts_with("http")).map(String::from))
            .flatten()
    })
}
