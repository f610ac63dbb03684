//! What a simulation showed: the summary (JSON), its Markdown and its human table.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use headroom_disk::format_size;
use headroom_pipeline::Report;
use serde::Serialize;

use crate::image_run::RunSummary;
use crate::report;
use crate::sandbox::runner::{Runner, say};
use crate::workload::runner::AreaSummary;

#[derive(Debug, Default, Serialize)]
pub(super) struct DiskSummary {
    /// `single`, or a hosted-runner layout of `workload/layouts.toml`.
    pub(super) layout: Option<String>,
    /// The hosted layout, in words.
    pub(super) described: Option<String>,
    pub(super) size_bytes: u64,
    /// The second disk (dual layout): its size and what was available on it at the start.
    pub(super) second_size_bytes: Option<u64>,
    pub(super) second_available_bytes: Option<u64>,
    /// Available on the fresh filesystem with the engine started: what the layout scales to.
    pub(super) usable_bytes: u64,
    /// The workload's unit (`UNIT_MB`): the merged build needs about 5 of them, the naive
    /// one about 8, and the runner starts with about 3.5 free.
    pub(super) unit_bytes: u64,
    pub(super) need_bytes: u64,
    pub(super) floor_bytes: u64,
    /// Synthetic software written: bytes and files per catalog path.
    pub(super) areas: Vec<AreaSummary>,
    pub(super) fill_seconds: f64,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Summary {
    pub(super) passed: bool,
    pub(super) problems: Vec<String>,
    pub(super) disk: DiskSummary,
    /// What the naive run must show: `failed` (out of space) where the layout is small,
    /// `passed` where it has room.
    pub(super) naive_expected: String,
    pub(super) naive: RunSummary,
    pub(super) pipeline: RunSummary,
    /// The single layout only: on the dual one, placement makes room without freeing.
    pub(super) background: Option<RunSummary>,
    /// Dual layout: the keys of the runner's daemon.json after the move, besides data-root,
    /// which must be the ones it had before.
    pub(super) daemon_json_keys_before: Vec<String>,
    pub(super) daemon_json_keys_after: Vec<String>,
    /// Dual layout: a move whose restart fails, and what was put back.
    pub(super) restore: Option<RestoreCheck>,
    /// Free-then-build minus free-in-background time to a built image (positive: the
    /// background run was faster).
    pub(super) background_saved_seconds: Option<f64>,
    pub(super) seconds: f64,
}

/// A move whose restart fails, for real: the runner's unit passes `--data-root` itself, so
/// dockerd refuses the merged daemon.json that sets it too.
#[derive(Debug, Default, Serialize)]
pub(super) struct RestoreCheck {
    pub(super) result: String,
    pub(super) error: Option<String>,
    /// daemon.json byte for byte as it was before the run.
    pub(super) daemon_json_restored: bool,
    /// The engine's data root after the run: the old one again.
    pub(super) data_root_after: Option<PathBuf>,
    pub(super) base_image_kept: bool,
    /// The partial copy headroom left on the second disk (removed by the simulator after).
    pub(super) partial_copy_left: bool,
    pub(super) problems: Vec<String>,
}

pub(super) fn check_passed(name: &str, run: &RunSummary, problems: &mut Vec<String>) {
    if run.result != "passed" {
        problems.push(format!(
            "{name}: cargo xtask image failed: {} (log {})",
            run.error.as_deref().unwrap_or("no error recorded"),
            run.log.display()
        ));
        return;
    }
    if run.digest.is_none() || run.digest != run.registry_digest {
        problems.push(format!(
            "{name}: the pushed digest {:?} is not what the registry serves ({:?})",
            run.digest, run.registry_digest
        ));
    }
}

/// What the registry serves for the run's first tag (`Docker-Content-Digest`).
pub(super) fn registry_digest(sandbox: &Runner, run: &RunSummary) -> Option<String> {
    let registry = sandbox.registry.as_ref()?;
    let report = Report::read(&run.report).ok()?;
    let reference = report.image.references.first()?;
    let (repo, tag) = reference.rsplit_once(':')?;
    registry.manifest_digest(repo.split_once('/')?.1, tag)
}

/// Write the JSON summary to `path` and the Markdown one beside it; print it; hand it to
/// GitHub Actions.
pub(super) fn write(summary: &Summary, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("--report {}", path.display()))?;
    }
    let json = serde_json::to_string_pretty(summary)?;
    std::fs::write(path, json + "\n").with_context(|| format!("--report {}", path.display()))?;
    let md_path = path.with_extension("md");
    let md = markdown(summary);
    std::fs::write(&md_path, &md).with_context(|| md_path.display().to_string())?;
    eprintln!("\n{}", human(summary));
    say(&format!(
        "summary written to {} and {}",
        path.display(),
        md_path.display()
    ));
    report::github_step_summary(&md)?;
    report::github_outputs(&[
        ("simulate-passed", summary.passed.to_string()),
        (
            "naive-cause",
            summary.naive.cause.clone().unwrap_or_default(),
        ),
        (
            "pipeline-digest",
            summary.pipeline.digest.clone().unwrap_or_default(),
        ),
    ])?;
    Ok(())
}

/// The runs side by side: naive, pipeline and (single layout) background.
fn runs(s: &Summary) -> Vec<(&'static str, &RunSummary)> {
    let mut runs = vec![("naive", &s.naive), ("pipeline", &s.pipeline)];
    if let Some(bg) = &s.background {
        runs.push(("background", bg));
    }
    runs
}

