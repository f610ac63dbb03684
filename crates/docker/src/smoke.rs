//! Proving an image works before it is pushed: run its smoke test in a container (on GPUs
//! when the engine has them and the policy allows), and start it as it runs in production to
//! wait for `/health` and Docker's health status. Containers are removed in every case.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HealthConfig, HealthStatusEnum, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;

pub use crate::gpu::{
    GPU_FAILURES, GpuDecision, GpuFailure, GpuInputs, GpuPolicy, GpuRequest, decide_gpu,
    gpu_request_for, host_gpu_hint,
};

/// Start a throwaway container of `image` with the GPU request and wait for it: `Ok` when
/// it started (the NVIDIA hook ran at its start), else the engine's error.
pub async fn probe_gpu(engine: &Engine, image: &str, request: &GpuRequest) -> Result<(), String> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["true".into()]),
        cmd: Some(vec![]),
        host_config: Some(HostConfig {
            device_requests: Some(request.device_requests()),
            ..Default::default()
        }),
        ..Default::default()
    };
    match start_container(engine, "gpu-probe", body, "GPU probe").await {
        Ok(mut cleanup) => {
            remove(engine, &mut cleanup).await;
            Ok(())
        }
        // The hook ran and passed; only the probe's command is missing from the image.
        Err(SmokeError(m)) if m.contains("executable file not found") => Ok(()),
        Err(SmokeError(m)) => Err(m),
    }
}

/// What the smoke container did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmokeRun {
    pub exit_code: i64,
    /// The JSON object the smoke script printed on its marked line (see [`parse_result`]).
    pub result: Option<serde_json::Value>,
    pub gpu: Option<GpuRequest>,
    pub seconds: f64,
    /// The last lines of its stderr (and stdout when that was not JSON).
    pub log_tail: Vec<String>,
}

/// Why a container step failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SmokeError(pub String);

fn api(what: &str) -> impl Fn(bollard::errors::Error) -> SmokeError + '_ {
    move |e| SmokeError(format!("{what}: {e}"))
}

/// Removes a container when dropped, whatever happened (errors, Ctrl-C).
struct Cleanup {
    id: String,
    host: String,
    done: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Synchronous on purpose: it must run even while the async runtime shuts down.
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.id])
            .env("DOCKER_HOST", &self.host)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Create and start a container named `headroom-<prefix>-…`; the returned guard removes it.
async fn start_container(
    engine: &Engine,
    prefix: &str,
    body: ContainerCreateBody,
    what: &str,
) -> Result<Cleanup, SmokeError> {
    let name = format!(
        "headroom-{prefix}-{}-{}",
        std::process::id(),
        crate::random_u64() as u32
    );
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| SmokeError(format!("creating the {what} container: {e}")))?;
    let cleanup = Cleanup {
        id: created.id,
        host: engine.endpoint.host.clone(),
        done: false,
    };
    engine
        .docker
        .start_container(
            &cleanup.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| SmokeError(format!("starting the {what} container: {e}")))?;
    Ok(cleanup)
}

async fn remove(engine: &Engine, cleanup: &mut Cleanup) {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    if engine
        .docker
        .remove_container(&cleanup.id, Some(options))
        .await
        .is_ok()
    {
        cleanup.done = true;
    }
}

