//! What a pipeline run tells the person or the log watching it. The library calls a
//! [`Reporter`] and never prints; headroom's xtask implements it (bars on a terminal, plain
//! lines on CI, `::group::` and annotations on GitHub Actions), a sibling may use its own or
//! [`Silent`].

use std::path::Path;

use headroom_disk::{FreeReport, Progress, Timeline};
use headroom_docker::build::BuildEvent;
use headroom_docker::push::PushEvent;

use crate::lint::FileFindings;
use crate::report::StageReport;
use crate::stage::Stage;

/// Receives a pipeline run's events, in order. Every method has a default that ignores the
/// event.
pub trait Reporter: Sync {
    /// A stage begins (not called for a stage skipped by `--skip`).
    fn stage_started(&self, _stage: Stage) {}
    /// A stage is over: passed, skipped (with why) or failed (with the cause).
    fn stage_finished(&self, _stage: &StageReport) {}
    /// A line of information from a stage.
    fn note(&self, _stage: Stage, _text: &str) {}
    /// A matrix run starts its `index`-th (from 1) of `count` variants.
    fn variant_started(&self, _name: &str, _index: usize, _count: usize) {}
    /// Something went wrong that does not stop the pipeline (or is outweighed by a worse
    /// failure).
    fn warning(&self, _stage: Stage, _text: &str) {}
    /// The lint's findings for the Dockerfile.
    fn lint(&self, _files: &[FileFindings]) {}
    /// The free stage's result when it only planned (a dry run): the plan to show.
    fn free_plan(&self, _report: &FreeReport) {}
    /// Where the free stage's measuring and deleting reports to; it runs on a thread of its
    /// own, so it gets an owned sink.
    fn free_progress(&self) -> Box<dyn Progress + Send> {
        Box::new(headroom_disk::NoProgress)
    }
    /// The build starts: its references and the backend chosen.
    fn build_started(&self, _references: &[String], _backend: &str) {}
    /// A build step began, or the build printed a line.
    fn build_event(&self, _event: &BuildEvent) {}
    /// The data root's disk over the build: samples and the low-water mark.
    fn disk(&self, _timeline: &Timeline) {}
    /// Push progress: statuses and retries.
    fn push_event(&self, _event: &PushEvent) {}
    /// The report was written.
    fn report_written(&self, _path: &Path) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {}
