//! Building an image through one interface with two backends: the Engine API (bollard,
//! classic builder) and `docker buildx build` (BuildKit: secrets, cache import/export,
//! several platforms, remote builders, provenance/SBOM).

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use base64::Engine as _;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::context::{ContextOptions, plan_context, stream_tar};
use crate::engine::Engine;

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

/// Progress of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A step (instruction) started; `cached` when it came from the cache.
    Step { name: String, cached: bool },
    /// A line of build output.
    Line(String),
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

/// A finished build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildOutcome {
    pub backend: Option<Backend>,
    pub image_id: Option<String>,
    pub references: Vec<String>,
    pub steps: u32,
    pub cached_steps: u32,
    pub seconds: f64,
    pub last_lines: Vec<String>,
}

/// A failed build: the step that failed, the last lines, and whether the disk was full.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct BuildError {
    pub message: String,
    pub failing_step: Option<String>,
    pub last_lines: Vec<String>,
    pub no_space: bool,
}

impl BuildError {
    fn new(
        message: impl Into<String>,
        failing_step: Option<String>,
        last_lines: Vec<String>,
    ) -> Self {
        let message = message.into();
        let no_space = is_no_space(&message) || last_lines.iter().any(|l| is_no_space(l));
        BuildError {
            message,
            failing_step,
            last_lines,
            no_space,
        }
    }
}

/// True for the ways a full disk shows up in build output.
pub fn is_no_space(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("no space left on device")
        || t.contains("enospc")
        || t.contains("disk quota exceeded")
}

const KEEP_LINES: usize = 40;

/// Keeps the last lines of output for error reports.
#[derive(Debug, Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &str) {
        for l in line.lines() {
            let l = l.trim_end();
            if l.is_empty() {
                continue;
            }
            if self.lines.len() == KEEP_LINES {
                self.lines.pop_front();
            }
            self.lines.push_back(l.to_string());
        }
    }
    fn take(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// Pick the backend: `auto` takes buildx when it is installed and the build asks for
/// something only buildx does, else the engine.
pub fn choose_backend(choice: BackendChoice, spec: &BuildSpec) -> Result<Backend, BuildError> {
    let needs = spec.needs_buildx();
    match choice {
        BackendChoice::Buildx => Ok(Backend::Buildx),
        BackendChoice::Engine if !needs.is_empty() => Err(BuildError::new(
            format!(
                "the engine backend cannot do {}: use --backend buildx (or auto)",
                needs.join(", ")
            ),
            None,
            Vec::new(),
        )),
        BackendChoice::Engine => Ok(Backend::Engine),
        BackendChoice::Auto if needs.is_empty() => Ok(Backend::Engine),
        BackendChoice::Auto if buildx_available() => Ok(Backend::Buildx),
        BackendChoice::Auto => Err(BuildError::new(
            format!(
                "this build needs docker buildx for {}, and `docker buildx version` failed: \
                 install the buildx plugin (scripts/provision does)",
                needs.join(", ")
            ),
            None,
            Vec::new(),
        )),
    }
}

/// Whether the `docker buildx` plugin answers.
pub fn buildx_available() -> bool {
    duct::cmd("docker", ["buildx", "version"])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|o| o.status.success())
}

/// Build `spec` with `backend` on `engine`, reporting progress to `on_event`.
pub async fn build(
    engine: &Engine,
    backend: Backend,
    spec: &BuildSpec,
    on_event: &(dyn Fn(BuildEvent) + Send + Sync),
) -> Result<BuildOutcome, BuildError> {
    if spec.tags.is_empty() {
        return Err(BuildError::new("no tags to build", None, Vec::new()));
    }
    let start = Instant::now();
    let mut outcome = match backend {
        Backend::Engine => build_engine(engine, spec, on_event).await?,
        Backend::Buildx => {
            let started = start_buildx(&engine.endpoint, spec)?;
            // If this future is dropped (Ctrl-C, SIGTERM), the child must not build on.
            let _kill = KillOnDrop(std::sync::Arc::clone(&started.reader), started.dir.clone());
            // buildx's output is read on a blocking thread.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let task = tokio::task::spawn_blocking(move || read_buildx(started, &tx));
            while let Some(event) = rx.recv().await {
                on_event(event);
            }
            task.await
                .map_err(|e| BuildError::new(format!("buildx task: {e}"), None, Vec::new()))??
        }
    };
    outcome.backend = Some(backend);
    outcome.references = spec.references();
    outcome.seconds = start.elapsed().as_secs_f64();
    // One tag per build request: add the others.
    if backend == Backend::Engine {
        for reference in spec.references().iter().skip(1) {
            let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
            let id = outcome.image_id.clone().unwrap_or_default();
            let options = bollard::query_parameters::TagImageOptionsBuilder::default()
                .repo(repo)
                .tag(tag)
                .build();
            engine
                .docker
                .tag_image(&id, Some(options))
                .await
                .map_err(|e| {
                    BuildError::new(format!("tagging {reference}: {e}"), None, Vec::new())
                })?;
        }
    }
    Ok(outcome)
}

