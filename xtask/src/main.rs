//! `cargo xtask`: headroom's commands in its own workspace.
//!
//! The product's commands — `free`, `image`, `inspect`, `lint`, `completions` — are
//! `headroom-cli`'s (the `headroom` binary's), run here with the workspace as the report's
//! home; see `cli/`.
//!
//! The lab's are handed to `headroom-lab` (`lab/`), which this binary runs:
//!
//! - `base-image`: a local Debian base image for machines that cannot pull one (`--cuda`:
//!   the stand-in of NVIDIA's CUDA base on it).
//! - `smoke-judge`: the smoke stage's verdict on a smoke result made elsewhere
//!   (`scripts/gpu-check`).
//! - `simulate`: a small-disk runner that runs out of space, and the pipeline that cures it.
//! - `bench`: benchmarks whose results are recorded in `docs/benchmarks.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use headroom_cli::{Context, Global};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    version,
    about = "headroom: build big AI images on small CI disks"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Product(headroom_cli::Command),
    BaseImage(headroom_lab::BaseImage),
    Simulate(headroom_lab::Simulate),
    SmokeJudge(headroom_lab::SmokeJudge),
    /// Benchmarks against the tools people use today (rm -rf, rmz, du, diskus, hadolint,
    /// dive), side by side in one run; --record writes docs/benchmarks.md.
    #[command(subcommand)]
    Bench(headroom_lab::Bench),
}

fn main() -> ExitCode {
    // Started through `sudo -n` for one privileged step: do it, and nothing else.
    if let Some(code) = headroom_cli::privileged_helper() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return headroom_cli::exit_for_clap_error(&e),
    };
    let lab = match cli.command {
        Command::Product(cmd) => {
            let context = Context {
                workspace: project_root(),
                name: "cargo xtask".into(),
            };
            return cmd.run(cli.global, &context);
        }
        Command::BaseImage(cmd) => cmd.run(),
        Command::Simulate(cmd) => cmd.run(),
        Command::SmokeJudge(cmd) => cmd.run(),
        Command::Bench(cmd) => cmd.run(),
    };
    match lab {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}
