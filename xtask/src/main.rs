//! `cargo xtask`: headroom's commands. Each subcommand is a small struct with a `run`.
//!
//! The product's commands live here:
//!
//! - `free`: free disk space on a CI runner, by target, safely (see `cargo xtask free --help`).
//! - `image`: free disk → build → smoke test → push (see `cargo xtask image --help`).
//! - `inspect`: where an image's bytes went, wasted bytes, and a CI gate.
//! - `lint`: lint (and `--fix`) Dockerfiles.
//!
//! The lab's are handed to `headroom-lab` (`lab/`), which this binary runs:
//!
//! - `base-image`: a local Debian base image for machines that cannot pull one (`--cuda`:
//!   the stand-in of NVIDIA's CUDA base on it).
//! - `smoke-judge`: the smoke stage's verdict on a smoke result made elsewhere
//!   (`scripts/gpu-check`).
//! - `simulate`: a small-disk runner that runs out of space, and the pipeline that cures it.
//! - `bench`: benchmarks whose results are recorded in `docs/benchmarks.md`.
//!
//! `ui` is how the product's commands show things (progress, tables, GitHub Actions).

mod free;
mod image;
mod inspect;
mod lint;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    version,
    about = "headroom: build big AI images on small CI disks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Free(free::Free),
    Image(Box<image::Image>),
    BaseImage(headroom_lab::BaseImage),
    Inspect(inspect::Inspect),
    Lint(lint::Lint),
    Simulate(headroom_lab::Simulate),
    SmokeJudge(headroom_lab::SmokeJudge),
    /// Benchmarks against the tools people use today (rm -rf, rmz, du, diskus, hadolint,
    /// dive), side by side in one run; --record writes docs/benchmarks.md.
    #[command(subcommand)]
    Bench(headroom_lab::Bench),
}

fn main() -> ExitCode {
    // Started through `sudo -n` for one privileged step: do it, and nothing else.
    if let Some(helper) = headroom_pipeline::privilege::helper() {
        print!("{}", helper.stdout);
        eprint!("{}", helper.stderr);
        return ExitCode::from(helper.code);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Free(cmd) => cmd.run(),
        Command::Image(cmd) => cmd.run(),
        Command::BaseImage(cmd) => cmd.run(),
        Command::Inspect(cmd) => cmd.run(),
        Command::Lint(cmd) => cmd.run(),
        Command::Simulate(cmd) => cmd.run(),
        Command::SmokeJudge(cmd) => cmd.run(),
        Command::Bench(cmd) => cmd.run(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: the parent of this crate's directory.
pub(crate) fn project_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}
