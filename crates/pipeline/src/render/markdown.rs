//! Markdown for GitHub Actions' step summary (or any page): a pipeline run's stages, image
//! and disk budget with a chart of free space over the build; a matrix's variants; the
//! inspect stage's section; the free stage's table.

use std::fmt::Write as _;

use headroom_disk::{FreeReport, Sample, format_size};

use crate::budget::Phase;
use crate::gate::InspectReport;
use crate::render::Outcome;
use crate::report::Report;

/// How the run ended, above the step summary: nothing when it passed; else the failing
/// stage, the cause and the message (the no-space diagnosis: the filesystem, the
/// low-water mark, what could have been reclaimed).
pub fn outcome(o: &Outcome) -> String {
    let Some(message) = &o.message else {
        return String::new();
    };
    let stage = o
        .failed_stage
        .map(|s| format!(" at `{s}`"))
        .unwrap_or_default();
    let mut md = format!(
        "### headroom image: {}{stage} ({})\n\n```text\n",
        o.result,
        o.cause.as_deref().unwrap_or("unknown cause")
    );
    for line in message.lines().take(60) {
        // A fence inside the message would end the block early.
        md.push_str(&line.replace("```", "` ` `"));
        md.push('\n');
    }
    md.push_str("```\n\n");
    md
}

/// The step summary: stages, the image, and free space over the build as a mermaid chart.
pub fn step_summary(r: &Report) -> String {
    let mut md = String::from(
        "### headroom image\n\n| stage | status | seconds | reason |\n|---|---|---:|---|\n",
    );
    for s in &r.stages {
        md.push_str(&format!(
            "| {} | {} | {:.1} | {} |\n",
            s.name,
            s.status.as_str(),
            s.seconds,
            s.reason.as_deref().unwrap_or("").replace('|', "\\|")
        ));
    }
    md.push_str(&format!(
        "\n**{}** — {}; size {}, {} layers; {}\n",
        r.image.name,
        r.image.tags.join(", "),
        r.image
            .size_bytes
            .map(format_size)
            .unwrap_or_else(|| "?".into()),
        r.image
            .layers
            .map(|l| l.to_string())
            .unwrap_or_else(|| "?".into()),
        match &r.image.digest {
            Some(d) => format!("digest `{d}`"),
            None => "not pushed (no digest)".into(),
        },
    ));
    if let Some(line) = r.free.as_ref().and_then(layout_line) {
        md.push_str(&format!("\n{line}\n"));
    }
    if let Some(b) = &r.builder {
        md.push_str(&builder_line(b));
    }
    if let Some(smoke) = &r.smoke {
        md.push_str(&smoke_line(smoke));
    }
    md.push_str(&phases_table(&r.disk.phases));
    if let Some(t) = &r.disk.timeline
        && t.samples.len() > 1
    {
        let (xs, ys) = chart_points(&t.samples, 40);
        md.push_str(&format!(
            "\nLow-water mark: {}\n\n```mermaid\nxychart-beta\n  title \"Free space on the data root during the build (GB)\"\n  x-axis \"seconds\" [{}]\n  y-axis \"GB\"\n  line [{}]\n```\n",
            format_size(t.low_water_bytes),
            xs.join(", "),
            ys.join(", ")
        ));
    }
    md
}

/// The route the image took out of the builder, and the builder's disk.
fn builder_line(b: &crate::route::BuilderReport) -> String {
    let size = |v: Option<u64>| v.map(format_size).unwrap_or_else(|| "?".into());
    let mut md = format!(
        "\nRoute: **{}** — {}\n",
        b.route.map(|r| r.as_str()).unwrap_or("?"),
        b.why.replace('|', "\\|")
    );
    if let Some(f) = &b.facts {
        md.push_str(&format!(
            "\nBuilder `{}` (driver {}): state {} before the build, {} after it{}\n",
            f.name,
            f.driver,
            size(b.state_before_bytes),
            size(b.state_after_build_bytes),
            if b.pruned {
                format!(", {} after it was freed", size(b.state_after_prune_bytes))
            } else {
                String::new()
            }
        ));
    }
    for n in &b.notes {
        md.push_str(&format!("\n{n}\n"));
    }
    for w in &b.cache_warnings {
        md.push_str(&format!(
            "\n> [!WARNING]\n> Cache export failed (the image is built and pushed): {}\n",
            w.replace('\n', " ")
        ));
    }
    md
}

