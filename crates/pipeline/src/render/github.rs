//! What GitHub Actions reads from a step besides Markdown: workflow commands (annotations,
//! log groups) and the step's outputs, as `NAME=VALUE` pairs. Writing them to the files the
//! runner gives is [`crate::github`]'s.

use headroom_disk::FreeReport;
use headroom_dockerfile::lint::Severity;

use crate::lint::FileFindings;
use crate::render::Outcome;
use crate::report::Report;
use crate::stage::Stage;

/// `::group::STAGE`: the log lines up to [`end_group`] fold under the stage's name.
pub fn group(stage: Stage) -> String {
    format!("::group::{stage}")
}

/// `::endgroup::`.
pub fn end_group() -> &'static str {
    "::endgroup::"
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
    if let Some(smoke) = &r.smoke {
        out.push(("device", smoke.device.clone()));
        out.push(("gpu-name", smoke.gpu_name.clone().unwrap_or_default()));
        out.push(("cuda", smoke.cuda.clone().unwrap_or_default()));
    }
    // As docker/build-push-action names them: the image id and the build's metadata.
    if let Some(id) = &r.image.id {
        out.push(("imageid", id.clone()));
    }
    let metadata = serde_json::json!({
        "image.name": r.image.references.join(","),
        "containerimage.digest": r.image.digest,
        "containerimage.config.digest": r.image.id,
    });
    out.push(("metadata", metadata.to_string()));
    out.push(("freed-bytes", r.disk.freed_bytes.unwrap_or(0).to_string()));
    if let Some(peak) = peak_disk(r) {
        out.push(("peak-disk", peak.to_string()));
    }
    out
}

/// Every run's outputs, passed or failed: `result`, and when it failed `cause`,
/// `failed-stage` and `error` (the message's first line), then what is known: the image's
/// outputs ([`outputs`]), `freed-bytes`, `low-water-bytes`.
pub fn run_outputs(r: &Report, outcome: &Outcome) -> Vec<(&'static str, String)> {
    let mut out = vec![("result", outcome.result.to_string())];
    if let Some(c) = &outcome.cause {
        out.push(("cause", c.clone()));
    }
    if let Some(s) = outcome.failed_stage {
        out.push(("failed-stage", s.to_string()));
    }
    if let Some(m) = &outcome.message {
        out.push(("error", m.lines().next().unwrap_or("").to_string()));
    }
    out.extend(outputs(r));
    if let Some(b) = r.disk.low_water_bytes {
        out.push(("low-water-bytes", b.to_string()));
    }
    out
}

/// A failed run as an `::error` annotation (titled with the stage), `None` when it passed.
/// Lint errors have their own, with file and line ([`annotations`]).
pub fn failure_annotation(outcome: &Outcome) -> Option<String> {
    let message = outcome.message.as_deref()?;
    let title = match outcome.failed_stage {
        Some(stage) => format!("headroom: {stage} failed"),
        None => "headroom failed".to_string(),
    };
    Some(format!(
        "::error title={}::{}",
        property(&title),
        data(message)
    ))
}

/// The most bytes the build took of the data root's filesystem: the free space when the
/// watch began less its low-water mark.
pub fn peak_disk(r: &Report) -> Option<u64> {
    let timeline = r.disk.timeline.as_ref()?;
    let first = timeline.samples.first()?;
    Some(
        first
            .available_bytes
            .saturating_sub(timeline.low_water_bytes),
    )
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

/// `cargo xtask free`'s outputs: what was freed and what is available now.
pub fn free_outputs(report: &FreeReport) -> Vec<(&'static str, String)> {
    vec![
        ("freed-bytes", report.freed_bytes.to_string()),
        (
            "available-bytes",
            report.filesystem.available_after.to_string(),
        ),
    ]
}

/// The lint's findings as GitHub workflow commands:
/// `::warning file=…,line=…,endLine=…,col=…,title=ID::message`.
pub fn annotations(files: &[FileFindings]) -> String {
    let mut out = String::new();
    for f in files {
        for (kind, _, e) in f.refusals() {
            out.push_str(&format!(
                "::error file={},line={},col={},title={kind}::{}\n",
                property(&f.file),
                e.line,
                e.column,
                data(&e.message)
            ));
        }
        for x in &f.findings {
            let command = match x.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "notice",
            };
            out.push_str(&format!(
                "::{command} file={},line={},endLine={},col={},title={}::{}\n",
                property(&f.file),
                x.line,
                x.end_line,
                x.column,
                x.id,
                data(&format!("{} ({})", x.message, x.hint))
            ));
        }
    }
    out
}

/// Escaping for a workflow command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for a workflow command's property value.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::markdown::step_summary;

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

    #[test]
    fn the_smoke_device_is_an_output() {
        let mut r = Report::default();
        assert!(outputs(&r).iter().all(|(k, _)| *k != "device"));
        r.smoke = Some(crate::report::SmokeReport {
            device: "gpu".into(),
            gpu_name: Some("NVIDIA H200".into()),
            cuda: Some("11.8".into()),
            ..Default::default()
        });
        let out = outputs(&r);
        for pair in [
            ("device", "gpu"),
            ("gpu-name", "NVIDIA H200"),
            ("cuda", "11.8"),
        ] {
            assert!(out.contains(&(pair.0, pair.1.to_string())), "{out:?}");
        }
    }

    #[test]
    fn a_failed_run_has_outputs_and_an_annotation_and_a_passed_one_says_so() {
        let mut r = Report {
            cause: Some(crate::report::Cause::NoSpace),
            ..Report::default()
        };
        r.disk.freed_bytes = Some(0);
        r.stages.push(crate::report::StageReport {
            name: Stage::Build,
            status: crate::report::StageStatus::Failed,
            seconds: 1.0,
            reason: Some("no space".into()),
        });
        let o = Outcome::of(
            &r,
            Some("build: no space left\nlow-water 1 MB"),
            false,
            None,
        );
        let out = run_outputs(&r, &o);
        assert!(out.contains(&("result", "failed".into())), "{out:?}");
        assert!(out.contains(&("cause", "no_space".into())), "{out:?}");
        assert!(out.contains(&("failed-stage", "build".into())), "{out:?}");
        assert!(out.contains(&("freed-bytes", "0".into())), "{out:?}");
        let a = failure_annotation(&o).expect("an annotation");
        assert!(
            a.starts_with("::error title=headroom%3A build failed::build"),
            "{a}"
        );
        assert_eq!(a.lines().count(), 1, "{a}");
        let md = crate::render::markdown::outcome(&o);
        assert!(md.contains("`build`") && md.contains("no_space"), "{md}");
        let passed = Outcome::of(&Report::default(), None, false, None);
        assert!(run_outputs(&Report::default(), &passed).contains(&("result", "passed".into())));
        assert!(failure_annotation(&passed).is_none());
    }

    #[test]
    fn messages_cannot_break_out_of_a_workflow_command() {
        assert_eq!(data("a\nb%"), "a%0Ab%25");
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
