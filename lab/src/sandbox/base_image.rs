//! Base images, made here because nothing can be pulled: the local Debian base of
//! `cargo xtask base-image` (debootstrap + `docker import`), the stand-in of NVIDIA's CUDA
//! base made on it (`cargo xtask base-image --cuda`), and busybox-static images
//! (headroom-docker's local stand-ins) for tests and the simulator's workload.
//!
//! The CUDA stand-in is `nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04` without the libraries
//! and the driver: its `/opt/nvidia/nvidia_entrypoint.sh` (the parts in `entrypoint.d`, the
//! banner, license text and no-driver WARNING on stdout, then `exec "$@"`) as `ENTRYPOINT`,
//! its whole environment (`cuda_base/image.env`: `NVIDIA_VISIBLE_DEVICES=all`,
//! `NVIDIA_DRIVER_CAPABILITIES`, `NVIDIA_REQUIRE_CUDA`, `CUDA_VERSION=11.8.0`,
//! `NV_CUDNN_VERSION`, `LD_LIBRARY_PATH`, `PATH`), its labels, its user (root) and its
//! paths (`/usr/local/cuda` → `cuda-11.8`, `/NGC-DL-CONTAINER-LICENSE`). The distribution
//! underneath is the local Debian (Python 3.11 rather than Ubuntu's 3.10).

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
    /// Image name to create [default: headroom/debian:bookworm, with --cuda
    /// headroom/cuda:11.8.0-cudnn8-runtime-ubuntu22.04].
    #[arg(long)]
    name: Option<String>,
    /// Make the stand-in of nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 on the Debian base
    /// (NVIDIA's entrypoint, environment, labels, user and paths; no libraries, no driver).
    #[arg(long)]
    cuda: bool,
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

/// The CUDA stand-in's name.
pub const CUDA_BASE: &str = "headroom/cuda:11.8.0-cudnn8-runtime-ubuntu22.04";
/// The Debian base's name.
pub const DEBIAN_BASE: &str = "headroom/debian:bookworm";

/// The files of the CUDA stand-in, as data: path in the image, mode, content.
const CUDA_FILES: &[(&str, u32, &str)] = &[
    (
        "opt/nvidia/nvidia_entrypoint.sh",
        0o755,
        include_str!("cuda_base/nvidia_entrypoint.sh"),
    ),
    (
        "opt/nvidia/entrypoint.d/10-banner.sh",
        0o644,
        include_str!("cuda_base/10-banner.sh"),
    ),
    (
        "opt/nvidia/entrypoint.d/12-license.txt",
        0o644,
        include_str!("cuda_base/12-license.txt"),
    ),
    (
        "opt/nvidia/entrypoint.d/50-gpu-driver-check.sh",
        0o644,
        include_str!("cuda_base/50-gpu-driver-check.sh"),
    ),
    (
        "NGC-DL-CONTAINER-LICENSE",
        0o644,
        include_str!("cuda_base/12-license.txt"),
    ),
    (
        "usr/local/cuda-11.8/version.json",
        0o644,
        "{\"cuda\": {\"name\": \"CUDA SDK\", \"version\": \"11.8.0\"}}\n",
    ),
];

/// The CUDA stand-in's environment (`KEY=VALUE` lines; `#` comments).
pub const CUDA_ENV: &str = include_str!("cuda_base/image.env");

/// `docker commit --change` lines of the CUDA stand-in: its environment, labels, entrypoint.
pub fn cuda_changes() -> Vec<String> {
    let mut changes: Vec<String> = CUDA_ENV
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| format!("ENV {k}=\"{v}\""))
        .collect();
    changes.extend([
        "LABEL maintainer=\"NVIDIA CORPORATION <cudatools@nvidia.com>\"".to_string(),
        "LABEL com.nvidia.cudnn.version=\"8.9.6.50\"".to_string(),
        "LABEL org.opencontainers.image.description=\"headroom's stand-in of nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 (no CUDA libraries, no driver)\"".to_string(),
        "ENTRYPOINT [\"/opt/nvidia/nvidia_entrypoint.sh\"]".to_string(),
        "CMD [\"/bin/bash\"]".to_string(),
    ]);
    changes
}

impl BaseImage {
    pub fn run(self) -> Result<ExitCode> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| if self.cuda { CUDA_BASE } else { DEBIAN_BASE }.to_string());
        if !self.force && image_exists(&name) {
            eprintln!("base-image: {name} exists (use --force to rebuild)");
            println!("{name}");
            return Ok(ExitCode::SUCCESS);
        }
        if self.cuda {
            let debian = BaseImage {
                name: None,
                cuda: false,
                suite: self.suite.clone(),
                mirror: self.mirror.clone(),
                force: false,
            };
            if !image_exists(DEBIAN_BASE) {
                debian.import(DEBIAN_BASE)?;
            }
            make_cuda_base(DEBIAN_BASE, &name)?;
            println!("{name}");
            return Ok(ExitCode::SUCCESS);
        }
        self.import(&name)?;
        println!("{name}");
        Ok(ExitCode::SUCCESS)
    }

    fn import(&self, name: &str) -> Result<()> {
        let cache = crate::repo::project_root()
            .join("target/headroom")
            .join(format!("base-{}.tar", self.suite));
        if self.force || !cache.exists() {
            self.debootstrap(&cache)?;
        }
        eprintln!("base-image: importing {} as {name}", cache.display());
        cmd(
            "docker",
            [
                "import".as_ref(),
                "--change".as_ref(),
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".as_ref(),
                "--change".as_ref(),
                "CMD [\"bash\"]".as_ref(),
                cache.as_os_str(),
                name.as_ref(),
            ],
        )
        .stdout_null()
        .run()?;
        Ok(())
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

/// The CUDA stand-in on `base`: its files copied into a created container, committed with
/// NVIDIA's environment, labels and entrypoint. The container is removed in every case.
pub fn make_cuda_base(base: &str, name: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    eprintln!("base-image: the CUDA stand-in {name} on {base}");
    // Beside the Debian tarball, made afresh each time (nothing is downloaded for it).
    let dir = crate::repo::project_root().join("target/headroom/cuda-base");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    for (path, mode, text) in CUDA_FILES {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        std::fs::write(&file, text).with_context(|| file.display().to_string())?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))
            .with_context(|| file.display().to_string())?;
    }
    for (link, target) in [
        ("usr/local/cuda", "cuda-11.8"),
        ("usr/local/cuda-11", "cuda-11.8"),
    ] {
        std::os::unix::fs::symlink(target, dir.join(link)).with_context(|| link.to_string())?;
    }
    for d in ["usr/local/cuda-11.8/lib64", "usr/local/nvidia"] {
        std::fs::create_dir_all(dir.join(d)).with_context(|| d.to_string())?;
    }
    let id = cmd("docker", ["create", base]).read()?;
    let made = (|| {
        let mut src = dir.as_os_str().to_owned();
        src.push("/.");
        cmd(
            "docker",
            ["cp".as_ref(), src.as_os_str(), format!("{id}:/").as_ref()],
        )
        .run()?;
        let mut args: Vec<String> = vec!["commit".into()];
        for change in cuda_changes() {
            args.push("--change".into());
            args.push(change);
        }
        args.extend([id.clone(), name.to_string()]);
        cmd("docker", &args).stdout_null().run()
    })();
    let removed = cmd("docker", ["rm", "-f", &id]).stdout_null().run();
    made?;
    removed
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
