//! `cargo xtask image` run for real against a sandbox's engine, and what its report showed.
//!
//! The lab runs inside the xtask binary, so the run is this very binary (`image`): it streams
//! the run's lines with the run's name in front while it runs, keeps them in a log, passes a
//! Ctrl-C on to it, and reads its report.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use headroom_pipeline::{Cause, Report, Stage, StageStatus};
use serde::Serialize;

use crate::sandbox::registry::Registry;
use crate::sandbox::runner::{Layout, Runner, say};
use crate::sh::cmd;
use crate::signals;

/// What one `cargo xtask image` run showed, from its report.
#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    /// `passed` or `failed`.
    pub result: String,
    /// `no_space` when the data root's filesystem filled up.
    pub cause: Option<String>,
    pub exit_code: Option<i32>,
    /// Wall time of the whole `cargo xtask image` run.
    pub seconds: f64,
    /// From the start to a built image: the stages up to the build, less a free stage that
    /// ran alongside (the smoke test and push after it add the same to every run).
    pub to_built_seconds: Option<f64>,
    pub available_before: Option<u64>,
    pub available_after: Option<u64>,
    pub low_water_bytes: Option<u64>,
    pub freed_bytes: Option<u64>,
    pub freed_items: BTreeMap<String, u64>,
    pub reclaimable_bytes: Option<u64>,
    pub reclaimable_items: Vec<String>,
    pub floor_bytes: Option<u64>,
    /// Times the build stopped at a step boundary to keep the floor (background only).
    pub build_stops: Option<u64>,
    pub layers: Option<u64>,
    pub size_bytes: Option<u64>,
    pub digest: Option<String>,
    /// The digest the registry serves for the first tag, read back after the run.
    pub registry_digest: Option<String>,
    /// How the free stage made room: target_met, move_data_root or delete.
    pub placement: Option<String>,
    /// The engine's data root after a move.
    pub relocated_to: Option<PathBuf>,
    /// Seconds the move took.
    pub relocation_seconds: Option<f64>,
    pub stages: Vec<String>,
    pub error: Option<String>,
    pub report: PathBuf,
    pub log: PathBuf,
}

/// Run `cargo xtask image ARGS --report WORK/NAME.json` against `runner`'s engine, with the
/// credentials of its registry (none without one); its lines go to stderr with `[NAME]` in
/// front and to `LOGS/NAME.log`.
pub fn run_image(runner: &Runner, name: &str, args: &[String]) -> Result<RunSummary> {
    run_image_on(
        &runner.layout,
        &runner.engine()?.host,
        runner.registry.as_ref(),
        name,
        args,
    )
}

/// [`run_image`] against the engine at `host` (`DOCKER_HOST`) with the credentials of
/// `registry`, for a sandbox of its own that keeps its files at `layout`'s paths.
pub fn run_image_on(
    layout: &Layout,
    host: &str,
    registry: Option<&Registry>,
    name: &str,
    args: &[String],
) -> Result<RunSummary> {
    let report = layout.work.join(format!("{name}.json"));
    let log_path = layout.logs.join(format!("{name}.log"));
    let _ = std::fs::remove_file(&report);
    say(&format!("{name}: cargo xtask image {}", args.join(" ")));
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut argv: Vec<std::ffi::OsString> = vec!["image".into()];
    argv.extend(args.iter().map(Into::into));
    argv.extend(["--report".into(), report.clone().into_os_string()]);
    let mut run = cmd(exe, argv)
        .dir(crate::repo::project_root())
        .env("DOCKER_HOST", host)
        // The lab writes its own summary; the runs must not add theirs.
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    run = match registry {
        Some(r) => run
            .env("REGISTRY_USERNAME", &r.user)
            .env("REGISTRY_PASSWORD", &r.password),
        None => run
            .env_remove("REGISTRY_USERNAME")
            .env_remove("REGISTRY_PASSWORD"),
    };
    let mut log =
        std::fs::File::create(&log_path).with_context(|| log_path.display().to_string())?;
    let start = Instant::now();
    let reader = run
        .expression()
        .stderr_to_stdout()
        .unchecked()
        .reader()
        .map_err(|e| run.spawn_error(e))?;
    signals::set_foreground(reader.pids().first().copied().unwrap_or(0));
    for line in BufReader::new(&reader).lines().map_while(Result::ok) {
        eprintln!("[{name}] {line}");
        let _ = writeln!(log, "{line}");
    }
    let status = reader.try_wait();
    signals::set_foreground(0);
    let status = status
        .context("waiting for cargo xtask image")?
        .map(|o| o.status)
        .context("cargo xtask image closed its output but did not exit")?;
    let seconds = start.elapsed().as_secs_f64();
    let typed = Report::read(&report).with_context(|| {
        format!(
            "{name}: cargo xtask image wrote no readable report at {} (exit status {status}; log {})",
            report.display(),
            log_path.display()
        )
    })?;
    let mut summary = summarize(&typed);
    summary.exit_code = status.code();
    summary.result = if status.success() { "passed" } else { "failed" }.into();
    summary.seconds = seconds;
    summary.report = report;
    summary.log = log_path;
    say(&format!(
        "{name}: {} in {seconds:.1} s{}",
        summary.result,
        summary
            .cause
            .as_ref()
            .map(|c| format!(" (cause: {c})"))
            .unwrap_or_default()
    ));
    Ok(summary)
}