async fn build_engine(
    engine: &Engine,
    spec: &BuildSpec,
    on_event: &(dyn Fn(BuildEvent) + Send + Sync),
) -> Result<BuildOutcome, BuildError> {
    let plan = plan_context(&ContextOptions {
        root: spec.context.clone(),
        dockerfile: spec.dockerfile.clone(),
    })
    .map_err(|e| BuildError::new(e.to_string(), None, Vec::new()))?;
    let dockerfile_in_tar = plan.dockerfile_name().to_string();
    let (body, writer) = stream_tar(plan);
    let first = spec.references().remove(0);
    let build_args: HashMap<String, String> = spec.build_args.clone().into_iter().collect();
    let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&dockerfile_in_tar)
        .t(&first)
        .rm(true)
        .forcerm(true)
        .nocache(spec.no_cache)
        .buildargs(&build_args)
        .labels(&labels);
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    if let Some(platform) = spec.platforms.first() {
        options = options.platform(platform);
    }
    if !spec.cache_from.is_empty() {
        options = options.cachefrom(&spec.cache_from);
    }
    let mut stream =
        engine
            .docker
            .build_image(options.build(), None, Some(bollard::body_try_stream(body)));
    let mut tail = Tail::default();
    let mut outcome = BuildOutcome::default();
    let mut current_step: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    tail.push(text);
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        if let Some(step) = line.strip_prefix("Step ") {
                            outcome.steps += 1;
                            current_step = Some(format!("Step {step}"));
                            on_event(BuildEvent::Step {
                                name: format!("Step {step}"),
                                cached: false,
                            });
                        } else if line.trim() == "---> Using cache" {
                            outcome.cached_steps += 1;
                            if let Some(step) = &current_step {
                                on_event(BuildEvent::Step {
                                    name: step.clone(),
                                    cached: true,
                                });
                            }
                        } else {
                            on_event(BuildEvent::Line(line.to_string()));
                        }
                    }
                }
                if let Some(id) = info.aux.and_then(|a| a.id) {
                    outcome.image_id = Some(id);
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                tail.push(&message);
                // Drain the context writer so its thread ends.
                drop(stream);
                let _ = writer.await;
                return Err(BuildError::new(
                    format!(
                        "build failed{}: {message}",
                        current_step
                            .as_ref()
                            .map(|s| format!(" at {s}"))
                            .unwrap_or_default()
                    ),
                    current_step,
                    tail.take(),
                ));
            }
        }
    }
    match writer.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(BuildError::new(
                format!("build context: {e}"),
                None,
                tail.take(),
            ));
        }
        Err(e) => {
            return Err(BuildError::new(
                format!("build context: {e}"),
                None,
                tail.take(),
            ));
        }
    }
    outcome.last_lines = tail.take();
    if outcome.image_id.is_none() {
        // Older engines report only "Successfully built <id>".
        outcome.image_id = engine
            .docker
            .inspect_image(&first)
            .await
            .ok()
            .and_then(|i| i.id);
    }
    Ok(outcome)
}

/// The arguments of `docker buildx build` for `spec`; `metadata` receives the result.
pub fn buildx_args(spec: &BuildSpec, metadata: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "buildx".into(),
        "build".into(),
        "--progress=rawjson".into(),
        "--metadata-file".into(),
        metadata.display().to_string(),
        "--file".into(),
        spec.dockerfile.display().to_string(),
    ];
    let mut pair = |flag: &str, value: String| {
        args.push(flag.to_string());
        args.push(value);
    };
    for r in spec.references() {
        pair("--tag", r);
    }
    for (k, v) in &spec.build_args {
        pair("--build-arg", format!("{k}={v}"));
    }
    for (k, v) in &spec.labels {
        pair("--label", format!("{k}={v}"));
    }
    if let Some(t) = &spec.target {
        pair("--target", t.clone());
    }
    if !spec.platforms.is_empty() {
        pair("--platform", spec.platforms.join(","));
    }
    for s in &spec.secrets {
        pair("--secret", format!("id={},src={}", s.id, s.src.display()));
    }
    for c in &spec.cache_from {
        pair("--cache-from", c.clone());
    }
    for c in &spec.cache_to {
        pair("--cache-to", c.clone());
    }
    if let Some(b) = &spec.builder {
        pair("--builder", b.clone());
    }
    if let Some(p) = spec.provenance {
        args.push(format!("--provenance={p}"));
    }
    if let Some(s) = spec.sbom {
        args.push(format!("--sbom={s}"));
    }
    if spec.no_cache {
        args.push("--no-cache".into());
    }
    // Several platforms cannot be loaded into the engine's store; one can.
    if spec.platforms.len() <= 1 {
        args.push("--load".into());
    }
    args.push(spec.context.display().to_string());
    args
}