/// The smoke test's device, what it found there, and why that device.
fn smoke_line(smoke: &crate::report::SmokeReport) -> String {
    let mut found = Vec::new();
    if let Some(name) = &smoke.gpu_name {
        found.push(name.clone());
    }
    if let Some(cuda) = &smoke.cuda {
        found.push(format!("CUDA {cuda}"));
    }
    let found = if found.is_empty() {
        String::new()
    } else {
        format!(" ({})", found.join(", "))
    };
    let why = smoke
        .gpu
        .as_ref()
        .map(|g| g.reason.as_str())
        .or(smoke.error.as_deref())
        .unwrap_or("");
    format!(
        "\n**smoke** on **{}**{found}: {}\n",
        smoke.device,
        why.replace('\n', " ")
    )
}

/// A matrix run's step summary: one row per variant, then each variant's own summary.
pub fn matrix_summary(r: &Report, reports: &[(String, Report)]) -> String {
    let mut md = String::from(
        "### headroom image matrix\n\n| variant | result | tags | digest | seconds |\n\
         |---|---|---|---|---:|\n",
    );
    for v in &r.variants {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} |\n",
            v.name,
            if v.passed { "passed" } else { "failed" },
            v.references.join(", "),
            v.digest
                .as_deref()
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into()),
            v.seconds
        ));
    }
    for (name, report) in reports {
        md.push_str(&format!("\n#### {name}\n\n"));
        md.push_str(step_summary(report).trim_start_matches("### headroom image\n\n"));
    }
    md
}

/// The disk budget per phase: what each phase held at its peak and left taken, the phases
/// that took the most first (at most 15; the rest summed in one row).
fn phases_table(phases: &[Phase]) -> String {
    if phases.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n**Disk budget per phase** (data root's filesystem)\n\n\
         | phase | seconds | peak | left taken | lowest free |\n|---|---:|---:|---:|---:|\n",
    );
    let mut order: Vec<&Phase> = phases.iter().collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.peak_bytes.max(p.net_bytes.unsigned_abs())));
    let signed = |n: i64| {
        if n < 0 {
            format!("−{}", format_size(n.unsigned_abs()))
        } else {
            format_size(n as u64)
        }
    };
    for p in order.iter().take(15) {
        md.push_str(&format!(
            "| {} | {:.1} | {} | {} | {} |\n",
            p.name.replace('|', "\\|"),
            (p.end_ms - p.start_ms) as f64 / 1000.0,
            format_size(p.peak_bytes),
            signed(p.net_bytes),
            format_size(p.low_bytes)
        ));
    }
    if order.len() > 15 {
        let rest = &order[15..];
        md.push_str(&format!(
            "| {} more phases | | | {} | |\n",
            rest.len(),
            signed(rest.iter().map(|p| p.net_bytes).sum())
        ));
    }
    md
}

/// At most `max` points, labelled in seconds with one decimal, each label distinct (a sample
/// that would repeat the previous label is left out).
fn chart_points(samples: &[Sample], max: usize) -> (Vec<String>, Vec<String>) {
    let step = samples.len().div_ceil(max.max(1)).max(1);
    let mut xs: Vec<String> = Vec::new();
    let mut ys = Vec::new();
    for s in samples.iter().step_by(step) {
        let x = format!("{:.1}", s.ms as f64 / 1000.0);
        if xs.last() == Some(&x) {
            continue;
        }
        xs.push(x);
        ys.push(format!("{:.2}", s.available_bytes as f64 / 1e9));
    }
    (xs, ys)
}

/// The inspect stage's section of the step summary.
pub fn inspect(r: &InspectReport) -> String {
    let a = &r.analysis;
    let mut md = format!(
        "### headroom inspect: {}\n\n{} in {} layers; wasted **{}** (efficiency {:.2}%). dive would say {} wasted ({:.2}%).\n\n",
        a.image.as_deref().unwrap_or("image"),
        format_size(a.total_bytes),
        a.layers.iter().filter(|l| !l.empty).count(),
        format_size(a.wasted_bytes),
        a.efficiency * 100.0,
        format_size(a.dive.wasted_bytes),
        a.dive.efficiency * 100.0,
    );
    if !r.gate.is_empty() {
        md.push_str("| rule | limit | actual | result |\n|---|---|---|---|\n");
        for g in &r.gate {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                g.rule,
                g.limit,
                g.actual,
                if g.passed { "passed" } else { "**failed**" }
            ));
        }
    }
    for h in &r.hints {
        md.push_str(&format!("\n- {h}"));
    }
    md.push('\n');
    md
}

