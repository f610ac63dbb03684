//! The buildx builder a build runs on, known before it builds: its driver (`docker`,
//! `docker-container`, `remote`, `kubernetes`), where its state lives and how big it is, and
//! its garbage-collection policy; and, after a push, its state freed.
//!
//! A `docker-container` builder (what `docker/setup-buildx-action` makes) keeps BuildKit's
//! snapshots, exported blobs and cache in a volume `buildx_buildkit_<node>_state` on the
//! engine's data root: the same filesystem the engine's images are on, so it counts in the
//! build's disk budget. `docker buildx du` reports what BuildKit itself counts; on a local
//! engine the volume's directory is also measured on disk.
//!
//! Blocking (it runs `docker buildx`): call it from a blocking thread.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::Endpoint;

/// What a builder is, as `docker buildx inspect` and `docker buildx du` tell it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuilderFacts {
    pub name: String,
    /// `docker`, `docker-container`, `remote`, `kubernetes`.
    pub driver: String,
    /// The first node's name (`<name>0` for a container builder).
    pub node: Option<String>,
    /// The volume that holds a `docker-container` builder's state.
    pub state_volume: Option<String>,
    /// That volume's directory on the engine's data root (local engines).
    pub state_dir: Option<PathBuf>,
    /// Bytes BuildKit counts in its state (`docker buildx du`'s total).
    pub du_bytes: Option<u64>,
    /// Bytes the state volume takes on disk (local engines).
    pub state_bytes: Option<u64>,
    /// The GC policy lines `docker buildx inspect` prints (`GC Policy rule#0: …`).
    pub gc_policy: Vec<String>,
}

impl BuilderFacts {
    /// Whether the builder runs BuildKit apart from the engine: its images are not the
    /// engine's, and `--load` copies them over (the `docker` driver builds into the engine).
    pub fn is_separate(&self) -> bool {
        self.driver != "docker"
    }

    /// The state's size: on disk when it could be measured, else BuildKit's count.
    pub fn bytes(&self) -> Option<u64> {
        self.state_bytes.or(self.du_bytes)
    }
}

/// The docker CLI pointed at `endpoint`, as the buildx backend points it (TLS files too).
fn docker(endpoint: &Endpoint, args: &[&str]) -> duct::Expression {
    let mut cmd = duct::cmd("docker", args).env_remove("DOCKER_CONTEXT");
    for (k, v) in endpoint.cli_env() {
        cmd = cmd.env(k, v);
    }
    cmd
}

/// `docker buildx` against `endpoint` with `args`.
fn buildx(endpoint: &Endpoint, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["buildx"];
    all.extend_from_slice(args);
    let out = docker(endpoint, &all)
        .stdin_null()
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .map_err(|e| format!("docker {}: {e}", all.join(" ")))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "docker {} failed: {}",
            all.join(" "),
            text.lines().last().unwrap_or_default()
        ));
    }
    Ok(text)
}

/// The builder `name` (`None`: the one buildx would use, `BUILDX_BUILDER` or the current
/// one), on the engine at `endpoint`.
pub fn inspect(name: Option<&str>, endpoint: &Endpoint) -> Result<BuilderFacts, String> {
    let mut args = vec!["inspect"];
    args.extend(name);
    let text = buildx(endpoint, &args)?;
    let mut facts = parse_inspect(&text);
    if facts.driver == "docker-container"
        && let Some(node) = &facts.node
    {
        let volume = format!("buildx_buildkit_{node}_state");
        // Its directory is read only where the engine is this machine's.
        facts.state_dir = docker(
            endpoint,
            &["volume", "inspect", "--format", "{{.Mountpoint}}", &volume],
        )
        .stderr_null()
        .read()
        .ok()
        .map(|d| PathBuf::from(d.trim()))
        .filter(|d| endpoint.is_local() && d.is_dir());
        facts.state_volume = Some(volume);
    }
    measure(&mut facts, endpoint);
    Ok(facts)
}

/// Read the state's size again (after a build, after a prune).
pub fn measure(facts: &mut BuilderFacts, endpoint: &Endpoint) {
    facts.du_bytes = buildx(endpoint, &["du", "--builder", &facts.name])
        .ok()
        .and_then(|t| parse_du_total(&t));
    facts.state_bytes = facts.state_dir.as_ref().map(|d| {
        headroom_disk::measure(std::slice::from_ref(d))
            .size
            .disk_bytes
    });
}

/// Free the builder's state: `docker buildx prune --all --force`. Its images are in the
/// registry by then; what goes is BuildKit's snapshots, blobs and cache.
pub fn prune(name: &str, endpoint: &Endpoint) -> Result<(), String> {
    buildx(endpoint, &["prune", "--builder", name, "--all", "--force"]).map(|_| ())
}

/// `docker buildx inspect`'s text: the name, the driver, the first node, the GC policy.
pub fn parse_inspect(text: &str) -> BuilderFacts {
    let mut facts = BuilderFacts::default();
    let mut in_nodes = false;
    let mut in_gc = false;
    for line in text.lines() {
        let field = |key: &str| {
            line.strip_prefix(key)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        if line.starts_with("Nodes:") {
            in_nodes = true;
            continue;
        }
        if line.starts_with("GC Policy") {
            in_gc = true;
        } else if in_gc && !line.starts_with(' ') {
            in_gc = false;
        }
        if in_gc {
            facts.gc_policy.push(line.trim_end().to_string());
            continue;
        }
        match (in_nodes, field("Name"), field("Driver")) {
            (false, Some(n), _) => facts.name = n,
            (true, Some(n), _) if facts.node.is_none() => facts.node = Some(n),
            (false, _, Some(d)) => facts.driver = d,
            _ => {}
        }
    }
    facts
}

/// `Total: 1.2GB` of `docker buildx du`.
pub fn parse_du_total(text: &str) -> Option<u64> {
    let line = text.lines().rev().find(|l| l.starts_with("Total:"))?;
    let value = line.trim_start_matches("Total:").trim();
    headroom_disk::parse_size(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSPECT: &str = "Name:          ci\nDriver:        docker-container\n\
        Last Activity: 2026-12-07 04:10:49 +0000 UTC\n\nNodes:\nName:                  ci0\n\
        Endpoint:              unix:///var/run/docker.sock\nStatus:                running\n\
        GC Policy rule#0:\n All:           false\n Keep Bytes:    95.37MiB\n\
        GC Policy rule#1:\n All:        true\n Keep Bytes: 95.37MiB\n";

    #[test]
    fn inspect_gives_the_driver_the_node_and_the_gc_policy() {
        let f = parse_inspect(INSPECT);
        assert_eq!(f.name, "ci");
        assert_eq!(f.driver, "docker-container");
        assert_eq!(f.node.as_deref(), Some("ci0"));
        assert_eq!(f.gc_policy.len(), 6, "{:?}", f.gc_policy);
        assert!(f.is_separate());
        let docker = parse_inspect("Name: default\nDriver: docker\n\nNodes:\nName: default\n");
        assert!(!docker.is_separate());
        assert_eq!(docker.node.as_deref(), Some("default"));
    }

    #[test]
    fn du_total_is_read_in_the_units_buildx_prints() {
        assert_eq!(
            parse_du_total("ID\tRECLAIMABLE\nReclaimable:\t0B\nTotal:\t\t1.5GB\n"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_du_total("Reclaimable:\t0B\nTotal:\t\t0B\n"), Some(0));
        assert_eq!(parse_du_total("nothing"), None);
    }
}
