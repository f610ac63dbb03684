//! The builder GitHub gives you: a buildx `docker-container` builder, as
//! `docker/setup-buildx-action` makes it (`driver: docker-container`), from the BuildKit image
//! `moby/buildkit:buildx-stable-1`.
//!
//! Such a builder runs BuildKit in a container `buildx_buildkit_<name>0` with its state in a
//! volume `buildx_buildkit_<name>0_state` on the engine's data root. It cannot see the engine's
//! images: its `FROM` images come from a registry, so the registries it may reach over plain
//! HTTP (a local one on loopback) are named in its `buildkitd.toml`, and it runs on the host's
//! network (`--driver-opt network=host`) to reach them.
//!
//! No registry can be reached from these machines, so the BuildKit image is loaded from the
//! file `../shared/buildkit/moby-buildkit-*.tar.gz` beside the checkout when the engine lacks
//! it ([`ensure_buildkit_image`]); `scripts/provision` does the same, and pulls it where a
//! registry can be reached.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::sh::cmd;

/// The image buildx's `docker-container` driver starts by default.
pub const BUILDKIT_IMAGE: &str = "moby/buildkit:buildx-stable-1";

/// What a container builder is made with, beyond its name.
#[derive(Debug, Clone, Default)]
pub struct BuilderSpec {
    /// Registries (`HOST:PORT`) the builder reaches over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// BuildKit's garbage collection limits, in bytes, as `[worker.oci]` takes them
    /// (`reservedSpace`, `maxUsedSpace`, `minFreeSpace`); `None` leaves BuildKit's default.
    pub gc: Option<GcLimits>,
    /// The Docker CLI's config directory (`DOCKER_CONFIG`) buildx keeps its builders in; `None`
    /// for the caller's own.
    pub docker_config: Option<PathBuf>,
    /// The engine the builder runs on (`DOCKER_HOST`); `None` for the caller's own.
    pub docker_host: Option<String>,
}

/// BuildKit's garbage collection limits for one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcLimits {
    pub reserved_space: u64,
    pub max_used_space: u64,
    pub min_free_space: u64,
}

/// A running container builder; removed, with its state volume, on drop.
#[derive(Debug)]
pub struct ContainerBuilder {
    name: String,
    docker_config: Option<PathBuf>,
    docker_host: Option<String>,
    config_file: PathBuf,
}

