//! The inspect stage: the built image streamed out of the engine into the analyser (every
//! digest checked), held against the thresholds of `.dive-ci` and `[inspect]`
//! ([`crate::gate`]); over a threshold, the pipeline stops before the smoke test.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use headroom_disk::format_size;
use headroom_docker::build::BuildSpec;
use headroom_docker::engine::Engine;

use super::Stage;
use super::context::{Outcome, Run};

pub(crate) async fn run(run: &mut Run<'_>, engine: &Engine, spec: &BuildSpec) -> Result<Outcome> {
    let Some(thresholds) = &run.settings.inspect else {
        return Ok(Outcome::Skipped(
            "no [inspect] table in the config (and no --inspect)".into(),
        ));
    };
    let start = Instant::now();
    let image = spec.references().remove(0);
    let reader = headroom_docker::export::export(engine, &image);
    let analysis = tokio::task::spawn_blocking(move || {
        // Verified: the image streams out of the engine at a fraction of the speed a
        // SHA-256 runs at, so checking every digest costs nothing measurable (bench
        // inspect records both).
        headroom_inspect::analyze(
            std::io::BufReader::with_capacity(1 << 20, reader),
            &headroom_inspect::AnalyzeOptions {
                verify: true,
                ..headroom_inspect::AnalyzeOptions::default()
            },
        )
    })
    .await
    .context("the analysis thread")?
    .with_context(|| format!("analysing {image}"))?;
    for note in &thresholds.notes {
        run.reporter.note(Stage::Inspect, &format!("note: {note}"));
    }
    let gate = thresholds.evaluate(&analysis)?;
    let dockerfile = std::fs::read_to_string(&spec.dockerfile).ok();
    let report = crate::gate::finish(
        analysis,
        dockerfile.as_deref(),
        gate,
        start.elapsed().as_secs_f64(),
    );
    run.reporter.note(
        Stage::Inspect,
        &format!(
            "{} stored, {} wasted (efficiency {:.2}%)",
            format_size(report.analysis.total_bytes),
            format_size(report.analysis.wasted_bytes),
            report.analysis.efficiency * 100.0
        ),
    );
    for h in &report.hints {
        run.reporter.note(Stage::Inspect, &format!("hint: {h}"));
    }
    let failed: Vec<String> = report
        .gate
        .iter()
        .filter(|g| !g.passed)
        .map(|g| format!("{} {} (limit {})", g.rule, g.actual, g.limit))
        .collect();
    run.report.inspect = Some(serde_json::to_value(&report)?);
    run.inspect = Some(report);
    if !failed.is_empty() {
        bail!("over the image thresholds: {}", failed.join("; "));
    }
    Ok(Outcome::Passed)
}
