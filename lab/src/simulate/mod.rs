//! `cargo xtask simulate`: the original failure and its cure, end to end, on a simulated
//! small-disk runner.
//!
//! A loop-mounted ext4 file plays the runner's root disk, filled like a hosted runner scaled
//! down (synthetic software at the catalog's paths, `workload/runner.toml`). A dedicated
//! `dockerd` keeps its data root on it; a registry with a password listens on loopback. Then
//! the real `cargo xtask image` runs three times against them:
//!
//! 1. `naive`: docker/simulate/Dockerfile.naive with the free stage skipped — it must run out
//!    of space, and headroom's report must say so (`cause: no_space`, low-water mark, what
//!    was reclaimable);
//! 2. `pipeline`: free to a target → lint → build of the merged Dockerfile → smoke → push;
//! 3. `background`: the same with `--free-in-background` on a refilled disk.
//!
//! Everything it starts is torn down at the end, on failure and on Ctrl-C; what a killed run
//! left behind is found by name and removed before the next one starts.
//!
//! The runner itself (disks, engine, registry, teardown by name) is
//! [`crate::sandbox::runner`]; its contents are [`crate::workload::runner`]; a run of the
//! image pipeline is [`crate::image_run`]. Here: the three runs, and what they must show.

mod dual;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use headroom_disk::{format_size, parse_size};

use crate::image_run::{RunSummary, run_image};
use crate::sandbox::runner::{Layout, RUN_DIR, Runner, say};
use crate::signals;
use crate::workload::layouts::{self, HostedLayout};
use crate::workload::runner::{self, RunnerLayout};
use summary::{DiskSummary, Summary};

/// What to simulate: the disk, the hosted layout (none for `single`), what fills it.
struct Plan<'a> {
    size: u64,
    hosted: Option<&'a HostedLayout>,
    runner: &'a RunnerLayout,
}

/// Reproduce a CI build that runs out of disk, and its cure, on a simulated runner disk.
///
/// Needs root (loop mount, a second dockerd, a network bridge). Writes a JSON and a Markdown
/// summary; exits non-zero unless the naive build failed for lack of space and both pipeline
/// runs passed.
#[derive(Args, Debug)]
pub struct Simulate {
    /// Size of the simulated runner disk (layout `single` only); the workload scales with it
    /// [default: 3GiB].
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    size: Option<u64>,
    /// Where to write the JSON summary; the Markdown one goes beside it (.md).
    /// [default: target/headroom/simulate/summary.json]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Working directory: the disk file, its mount point, logs and the runs' reports.
    /// [default: target/headroom/simulate]
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// single: one root disk of --size, cured by freeing space. Or a 2026 hosted-runner layout
    /// of lab/src/workload/layouts.toml at its scale: public-145 (room: both runs pass,
    /// nothing deleted), private-72 (cured by freeing), dual (a second disk at /mnt, cured by
    /// moving the data root there with nothing deleted), arm.
    #[arg(long, value_name = "LAYOUT", default_value = "single", value_parser = layout_arg)]
    layout: String,
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

fn layout_arg(s: &str) -> Result<String, String> {
    let mut known = vec![SINGLE.to_string()];
    known.extend(layouts::names().map_err(|e| format!("{e:#}"))?);
    if known.iter().any(|k| k == s) {
        Ok(s.to_string())
    } else {
        Err(format!("no layout {s:?}: known are {}", known.join(", ")))
    }
}

/// The sized single-disk layout of `workload/runner.toml`.
const SINGLE: &str = "single";
/// The default size of the `single` layout's disk.
const DEFAULT_SIZE: u64 = 3 << 30;

/// The smallest disk that holds ext4's own metadata, the engine and a meaningful workload.
const MIN_SIZE: u64 = 1 << 30;
const MAX_SIZE: u64 = 256 << 30;

impl Simulate {
    pub fn run(self) -> Result<ExitCode> {
        if !rustix::process::geteuid().is_root() {
            bail!(
                "cargo xtask simulate needs root: it loop-mounts a filesystem, starts a second \
                 dockerd and creates a network bridge"
            );
        }
        let hosted = match self.layout.as_str() {
            SINGLE => None,
            name => Some(layouts::layout(name)?),
        };
        if hosted.is_some() && self.size.is_some() {
            bail!(
                "--size: only with --layout single; the layout {} is sized by \
                 lab/src/workload/layouts.toml",
                self.layout
            );
        }
        let size = match &hosted {
            Some(h) => h.root_bytes(),
            None => self.size.unwrap_or(DEFAULT_SIZE),
        };
        if hosted.is_none() && !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            bail!(
                "--size {}: give between {} and {}",
                format_size(size),
                format_size(MIN_SIZE),
                format_size(MAX_SIZE)
            );
        }
        let single;
        let runner: &RunnerLayout = match &hosted {
            Some(h) => &h.root,
            None => {
                single = runner::runner_layout()?;
                &single
            }
        };
        let root = crate::repo::project_root();
        let work = self
            .work
            .clone()
            .unwrap_or_else(|| root.join("target/headroom/simulate"));
        let work = if work.is_absolute() {
            work
        } else {
            std::env::current_dir()?.join(work)
        };
        let layout = Layout::new(work);
        let report_path = self
            .report
            .clone()
            .unwrap_or_else(|| layout.work.join("summary.json"));
        signals::watch(say);

