//! A sibling repository's image job on headroom's pipeline: the same stages as headroom's
//! own `cargo xtask image` (lint → free → build → inspect → smoke → push), the same flags,
//! this repository's `docker/image.toml`, the same report, step summary and GitHub outputs.
//! It deletes only on a GitHub-hosted runner, with `--yes`, or under `--root`.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use headroom_pipeline::{ImageArgs, Pipeline, Reporter, Settings, Stage, StageReport};

/// Build, check and push this repository's image.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    image: ImageArgs,
}

/// The pipeline's progress as plain lines on stderr.
struct Lines;

impl Reporter for Lines {
    fn stage_finished(&self, s: &StageReport) {
        eprintln!("{}: {} ({:.1} s)", s.name, s.status.as_str(), s.seconds);
    }
    fn note(&self, stage: Stage, text: &str) {
        eprintln!("{stage}: {text}");
    }
    fn warning(&self, stage: Stage, text: &str) {
        eprintln!("warning: {stage}: {text}");
    }
}

fn main() -> ExitCode {
    // Re-run through `sudo -n` for the one step that needs root (deleting root-owned
    // software): do that step, nothing else.
    if let Some(helper) = headroom_pipeline::privilege::helper() {
        print!("{}", helper.stdout);
        eprint!("{}", helper.stderr);
        return ExitCode::from(helper.code);
    }
    let cli = Cli::parse();
    let run = Settings::resolve(&cli.image, Path::new("."))
        .map_err(Into::into)
        .and_then(|settings| Pipeline::new(settings).run(&Lines));
    match run {
        Ok(report) => {
            for (reference, digest) in &report.image.digests {
                println!("pushed {reference} {digest}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
