//! Text for a person at a terminal or reading a CI log: aligned tables, the reports of
//! `free`, `inspect`, `lint` and `lint --fix`, and one line per event of a pipeline run
//! (what `cargo xtask image` shows of a [`crate::Reporter`]'s calls).

use std::path::Path;

use headroom_disk::{Action, Event, FreeReport, Timeline, format_size};
use headroom_docker::build::BuildEvent;
use headroom_docker::push::PushEvent;
use headroom_dockerfile::fix::{Applicability, Fixed, Safety};

use crate::gate::{InspectReport, fraction};
use crate::lint::FileFindings;
use crate::report::{StageReport, StageStatus};
use crate::stage::Stage;

/// A plain text table with aligned columns; numeric-looking columns are right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let right: Vec<bool> = (0..headers.len())
        .map(|c| {
            rows.iter().all(|r| {
                r.get(c).is_none_or(|v| {
                    v.chars().next().is_none_or(|ch| ch.is_ascii_digit()) && !v.contains('/')
                })
            })
        })
        .collect();
    let mut out = String::new();
    let mut push_row = |cells: Vec<String>| {
        let mut line = String::new();
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c > 0 {
                line.push_str("  ");
            }
            if right[c] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if c + 1 < cells.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        push_row(row.clone());
    }
    out
}

/// `file:line: ID message (severity; hint)`, one line per finding.
pub fn findings(files: &[FileFindings]) -> String {
    let mut out = String::new();
    for f in files {
        for (_, what, e) in f.refusals() {
            out.push_str(&format!(
                "{}:{}:{}: {} (error: {what})\n",
                f.file, e.line, e.column, e.message
            ));
        }
        for x in &f.findings {
            out.push_str(&format!(
                "{}:{}: {} {} ({}; {}){}\n",
                f.file,
                x.line,
                x.id,
                x.message,
                x.severity.as_str(),
                x.hint,
                match x.applicability() {
                    Some(Applicability::Safe) => " [--fix]",
                    Some(Applicability::Unsafe) => " [--fix-unsafe]",
                    None => "",
                }
            ));
        }
    }
    let c = crate::lint::counts(files);
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} info in {} file(s)\n",
        c["error"],
        c["warning"],
        c["info"],
        files.len()
    ));
    out
}

/// What `lint --fix` did to one file: the diff (unless the result itself goes to standard
/// output), one line per change, and the layer counts before and after.
pub fn fixes(file: &str, fixed: &Fixed, with_diff: bool) -> String {
    let mut report = String::new();
    if with_diff {
        report.push_str(&fixed.diff);
    }
    for c in &fixed.changes {
        report.push_str(&format!(
            "{file}:{}: {} ({}{}): {}\n",
            c.line,
            c.id.as_str(),
            c.rules.join(", "),
            match c.safety {
                Safety::Safe => "",
                Safety::Unsafe => "; unsafe: changes what is installed",
            },
            c.description
        ));
    }
    let (b, a) = (fixed.before.final_stage, fixed.after.final_stage);
    report.push_str(&format!(
        "{file}: {} change(s); final stage: {} RUN / {} layers before, {} RUN / {} layers after\n",
        fixed.changes.len(),
        b.run,
        b.layers,
        a.run,
        a.layers
    ));
    report
}