/// The free stage's report: the filesystem before and after, the target, one row per item.
pub fn free(report: &FreeReport) -> String {
    let fs = &report.filesystem;
    let mut md = String::new();
    let title = if report.dry_run {
        "headroom free: plan (dry run)"
    } else {
        "headroom free"
    };
    let _ = writeln!(md, "### {title}\n");
    let _ = writeln!(
        md,
        "Filesystem `{}` ({}, {} total): **{}** available before, **{}** after; {} {}.\n",
        fs.mount_point,
        fs.fs_type,
        format_size(fs.total_bytes),
        format_size(fs.available_before),
        format_size(fs.available_after),
        if report.dry_run {
            "would free"
        } else {
            "freed"
        },
        format_size(report.freed_bytes),
    );
    if let Some(line) = layout_line(report) {
        let _ = writeln!(md, "{line}\n");
    }
    if let Some(need) = report.need_bytes {
        let _ = writeln!(
            md,
            "Target: {} available — {}.\n",
            format_size(need),
            if report.target_met {
                "met"
            } else {
                "**not met**"
            }
        );
    }
    let _ = writeln!(md, "| item | size | files | action | seconds | reason |");
    let _ = writeln!(md, "|---|---:|---:|---|---:|---|");
    for i in &report.items {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {} |",
            i.name,
            format_size(i.size_bytes),
            i.files,
            i.action.as_str(),
            i.seconds,
            i.reason.as_deref().unwrap_or("").replace('|', "\\|"),
        );
    }
    md
}

/// The hosted-runner layout the free stage recognised, and why (`crates/disk/src/layouts.toml`);
/// nothing off GitHub-hosted runners when none was.
pub fn layout_line(report: &FreeReport) -> Option<String> {
    let layout = report
        .layout
        .as_ref()
        .filter(|l| l.name.is_some() || l.evidence.hosted)?;
    let why = layout.why.join("; ").replace('|', "\\|");
    Some(match &layout.name {
        Some(name) => format!("Runner layout: **{name}** — {why}."),
        None => format!("Runner layout: not one of the hosted layouts — {why}."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_smoke_device_and_why() {
        let r = Report {
            smoke: Some(crate::report::SmokeReport {
                device: "gpu".into(),
                gpu_name: Some("NVIDIA H200".into()),
                cuda: Some("11.8".into()),
                gpu: Some(headroom_docker::smoke::GpuDecision {
                    request: None,
                    device: "gpu".into(),
                    reason: "the engine lists a GPU runtime".into(),
                    failure: None,
                    host_hint: None,
                }),
                ..Default::default()
            }),
            ..Report::default()
        };
        let md = step_summary(&r);
        assert!(
            md.contains(
                "**smoke** on **gpu** (NVIDIA H200, CUDA 11.8): the engine lists a GPU runtime"
            ),
            "{md}"
        );
    }

    #[test]
    fn chart_labels_are_distinct_with_one_decimal() {
        let samples: Vec<Sample> = (0..500)
            .map(|i| Sample {
                ms: i * 37,
                available_bytes: 10_000_000_000 - i * 1_000_000,
            })
            .collect();
        let (xs, ys) = chart_points(&samples, 40);
        assert!(xs.len() <= 40 && xs.len() > 20, "{}", xs.len());
        assert_eq!(xs.len(), ys.len());
        let mut seen = std::collections::BTreeSet::new();
        assert!(xs.iter().all(|x| seen.insert(x.clone())), "{xs:?}");
        assert!(xs.iter().all(|x| x.contains('.')), "{xs:?}");
        // Samples closer than a tenth of a second never repeat a label.
        let dense: Vec<Sample> = (0..10)
            .map(|i| Sample {
                ms: i * 4,
                available_bytes: 1,
            })
            .collect();
        assert_eq!(chart_points(&dense, 40).0, vec!["0.0"]);
    }
}
