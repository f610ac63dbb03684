//! `cargo xtask bench build`: the tool's own footprint — what a cold `cargo xtask` costs a
//! fresh runner before it has freed a byte.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::format_size;

use crate::harness::median;
use crate::report::{self, benchmarks_md, record_between};
use crate::sh::cmd;

/// Build the xtask from nothing as a fresh runner does: `cargo build --package xtask` into an
/// empty target directory (the crates' sources fetched first, so the download is not
/// timed), then `xtask --help`. Reports the seconds until the help is printed, the size of
/// the target directory (bytes on disk) and the number of crates compiled, against the
/// goals of 120 s and 400 MB on a 2-core machine.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct BuildBench {
    /// Cold builds; medians are reported. Each starts from an empty target directory.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    runs: u32,
    /// Where the fresh target directories go [default: the system's temp directory]; each
    /// is removed after its run.
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Write the results into docs/benchmarks.md (between the bench-build markers).
    #[arg(long)]
    record: bool,
}

const START: &str = "<!-- bench-build:start -->";
const END: &str = "<!-- bench-build:end -->";

/// Goals of a cold build on a 2-core machine.
const GOAL_SECONDS: f64 = 120.0;
const GOAL_BYTES: u64 = 400_000_000;

/// One cold build.
#[derive(Debug, Clone, Copy)]
struct Run {
    seconds: f64,
    disk_bytes: u64,
    crates: usize,
}

impl BuildBench {
    pub fn run(self) -> Result<ExitCode> {
        let root = crate::repo::project_root();
        let work = self.work.clone().unwrap_or_else(std::env::temp_dir);
        eprintln!("fetching the crates' sources (not timed)");
        cmd(cargo(), ["fetch", "--locked"])
            .dir(&root)
            .run()
            .context("run it by hand to see why")?;
        let mut runs = Vec::new();
        for n in 1..=self.runs {
            let dir = work.join(format!("headroom-bench-build-{}-{n}", std::process::id()));
            let run = cold_build(&root, &dir);
            // The directory is ours (made for this run); remove it whatever happened.
            let _ = std::fs::remove_dir_all(&dir);
            let run = run?;
            eprintln!(
                "run {n}: {:.1} s, {} in the target directory, {} crates compiled",
                run.seconds,
                format_size(run.disk_bytes),
                run.crates
            );
            runs.push(run);
        }
        let seconds = median(runs.iter().map(|r| r.seconds).collect());
        let bytes = median(runs.iter().map(|r| r.disk_bytes as f64).collect()) as u64;
        let rows = vec![
            vec![
                "cold build + --help".to_string(),
                format!("{seconds:.1} s"),
                format!("≤ {GOAL_SECONDS:.0} s"),
                met(seconds <= GOAL_SECONDS).to_string(),
            ],
            vec![
                "target/ on disk".to_string(),
                format_size(bytes),
                format!("≤ {}", format_size(GOAL_BYTES)),
                met(bytes <= GOAL_BYTES).to_string(),
            ],
        ];
        print!(
            "{}",
            report::table(&["median", "figure", "goal", ""], &rows)
        );
        if self.record {
            let path = benchmarks_md();
            record_between(
                &path,
                &self.section(&root, &runs, seconds, bytes)?,
                START,
                END,
            )?;
            eprintln!("recorded in {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The Markdown section for docs/benchmarks.md; `seconds` and `bytes` are the medians.
    fn section(&self, root: &Path, runs: &[Run], seconds: f64, bytes: u64) -> Result<String> {
        let rustc = cmd("rustc", ["--version"]).read()?;
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let commit = cmd("git", ["rev-parse", "--short", "HEAD"])
            .dir(root)
            .read()
            .unwrap_or_else(|_| "-".into());
        let mut s = String::new();
        let _ = writeln!(s, "{START}");
        let _ = writeln!(s, "## The tool's footprint: a cold `cargo xtask --help`\n");
        let _ = writeln!(
            s,
            "`cargo build --package xtask` into an empty target directory, then `xtask --help` \
             (the crates' sources fetched beforehand). Recorded at {} with:\n",
            commit.trim()
        );
        let _ = writeln!(
            s,
            "```sh\ncargo xtask bench build --runs {}\n```\n",
            self.runs
        );
        let _ = writeln!(s, "- nproc: {nproc}");
        let _ = writeln!(s, "- {}", rustc.trim());
        let _ = writeln!(
            s,
            "- CARGO_INCREMENTAL: {}\n",
            std::env::var("CARGO_INCREMENTAL").unwrap_or_else(|_| "unset".into())
        );
        let _ = writeln!(s, "| run | seconds | target/ on disk | crates compiled |");
        let _ = writeln!(s, "|---|--:|--:|--:|");
        for (i, r) in runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} ({} bytes) | {} |",
                i + 1,
                r.seconds,
                format_size(r.disk_bytes),
                r.disk_bytes,
                r.crates
            );
        }
        let _ = writeln!(s, "\nGoals:\n");
        let _ = writeln!(
            s,
            "- cold build and help ≤ {GOAL_SECONDS:.0} s: {} ({seconds:.1} s)",
            met(seconds <= GOAL_SECONDS)
        );
        let _ = writeln!(
            s,
            "- target/ ≤ {}: {} ({})",
            format_size(GOAL_BYTES),
            met(bytes <= GOAL_BYTES),
            format_size(bytes)
        );
        let _ = writeln!(s, "{END}");
        Ok(s)
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Build into the empty `dir` and print the help; time both, measure `dir`.
fn cold_build(root: &Path, dir: &Path) -> Result<Run> {
    if dir.exists() {
        bail!(
            "{} exists already; remove it or pass another --work",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Instant::now();
    let out = cmd(cargo(), ["build", "--locked", "--package", "xtask"])
        .dir(root)
        .env("CARGO_TARGET_DIR", dir)
        .output()?;
    if !out.status.success() {
        bail!(
            "cargo build failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let help = cmd(dir.join("debug/xtask"), ["--help"]).stdout_null().run();
    let seconds = started.elapsed().as_secs_f64();
    help?;
    let crates = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling "))
        .count();
    let measured = headroom_disk::measure(&[dir.to_path_buf()]);
    if let Some(e) = measured.errors.first() {
        bail!("measuring {}: {e}", dir.display());
    }
    Ok(Run {
        seconds,
        disk_bytes: measured.size.disk_bytes,
        crates,
    })
}