/// One line of `--progress=rawjson`.
#[derive(Debug, Default, Deserialize)]
struct RawStatus {
    #[serde(default)]
    vertexes: Vec<RawVertex>,
    #[serde(default)]
    logs: Vec<RawLog>,
}

#[derive(Debug, Default, Deserialize)]
struct RawVertex {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cached: bool,
    #[serde(default)]
    started: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawLog {
    #[serde(default)]
    data: String,
}

/// A running `docker buildx build`.
struct Buildx {
    reader: std::sync::Arc<duct::ReaderHandle>,
    dir: PathBuf,
    metadata: PathBuf,
}

/// Kills the buildx child when the build is abandoned (a no-op once it has exited), and
/// removes the Docker config written for it at once: the registry credentials in it must
/// not outlive the build, also when the process exits right after (SIGTERM).
struct KillOnDrop(std::sync::Arc<duct::ReaderHandle>, PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = std::fs::remove_dir_all(self.1.join("docker-config"));
    }
}

fn start_buildx(
    endpoint: &crate::engine::Endpoint,
    spec: &BuildSpec,
) -> Result<Buildx, BuildError> {
    let dir =
        tempfile_dir().map_err(|e| BuildError::new(format!("temp dir: {e}"), None, Vec::new()))?;
    let metadata = dir.join("metadata.json");
    let args = buildx_args(spec, &metadata);
    let mut cmd = duct::cmd("docker", &args).env("DOCKER_HOST", &endpoint.host);
    if !spec.registry_logins.is_empty() {
        let original = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        let config =
            client_config(&dir, original.as_deref(), &spec.registry_logins).map_err(|e| {
                let _ = std::fs::remove_dir_all(&dir);
                BuildError::new(
                    format!("writing buildx's Docker config for the registry credentials: {e}"),
                    None,
                    Vec::new(),
                )
            })?;
        cmd = cmd.env("DOCKER_CONFIG", config);
    }
    if let Some(tls) = &endpoint.tls
        && let Some(d) = tls.ca.parent()
    {
        cmd = cmd.env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", d);
    }
    // rawjson progress goes to stderr; merge it into the stream we read.
    let reader = cmd
        .stderr_to_stdout()
        .stdin_null()
        .unchecked()
        .reader()
        .map_err(|e| BuildError::new(format!("docker buildx: {e}"), None, Vec::new()))?;
    Ok(Buildx {
        reader: std::sync::Arc::new(reader),
        dir,
        metadata,
    })
}

