//! `cargo xtask image`: the pipeline — lint → free disk → build → inspect → smoke test →
//! push — the same command locally and in CI. The pipeline is `headroom-pipeline`'s; this
//! command is its flags and what a person (or a CI log) sees of it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use headroom_disk::{FreeReport, Progress, Timeline, format_size};
use headroom_docker::build::BuildEvent;
use headroom_docker::push::PushEvent;
use headroom_pipeline::lint::FileFindings;
use headroom_pipeline::{
    ImageArgs, Pipeline, PipelineError, Reporter, Settings, Stage, StageReport, StageStatus,
};

use crate::ui;

/// Run the image pipeline: lint → free → build → inspect → smoke → push.
///
/// Settings come from docker/image.toml (paths in it are relative to that file); every
/// setting can be overridden by a flag. Without --push nothing leaves the machine.
#[derive(Args, Debug)]
pub(crate) struct Image {
    #[command(flatten)]
    args: ImageArgs,
}

impl Image {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let settings = Settings::resolve(&self.args, &crate::project_root())?;
        let reporter = Terminal {
            github: ui::on_github_actions(),
        };
        match Pipeline::new(settings).run(&reporter) {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                if let PipelineError::Report {
                    failure: Some(f), ..
                } = &e
                {
                    eprintln!("error: {f}");
                }
                eprintln!("error: {e}");
                Ok(ExitCode::from(e.exit_code()))
            }
        }
    }
}

/// The pipeline's events as lines on stderr (`image: STAGE: …`), progress bars for the
/// free stage on a terminal, `::group::` per stage and annotations on GitHub Actions.
/// Markdown goes only to the step summary, which the pipeline writes.
struct Terminal {
    github: bool,
}

impl Reporter for Terminal {
    fn stage_started(&self, stage: Stage) {
        if self.github {
            println!("::group::{stage}");
        }
    }

    fn stage_finished(&self, stage: &StageReport) {
        if self.github {
            println!("::endgroup::");
        }
        // A failure's cause is printed once, as the command's error; the stage line says
        // only that it failed.
        let shown = stage
            .reason
            .as_ref()
            .filter(|_| stage.status != StageStatus::Failed);
        eprintln!(
            "image: {}: {}{} ({:.1} s)",
            stage.name,
            stage.status.as_str(),
            shown.map(|r| format!(": {r}")).unwrap_or_default(),
            stage.seconds
        );
    }

    fn note(&self, stage: Stage, text: &str) {
        eprintln!("image: {stage}: {text}");
    }

    fn variant_started(&self, name: &str, index: usize, count: usize) {
        eprintln!("image: variant {index}/{count}: {name}");
    }

    fn warning(&self, stage: Stage, text: &str) {
        eprintln!("warning: {stage}: {text}");
    }

    fn lint(&self, files: &[FileFindings]) {
        for line in headroom_pipeline::lint::human(files).lines() {
            eprintln!("image: lint: {line}");
        }
        if self.github {
            print!("{}", headroom_pipeline::lint::github(files));
        }
    }

    fn free_plan(&self, report: &FreeReport) {
        // The plan as a table for people; Markdown goes to the step summary only.
        eprint!("{}", crate::free::human(report));
    }

    fn free_progress(&self) -> Box<dyn Progress + Send> {
        Box::new(ui::Reporter::new())
    }

    fn build_started(&self, references: &[String], backend: &str) {
        eprintln!("image: building {} with {backend}", references.join(", "));
    }

    fn build_event(&self, event: &BuildEvent) {
        match event {
            BuildEvent::Step { name, cached } => {
                eprintln!("build: {name}{}", if *cached { " (cached)" } else { "" })
            }
            BuildEvent::Line(l) => eprintln!("build: {l}"),
        }
    }

    fn disk(&self, timeline: &Timeline) {
        eprintln!(
            "image: build: lowest free space on the data root's filesystem: {}",
            format_size(timeline.low_water_bytes)
        );
    }

    fn push_event(&self, event: &PushEvent) {
        match event {
            PushEvent::Status { reference, line } => {
                if line.contains("digest:") || line.starts_with("Pushed") {
                    eprintln!("push: {reference}: {line}");
                }
            }
            PushEvent::Retry {
                reference,
                attempt,
                delay,
                error,
            } => eprintln!(
                "push: {reference}: attempt {attempt} in {:.1} s after: {error}",
                delay.as_secs_f64()
            ),
        }
    }

    fn report_written(&self, path: &Path) {
        eprintln!("image: report written to {}", path.display());
    }
}
