//! What a stage is given and gives back: the run's state ([`Run`]: the settings, the report
//! being filled, the reporter, the data root) and the stage's [`Outcome`]. The sequencer
//! makes one [`Run`] and hands it to each stage in turn.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::Stage;
use crate::budget::Phase;
use crate::gate::InspectReport;
use crate::report::{Report, StageReport, StageStatus};
use crate::reporter::Reporter;
use crate::settings::Settings;

/// One stage's outcome, as the pipeline sees it (a failure is the `Err` beside it).
pub(crate) enum Outcome {
    Passed,
    Skipped(String),
}

/// What a run carries from stage to stage.
pub(crate) struct Run<'r> {
    pub(crate) settings: &'r Settings,
    pub(crate) report: Report,
    pub(crate) reporter: &'r dyn Reporter,
    /// The stage running now, for the error's `stage`.
    pub(crate) current: Option<Stage>,
    /// The inspect stage's report, typed, for the step summary.
    pub(crate) inspect: Option<InspectReport>,
    /// When the run started: phases are timed from here.
    pub(crate) started: Instant,
    /// The data root, when it is on this machine: each stage's bytes are read on it.
    pub(crate) watch: Option<PathBuf>,
}

impl<'r> Run<'r> {
    pub(crate) fn new(settings: &'r Settings, reporter: &'r dyn Reporter) -> Run<'r> {
        Run {
            settings,
            report: Report::default(),
            reporter,
            current: None,
            inspect: None,
            started: Instant::now(),
            watch: None,
        }
    }

    pub(crate) fn available(&self) -> Option<u64> {
        headroom_disk::available_bytes(self.watch.as_deref()?).ok()
    }

    pub(crate) fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// A stage's disk phase, read at its two ends (the build's come from its samples; the
    /// lint takes no disk).
    pub(crate) fn stage_phase(&mut self, name: Stage, start: Instant, before: Option<u64>) {
        if matches!(name, Stage::Lint | Stage::Build) {
            return;
        }
        if let (Some(before), Some(after)) = (before, self.available()) {
            let phase = Phase::between(
                &name.to_string(),
                self.ms(start),
                self.ms(Instant::now()),
                before,
                after,
            );
            self.report.disk.phases.push(phase);
        }
    }

    /// Add a stage's outcome to the report and tell the reporter.
    pub(crate) fn record(&mut self, name: Stage, seconds: f64, result: &Result<Outcome>) {
        let (status, reason) = match result {
            Ok(Outcome::Passed) => (StageStatus::Passed, None),
            Ok(Outcome::Skipped(why)) => (StageStatus::Skipped, Some(why.clone())),
            Err(e) => (StageStatus::Failed, Some(format!("{e:#}"))),
        };
        let stage = StageReport {
            name,
            status,
            seconds,
            reason,
        };
        self.reporter.stage_finished(&stage);
        self.report.stages.push(stage);
    }
}
