//! The smoke stage: the GPU decision (probed, [`smoke::decide_gpu`]), the image run once with
//! the smoke command, its result held against `[smoke]`'s expectations ([`crate::policy`]),
//! then started as a service until it is healthy.
//!
//! The contract for any image: the command must exit with `exit_code` (0); its JSON result
//! (a `HEADROOM-SMOKE-JSON` line) is judged when `json` is on (the default for headroom's
//! own smoke script); the health check runs unless `health = false`, with the image's own
//! HEALTHCHECK when it has one and an HTTP probe of `health_path` on `port`. Every outcome,
//! a failed start included, leaves a smoke section in the report.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use headroom_docker::build::BuildSpec;
use headroom_docker::engine::{Engine, EngineFacts};
use headroom_docker::smoke::{self, GpuInputs, HealthProbe};

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
    let Some(config) = run.settings.smoke.clone() else {
        return Ok(Outcome::Skipped(
            "no [smoke] table in the config (and no --gpu)".into(),
        ));
    };
    let policy = run.settings.gpu.or(config.gpu).unwrap_or_default();
    let image = spec.references().remove(0);
    let mut report = SmokeReport {
        device: "none".into(),
        ..SmokeReport::default()
    };
    let inputs = GpuInputs {
        policy,
        image_has_cuda: config.cuda.unwrap_or(true),
        facts,
        host_hint: smoke::host_gpu_hint(),
    };
    let decided = smoke::decide_gpu(inputs, async |request| {
        smoke::probe_gpu(engine, &image, &request).await
    })
    .await;
    let decision = match decided {
        Ok(d) => d,
        Err(cause) => {
            report.error = Some(cause.clone());
            run.report.smoke = Some(report);
            bail!(cause)
        }
    };
    report.device = decision.device.clone();
    run.reporter.note(
        Stage::Smoke,
        &format!("device: {} ({})", decision.device, decision.reason),
    );
    if decision.request.is_none() {
        report.note = Some(format!("the smoke test runs on CPU: {}", decision.reason));
    }
    let gpu = decision.request.clone();
    report.gpu = Some(decision);
    let result = smoke_and_health(run, engine, &config, &image, gpu, &mut report).await;
    if let Err(e) = &result {
        report.error.get_or_insert_with(|| format!("{e:#}"));
    }
    run.report.smoke = Some(report);
    result
}

async fn smoke_and_health(
    run: &mut Run<'_>,
    engine: &Engine,
    config: &crate::settings::SmokeConfig,
    image: &str,
    gpu: Option<smoke::GpuRequest>,
    report: &mut SmokeReport,
) -> Result<Outcome> {
    let mut env = BTreeMap::new();
    if gpu.is_some() {
        env.insert("HEADROOM_SMOKE_REQUIRE_CUDA".to_string(), "1".to_string());
    } else {
        // CUDA bases set NVIDIA_VISIBLE_DEVICES=all: on an engine whose default runtime is
        // nvidia that alone exposes every GPU. `void` hides them.
        env.insert("NVIDIA_VISIBLE_DEVICES".into(), "void".into());
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
        image,
        &command,
        &env,
        gpu.clone(),
        Duration::from_secs(config.timeout.unwrap_or(600)),
    )
    .await?;
    let expect = SmokeExpectations {
        torch: config.torch.clone(),
        min_tflops: config.min_tflops,
        json: config.json.unwrap_or(config.command.is_none()),
        exit_code: config.exit_code.unwrap_or(0),
    };
    report.mismatches = policy::smoke_mismatches(&smoke_run, &expect, gpu.is_some());
    if let Some(result) = &smoke_run.result {
        run.reporter.note(Stage::Smoke, &result.to_string());
        report.gpu_name = result["gpus"][0]["name"].as_str().map(String::from);
        report.cuda = result["cuda"].as_str().map(String::from);
    }
    report.run = Some(smoke_run);
    if !report.mismatches.is_empty() {
        bail!("smoke test failed: {}", report.mismatches.join("; "));
    }
    if config.health == Some(false) {
        return Ok(Outcome::Passed);
    }
    let path = config
        .health_path
        .clone()
        .unwrap_or_else(|| "/health".into());
    let at = HealthProbe {
        port: config.port.unwrap_or(8000),
        http: !path.is_empty(),
        path,
    };
    let health = smoke::check_health(
        engine,
        image,
        &at,
        &env,
        gpu.clone(),
        Duration::from_secs(config.health_timeout.unwrap_or(120)),
    )
    .await
    .map_err(|e| anyhow::anyhow!("health check: {e}"))?;
    run.reporter.note(
        Stage::Smoke,
        &format!(
            "healthy after {:.1} s: {}",
            health.seconds,
            health
                .response
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default()
        ),
    );
    let cuda_said = health.response.as_ref().and_then(|r| r.get("cuda"));
    let gpu_but_no_cuda = gpu.is_some() && cuda_said == Some(&serde_json::Value::Bool(false));
    report.health = Some(health);
    if gpu_but_no_cuda {
        report
            .mismatches
            .push("the health endpoint reports cuda: false on the GPU".into());
        bail!("health check: the service started with GPUs reports cuda: false");
    }
    Ok(Outcome::Passed)
}