/// Run `cmd` in a container of `image` with `env`, wait for it, and collect its output.
pub async fn run_smoke(
    engine: &Engine,
    image: &str,
    cmd: &[String],
    env: &BTreeMap<String, String>,
    gpu: Option<GpuRequest>,
    timeout: Duration,
) -> Result<SmokeRun, SmokeError> {
    let start = Instant::now();
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd.to_vec()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        host_config: Some(HostConfig {
            device_requests: gpu.as_ref().map(GpuRequest::device_requests),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut cleanup = start_container(engine, "smoke", body, "smoke").await?;
    let created = &cleanup.id.clone();

    let waited = tokio::time::timeout(timeout, async {
        let mut wait = engine.docker.wait_container(
            created,
            None::<bollard::query_parameters::WaitContainerOptions>,
        );
        let mut code = 0;
        while let Some(item) = wait.next().await {
            match item {
                Ok(r) => code = r.status_code,
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = c,
                Err(e) => return Err(api("waiting for the smoke container")(e)),
            }
        }
        Ok(code)
    })
    .await;
    let exit_code = match waited {
        Ok(result) => result?,
        Err(_) => {
            remove(engine, &mut cleanup).await;
            return Err(SmokeError(format!(
                "the smoke test did not finish within {} s",
                timeout.as_secs()
            )));
        }
    };
    let (stdout, stderr) = logs(engine, created).await;
    remove(engine, &mut cleanup).await;
    let result = parse_result(&stdout);
    let mut log_tail: Vec<String> = stderr.lines().map(String::from).collect();
    if result.is_none() {
        log_tail.extend(stdout.lines().map(String::from));
    }
    let keep = log_tail.len().saturating_sub(30);
    Ok(SmokeRun {
        exit_code,
        result,
        gpu,
        seconds: start.elapsed().as_secs_f64(),
        log_tail: log_tail.split_off(keep),
    })
}

async fn logs(engine: &Engine, id: &str) -> (String, String) {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = engine.docker.logs(id, Some(options));
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(Ok(chunk)) = stream.next().await {
        match chunk {
            bollard::container::LogOutput::StdOut { message } => {
                out.push_str(&String::from_utf8_lossy(&message))
            }
            bollard::container::LogOutput::StdErr { message } => {
                err.push_str(&String::from_utf8_lossy(&message))
            }
            _ => {}
        }
    }
    (out, err)
}

/// The marker of the smoke result's line: `HEADROOM-SMOKE-JSON {...}`.
pub const RESULT_MARKER: &str = "HEADROOM-SMOKE-JSON ";

/// The smoke result in a container's stdout: the JSON object on the last line that starts
/// with [`RESULT_MARKER`], whatever an entrypoint printed before it (NVIDIA's banner, license
/// and driver warning); without a marked line, the whole of stdout as one JSON object (a
/// user's command that prints plain JSON).
pub fn parse_result(stdout: &str) -> Option<serde_json::Value> {
    match stdout
        .lines()
        .rev()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(RESULT_MARKER))
    {
        Some(json) => parse_one_json(json),
        None => parse_one_json(stdout),
    }
}

/// Exactly one JSON object; accept surrounding blank lines only.
pub fn parse_one_json(stdout: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
    value.is_object().then_some(value)
}

/// What the health probe saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthRun {
    /// Docker's health status at the end (`healthy`, `unhealthy`, `starting`, or `none`).
    pub docker_status: String,
    /// The body of `GET /health`, when it answered.
    pub response: Option<serde_json::Value>,
    pub seconds: f64,
}

/// Where the health endpoint is, inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    pub port: u16,
    /// `/health` by default.
    pub path: String,
    /// Whether the endpoint must answer (false: the image's own HEALTHCHECK alone decides).
    pub http: bool,
}