/// The free stage's report: the table, then available before/after.
pub fn free_report(report: &FreeReport) -> String {
    let rows: Vec<Vec<String>> = report
        .items
        .iter()
        .map(|i| {
            // An item skipped before it was measured has no size to show.
            let unmeasured = i.action == Action::Skipped && i.size_bytes == 0 && i.files == 0;
            vec![
                i.name.clone(),
                if unmeasured {
                    "-".into()
                } else {
                    format_size(i.size_bytes)
                },
                if unmeasured {
                    "-".into()
                } else {
                    i.files.to_string()
                },
                i.action.as_str().to_string(),
                if i.action == Action::Skipped || i.action == Action::Planned {
                    "-".to_string()
                } else {
                    format!("{:.1}", i.seconds)
                },
                i.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let fs = &report.filesystem;
    let mut out = table(
        &["item", "size", "files", "action", "seconds", "reason"],
        &rows,
    );
    out.push('\n');
    let verb = if report.dry_run {
        "would free"
    } else {
        "freed"
    };
    out.push_str(&format!(
        "{} ({} on {}): available {} before, {} after; {verb} {} in {:.1} s",
        fs.mount_point,
        fs.fs_type,
        fs.path,
        format_size(fs.available_before),
        format_size(fs.available_after),
        format_size(report.freed_bytes),
        report.seconds,
    ));
    if let Some(need) = report.need_bytes {
        out.push_str(&format!(
            "; target {} {}",
            format_size(need),
            if report.target_met { "met" } else { "not met" }
        ));
    }
    out.push('\n');
    if !report.dry_run {
        let a = &report.accounting;
        out.push_str(&format!(
            "freed counts {}; the filesystem's own figure: {} ({} apart)\n",
            a.method,
            format_size(a.filesystem_delta_bytes.unsigned_abs()),
            format_size(a.difference_bytes.unsigned_abs()),
        ));
        if let Some(why) = &a.explanation {
            out.push_str(&format!("note: {why}\n"));
        }
    }
    for p in report
        .protected
        .iter()
        .filter(|p| p.entry != p.path || !p.kept)
    {
        out.push_str(&format!(
            "protect {}: {}{}\n",
            p.entry,
            if p.kept { "kept" } else { "not kept" },
            p.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// An image's analysis: its layers, what wastes most, fix hints, and the gate.
pub fn inspect_report(r: &InspectReport) -> String {
    let a = &r.analysis;
    let rows: Vec<Vec<String>> = a
        .layers
        .iter()
        .map(|l| {
            let created = l.created_by.clone().unwrap_or_default();
            let created: String = created.chars().take(70).collect();
            vec![
                l.index.to_string(),
                format_size(l.size_bytes),
                format_size(l.wasted_bytes),
                r.layer_lines
                    .get(l.index)
                    .copied()
                    .flatten()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                created,
            ]
        })
        .collect();
    let mut out = table(&["layer", "size", "wasted", "line", "created by"], &rows);
    out.push_str(&format!(
        "\n{}: {} in {} layers; wasted {} (efficiency {:.2}%); duplicate content {}\n",
        a.image.as_deref().unwrap_or("image"),
        format_size(a.total_bytes),
        a.layers.iter().filter(|l| !l.empty).count(),
        format_size(a.wasted_bytes),
        a.efficiency * 100.0,
        format_size(a.duplicate_bytes),
    ));
    out.push_str(&format!(
        "dive's figures: efficiency {:.2}%, wasted {}, user wasted {} — {}\n",
        a.dive.efficiency * 100.0,
        format_size(a.dive.wasted_bytes),
        percent(a.dive.user_wasted_percent),
        a.dive.explanation
    ));
    if !a.top_wasted.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = a
            .top_wasted
            .iter()
            .map(|w| {
                vec![
                    format_size(w.bytes),
                    w.written_in.to_string(),
                    w.removed_in.map(|r| r.to_string()).unwrap_or_default(),
                    w.path.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["wasted", "written in", "removed in", "path"],
            &rows,
        ));
    }
    for h in &r.hints {
        out.push_str(&format!("hint: {h}\n"));
    }
    out.push_str(&format!(
        "analysed in {:.2} s{}\n",
        r.seconds,
        r.peak_memory_bytes
            .map(|b| format!(", peak memory {}", format_size(b)))
            .unwrap_or_default()
    ));
    for g in &r.gate {
        out.push_str(&format!(
            "gate: {} {} (limit {}, actual {})\n",
            g.rule,
            if g.passed { "passed" } else { "FAILED" },
            g.limit,
            g.actual
        ));
    }
    out
}

/// A fraction as a percentage, or `+Inf` / `NaN` as dive's division gives them.
fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", x * 100.0)
    } else {
        fraction(x)
    }
}

// One line per event of a pipeline run, as `cargo xtask image` shows them on stderr.

/// `image: STAGE: STATUS[: REASON] (S s)`. A failure's cause is left out: it is shown once,
/// as the command's error.
pub fn stage_finished(stage: &StageReport) -> String {
    let shown = stage
        .reason
        .as_ref()
        .filter(|_| stage.status != StageStatus::Failed);
    format!(
        "image: {}: {}{} ({:.1} s)",
        stage.name,
        stage.status.as_str(),
        shown.map(|r| format!(": {r}")).unwrap_or_default(),
        stage.seconds
    )
}

/// `image: STAGE: TEXT`.
pub fn note(stage: Stage, text: &str) -> String {
    format!("image: {stage}: {text}")
}

/// `warning: STAGE: TEXT`.
pub fn warning(stage: Stage, text: &str) -> String {
    format!("warning: {stage}: {text}")
}

/// `image: variant I/N: NAME`.
pub fn variant_started(name: &str, index: usize, count: usize) -> String {
    format!("image: variant {index}/{count}: {name}")
}

/// The lint stage's findings, each line as `image: lint: …`.
pub fn lint_stage(files: &[FileFindings]) -> String {
    findings(files)
        .lines()
        .map(|line| format!("image: lint: {line}\n"))
        .collect()
}

/// `image: building REFERENCES with BACKEND`.
pub fn build_started(references: &[String], backend: &str) -> String {
    format!("image: building {} with {backend}", references.join(", "))
}

/// `build: STEP[ (cached)]`, or `build: LINE`.
pub fn build_event(event: &BuildEvent) -> String {
    match event {
        BuildEvent::Step { name, cached } => {
            format!("build: {name}{}", if *cached { " (cached)" } else { "" })
        }
        BuildEvent::Line(l) => format!("build: {l}"),
    }
}

/// The build's low-water mark on the data root's filesystem.
pub fn low_water(timeline: &Timeline) -> String {
    format!(
        "image: build: lowest free space on the data root's filesystem: {}",
        format_size(timeline.low_water_bytes)
    )
}

/// A push's digest and `Pushed` lines, and its retries; other statuses show nothing.
pub fn push_event(event: &PushEvent) -> Option<String> {
    match event {
        PushEvent::Status { reference, line } => (line.contains("digest:")
            || line.starts_with("Pushed"))
        .then(|| format!("push: {reference}: {line}")),
        PushEvent::Retry {
            reference,
            attempt,
            delay,
            error,
        } => Some(format!(
            "push: {reference}: attempt {attempt} in {:.1} s after: {error}",
            delay.as_secs_f64()
        )),
    }
}

/// `image: report written to PATH`.
pub fn report_written(path: &Path) -> String {
    format!("image: report written to {}", path.display())
}

/// A reclaim's progress as a plain line: what was measured (shown only without a progress
/// bar), an item started, an item finished. Removed entries advance a bar and make no line.
pub fn free_event(event: &Event<'_>) -> Option<String> {
    match event {
        Event::Measuring { .. } | Event::Removed { .. } => None,
        Event::Measured { item, size } => Some(format!(
            "free: measured {item}: {} in {} files",
            format_size(size.disk_bytes),
            size.files
        )),
        Event::Started { item, bytes, files } => Some(format!(
            "free: {item}: reclaiming {} ({files} files)",
            format_size(*bytes)
        )),
        Event::Finished {
            item,
            action,
            freed_bytes,
            seconds,
        } => Some(format!(
            "free: {item}: {} {} in {seconds:.1} s",
            action.as_str(),
            format_size(*freed_bytes)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["item", "size"],
            &[
                vec!["android".into(), "12 GB".into()],
                vec!["x".into(), "1.5 MB".into()],
            ],
        );
        assert_eq!(t, "item       size\nandroid   12 GB\nx        1.5 MB\n");
    }
}
