//! The buildx backend: `docker buildx build` (BuildKit: secrets, cache import/export,
//! several platforms, remote builders, provenance/SBOM), its `rawjson` progress read as it
//! comes, and the private Docker config that hands it registry credentials for one build.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::outcome::{BuildError, BuildEvent, BuildOutcome, BuildProgress, Tail};
use super::spec::{BuildSpec, Output};
use crate::engine::Engine;

/// Whether the `docker buildx` plugin answers.
pub fn buildx_available() -> bool {
    duct::cmd("docker", ["buildx", "version"])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|o| o.status.success())
}

/// Build `spec` with `docker buildx build` against `engine`'s endpoint; buildx's output is
/// read on a blocking thread and its events handed to `progress` here.
pub(super) async fn build(
    engine: &Engine,
    spec: &BuildSpec,
    progress: &dyn BuildProgress,
) -> Result<BuildOutcome, BuildError> {
    let started = start_buildx(&engine.endpoint, spec)?;
    // If this future is dropped (Ctrl-C, SIGTERM), the child must not build on.
    let _kill = KillOnDrop(std::sync::Arc::clone(&started.reader), started.dir.clone());
    // buildx's output is read on a blocking thread.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::task::spawn_blocking(move || read_buildx(started, &tx));
    while let Some(event) = rx.recv().await {
        progress.event(event);
    }
    task.await
        .map_err(|e| BuildError::new(format!("buildx task: {e}"), None, Vec::new()))?
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
        pair("--cache-to", cache_export(c));
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
    match spec.output {
        // Several platforms cannot be loaded into the engine's store; one can.
        Output::Load if spec.platforms.len() <= 1 => args.push("--load".into()),
        Output::Load => {}
        Output::Push => args.push("--push".into()),
    }
    args.push(spec.context.display().to_string());
    args
}

/// A cache export as buildx is given it: `ignore-error=true` added unless the user set
/// `ignore-error` (a cache that cannot be written must not fail a build whose image is
/// done; the failure is reported as a warning instead). `type=inline` has no export of its
/// own and is left as it is.
pub fn cache_export(spec: &str) -> String {
    let keys = spec
        .split(',')
        .map(|kv| kv.split('=').next().unwrap_or("").trim());
    let mut inline = false;
    for (i, kv) in spec.split(',').enumerate() {
        inline |= kv.trim() == "type=inline" || (i == 0 && kv.trim() == "inline");
    }
    if inline || keys.clone().any(|k| k == "ignore-error") {
        return spec.to_string();
    }
    format!("{spec},ignore-error=true")
}

/// Whether a BuildKit vertex is a cache export ("exporting cache to registry", "exporting
/// to GitHub Actions Cache", …).
fn is_cache_export(name: &str) -> bool {
    name.starts_with("exporting") && name.to_ascii_lowercase().contains("cache")
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
    /// The image goes to the registry (`--push`).
    pushed: bool,
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
        pushed: spec.output == Output::Push,
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
        pushed,
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
            let real = v
                .error
                .filter(|e| !e.is_empty() && !e.contains("context canceled"));
            if let Some(e) = real.as_ref().filter(|_| is_cache_export(&v.name)) {
                let warning = format!("{}: {e}", v.name);
                if !outcome.cache_warnings.contains(&warning) {
                    outcome.cache_warnings.push(warning);
                }
            }
            // Keep the first real error: later ones are usually "context canceled" echoes,
            // and some (a missing cache to import) do not fail the build at all.
            if let Some(e) = real
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
    outcome.pushed_digest = meta["containerimage.digest"]
        .as_str()
        .filter(|_| pushed)
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