/// Start `image` as it runs in production (its own command), wait up to `timeout` for Docker's
/// health status to be healthy and the endpoint to answer, then stop and remove it.
/// The health check's timing is tightened (1 s interval) so the wait is short; its test is
/// the image's own.
pub async fn check_health(
    engine: &Engine,
    image: &str,
    probe_at: &HealthProbe,
    env: &BTreeMap<String, String>,
    gpu: Option<GpuRequest>,
    timeout: Duration,
) -> Result<HealthRun, SmokeError> {
    let start = Instant::now();
    let second = 1_000_000_000i64;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        healthcheck: Some(HealthConfig {
            interval: Some(second),
            start_period: Some(0),
            timeout: Some(5 * second),
            retries: Some(3),
            ..Default::default()
        }),
        host_config: Some(HostConfig {
            device_requests: gpu.as_ref().map(GpuRequest::device_requests),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut cleanup = start_container(engine, "health", body, "health-check").await?;
    let created = &cleanup.id.clone();

    let deadline = Instant::now() + timeout;
    let mut status;
    let mut response: Option<serde_json::Value> = None;
    let outcome = loop {
        let inspect = engine
            .docker
            .inspect_container(
                created,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(api("inspecting the health-check container"))?;
        let state = inspect.state.unwrap_or_default();
        status = match state.health.and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => "healthy",
            Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
            Some(HealthStatusEnum::STARTING) => "starting",
            _ => "none",
        }
        .to_string();
        if state.running != Some(true) {
            break Err(format!(
                "the container exited (code {}) before it became healthy",
                state.exit_code.unwrap_or(-1)
            ));
        }
        // headroom's server answers at once and says `"ready": false` until torch and CUDA
        // are initialised: ask again until it is ready, so `cuda` is the real answer.
        let not_ready = response
            .as_ref()
            .is_some_and(|r| r.get("ready") == Some(&serde_json::Value::Bool(false)));
        if (response.is_none() || not_ready) && probe_at.http {
            response = probe(engine, created, probe_at).await.or(response);
        }
        let not_ready = response
            .as_ref()
            .is_some_and(|r| r.get("ready") == Some(&serde_json::Value::Bool(false)));
        let answered = (response.is_some() && !not_ready) || !probe_at.http;
        // An image without a HEALTHCHECK has no Docker status to wait for: /health decides.
        if (status == "healthy" || (status == "none" && probe_at.http)) && answered {
            break Ok(());
        }
        if status == "unhealthy" {
            break Err("Docker reports the container unhealthy".to_string());
        }
        if status == "none" && !probe_at.http {
            break Err(
                "the image has no HEALTHCHECK and the HTTP probe is off: nothing can say it is healthy (set [smoke] health = false)".to_string(),
            );
        }
        if Instant::now() >= deadline {
            break Err(format!(
                "not healthy within {} s (Docker health: {status}; /health {})",
                timeout.as_secs(),
                if response.is_some() {
                    "answered"
                } else {
                    "did not answer"
                }
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    remove(engine, &mut cleanup).await;
    outcome.map_err(SmokeError)?;
    Ok(HealthRun {
        docker_status: status,
        response,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `GET http://127.0.0.1:PORT/health` from inside the container (works for remote engines):
/// with Python when the image has it, else with `wget` (busybox and Alpine images), else
/// with `busybox wget`.
async fn probe(engine: &Engine, id: &str, at: &HealthProbe) -> Option<serde_json::Value> {
    let url = format!("http://127.0.0.1:{}{}", at.port, at.path);
    let python = format!(
        "import urllib.request as u; o = u.build_opener(u.ProxyHandler({{}})); print(o.open('{url}', timeout=3).read().decode())"
    );
    let commands = [
        vec!["python3".to_string(), "-c".to_string(), python],
        // No -T: busybox's static wget crashes with it; the exec is bounded below instead.
        ["wget", "-q", "-Y", "off", "-O", "-", url.as_str()]
            .map(String::from)
            .to_vec(),
        // A busybox without its applet links.
        [
            "busybox",
            "wget",
            "-q",
            "-Y",
            "off",
            "-O",
            "-",
            url.as_str(),
        ]
        .map(String::from)
        .to_vec(),
    ];
    for cmd in commands {
        let run = tokio::time::timeout(Duration::from_secs(5), exec_stdout(engine, id, cmd));
        if let Ok(Some(text)) = run.await {
            // Any 2xx answer counts; a JSON body is kept as JSON, anything else as text.
            return Some(
                parse_one_json(&text)
                    .unwrap_or_else(|| serde_json::Value::String(text.trim().into())),
            );
        }
    }
    None
}

/// Run `cmd` in the container; its stdout when it exits 0.
async fn exec_stdout(engine: &Engine, id: &str, cmd: Vec<String>) -> Option<String> {
    let exec = engine
        .docker
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .ok()?;
    let StartExecResults::Attached { mut output, .. } =
        engine.docker.start_exec(&exec.id, None).await.ok()?
    else {
        return None;
    };
    let mut text = String::new();
    while let Some(Ok(chunk)) = output.next().await {
        if let bollard::container::LogOutput::StdOut { message } = chunk {
            text.push_str(&String::from_utf8_lossy(&message));
        }
    }
    // The output can end a moment before the engine records the exit code.
    for _ in 0..40 {
        let inspect = engine.docker.inspect_exec(&exec.id).await.ok()?;
        if inspect.running != Some(true) {
            return (inspect.exit_code == Some(0)).then_some(text);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marked_line_survives_an_entrypoint_banner() {
        let stdout = "\n==========\n== CUDA ==\n==========\n\nCUDA Version 11.8.0\n\n\
                      WARNING: The NVIDIA Driver was not detected.\n\
                      HEADROOM-SMOKE-JSON {\"ok\": true}\n";
        assert_eq!(parse_result(stdout), Some(serde_json::json!({"ok": true})));
        assert_eq!(
            parse_result("{\"ok\": 1}\n"),
            Some(serde_json::json!({"ok": 1}))
        );
        assert_eq!(parse_result("== CUDA ==\n{\"ok\": true}\n"), None);
        assert_eq!(parse_result("HEADROOM-SMOKE-JSON [1]\n"), None);
    }

    #[test]
    fn one_json_object_is_required() {
        assert!(parse_one_json("\n{\"ok\": true}\n").is_some());
        assert!(parse_one_json("{\"ok\": true}\n{\"ok\": true}").is_none());
        assert!(parse_one_json("[1]").is_none());
        assert!(parse_one_json("Traceback …").is_none());
    }
}