        let start = Instant::now();
        say(&format!(
            "tearing down what an earlier run left under {} and {RUN_DIR}",
            layout.work.display()
        ));
        let mut sandbox = Runner::new(layout);
        let mut summary = Summary::default();
        let plan = Plan {
            size,
            hosted: hosted.as_ref(),
            runner,
        };
        let result = self.simulate(&mut sandbox, &plan, &mut summary);
        drop(sandbox);
        summary.seconds = start.elapsed().as_secs_f64();
        if let Err(e) = &result {
            summary.problems.push(format!("{e:#}"));
        }
        summary.passed = result.is_ok() && summary.problems.is_empty();
        summary::write(&summary, &report_path)?;
        if signals::interrupted() {
            eprintln!("error: interrupted: everything the simulation started was torn down");
            return Ok(ExitCode::from(signals::exit_code()));
        }
        result?;
        if !summary.passed {
            for p in &summary.problems {
                eprintln!("error: {p}");
            }
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }

    fn simulate(&self, sandbox: &mut Runner, plan: &Plan<'_>, summary: &mut Summary) -> Result<()> {
        let layout = sandbox.layout.clone();
        let runner = plan.runner;
        if let Some(h) = plan.hosted {
            say(&format!("hosted-runner layout {}", h.describe()));
        }
        say(&format!(
            "creating the runner's disk: {} ext4 in {}",
            format_size(plan.size),
            layout.disk_file.display()
        ));
        sandbox.make_disk(plan.size)?;
        let second = match plan.hosted {
            Some(h) => h.second_bytes(),
            None => None,
        };
        let dual = second.is_some();
        summary.disk.layout = Some(self.layout.clone());
        if let Some(second) = second {
            say(&format!(
                "creating the runner's second disk: {} ext4 at the runner's /mnt",
                format_size(second)
            ));
            sandbox.make_second_disk(second)?;
            summary.disk.second_size_bytes = Some(second);
        }
        sandbox.start_engine(&serde_json::json!({}))?;
        sandbox.import_base()?;
        let image = format!("{}/headroom/simulate", sandbox.start_registry()?.host());
        signals::check()?;

        let usable = headroom_disk::available_bytes(&layout.mnt)?;
        // The workload unit: the merged build needs about 5, the naive one about 8, the free
        // target is 6.5. On the single layout the runner's free share is about 3.5 units and
        // the catalog's items hold about 7; on a hosted layout the target is the incident's
        // build (`incident_need_gb`) at the layout's scale.
        let unit = match plan.hosted {
            Some(h) => (h.incident_need_gb * usable as f64 / h.root.disk_gb) as u64 * 2 / 13,
            None => usable / 16,
        };
        let unit_mb = (unit >> 20).max(8);
        summary.disk = DiskSummary {
            layout: summary.disk.layout.clone(),
            described: plan.hosted.map(|h| h.describe()),
            second_size_bytes: summary.disk.second_size_bytes,
            second_available_bytes: dual
                .then(|| headroom_disk::available_bytes(&layout.second_mnt()).ok())
                .flatten(),
            size_bytes: plan.size,
            usable_bytes: usable,
            unit_bytes: unit_mb << 20,
            need_bytes: (unit_mb << 20) * 13 / 2,
            floor_bytes: (unit_mb << 20) * 3 / 2,
            ..DiskSummary::default()
        };
        let fill_start = Instant::now();
        summary.disk.areas = runner::fill(&layout.runner_root, runner, usable)?;
        summary.disk.fill_seconds = fill_start.elapsed().as_secs_f64();
        say(&format!(
            "runner filled in {:.1} s: {} available (a hosted runner's share: {:.0} of {:.0} GB)",
            summary.disk.fill_seconds,
            format_size(headroom_disk::available_bytes(&layout.mnt)?),
            runner.free_gb,
            runner.disk_gb
        ));

        let sandbox: &Runner = sandbox;
        let run = |name: &str, extra: &[String]| -> Result<RunSummary> {
            let mut args = vec![
                "--config".to_string(),
                crate::repo::project_root()
                    .join("docker/simulate/image.toml")
                    .display()
                    .to_string(),
                "--image".into(),
                image.clone(),
                "--build-arg".into(),
                format!("UNIT_MB={unit_mb}"),
                "--push".into(),
            ];
            args.extend_from_slice(extra);
            run_image(sandbox, name, &args)
        };

        // a. The naive Dockerfile, no freeing: it must run out of space.
        let naive_dockerfile = crate::repo::project_root().join("docker/simulate/Dockerfile.naive");
        // --root too, so the report can say what the free stage would have reclaimed.
        summary.naive = run(
            "naive",
            &[
                "--dockerfile".into(),
                naive_dockerfile.display().to_string(),
                "--skip".into(),
                "free".into(),
                "--root".into(),
                layout.runner_root.display().to_string(),
            ],
        )?;
        signals::check()?;
        // Where the layout has room (public-145, arm), the naive build fits: both pass.
        let roomy = plan.hosted.is_some_and(|h| !h.incident_runs_out());
        summary.naive_expected = if roomy { "passed" } else { "failed" }.into();
        if roomy {
            // Before the pipeline pushes the same tag.
            summary.naive.registry_digest = summary::registry_digest(sandbox, &summary.naive);
            summary::check_passed("naive", &summary.naive, &mut summary.problems);
        } else if summary.naive.result != "failed"
            || summary.naive.cause.as_deref() != Some("no_space")
        {
            summary.problems.push(format!(
                "naive: expected a build that runs out of space (result failed, cause no_space), \
                 got result {} and cause {:?}: {}",
                summary.naive.result,
                summary.naive.cause,
                summary.naive.error.as_deref().unwrap_or("no error")
            ));
        }

        if dual
            && !summary
                .naive
                .error
                .as_deref()
                .is_some_and(|e| e.contains("was not used"))
        {
            summary.problems.push(format!(
                "naive: the no-space advice does not name the unused second disk: {}",
                summary.naive.error.as_deref().unwrap_or("no error")
            ));
        }

        // b. The whole pipeline: free to a target, then build the merged Dockerfile.
        sandbox.reset_engine()?;
        let mut freeing = vec![
            "--root".to_string(),
            layout.runner_root.display().to_string(),
            "--need".into(),
            summary.disk.need_bytes.to_string(),
            "--yes".into(),
        ];
        if dual {
            freeing.extend([
                "--engine-service".into(),
                sandbox.engine()?.service.display().to_string(),
            ]);
            summary.daemon_json_keys_before = dual::daemon_json_keys(&layout, false)?;
            // b0. A move whose restart fails puts everything back.
            let restore = dual::check_restore(sandbox, &|| run("restore", &freeing))?;
            summary
                .problems
                .extend(restore.problems.iter().map(|p| format!("restore: {p}")));
            summary.restore = Some(restore);
            signals::check()?;
        }
        summary.pipeline = run("pipeline", &freeing)?;
        signals::check()?;
        summary.pipeline.registry_digest = summary::registry_digest(sandbox, &summary.pipeline);
        summary::check_passed("pipeline", &summary.pipeline, &mut summary.problems);
        if dual {
            summary.daemon_json_keys_after = dual::daemon_json_keys(&layout, true)?;
            dual::check_placed(&layout, summary);
            return Ok(());
        }
        if roomy {
            dual::check_nothing_deleted(summary);
            return Ok(());
        }
        if plan.hosted.is_some() {
            // A small hosted layout: cured by freeing; no background run (kept cheap).
            if summary.pipeline.freed_bytes.unwrap_or(0) == 0 {
                summary
                    .problems
                    .push("pipeline: nothing was freed on a layout without room".into());
            }
            return Ok(());
        }

        // c. The same with the free stage in the background, on a refilled runner.
        sandbox.reset_engine()?;
        say("refilling the runner's disk for the background run");
        runner::refill(&layout.runner_root, runner, usable)?;
        let mut background = freeing.to_vec();
        background.extend([
            "--free-in-background".into(),
            "--free-floor".into(),
            summary.disk.floor_bytes.to_string(),
        ]);
        let mut bg = run("background", &background)?;
        bg.registry_digest = summary::registry_digest(sandbox, &bg);
        summary::check_passed("background", &bg, &mut summary.problems);
        if bg.cause.as_deref() == Some("no_space") {
            summary
                .problems
                .push("background: the build ran out of space".into());
        }
        if summary.pipeline.result == "passed" && bg.result == "passed" {
            summary.background_saved_seconds = summary
                .pipeline
                .to_built_seconds
                .zip(bg.to_built_seconds)
                .map(|(p, b)| p - b);
        }
        summary.background = Some(bg);
        Ok(())
    }
}
