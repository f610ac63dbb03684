//! `cargo xtask image`: the pipeline — lint → free disk → build → inspect → smoke test →
//! push — the same command locally and in CI. The pipeline is `headroom-pipeline`'s; this
//! command is its flags and what a person (or a CI log) sees of it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use headroom_disk::{FreeReport, Progress, Timeline};
use headroom_docker::build::BuildEvent;
use headroom_docker::push::PushEvent;
use headroom_pipeline::lint::FileFindings;
use headroom_pipeline::render::{self, human};
use headroom_pipeline::{
    ImageArgs, Pipeline, PipelineError, Reporter, Settings, Stage, StageReport,
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
        let github = ui::on_github_actions();
        let settings = match Settings::resolve(&self.args, &crate::project_root()) {
            Ok(s) => s,
            Err(e) => {
                if github {
                    println!(
                        "::error title=headroom: settings::{}",
                        e.to_string().replace('\n', "%0A")
                    );
                }
                return Err(e.into());
            }
        };
        let reporter = Terminal { github };
        match Pipeline::new(settings).run(&reporter) {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                if let Some(a) = e
                    .outcome()
                    .as_ref()
                    .and_then(render::github::failure_annotation)
                    && github
                {
                    println!("{a}");
                }
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
/// Markdown goes only to the step summary, which the pipeline writes. The lines are
/// `headroom_pipeline::render`'s; this decides only where they go.
struct Terminal {
    github: bool,
}

impl Reporter for Terminal {
    fn stage_started(&self, stage: Stage) {
        if self.github {
            println!("{}", render::github::group(stage));
        }
    }

    fn stage_finished(&self, stage: &StageReport) {
        if self.github {
            println!("{}", render::github::end_group());
        }
        eprintln!("{}", human::stage_finished(stage));
    }

    fn note(&self, stage: Stage, text: &str) {
        eprintln!("{}", human::note(stage, text));
    }

    fn variant_started(&self, name: &str, index: usize, count: usize) {
        eprintln!("{}", human::variant_started(name, index, count));
    }

    fn warning(&self, stage: Stage, text: &str) {
        eprintln!("{}", human::warning(stage, text));
    }

    fn lint(&self, files: &[FileFindings]) {
        eprint!("{}", human::lint_stage(files));
        if self.github {
            print!("{}", render::github::annotations(files));
        }
    }

    fn free_plan(&self, report: &FreeReport) {
        // The plan as a table for people; Markdown goes to the step summary only.
        eprint!("{}", human::free_report(report));
    }

    fn free_progress(&self) -> Box<dyn Progress + Send> {
        Box::new(ui::Reporter::new())
    }

    fn build_started(&self, references: &[String], backend: &str) {
        eprintln!("{}", human::build_started(references, backend));
    }

    fn build_event(&self, event: &BuildEvent) {
        eprintln!("{}", human::build_event(event));
    }

    fn disk(&self, timeline: &Timeline) {
        eprintln!("{}", human::low_water(timeline));
    }

    fn push_event(&self, event: &PushEvent) {
        if let Some(line) = human::push_event(event) {
            eprintln!("{line}");
        }
    }

    fn report_written(&self, path: &Path) {
        eprintln!("{}", human::report_written(path));
    }
}
