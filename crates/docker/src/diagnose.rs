//! What to show when something fails: how full the data root's filesystem is, and Docker's
//! own disk usage (images, containers, build cache, volumes) with what is reclaimable.

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineFacts};

/// One row of `docker system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub kind: String,
    pub total_count: String,
    pub active: String,
    pub size: String,
    pub reclaimable: String,
}

/// The figures that explain a failure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Diagnostics {
    pub data_root: Option<String>,
    pub filesystem: Option<headroom_disk::FsUsage>,
    pub docker_usage: Vec<UsageRow>,
    pub notes: Vec<String>,
}

/// Gather diagnostics; never fails (what cannot be read becomes a note).
pub async fn diagnose(engine: &Engine, facts: Option<&EngineFacts>) -> Diagnostics {
    let mut d = Diagnostics::default();
    let data_root = match facts {
        Some(f) => f.data_root.clone(),
        None => engine.facts().await.ok().and_then(|f| f.data_root),
    };
    if let Some(root) = &data_root {
        d.data_root = Some(root.display().to_string());
        // Only meaningful when the engine is local; a remote data root is not on this machine.
        if engine.endpoint.host.starts_with("unix://") {
            match headroom_disk::usage(root) {
                Ok(u) => d.filesystem = Some(u),
                Err(e) => d.notes.push(format!("data root: {e}")),
            }
        }
    }
    match system_df(engine).await {
        Ok(rows) => d.docker_usage = rows,
        Err(e) => d.notes.push(e),
    }
    d
}

/// Bytes the engine's images, containers, volumes and build cache take, as `docker system
/// df` counts them: the disk of an engine that is not on this machine.
pub async fn engine_used_bytes(engine: &Engine) -> Result<u64, String> {
    let rows = system_df(engine).await?;
    rows.iter()
        .map(|r| {
            headroom_disk::parse_size(&r.size)
                .map_err(|e| format!("docker system df: {:?} size {:?}: {e}", r.kind, r.size))
        })
        .sum()
}

/// `docker system df`, one row per kind. The CLI answers in every engine's schema; bollard's
/// model follows the newest API and leaves older engines' fields empty.
pub async fn system_df(engine: &Engine) -> Result<Vec<UsageRow>, String> {
    let args = ["system", "df", "--format", "{{json .}}"]
        .map(String::from)
        .to_vec();
    let stdout = engine
        .endpoint
        .cli("docker system df", args)
        .await
        .map_err(|e| e.lines().next().unwrap_or_default().to_string())?;
    let mut rows = Vec::new();
    for line in stdout.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            rows.push(UsageRow {
                kind: s("Type"),
                total_count: s("TotalCount"),
                active: s("Active"),
                size: s("Size"),
                reclaimable: s("Reclaimable"),
            });
        }
    }
    Ok(rows)
}

impl Diagnostics {
    /// Human lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(fs) = &self.filesystem {
            out.push(format!(
                "data root {} on {} ({}): {} available of {}",
                self.data_root.as_deref().unwrap_or("?"),
                fs.mount_point.display(),
                fs.fs_type,
                headroom_disk::format_size(fs.available_bytes),
                headroom_disk::format_size(fs.total_bytes),
            ));
        }
        for r in &self.docker_usage {
            out.push(format!(
                "docker {}: {} ({} of {} active), reclaimable {}",
                r.kind, r.size, r.active, r.total_count, r.reclaimable
            ));
        }
        out.extend(self.notes.iter().cloned());
        out
    }
}
