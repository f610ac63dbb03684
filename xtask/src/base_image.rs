//! `cargo xtask base-image`: a local stand-in base image (debootstrap + `docker import`) for
//! machines that cannot pull one, so the whole pipeline runs without any registry.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;

/// Make a minimal Debian base image locally: `debootstrap --variant=minbase` piped into
/// `docker import`. The mirror is taken from this machine's own apt sources.
///
/// The root filesystem is kept as a tarball under target/headroom/, so a second run (or a
/// rebuilt engine) imports it again without downloading.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct BaseImage {
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
    pub(crate) fn run(self) -> Result<ExitCode> {
        if !self.force && image_exists(&self.name) {
            eprintln!("base-image: {} exists (use --force to rebuild)", self.name);
            println!("{}", self.name);
            return Ok(ExitCode::SUCCESS);
        }
        let cache = crate::project_root()
            .join("target/headroom")
            .join(format!("base-{}.tar", self.suite));
        if self.force || !cache.exists() {
            self.debootstrap(&cache)?;
        }
        eprintln!("base-image: importing {} as {}", cache.display(), self.name);
        let status = Command::new("docker")
            .args([
                "import",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ])
            .args(["--change", "CMD [\"bash\"]"])
            .arg(&cache)
            .arg(&self.name)
            .stdout(Stdio::null())
            .status()
            .context("running docker import")?;
        if !status.success() {
            bail!("docker import of {} failed ({status})", cache.display());
        }
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
        let status = Command::new("debootstrap")
            .args(["--variant=minbase", &self.suite])
            .arg(&dir)
            .arg(&mirror)
            .stdout(Stdio::null())
            .status()
            .context("running debootstrap (install it with scripts/provision)")?;
        if !status.success() {
            bail!("debootstrap {} from {mirror} failed ({status})", self.suite);
        }
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
        let status = Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .args(["--numeric-owner", "-cf"])
            .arg(&tmp)
            .arg(".")
            .status()
            .context("running tar")?;
        if !status.success() {
            bail!("tar of {} failed ({status})", dir.display());
        }
        std::fs::rename(&tmp, cache).with_context(|| cache.display().to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}

fn image_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