/// The table's header: an empty corner, then the runs' names.
fn header(s: &Summary) -> Vec<&'static str> {
    let mut h = vec![""];
    h.extend(runs(s).iter().map(|(name, _)| *name));
    h
}

/// The side-by-side rows, one column per run.
fn rows(s: &Summary) -> Vec<Vec<String>> {
    let runs: Vec<&RunSummary> = runs(s).into_iter().map(|(_, r)| r).collect();
    let size = |b: Option<u64>| b.map(format_size).unwrap_or_else(|| "—".into());
    let row = |label: &str, f: &dyn Fn(&RunSummary) -> String| {
        let mut r = vec![label.to_string()];
        r.extend(runs.iter().map(|run| f(run)));
        r
    };
    vec![
        row("result", &|r| match &r.cause {
            Some(c) => format!("{} ({c})", r.result),
            None => r.result.clone(),
        }),
        row("placement", &|r| {
            r.placement.clone().unwrap_or_else(|| "—".into())
        }),
        row("data root moved to", &|r| {
            r.relocated_to
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "—".into())
        }),
        row("free before", &|r| size(r.available_before)),
        row("freed", &|r| size(r.freed_bytes)),
        row("free after", &|r| size(r.available_after)),
        row("low-water mark", &|r| size(r.low_water_bytes)),
        row("reclaimable (unused)", &|r| size(r.reclaimable_bytes)),
        row("build stops (floor)", &|r| {
            r.build_stops
                .filter(|_| r.floor_bytes.is_some())
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into())
        }),
        row("layers", &|r| {
            r.layers
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into())
        }),
        row("image size", &|r| size(r.size_bytes)),
        row("digest", &|r| {
            r.digest
                .as_deref()
                .map(|d| d.chars().take(19).collect())
                .unwrap_or_else(|| "—".into())
        }),
        row("seconds to a built image", &|r| {
            r.to_built_seconds
                .map(|t| format!("{t:.1}"))
                .unwrap_or_else(|| "—".into())
        }),
        row("seconds in all", &|r| format!("{:.1}", r.seconds)),
    ]
}

fn human(s: &Summary) -> String {
    let mut out = format!(
        "simulated runner: {} disk, {} usable, workload unit {}; free target {}, floor {}\n",
        format_size(s.disk.size_bytes),
        format_size(s.disk.usable_bytes),
        format_size(s.disk.unit_bytes),
        format_size(s.disk.need_bytes),
        format_size(s.disk.floor_bytes)
    );
    if let Some(d) = &s.disk.described {
        out.push_str(&format!(
            "hosted-runner layout {d}: the naive build is expected to have {}\n",
            s.naive_expected
        ));
    }
    if let Some(second) = s.disk.second_size_bytes {
        out.push_str(&format!(
            "second disk at the runner's /mnt: {}, {} available\n",
            format_size(second),
            s.disk
                .second_available_bytes
                .map(format_size)
                .unwrap_or_else(|| "—".into())
        ));
    }
    out.push_str(&report::table(&header(s), &rows(s)));
    if let Some(saved) = s.background_saved_seconds {
        out.push_str(&format!(
            "\nfreeing in the background saved {saved:.1} s against free-then-build\n"
        ));
    }
    out.push_str(&format!(
        "{} in {:.1} s\n",
        if s.passed { "passed" } else { "FAILED" },
        s.seconds
    ));
    out
}

fn markdown(s: &Summary) -> String {
    let mut md = String::from("## Simulated small-disk runner\n\n");
    if let Some(d) = &s.disk.described {
        md.push_str(&format!(
            "Hosted-runner layout {d}; the naive build is expected to have {}.\n\n",
            s.naive_expected
        ));
    }
    md.push_str(&format!(
        "{} disk ({} usable), filled like a hosted runner; workload unit {}, free target {}, \
         background floor {}.\n\n",
        format_size(s.disk.size_bytes),
        format_size(s.disk.usable_bytes),
        format_size(s.disk.unit_bytes),
        format_size(s.disk.need_bytes),
        format_size(s.disk.floor_bytes)
    ));
    if let Some(second) = s.disk.second_size_bytes {
        md.push_str(&format!(
            "A second disk at the runner's `/mnt`: {}, {} available.\n\n",
            format_size(second),
            s.disk
                .second_available_bytes
                .map(format_size)
                .unwrap_or_else(|| "—".into())
        ));
    }
    let h = header(s);
    md.push_str(&format!("| {} |\n", h.join(" | ")));
    md.push_str(&format!("|{}\n", "---|".repeat(h.len())));
    for r in rows(s) {
        md.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    if let Some(saved) = s.background_saved_seconds {
        md.push_str(&format!(
            "\nFreeing in the background saved {saved:.1} s against free-then-build.\n"
        ));
    }
    if !s.pipeline.freed_items.is_empty() {
        md.push_str("\nFreed by the pipeline's free stage:\n\n| item | freed |\n|---|---|\n");
        for (name, bytes) in &s.pipeline.freed_items {
            md.push_str(&format!("| {name} | {} |\n", format_size(*bytes)));
        }
    }
    if let Some(e) = &s.naive.error {
        let first: Vec<&str> = e.lines().take(3).collect();
        md.push_str(&format!(
            "\nThe naive build's error:\n\n```\n{}\n```\n",
            first.join("\n")
        ));
    }
    for p in &s.problems {
        md.push_str(&format!("\n**Problem:** {p}\n"));
    }
    md
}