fn read_buildx(
    started: Buildx,
    tx: &tokio::sync::mpsc::UnboundedSender<BuildEvent>,
) -> Result<BuildOutcome, BuildError> {
    let Buildx {
        reader,
        dir,
        metadata,
    } = started;
    let reader = &*reader;
    let mut tail = Tail::default();
    let mut outcome = BuildOutcome::default();
    let mut seen: HashMap<String, (bool, bool)> = HashMap::new(); // digest -> (started, cached)
    let mut failing: Option<String> = None;
    let mut error: Option<String> = None;
    // rawjson prints one JSON object per status, pretty-printed over several lines; other
    // lines (buildx's own errors) are plain text.
    let mut pending = String::new();
    for line in std::io::BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if pending.is_empty() && !line.starts_with('{') {
            tail.push(&line);
            let _ = tx.send(BuildEvent::Line(line));
            continue;
        }
        pending.push_str(&line);
        pending.push('\n');
        let status = match serde_json::from_str::<RawStatus>(&pending) {
            Ok(status) => status,
            Err(e) if e.is_eof() => continue,
            Err(_) => {
                // Not JSON after all: show it as text.
                for l in pending.lines() {
                    tail.push(l);
                    let _ = tx.send(BuildEvent::Line(l.to_string()));
                }
                pending.clear();
                continue;
            }
        };
        pending.clear();
        for v in status.vertexes {
            let entry = seen.entry(v.digest.clone()).or_insert((false, false));
            if v.started.is_some() && !entry.0 {
                entry.0 = true;
                if is_step(&v.name) {
                    outcome.steps += 1;
                }
                if !v.cached {
                    let _ = tx.send(BuildEvent::Step {
                        name: v.name.clone(),
                        cached: false,
                    });
                }
            }
            if v.cached && !entry.1 {
                entry.1 = true;
                if is_step(&v.name) {
                    outcome.cached_steps += 1;
                }
                let _ = tx.send(BuildEvent::Step {
                    name: v.name.clone(),
                    cached: true,
                });
            }
            // Keep the first real error: later ones are usually "context canceled" echoes,
            // and some (a missing cache to import) do not fail the build at all.
            if let Some(e) = v
                .error
                .filter(|e| !e.is_empty() && !e.contains("context canceled"))
                && error.is_none()
            {
                failing = Some(v.name.clone());
                error = Some(e);
            }
        }
        for log in status.logs {
            if let Ok(data) = base64::engine::general_purpose::STANDARD.decode(&log.data) {
                let text = String::from_utf8_lossy(&data).into_owned();
                tail.push(&text);
                for l in text.lines() {
                    let _ = tx.send(BuildEvent::Line(l.to_string()));
                }
            }
        }
    }
    let status = reader
        .try_wait()
        .ok()
        .flatten()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let meta: serde_json::Value = std::fs::read_to_string(&metadata)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    // buildx's exit status decides; a vertex error alone (e.g. a cache that could not be
    // imported) does not fail a build that completed.
    if !status {
        // buildx ends with its own `ERROR: …` line and hints after it: the error says why.
        let message = error
            .or_else(|| {
                tail.lines
                    .iter()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("ERROR: ").map(str::to_string))
            })
            .or_else(|| tail.lines.back().cloned())
            .unwrap_or_else(|| "docker buildx build failed".into());
        return Err(BuildError::new(
            format!(
                "build failed{}: {message}",
                failing
                    .as_ref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default()
            ),
            failing,
            tail.take(),
        ));
    }
    outcome.image_id = meta["containerimage.config.digest"]
        .as_str()
        .map(String::from);
    outcome.last_lines = tail.take();
    Ok(outcome)
}

/// BuildKit vertices for Dockerfile instructions are named `[stage n/m] INSTR …`.
fn is_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]")
}

