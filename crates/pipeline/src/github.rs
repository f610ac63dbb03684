//! What GitHub Actions gets from a report: the step summary (Markdown, with a chart of free
//! space over the build) and the step's outputs.

use std::io::Write;

use headroom_disk::{Sample, format_size};

use crate::Report;

/// A file GitHub Actions gave the step (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`) that could
/// not be written.
#[derive(Debug, thiserror::Error)]
#[error("${var} ({path}): {source}")]
pub struct EnvFileError {
    pub var: &'static str,
    pub path: String,
    pub source: std::io::Error,
}

/// On GitHub Actions: append Markdown to the step summary, if the runner provides one.
pub fn append_step_summary(markdown: &str) -> Result<(), EnvFileError> {
    append_to_env_file("GITHUB_STEP_SUMMARY", markdown)
}

/// On GitHub Actions: set step outputs, if the runner provides the file.
pub fn append_outputs<K: AsRef<str>>(pairs: &[(K, String)]) -> Result<(), EnvFileError> {
    let text: String = pairs
        .iter()
        .map(|(k, v)| format!("{}={v}\n", k.as_ref()))
        .collect();
    append_to_env_file("GITHUB_OUTPUT", &text)
}

fn append_to_env_file(var: &'static str, text: &str) -> Result<(), EnvFileError> {
    let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let error = |source| EnvFileError {
        var,
        path: path.to_string_lossy().into_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(error)
}

/// The step's outputs. `digest` is written only when something was pushed (an empty
/// `digest=` reads as a digest to a later step); `pushed` says which.
pub fn outputs(r: &Report) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(d) = &r.image.digest {
        out.push(("digest", d.clone()));
    }
    out.push(("pushed", r.image.digest.is_some().to_string()));
    out.push(("tags", r.image.references.join(",")));
    out.push(("image-size", r.image.size_bytes.unwrap_or(0).to_string()));
    out
}

/// A matrix run's outputs: every variant's tags, whether all were pushed, and one
/// `digest-NAME` per pushed variant.
pub fn matrix_outputs(r: &Report) -> Vec<(String, String)> {
    let mut out = vec![
        ("tags".to_string(), r.image.references.join(",")),
        (
            "pushed".to_string(),
            (!r.variants.is_empty() && r.variants.iter().all(|v| v.digest.is_some())).to_string(),
        ),
        (
            "variants".to_string(),
            r.variants
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    for v in &r.variants {
        if let Some(d) = &v.digest {
            out.push((format!("digest-{}", v.name), d.clone()));
        }
    }
    out
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

/// The disk budget per phase: what each phase held at its peak and left taken, the phases
/// that took the most first (at most 15; the rest summed in one row).
fn phases_table(phases: &[crate::budget::Phase]) -> String {
    if phases.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n**Disk budget per phase** (data root's filesystem)\n\n\
         | phase | seconds | peak | left taken | lowest free |\n|---|---:|---:|---:|---:|\n",
    );
    let mut order: Vec<&crate::budget::Phase> = phases.iter().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_unpushed_image_writes_no_digest() {
        let mut r = Report::default();
        let out = outputs(&r);
        assert!(out.iter().all(|(k, _)| *k != "digest"), "{out:?}");
        assert!(out.contains(&("pushed", "false".into())));
        assert!(step_summary(&r).contains("not pushed"));
        r.image.digest = Some("sha256:abc".into());
        assert!(outputs(&r).contains(&("digest", "sha256:abc".into())));
    }
}