impl ContainerBuilder {
    /// Create and start (`--bootstrap`) the builder `name`, its `buildkitd.toml` written in
    /// `dir`. The BuildKit image must be in the engine ([`ensure_buildkit_image`]).
    pub fn create(name: &str, dir: &Path, spec: &BuilderSpec) -> Result<ContainerBuilder> {
        let has = match &spec.docker_host {
            None => has_image(BUILDKIT_IMAGE),
            Some(host) => cmd("docker", ["image", "inspect", BUILDKIT_IMAGE])
                .env("DOCKER_HOST", host)
                .stdout_null()
                .succeeds(),
        };
        if !has {
            bail!(
                "the engine has no {BUILDKIT_IMAGE}: load it (scripts/provision does, from \
                 ../shared/buildkit/ or a registry)"
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let config_file = dir.join(format!("{name}.buildkitd.toml"));
        std::fs::write(&config_file, buildkitd_toml(spec))
            .with_context(|| format!("writing {}", config_file.display()))?;
        let builder = ContainerBuilder {
            name: name.to_string(),
            docker_config: spec.docker_config.clone(),
            docker_host: spec.docker_host.clone(),
            config_file,
        };
        // A builder of this name left by a killed run goes first.
        builder.remove_quietly();
        let config = builder.config_file.to_string_lossy().into_owned();
        builder
            .buildx([
                "create",
                "--name",
                name,
                "--driver",
                "docker-container",
                "--driver-opt",
                "network=host",
                "--buildkitd-config",
                config.as_str(),
                "--bootstrap",
            ])
            .read()
            .with_context(|| format!("creating the container builder {name}"))?;
        Ok(builder)
    }

    /// The builder's name, for `--builder` and `BUILDX_BUILDER`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container BuildKit runs in.
    pub fn container(&self) -> String {
        format!("buildx_buildkit_{}0", self.name)
    }

    /// The volume that holds BuildKit's state (snapshots, blobs, cache).
    pub fn state_volume(&self) -> String {
        format!("buildx_buildkit_{}0_state", self.name)
    }

    /// The state volume's directory on the engine's data root.
    pub fn state_dir(&self) -> Result<PathBuf> {
        let dir = self
            .docker([
                "volume",
                "inspect",
                "--format",
                "{{.Mountpoint}}",
                self.state_volume().as_str(),
            ])
            .read()?;
        Ok(PathBuf::from(dir.trim()))
    }

    /// The `buildkitd.toml` the builder was made with.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    fn buildx<const N: usize>(&self, args: [&str; N]) -> crate::sh::Cmd {
        let mut all = vec!["buildx"];
        all.extend(args);
        self.docker(all)
    }

    /// The docker CLI for this builder's engine and config.
    fn docker<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> crate::sh::Cmd {
        let mut c = cmd("docker", args);
        if let Some(dir) = &self.docker_config {
            c = c.env("DOCKER_CONFIG", dir);
        }
        if let Some(host) = &self.docker_host {
            c = c.env("DOCKER_HOST", host);
        }
        c
    }

    fn remove_quietly(&self) {
        let _ = self.buildx(["rm", "--force", self.name.as_str()]).output();
        // A builder that buildx no longer knows can still have left its container and volume.
        let _ = self
            .docker(["rm", "--force", self.container().as_str()])
            .output();
        let _ = self
            .docker(["volume", "rm", "--force", self.state_volume().as_str()])
            .output();
    }
}

impl Drop for ContainerBuilder {
    fn drop(&mut self) {
        self.remove_quietly();
    }
}

/// The `buildkitd.toml` for `spec`.
pub fn buildkitd_toml(spec: &BuilderSpec) -> String {
    let mut out = String::new();
    for host in &spec.insecure_registries {
        out.push_str(&format!("[registry.\"{host}\"]\n  http = true\n\n"));
    }
    if let Some(gc) = spec.gc {
        out.push_str(&format!(
            "[worker.oci]\n  gc = true\n  reservedSpace = {}\n  maxUsedSpace = {}\n  \
             minFreeSpace = {}\n",
            gc.reserved_space, gc.max_used_space, gc.min_free_space
        ));
    }
    out
}

/// Whether the engine has `image`.
pub fn has_image(image: &str) -> bool {
    cmd("docker", ["image", "inspect", image])
        .stdout_null()
        .succeeds()
}

/// Make sure the engine has [`BUILDKIT_IMAGE`]: load it from the BuildKit archive beside the
/// checkout (`../shared/buildkit/*.tar.gz`) when it is missing. Errors say where it was looked
/// for.
pub fn ensure_buildkit_image(repo: &Path) -> Result<()> {
    if has_image(BUILDKIT_IMAGE) {
        return Ok(());
    }
    let dir = repo
        .parent()
        .map(|p| p.join("shared/buildkit"))
        .unwrap_or_default();
    let archive = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
    });
    let Some(archive) = archive else {
        bail!(
            "the engine has no {BUILDKIT_IMAGE} and {} holds no BuildKit archive (*.tar.gz): \
             run scripts/provision where a registry can be reached",
            dir.display()
        );
    };
    cmd("gunzip", ["-c".as_ref(), archive.as_os_str()])
        .pipe(cmd("docker", ["load"]))
        .stdout_null()
        .run()
        .with_context(|| format!("loading {}", archive.display()))?;
    if !has_image(BUILDKIT_IMAGE) {
        bail!("{} did not hold {BUILDKIT_IMAGE}", archive.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_each_insecure_registry_and_the_gc_limits() {
        let spec = BuilderSpec {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            gc: Some(GcLimits {
                reserved_space: 1,
                max_used_space: 2,
                min_free_space: 3,
            }),
            docker_config: None,
            docker_host: None,
        };
        let text = buildkitd_toml(&spec);
        let doc: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(
            doc["registry"]["127.0.0.1:5000"]["http"].as_bool(),
            Some(true)
        );
        assert_eq!(doc["worker"]["oci"]["maxUsedSpace"].as_integer(), Some(2));
        assert_eq!(buildkitd_toml(&BuilderSpec::default()), "");
    }
}
