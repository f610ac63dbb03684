//! A fake NVIDIA GPU at the engine's boundary, for a throwaway engine ([`super::engine`]):
//! what the NVIDIA Container Toolkit puts between dockerd and runc, without a GPU.
//!
//! - `bin/nvidia-container-runtime-hook`: dockerd registers its `nvidia` device driver (what
//!   `--gpus` and a device request with driver `nvidia` use) only when this program is on its
//!   `PATH`, and adds it as the container's OCI prestart hook. The fake records what it was
//!   asked (`NVIDIA_VISIBLE_DEVICES`, capabilities, how many NVIDIA hooks) and passes, or
//!   fails with the real hook's words, by [`Mode`]: no driver, driver too old for the image's
//!   `NVIDIA_REQUIRE_CUDA`, no device.
//! - `bin/nvidia-container-runtime`, registered as the `nvidia` runtime (and, as on many GPU
//!   hosts, the default one): a wrapper around runc that records each `create` and, like the
//!   real one, adds the hook when the container's `NVIDIA_VISIBLE_DEVICES` asks for GPUs.
//! - `cdi/nvidia.yaml`: a CDI spec with `nvidia.com/gpu=0` and `=all` (their edits set an
//!   environment variable), for engines with CDI on.
//!
//! Every record is one JSON line in `records.jsonl`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::sh::cmd;

/// How the fake hook behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    NoDriver,
    OldDriver,
    NoDevice,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Ok => "ok",
            Mode::NoDriver => "no-driver",
            Mode::OldDriver => "old-driver",
            Mode::NoDevice => "no-device",
        }
    }
}

const CDI_SPEC: &str = "cdiVersion: \"0.5.0\"\nkind: nvidia.com/gpu\ndevices:\n  - name: \"0\"\n    containerEdits:\n      env: [\"HEADROOM_FAKE_CDI_GPU=0\"]\n  - name: all\n    containerEdits:\n      env: [\"HEADROOM_FAKE_CDI_GPU=all\"]\n";

/// The fake GPU's directory.
#[derive(Debug)]
pub struct FakeGpu {
    pub dir: PathBuf,
}

impl FakeGpu {
    /// Write the hook, the runtime and the CDI spec into `dir` (mode [`Mode::Ok`]).
    pub fn new(dir: &Path) -> Result<FakeGpu> {
        use std::os::unix::fs::PermissionsExt;
        let python = cmd("sh", ["-c", "command -v python3"])
            .read()
            .context("python3 (the fake GPU's programs are Python)")?;
        let runc = cmd("sh", ["-c", "command -v runc"])
            .read()
            .context("runc (the fake nvidia runtime wraps it)")?;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).with_context(|| bin.display().to_string())?;
        std::fs::create_dir_all(dir.join("cdi")).context("cdi/")?;
        // Absolute interpreter: a hook runs with an empty environment, no PATH.
        for (name, text) in [
            (
                "nvidia-container-runtime-hook",
                include_str!("fake_gpu/hook.py"),
            ),
            (
                "nvidia-container-runtime",
                include_str!("fake_gpu/runtime.py"),
            ),
        ] {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!{python}\n{text}"))
                .with_context(|| path.display().to_string())?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| path.display().to_string())?;
        }
        std::fs::write(dir.join("runc-path"), &runc).context("runc-path")?;
        std::fs::write(dir.join("cdi/nvidia.yaml"), CDI_SPEC).context("cdi/nvidia.yaml")?;
        let gpu = FakeGpu {
            dir: dir.to_path_buf(),
        };
        gpu.set_mode(Mode::Ok)?;
        Ok(gpu)
    }

    /// How the hook behaves from now on.
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        std::fs::write(self.dir.join("mode"), mode.as_str()).context("the fake GPU's mode")
    }

    /// The directory to put first on dockerd's `PATH`.
    pub fn bin(&self) -> PathBuf {
        self.dir.join("bin")
    }

    /// `daemon.json` settings: the `nvidia` runtime registered (the default one when
    /// `default_runtime`), CDI on, with the fake spec's directory.
    pub fn daemon_settings(&self, default_runtime: bool) -> serde_json::Value {
        let mut settings = serde_json::json!({
            "runtimes": {"nvidia": {"path": self.bin().join("nvidia-container-runtime")}},
            "features": {"cdi": true},
            "cdi-spec-dirs": [self.dir.join("cdi")],
        });
        if default_runtime {
            settings["default-runtime"] = "nvidia".into();
        }
        settings
    }

    /// What the hook and the runtime recorded since the last [`FakeGpu::take_records`].
    pub fn take_records(&self) -> Vec<serde_json::Value> {
        let path = self.dir.join("records.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