/// The figures of an image report.
pub fn summarize(r: &Report) -> RunSummary {
    let disk = &r.disk;
    let freed_items = r
        .free
        .iter()
        .flat_map(|f| &f.items)
        .filter(|i| i.action == headroom_disk::Action::Removed)
        .map(|i| (i.name.clone(), i.freed_bytes))
        .collect();
    let background = disk.free_in_background;
    let mut to_built = 0.0;
    let mut built = false;
    for stage in &r.stages {
        if background && stage.name == Stage::Free {
            continue;
        }
        to_built += stage.seconds;
        if stage.name == Stage::Build {
            built = stage.status == StageStatus::Passed;
            break;
        }
    }
    RunSummary {
        to_built_seconds: built.then_some(to_built),
        cause: r.cause.map(|c| match c {
            Cause::NoSpace => "no_space".to_string(),
            Cause::Interrupted => "interrupted".to_string(),
        }),
        available_before: disk.available_before,
        available_after: disk.available_after,
        low_water_bytes: disk.low_water_bytes,
        freed_bytes: disk.freed_bytes,
        freed_items,
        reclaimable_bytes: disk.reclaimable_bytes,
        reclaimable_items: disk.reclaimable_items.clone(),
        floor_bytes: disk.floor_bytes,
        build_stops: Some(u64::from(disk.build_stops)),
        layers: r.image.layers.map(|l| l as u64),
        size_bytes: r.image.size_bytes,
        digest: r.image.digest.clone(),
        stages: r
            .stages
            .iter()
            .map(|s| format!("{}: {}", s.name, s.status.as_str()))
            .collect(),
        error: r.errors.first().cloned(),
        placement: r.placement.as_ref().map(|p| p.method.as_str().to_string()),
        relocated_to: r
            .placement
            .as_ref()
            .filter(|p| p.copied_bytes.is_some())
            .and_then(|p| p.to.clone()),
        relocation_seconds: r
            .placement
            .as_ref()
            .filter(|p| p.copied_bytes.is_some())
            .map(|p| p.seconds),
        ..RunSummary::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, action: &str, freed: u64) -> serde_json::Value {
        serde_json::json!({
            "name": name, "paths": [], "size_bytes": freed, "apparent_bytes": freed, "files": 1,
            "action": action, "reason": null, "seconds": 0.0, "estimated_seconds": 0.0,
            "freed_bytes": freed, "kept": [], "errors": [], "shared_bytes": 0
        })
    }

    #[test]
    fn a_report_is_summarised_with_the_cause_and_what_each_item_freed() {
        let v = serde_json::json!({
            "schema": 1,
            "cause": "no_space",
            "disk": {"available_before": 10, "low_water_bytes": 0, "freed_bytes": 7,
                     "reclaimable_bytes": 99, "reclaimable_items": ["android"], "build_stops": 1},
            "free": {
                "filesystem": {"path": "/", "mount_point": "/", "fs_type": "ext4",
                               "total_bytes": 100, "available_before": 10, "available_after": 17},
                "need_bytes": null, "target_met": true, "dry_run": false,
                "freed_bytes": 5, "filesystem_delta_bytes": 7, "seconds": 1.0,
                "items": [item("dotnet", "removed", 5), item("android", "skipped", 0)]
            },
            "image": {"name": "app", "tags": [], "references": [], "digests": {},
                      "layers": 4, "digest": "sha256:ab"},
            "stages": [{"name": "build", "status": "failed", "seconds": 1.0}],
            "errors": ["build: no space left on device"]
        });
        let s = summarize(&serde_json::from_value(v).expect("a report"));
        assert_eq!(s.cause.as_deref(), Some("no_space"));
        assert_eq!(s.low_water_bytes, Some(0));
        assert_eq!(s.reclaimable_items, ["android"]);
        assert_eq!(s.freed_items.len(), 1);
        assert_eq!(s.freed_items["dotnet"], 5);
        assert_eq!(s.stages, ["build: failed"]);
        assert_eq!(s.layers, Some(4));
    }
}
