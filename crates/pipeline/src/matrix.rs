//! A build matrix (`[[variants]]`): the same pipeline once per variant, one after the other
//! on this engine — on a small disk, each variant's free stage runs before its build — with
//! one report that lists every variant (each one's full report beside it) and one step
//! summary. A failed variant does not stop the others; Ctrl-C stops them all.

use std::time::Instant;

use crate::report::{Report, VariantOutcome};
use crate::reporter::Reporter;
use crate::run::{Pipeline, PipelineError, write_report};
use crate::{github, render};

impl Pipeline {
    pub(crate) async fn run_matrix(
        &self,
        reporter: &dyn Reporter,
    ) -> Result<Report, PipelineError> {
        let start = Instant::now();
        let settings = self.settings();
        let count = settings.variants.len();
        let mut report = Report::default();
        let mut reports = Vec::new();
        let mut interrupted = None;
        for (i, v) in settings.variants.iter().enumerate() {
            reporter.variant_started(&v.name, i + 1, count);
            let sub = Pipeline::new(settings.for_variant(v));
            let path = sub.settings().report_path.clone();
            let started = Instant::now();
            let (r, error) = match Box::pin(sub.run_async(reporter)).await {
                Ok(r) => (Some(r), None),
                Err(e @ PipelineError::Interrupted { sigterm, .. }) => {
                    let r = e.report().cloned();
                    interrupted = Some((e.to_string(), sigterm));
                    (r, Some(e.to_string()))
                }
                Err(e) => (e.report().cloned(), Some(e.to_string())),
            };
            let outcome = VariantOutcome {
                name: v.name.clone(),
                passed: error.is_none(),
                report: path,
                references: r
                    .as_ref()
                    .map(|r| r.image.references.clone())
                    .unwrap_or_default(),
                digest: r.as_ref().and_then(|r| r.image.digest.clone()),
                seconds: started.elapsed().as_secs_f64(),
                cached_steps: r
                    .as_ref()
                    .and_then(|r| r.build.as_ref())
                    .map(|b| b.cached_steps),
                low_water_bytes: r.as_ref().and_then(|r| r.disk.low_water_bytes),
                error: error.clone(),
            };
            if let Some(r) = &r {
                report.image.name = r.image.name.clone();
                report.image.tags.extend(r.image.tags.iter().cloned());
                report
                    .image
                    .references
                    .extend(r.image.references.iter().cloned());
                report.image.digests.extend(r.image.digests.clone());
                report.engine = report.engine.take().or_else(|| r.engine.clone());
                report.endpoint = report.endpoint.take().or_else(|| r.endpoint.clone());
                report.cause = report.cause.or(r.cause);
                reports.push((v.name.clone(), r.clone()));
            }
            if let Some(e) = &error {
                report.errors.push(format!("{}: {e}", v.name));
            }
            report.variants.push(outcome);
            if interrupted.is_some() {
                break;
            }
        }
        report.seconds = start.elapsed().as_secs_f64();
        let failure = (!report.errors.is_empty()).then(|| report.errors.join("\n"));
        let failure = write_report(&report, &settings.report_path, failure, reporter)?;
        if settings.github_outputs {
            let written = github::append_outputs(&render::github::matrix_outputs(&report))
                .and_then(|()| {
                    github::append_step_summary(&render::markdown::matrix_summary(
                        &report, &reports,
                    ))
                });
            if let Err(e) = written {
                report.errors.push(e.to_string());
            }
        }
        match (interrupted, failure) {
            (Some((message, sigterm)), _) => Err(PipelineError::Interrupted {
                message,
                sigterm,
                report: Box::new(report),
            }),
            (None, Some(message)) => Err(PipelineError::Failed {
                stage: None,
                message,
                report: Box::new(report),
            }),
            (None, None) => Ok(report),
        }
    }
}
