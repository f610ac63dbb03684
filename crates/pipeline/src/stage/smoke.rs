//! The smoke stage: the image run once with the smoke script (on the GPUs the policy asks
//! for, else on CPU), its result held against `[smoke]`'s expectations ([`crate::policy`]),
//! then started as a service until its health endpoint answers.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use headroom_docker::build::BuildSpec;
use headroom_docker::engine::{Engine, EngineFacts};
use headroom_docker::smoke::{self, GpuPolicy};

use super::Stage;
use super::context::{Outcome, Run};
use crate::policy::{self, SmokeExpectations};
use crate::report::SmokeReport;

pub(crate) async fn run(
    run: &mut Run<'_>,
    engine: &Engine,
    facts: Option<&EngineFacts>,
    spec: &BuildSpec,
) -> Result<Outcome> {
    let Some(config) = &run.settings.smoke else {
        return Ok(Outcome::Skipped(
            "no [smoke] table in the config (and no --gpu)".into(),
        ));
    };
    let policy = run.settings.gpu.or(config.gpu).unwrap_or_default();
    let facts = facts.cloned().unwrap_or_default();
    let gpu = smoke::gpu_request(policy, &facts).map_err(|e| anyhow::anyhow!(e))?;
    let mut report = SmokeReport {
        device: match &gpu {
            None => "cpu".into(),
            Some(g) => serde_json::to_string(g).unwrap_or_default(),
        },
        ..SmokeReport::default()
    };
    if gpu.is_none() && policy == GpuPolicy::Auto {
        let note =
            "no GPU on this engine (no NVIDIA runtime, no CDI devices): the smoke test runs on CPU";
        run.reporter.note(Stage::Smoke, note);
        report.note = Some(note.into());
    }
    let image = spec.references().remove(0);
    let mut env = BTreeMap::new();
    if gpu.is_some() {
        env.insert("HEADROOM_SMOKE_REQUIRE_CUDA".to_string(), "1".to_string());
    }
    if let Some(t) = &config.torch {
        env.insert("HEADROOM_SMOKE_REQUIRE_TORCH".into(), "1".into());
        env.insert("HEADROOM_SMOKE_TORCH_VERSION".into(), t.clone());
    }
    if let Some(m) = config.min_tflops {
        env.insert("HEADROOM_SMOKE_MIN_TFLOPS".into(), m.to_string());
    }
    if let Some(m) = &config.model {
        env.insert("HEADROOM_SMOKE_MODEL".into(), m.clone());
    }
    if !config.imports.is_empty() {
        env.insert("HEADROOM_SMOKE_IMPORTS".into(), config.imports.join(","));
    }
    let command = config
        .command
        .clone()
        .unwrap_or_else(|| vec!["python3".into(), "/opt/headroom/smoke.py".into()]);
    let smoke_run = smoke::run_smoke(
        engine,
        &image,
        &command,
        &env,
        gpu.clone(),
        Duration::from_secs(config.timeout.unwrap_or(600)),
    )
    .await?;
    let expect = SmokeExpectations {
        torch: config.torch.clone(),
        min_tflops: config.min_tflops,
    };
    report.mismatches = policy::smoke_mismatches(&smoke_run, &expect, gpu.is_some());
    let failed = !report.mismatches.is_empty();
    if let Some(result) = &smoke_run.result {
        run.reporter.note(Stage::Smoke, &result.to_string());
    }
    report.run = Some(smoke_run);
    if failed {
        let message = format!("smoke test failed: {}", report.mismatches.join("; "));
        run.report.smoke = Some(report);
        bail!(message);
    }
    let health = smoke::check_health(
        engine,
        &image,
        config.port.unwrap_or(8000),
        gpu,
        Duration::from_secs(config.health_timeout.unwrap_or(120)),
    )
    .await;
    match health {
        Ok(h) => {
            run.reporter.note(
                Stage::Smoke,
                &format!(
                    "healthy after {:.1} s: {}",
                    h.seconds,
                    h.response
                        .as_ref()
                        .map(|r| r.to_string())
                        .unwrap_or_default()
                ),
            );
            report.health = Some(h);
            run.report.smoke = Some(report);
            Ok(Outcome::Passed)
        }
        Err(e) => {
            run.report.smoke = Some(report);
            bail!("health check: {e}")
        }
    }
}
