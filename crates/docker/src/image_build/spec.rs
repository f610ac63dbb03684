//! What to build: the [`BuildSpec`], its build secrets, and the backend asked for.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which backend builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Engine,
    Buildx,
    #[default]
    Auto,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "engine" => Ok(BackendChoice::Engine),
            "buildx" => Ok(BackendChoice::Buildx),
            "auto" => Ok(BackendChoice::Auto),
            other => Err(format!(
                "unknown backend {other:?} (engine, buildx or auto)"
            )),
        }
    }
}

/// The backend that actually built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Engine,
    Buildx,
}

/// Where a buildx build puts the image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Into the engine's image store (`--load`; one platform only).
    #[default]
    Load,
    /// Straight from the builder to the registry (`--push`), nothing into the engine.
    Push,
}

/// A build secret: made available to `RUN --mount=type=secret,id=ID`, never stored in a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub id: String,
    pub src: PathBuf,
}

impl std::str::FromStr for SecretSpec {
    type Err = String;
    /// `id=NAME,src=PATH` (as buildx takes it) or `NAME=PATH`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some((k, v)) if id.is_none() && src.is_none() && !s.contains(',') => {
                    id = Some(k.to_string());
                    src = Some(PathBuf::from(v));
                }
                _ => return Err(format!("secret {s:?}: expected id=NAME,src=PATH")),
            }
        }
        match (id, src) {
            (Some(id), Some(src)) if !id.is_empty() => Ok(SecretSpec { id, src }),
            _ => Err(format!("secret {s:?}: expected id=NAME,src=PATH")),
        }
    }
}

/// What to build.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildSpec {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// Repository without tag, e.g. `127.0.0.1:5000/ns/app`.
    pub image: String,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    pub secrets: Vec<SecretSpec>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    /// A buildx builder (a remote BuildKit, a cluster).
    pub builder: Option<String>,
    pub provenance: Option<bool>,
    pub sbom: Option<bool>,
    pub no_cache: bool,
    /// Where buildx puts the image (the engine backend always builds into the engine).
    pub output: Output,
    /// Credentials buildx must use for these registries (a private registry cache, the
    /// registry pushed to) that it would not find in Docker's config: those resolved from
    /// the environment or `--password-stdin`. Handed to buildx through a private Docker
    /// config for the one build (see [`client_config`]); never serialized.
    #[serde(skip)]
    pub registry_logins: Vec<crate::auth::Credentials>,
}

impl BuildSpec {
    /// `image:tag` for every tag.
    pub fn references(&self) -> Vec<String> {
        self.tags
            .iter()
            .map(|t| format!("{}:{t}", self.image))
            .collect()
    }

    /// Features only BuildKit through buildx provides.
    pub fn needs_buildx(&self) -> Vec<&'static str> {
        let mut why = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&self.dockerfile) {
            why.extend(buildkit_syntax(&text));
        }
        if !self.secrets.is_empty() {
            why.push("build secrets");
        }
        if !self.cache_to.is_empty() {
            why.push("cache export");
        }
        if self.cache_from.iter().any(|c| c.contains("type=")) {
            why.push("cache import");
        }
        if self.platforms.len() > 1 {
            why.push("several platforms");
        }
        if self.builder.is_some() {
            why.push("a named builder");
        }
        if self.provenance.is_some() || self.sbom.is_some() {
            why.push("provenance/SBOM");
        }
        why
    }
}

/// Dockerfile syntax the classic builder does not know: `RUN --mount`, heredocs,
/// `COPY --link`/`--chmod` and `ADD --checksum`.
pub fn buildkit_syntax(dockerfile: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for line in dockerfile.lines().map(str::trim_start) {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with('#') {
            continue;
        }
        if upper.starts_with("RUN ") && line.contains("--mount=") && !found.contains(&"RUN --mount")
        {
            found.push("RUN --mount");
        }
        if line.contains("<<") && !found.contains(&"heredocs") {
            found.push("heredocs");
        }
        if (upper.starts_with("COPY ") || upper.starts_with("ADD "))
            && (line.contains("--link") || line.contains("--chmod") || line.contains("--checksum"))
            && !found.contains(&"COPY/ADD --link, --chmod or --checksum")
        {
            found.push("COPY/ADD --link, --chmod or --checksum");
        }
    }
    found
}