/// A Docker config directory under `dir` for one buildx run: the user's (`original`) as it
/// is — its other entries (buildx's builders, contexts, plugins) linked, its `config.json`
/// copied — with `logins` added to `auths`, since buildx (not the engine) authenticates to
/// the registries of a cache and reads only Docker's config. An entry of `credHelpers` for
/// one of those registries is dropped (it would win over `auths`), and so is `credsStore`
/// (which would be asked instead of `auths` for every registry). The directory is 0700, the
/// file 0600, and both go with `dir` when the build ends.
pub fn client_config(
    dir: &std::path::Path,
    original: Option<&std::path::Path>,
    logins: &[crate::auth::Credentials],
) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let config_dir = dir.join("docker-config");
    std::fs::DirBuilder::new().mode(0o700).create(&config_dir)?;
    let mut config = serde_json::Map::new();
    if let Some(original) = original {
        if let Ok(entries) = std::fs::read_dir(original) {
            for e in entries.flatten() {
                if e.file_name() != "config.json" {
                    std::os::unix::fs::symlink(e.path(), config_dir.join(e.file_name()))?;
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(original.join("config.json")) {
            let parsed: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", original.join("config.json").display()),
                )
            })?;
            if let serde_json::Value::Object(map) = parsed {
                config = map;
            }
        }
    }
    config.remove("credsStore");
    let mut auths = match config.remove("auths") {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let mut helpers = match config.remove("credHelpers") {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for login in logins {
        helpers.remove(&login.server);
        if login.server == crate::auth::DOCKER_HUB_SERVER {
            helpers.remove(crate::auth::DOCKER_HUB_HOST);
            helpers.remove("index.docker.io");
        }
        let entry = if login.is_identity_token() {
            serde_json::json!({ "identitytoken": login.password.expose() })
        } else {
            let pair = format!("{}:{}", login.username, login.password.expose());
            serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(pair) })
        };
        auths.insert(login.server.clone(), entry);
    }
    config.insert("auths".into(), serde_json::Value::Object(auths));
    if !helpers.is_empty() {
        config.insert("credHelpers".into(), serde_json::Value::Object(helpers));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(config_dir.join("config.json"))?;
    std::io::Write::write_all(
        &mut file,
        &serde_json::to_vec(&serde_json::Value::Object(config)).unwrap_or_default(),
    )?;
    Ok(config_dir)
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "headroom-buildx-{}-{}",
        std::process::id(),
        crate::random_u64() as u32
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_gets_the_users_config_plus_the_given_credentials() {
        use std::os::unix::fs::PermissionsExt;
        let user = tempfile::tempdir().unwrap();
        std::fs::create_dir(user.path().join("buildx")).unwrap();
        std::fs::write(
            user.path().join("config.json"),
            r#"{"auths":{"other.example":{"auth":"b3RoZXI6cHc="}},"credsStore":"desktop",
               "credHelpers":{"reg.example:5000":"ecr-login","gcr.io":"gcloud"},"proxies":{"default":{}}}"#,
        )
        .unwrap();
        let run = tempfile::tempdir().unwrap();
        let login = crate::auth::Credentials {
            username: "u".into(),
            password: crate::auth::Secret::new("s3cret"),
            server: "reg.example:5000".into(),
            source: crate::auth::CredentialSource::Stdin,
        };
        let dir = client_config(run.path(), Some(user.path()), &[login]).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("config.json")), 0o600);
        assert!(dir.join("buildx").is_dir(), "buildx's builders are kept");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(v["auths"]["reg.example:5000"]["auth"], "dTpzM2NyZXQ=");
        assert_eq!(v["auths"]["other.example"]["auth"], "b3RoZXI6cHc=");
        assert_eq!(v["credHelpers"], serde_json::json!({"gcr.io": "gcloud"}));
        assert!(v.get("credsStore").is_none());
        assert_eq!(v["proxies"], serde_json::json!({"default": {}}));
        // The user's own file is untouched.
        assert!(
            std::fs::read_to_string(user.path().join("config.json"))
                .unwrap()
                .contains("desktop")
        );
    }

    #[test]
    fn secrets_parse_both_forms() {
        let s: SecretSpec = "id=ca,src=/etc/ssl/certs/ca-certificates.crt"
            .parse()
            .unwrap();
        assert_eq!(s.id, "ca");
        let s: SecretSpec = "ca=/x".parse().unwrap();
        assert_eq!(s.src, PathBuf::from("/x"));
        assert!("nonsense".parse::<SecretSpec>().is_err());
        assert!("id=,src=/x".parse::<SecretSpec>().is_err());
    }

    #[test]
    fn auto_takes_the_engine_unless_buildx_is_needed() {
        let mut spec = BuildSpec {
            tags: vec!["latest".into()],
            ..BuildSpec::default()
        };
        assert_eq!(
            choose_backend(BackendChoice::Auto, &spec).unwrap(),
            Backend::Engine
        );
        spec.secrets.push("id=a,src=/b".parse().unwrap());
        let err = choose_backend(BackendChoice::Engine, &spec).unwrap_err();
        assert!(err.message.contains("build secrets") && err.message.contains("buildx"));
    }

    #[test]
    fn buildx_arguments_carry_every_feature() {
        let spec = BuildSpec {
            context: "ctx".into(),
            dockerfile: "ctx/Dockerfile".into(),
            image: "r/app".into(),
            tags: vec!["latest".into(), "sha-abc1234".into()],
            cache_to: vec!["type=inline".into()],
            cache_from: vec!["type=registry,ref=r/app:latest".into()],
            secrets: vec!["id=ca,src=/ca.pem".parse().unwrap()],
            provenance: Some(false),
            ..BuildSpec::default()
        };
        let args = buildx_args(&spec, std::path::Path::new("/m.json")).join(" ");
        for want in [
            "--tag r/app:latest",
            "--tag r/app:sha-abc1234",
            "--cache-to type=inline",
            "--cache-from type=registry,ref=r/app:latest",
            "--secret id=ca,src=/ca.pem",
            "--provenance=false",
            "--load",
            "--metadata-file /m.json",
        ] {
            assert!(args.contains(want), "{want} not in {args}");
        }
        assert!(args.ends_with(" ctx"));
    }

    #[test]
    fn buildkit_only_syntax_is_found() {
        assert_eq!(
            buildkit_syntax("FROM x\nRUN --mount=type=secret,id=ca true\n"),
            ["RUN --mount"]
        );
        assert_eq!(
            buildkit_syntax("FROM x\nRUN <<EOF\necho\nEOF\n"),
            ["heredocs"]
        );
        assert!(buildkit_syntax("FROM x\n# RUN --mount=type=cache\nRUN true\n").is_empty());
    }

    #[test]
    fn no_space_is_recognised() {
        assert!(is_no_space("write /x: no space left on device"));
        assert!(!is_no_space("exit code 1"));
    }
}
