//! `headroom image` (and `cargo xtask image`): the pipeline — lint → free disk → build → inspect → smoke test →
//! push — the same command locally and in CI. The pipeline is `headroom-pipeline`'s; this
//! command is its flags and what a person (or a CI log) sees of it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Result;
use clap::Args;
use headroom_disk::{FreeReport, Progress, Timeline};
use headroom_docker::build::BuildEvent;
use headroom_docker::push::PushEvent;
use headroom_pipeline::lint::FileFindings;
use headroom_pipeline::render::{self, human};
use headroom_pipeline::{
    ImageArgs, Pipeline, PipelineError, Report, Reporter, Settings, Stage, StageReport, StageStatus,
};
use indicatif::ProgressBar;

use crate::ui;

/// Run the image pipeline: lint → free → build → inspect → smoke → push.
///
/// Settings come from the project's image.toml (paths in it are relative to that file):
/// --config, else image.toml beside --dockerfile, else image.toml or docker/image.toml in
/// --context, else (with neither flag) ./docker/image.toml; without one, the defaults
/// (CONTEXT/Dockerfile). Flags override the file. Without --push nothing leaves the machine.
///
/// Exit status: 0 built (and pushed); 1 a stage failed; 2 a usage or configuration error
/// (nothing ran); 130 after Ctrl-C, 143 after SIGTERM.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  headroom image --context . --image registry.example/me/app
  headroom image --dockerfile docker/Dockerfile --context . --image ghcr.io/me/app --push
  headroom image --config ci/image.toml --need 30G --skip smoke
  headroom image -q --context . --image 127.0.0.1:5000/me/app --push --report report.json")]
pub struct Image {
    #[command(flatten)]
    args: ImageArgs,
}

impl Image {
    pub(crate) fn run(self, workspace: &Path) -> Result<ExitCode> {
        let github = ui::on_github_actions();
        let settings = match Settings::resolve(&self.args, workspace) {
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
        let reporter = Terminal {
            github,
            quiet: ui::verbosity() == ui::Verbosity::Quiet,
            lines: ui::Folded::default(),
            bar: Mutex::new(None),
        };
        let result = Pipeline::new(settings).run(&reporter);
        reporter.end_bar();
        reporter.lines.flush();
        let report = match &result {
            Ok(report) => Some(report),
            Err(e) => e.report(),
        };
        if let Some(report) = report {
            eprint!("{}", closing_table(report));
        }
        match result {
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
                    eprintln!("error: {}", ui::printable(f));
                }
                eprintln!("error: {}", ui::printable(&e.to_string()));
                Ok(ExitCode::from(e.exit_code()))
            }
        }
    }
}

/// The closing summary: each stage, its result, its time, and the disk it ended with.
fn closing_table(report: &Report) -> String {
    let mut rows: Vec<Vec<String>> = report
        .stages
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                s.status.as_str().to_string(),
                format!("{:.1} s", s.seconds),
                String::new(),
            ]
        })
        .collect();
    let disk = &report.disk;
    let size = |b: Option<u64>| b.map(headroom_disk::format_size).unwrap_or_default();
    for row in &mut rows {
        row[3] = match row[0].as_str() {
            "free" => disk
                .freed_bytes
                .map(|b| format!("{} freed", headroom_disk::format_size(b)))
                .unwrap_or_default(),
            "build" => render::github::peak_disk(report)
                .map(|b| format!("{} at peak", headroom_disk::format_size(b)))
                .unwrap_or_default(),
            "push" => size(report.image.size_bytes),
            _ => String::new(),
        };
    }
    rows.push(vec![
        "total".into(),
        if report
            .stages
            .iter()
            .any(|s| s.status == StageStatus::Failed)
        {
            "failed".into()
        } else {
            "passed".into()
        },
        format!("{:.1} s", report.seconds),
        disk.available_after
            .map(|b| format!("{} free", headroom_disk::format_size(b)))
            .unwrap_or_default(),
    ]);
    human::table(&["stage", "result", "time", "disk"], &rows)
}

/// The pipeline's events as lines on stderr (`image: STAGE: …`), progress bars for the
/// free stage on a terminal, `::group::` per stage and annotations on GitHub Actions.
/// Markdown goes only to the step summary, which the pipeline writes. The lines are
/// `headroom_pipeline::render`'s; this decides only where they go.
struct Terminal {
    github: bool,
    quiet: bool,
    lines: ui::Folded,
    /// The build's or the push's spinner, on a terminal.
    bar: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    /// A line of the log: above the bar on a terminal, folded when it repeats; none with -q.
    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match bar.as_ref() {
            Some(bar) if ui::verbosity() != ui::Verbosity::Verbose => {
                bar.set_message(ui::printable(text));
            }
            Some(bar) => bar.println(ui::printable(text)),
            None => self.lines.line(text),
        }
    }

    fn start_bar(&self, prefix: &str) {
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = bar.take() {
            old.finish_and_clear();
        }
        *bar = ui::spinner(prefix);
    }

    fn end_bar(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Terminal {
    fn stage_started(&self, stage: Stage) {
        if self.github {
            println!("{}", render::github::group(stage));
        }
        match stage {
            Stage::Build => self.start_bar("build"),
            Stage::Push => self.start_bar("push"),
            _ => {}
        }
    }

    fn stage_finished(&self, stage: &StageReport) {
        self.end_bar();
        self.lines.flush();
        if self.github {
            println!("{}", render::github::end_group());
        }
        if !self.quiet {
            eprintln!("{}", ui::printable(&human::stage_finished(stage)));
        }
    }

    fn note(&self, stage: Stage, text: &str) {
        self.line(&human::note(stage, text));
    }

    fn variant_started(&self, name: &str, index: usize, count: usize) {
        self.line(&human::variant_started(name, index, count));
    }

    fn warning(&self, stage: Stage, text: &str) {
        // Warnings show with -q too.
        eprintln!("{}", ui::printable(&human::warning(stage, text)));
    }

    fn lint(&self, files: &[FileFindings]) {
        if !self.quiet {
            eprint!("{}", human::lint_stage(files));
        }
        if self.github {
            print!("{}", render::github::annotations(files));
        }
    }

    fn free_plan(&self, report: &FreeReport) {
        // The plan as a table for people; Markdown goes to the step summary only.
        if !self.quiet {
            eprint!("{}", human::free_report(report));
        }
    }

    fn free_progress(&self) -> Box<dyn Progress + Send> {
        Box::new(ui::Reporter::new())
    }

    fn build_started(&self, references: &[String], backend: &str) {
        self.line(&human::build_started(references, backend));
    }

    fn build_event(&self, event: &BuildEvent) {
        if let (BuildEvent::Step { .. }, Some(bar)) = (
            event,
            self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref(),
        ) {
            bar.inc(1);
        }
        self.line(&human::build_event(event));
    }

    fn disk(&self, timeline: &Timeline) {
        self.line(&human::low_water(timeline));
    }

    fn push_event(&self, event: &PushEvent) {
        if let Some(line) = human::push_event(event) {
            self.line(&line);
        }
    }

    fn report_written(&self, path: &Path) {
        self.line(&human::report_written(path));
    }
}
