//! The pipeline's one report: typed, versioned, read back typed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use headroom_disk::{FreeReport, Timeline};
use headroom_docker::build::BuildOutcome;
use headroom_docker::diagnose::Diagnostics;
use headroom_docker::engine::EngineFacts;
use headroom_docker::smoke::{HealthRun, SmokeRun};
use serde::{Deserialize, Serialize};

use crate::budget::Phase;
use crate::stage::Stage;
use crate::stage::place::report::PlacementReport;

/// The version of the report's shape; bumped when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

/// What a pipeline run did, stage by stage (`target/headroom/report.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    pub stages: Vec<StageReport>,
    #[serde(default)]
    pub image: ImageReport,
    pub engine: Option<EngineFacts>,
    /// Where the engine is: this machine's socket, or a remote host.
    #[serde(default)]
    pub endpoint: Option<EndpointReport>,
    #[serde(default)]
    pub disk: DiskReport,
    pub build: Option<BuildOutcome>,
    /// The builder (driver, state and its size, GC policy), the route the image took out of
    /// it, and its cache warnings.
    #[serde(default)]
    pub builder: Option<crate::route::BuilderReport>,
    pub smoke: Option<SmokeReport>,
    /// The inspect stage's analysis and gate.
    pub inspect: Option<serde_json::Value>,
    pub diagnostics: Option<Diagnostics>,
    /// The free stage's report: what each item freed.
    pub free: Option<FreeReport>,
    /// How the build got its room: target met, data root moved, or deleting.
    #[serde(default)]
    pub placement: Option<PlacementReport>,
    /// The lint stage's findings and counts.
    pub lint: Option<serde_json::Value>,
    /// A matrix run: each variant's outcome (its full report beside this one).
    #[serde(default)]
    pub variants: Vec<VariantOutcome>,
    /// Why the pipeline failed, when it is known.
    pub cause: Option<Cause>,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub seconds: f64,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            schema: SCHEMA_VERSION,
            stages: Vec::new(),
            image: ImageReport::default(),
            engine: None,
            endpoint: None,
            disk: DiskReport::default(),
            build: None,
            builder: None,
            smoke: None,
            inspect: None,
            diagnostics: None,
            free: None,
            placement: None,
            lint: None,
            variants: Vec::new(),
            cause: None,
            errors: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// A known cause of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The data root's filesystem filled up during the build.
    NoSpace,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    Passed,
    Skipped,
    Failed,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Passed => "passed",
            StageStatus::Skipped => "skipped",
            StageStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    pub name: Stage,
    pub status: StageStatus,
    pub seconds: f64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmokeReport {
    /// `gpu`, `cpu`, or `none` when the stage failed before it decided.
    pub device: String,
    pub note: Option<String>,
    /// The GPU decision: the request, its reason, how a probe failed.
    #[serde(default)]
    pub gpu: Option<headroom_docker::smoke::GpuDecision>,
    /// The first GPU's name, as the smoke test saw it.
    #[serde(default)]
    pub gpu_name: Option<String>,
    /// torch's CUDA version, as the smoke test saw it.
    #[serde(default)]
    pub cuda: Option<String>,
    /// Why the stage failed (a container that did not start, a GPU it could not use).
    #[serde(default)]
    pub error: Option<String>,
    pub run: Option<SmokeRun>,
    pub health: Option<HealthRun>,
    pub mismatches: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    pub name: String,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub id: Option<String>,
    /// The pushed digest; null when nothing was pushed.
    pub digest: Option<String>,
    pub digests: BTreeMap<String, String>,
    pub size_bytes: Option<u64>,
    pub layers: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskReport {
    pub path: Option<PathBuf>,
    pub available_before: Option<u64>,
    pub available_after: Option<u64>,
    pub low_water_bytes: Option<u64>,
    pub freed_bytes: Option<u64>,
    /// After a build that ran out of space: what the free stage could have reclaimed.
    pub reclaimable_bytes: Option<u64>,
    #[serde(default)]
    pub reclaimable_items: Vec<String>,
    /// --free-in-background: the floor kept while the free stage ran, and how often the
    /// build was stopped at a step boundary to keep it.
    #[serde(default)]
    pub free_in_background: bool,
    pub floor_bytes: Option<u64>,
    #[serde(default)]
    pub build_stops: u32,
    pub timeline: Option<Timeline>,
    /// Where the bytes went: the free stage, each build step, inspect, smoke, push.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// A remote engine's disk, sampled through its API during the build.
    #[serde(default)]
    pub engine: Option<EngineDisk>,
}

/// One variant of a matrix run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantOutcome {
    pub name: String,
    pub passed: bool,
    /// Its own full report.
    pub report: PathBuf,
    pub references: Vec<String>,
    pub digest: Option<String>,
    pub seconds: f64,
    pub cached_steps: Option<u32>,
    pub low_water_bytes: Option<u64>,
    pub error: Option<String>,
}

/// The engine's address, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointReport {
    /// `unix:///var/run/docker.sock`, `tcp://build-host:2376`.
    pub host: String,
    /// `DOCKER_HOST`, `context NAME`, `default`.
    pub source: String,
    pub tls: bool,
    /// Whether the engine is on this machine: its disk is the runner's.
    pub local: bool,
}

/// A remote engine's disk over the build, as it reports it (`docker system df`: images,
/// containers, volumes, build cache): its filesystem is not this machine's to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineDisk {
    pub host: String,
    pub samples: Vec<EngineSample>,
    pub before_bytes: Option<u64>,
    /// The most the engine held during the build: its high-water mark.
    pub peak_bytes: Option<u64>,
    pub after_bytes: Option<u64>,
}

/// One reading of a remote engine's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSample {
    /// Milliseconds since the build started.
    pub ms: u64,
    pub used_bytes: u64,
}

/// Why a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a headroom report: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: report schema {found}, this headroom reads schema {SCHEMA_VERSION}", path.display())]
    Version { path: PathBuf, found: u64 },
}

impl Report {
    /// Read a report written by [`Report::write`].
    pub fn read(path: &Path) -> Result<Report, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ReportError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let found = value["schema"].as_u64().unwrap_or(0);
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ReportError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        serde_json::from_value(value).map_err(|source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Write the report as pretty JSON, creating its directory.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let io = |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, text).map_err(io)
    }

    /// The first stage that failed.
    pub fn first_failed(&self) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.status == StageStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_and_other_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let mut r = Report::default();
        r.stages.push(StageReport {
            name: Stage::Lint,
            status: StageStatus::Failed,
            seconds: 0.5,
            reason: Some("findings".into()),
        });
        r.cause = Some(Cause::NoSpace);
        r.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"schema\": 1") && text.contains("\"no_space\""),
            "{text}"
        );
        let back = Report::read(&path).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&r).unwrap()
        );
        assert_eq!(back.first_failed().unwrap().name, Stage::Lint);
        std::fs::write(&path, text.replace("\"schema\": 1", "\"schema\": 7")).unwrap();
        assert!(matches!(
            Report::read(&path),
            Err(ReportError::Version { found: 7, .. })
        ));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            Report::read(&path),
            Err(ReportError::Parse { .. })
        ));
    }
}
