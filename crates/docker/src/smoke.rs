//! Proving an image works before it is pushed: run its smoke test in a container (on GPUs
//! when the engine has them and the policy allows), and start it as it runs in production to
//! wait for `/health` and Docker's health status. Containers are removed in every case.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HealthConfig, HealthStatusEnum, HostConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineFacts};

/// Whether the smoke test asks for GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuPolicy {
    /// All GPUs when the engine has them, else CPU (and say so).
    #[default]
    Auto,
    /// Fail unless the engine can give the container GPUs.
    Required,
    /// Never ask for a GPU.
    Off,
}

impl std::str::FromStr for GpuPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(GpuPolicy::Auto),
            "required" => Ok(GpuPolicy::Required),
            "off" => Ok(GpuPolicy::Off),
            other => Err(format!(
                "unknown GPU policy {other:?} (auto, required or off)"
            )),
        }
    }
}

/// How GPUs are requested for a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GpuRequest {
    /// The NVIDIA runtime's device request for all GPUs.
    Nvidia,
    /// CDI device names.
    Cdi { devices: Vec<String> },
}

/// How the GPU probe failed, from the engine's or the NVIDIA hook's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuFailure {
    /// The engine cannot make a GPU request: no NVIDIA Container Toolkit (no hook, no
    /// runtime, no CDI spec).
    NoToolkit,
    /// The toolkit is there but no driver answers (`libnvidia-ml.so.1` missing, NVML fails).
    NoDriver,
    /// The driver is older than the image's CUDA needs (`NVIDIA_REQUIRE_CUDA`).
    DriverTooOld,
    /// A driver, but no (such) device.
    NoDevice,
    /// Something else: the message says what.
    Other,
}

/// The classification of GPU probe failures, as data: the first row whose pattern the
/// message contains (lowercased) decides. The patterns are the words of dockerd's device
/// drivers, of nvidia-container-cli and of the CUDA runtime.
pub const GPU_FAILURES: &[(&str, GpuFailure)] = &[
    ("could not select device driver", GpuFailure::NoToolkit),
    ("unknown or invalid runtime name", GpuFailure::NoToolkit),
    ("unresolvable cdi devices", GpuFailure::NoToolkit),
    (
        "nvidia-container-runtime-hook: executable file not found",
        GpuFailure::NoToolkit,
    ),
    ("unsatisfied condition: cuda", GpuFailure::DriverTooOld),
    ("please update your driver", GpuFailure::DriverTooOld),
    ("driver version is insufficient", GpuFailure::DriverTooOld),
    ("libnvidia-ml.so.1", GpuFailure::NoDriver),
    ("driver not loaded", GpuFailure::NoDriver),
    ("driver/library version mismatch", GpuFailure::NoDriver),
    ("found no nvidia driver", GpuFailure::NoDriver),
    ("unknown device", GpuFailure::NoDevice),
    ("device error", GpuFailure::NoDevice),
    ("no cuda-capable device", GpuFailure::NoDevice),
    ("nvml error: not found", GpuFailure::NoDevice),
];

impl GpuFailure {
    /// Classify an engine or hook error message.
    pub fn classify(message: &str) -> GpuFailure {
        let lower = message.to_ascii_lowercase();
        GPU_FAILURES
            .iter()
            .find(|(pattern, _)| lower.contains(pattern))
            .map(|(_, class)| *class)
            .unwrap_or(GpuFailure::Other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GpuFailure::NoToolkit => "no NVIDIA Container Toolkit",
            GpuFailure::NoDriver => "no working NVIDIA driver",
            GpuFailure::DriverTooOld => "the NVIDIA driver is too old for the image's CUDA",
            GpuFailure::NoDevice => "no GPU device",
            GpuFailure::Other => "the GPU request failed",
        }
    }

    /// What to do about it.
    pub fn fix(self) -> &'static str {
        match self {
            GpuFailure::NoToolkit => {
                "install the NVIDIA Container Toolkit and register its runtime (nvidia-ctk runtime configure --runtime=docker), or generate a CDI spec"
            }
            GpuFailure::NoDriver => "install the NVIDIA driver on the host (nvidia-smi must work)",
            GpuFailure::DriverTooOld => {
                "upgrade the host's NVIDIA driver (CUDA 11.8 needs 450.80.02 or newer, 520+ without the compat package)"
            }
            GpuFailure::NoDevice => {
                "check the devices the host exposes (nvidia-smi -L, /dev/nvidia*)"
            }
            GpuFailure::Other => "read the engine's message",
        }
    }
}

/// The GPU request for an engine: CDI when it discovered NVIDIA CDI devices (one request:
/// `nvidia.com/gpu=all` when listed, else the devices named by index — never the same GPU
/// twice by index, UUID and `all`, never another vendor's), else the NVIDIA device driver's
/// request for all GPUs (what `--gpus all` sends).
pub fn gpu_request_for(facts: &EngineFacts) -> GpuRequest {
    let nvidia: Vec<&String> = facts
        .cdi_gpu_devices
        .iter()
        .filter(|d| d.starts_with("nvidia.com/gpu="))
        .collect();
    if nvidia.iter().any(|d| *d == "nvidia.com/gpu=all") {
        return GpuRequest::Cdi {
            devices: vec!["nvidia.com/gpu=all".into()],
        };
    }
    let by_index: Vec<String> = nvidia
        .iter()
        .filter(|d| {
            d.strip_prefix("nvidia.com/gpu=")
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|d| d.to_string())
        .collect();
    if !by_index.is_empty() {
        return GpuRequest::Cdi { devices: by_index };
    }
    match nvidia.first() {
        Some(d) if !facts.nvidia_runtime => GpuRequest::Cdi {
            devices: vec![d.to_string()],
        },
        _ => GpuRequest::Nvidia,
    }
}

/// Signs on this machine that it has an NVIDIA GPU (`/dev/nvidia0`…, `nvidia-smi` on
/// `PATH`): a hint for the decision, never a proof (a remote engine is another machine).
pub fn host_gpu_hint() -> Option<String> {
    let devices: Vec<String> = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| {
                    n.strip_prefix("nvidia")
                        .is_some_and(|i| i.parse::<u32>().is_ok())
                })
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    if !devices.is_empty() {
        return Some(devices.join(", "));
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|p| p.join("nvidia-smi"))
            .find(|p| p.is_file())
            .map(|p| format!("{} on PATH", p.display()))
    })
}

/// What the smoke stage decided about GPUs, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDecision {
    /// The request the smoke containers get; `None`: CPU (with `NVIDIA_VISIBLE_DEVICES=void`).
    pub request: Option<GpuRequest>,
    /// `gpu` or `cpu`.
    pub device: String,
    /// Why, in a sentence.
    pub reason: String,
    /// How the probe failed, when one ran and failed.
    pub failure: Option<GpuFailure>,
    /// The host's hint (`/dev/nvidia0`, `nvidia-smi` on PATH), when it had one.
    pub host_hint: Option<String>,
}

impl GpuDecision {
    fn cpu(reason: String, failure: Option<GpuFailure>, host_hint: Option<String>) -> Self {
        GpuDecision {
            request: None,
            device: "cpu".into(),
            reason,
            failure,
            host_hint,
        }
    }
}

/// What is known before deciding: the policy, whether the image can use CUDA at all, the
/// engine's facts (`None`: `docker info` failed, which is not "no GPU") and the host's hint.
#[derive(Debug, Clone)]
pub struct GpuInputs<'a> {
    pub policy: GpuPolicy,
    /// `[smoke] cuda = false`: the image has no CUDA build of torch (the ci profile).
    pub image_has_cuda: bool,
    pub facts: Option<&'a EngineFacts>,
    pub host_hint: Option<String>,
}

/// Decide, probing when the engine or the host shows a GPU (or cannot tell): `probe` starts
/// a throwaway container with the request and returns the engine's error. `Err` is a
/// failure with its cause (`required` without a usable GPU; `auto` on a host that has a GPU
/// it could not use).
pub async fn decide_gpu<F, Fut>(inputs: GpuInputs<'_>, probe: F) -> Result<GpuDecision, String>
where
    F: FnOnce(GpuRequest) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let GpuInputs {
        policy,
        image_has_cuda,
        facts,
        host_hint,
    } = inputs;
    if policy == GpuPolicy::Off {
        return Ok(GpuDecision::cpu(
            "--gpu off: no GPU requested, and NVIDIA_VISIBLE_DEVICES=void hides the devices".into(),
            None,
            host_hint,
        ));
    }
    if !image_has_cuda {
        if policy == GpuPolicy::Required {
            return Err("--gpu required, but [smoke] cuda = false says the image has no CUDA build of torch (the ci profile): use --gpu auto or off, or build a profile with CUDA".into());
        }
        return Ok(GpuDecision::cpu(
            "[smoke] cuda = false: the image has no CUDA build of torch, so the smoke test runs on CPU".into(),
            None,
            host_hint,
        ));
    }
    let engine_shows = facts.is_some_and(EngineFacts::has_gpus);
    let describe_engine = |f: &EngineFacts| {
        format!(
            "the engine ({} {}) lists no NVIDIA runtime (runtimes: {}) and no CDI GPU devices",
            f.os,
            f.version,
            if f.runtimes.is_empty() {
                "none".to_string()
            } else {
                f.runtimes.join(", ")
            }
        )
    };
    if policy == GpuPolicy::Auto
        && !engine_shows
        && host_hint.is_none()
        && let Some(f) = facts
    {
        return Ok(GpuDecision::cpu(
            format!(
                "no GPU: {} and this host has no /dev/nvidia* or nvidia-smi; the smoke test runs on CPU",
                describe_engine(f)
            ),
            None,
            None,
        ));
    }
    let request = facts.map(gpu_request_for).unwrap_or(GpuRequest::Nvidia);
    let why_probe = match (engine_shows, &host_hint, facts) {
        (true, _, _) => "the engine lists a GPU runtime or CDI devices".to_string(),
        (false, Some(h), _) => format!("the host shows a GPU ({h})"),
        (false, None, None) => "docker info failed, so the engine's GPUs are unknown".into(),
        (false, None, Some(_)) => "--gpu required".into(),
    };
    match probe(request.clone()).await {
        Ok(()) => Ok(GpuDecision {
            request: Some(request),
            device: "gpu".into(),
            reason: format!("{why_probe}, and a probe container started with the GPU request"),
            failure: None,
            host_hint,
        }),
        Err(message) => {
            let class = GpuFailure::classify(&message);
            let cause = format!(
                "{} ({why_probe}; the probe container with the GPU request failed: {message}): {}",
                class.as_str(),
                class.fix()
            );
            let extra = match (class, facts) {
                (GpuFailure::NoToolkit, Some(f)) if !f.has_gpus() => {
                    format!("; {}", describe_engine(f))
                }
                _ => String::new(),
            };
            match policy {
                GpuPolicy::Required => Err(format!("--gpu required, but {cause}{extra}")),
                _ if host_hint.is_some() => Err(format!(
                    "--gpu auto on a host with a GPU ({}) that the container could not use: {cause}{extra}",
                    host_hint.as_deref().unwrap_or_default()
                )),
                _ => Ok(GpuDecision::cpu(
                    format!(
                        "{cause}{extra}; this host shows no GPU, so the smoke test runs on CPU"
                    ),
                    Some(class),
                    None,
                )),
            }
        }
    }
}

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

impl GpuRequest {
    /// The engine's device requests for this GPU request: always exactly one.
    pub fn device_requests(&self) -> Vec<DeviceRequest> {
        match self {
            GpuRequest::Nvidia => vec![DeviceRequest {
                driver: Some("nvidia".into()),
                count: Some(-1),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }],
            GpuRequest::Cdi { devices } => vec![DeviceRequest {
                driver: Some("cdi".into()),
                device_ids: Some(devices.clone()),
                ..Default::default()
            }],
        }
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

    fn facts(nvidia: bool, cdi: &[&str]) -> EngineFacts {
        EngineFacts {
            version: "26.1.5".into(),
            os: "linux".into(),
            runtimes: if nvidia {
                vec!["nvidia".into(), "runc".into()]
            } else {
                vec!["runc".into()]
            },
            nvidia_runtime: nvidia,
            cdi_gpu_devices: cdi.iter().map(|s| s.to_string()).collect(),
            ..EngineFacts::default()
        }
    }

    fn decide(
        policy: GpuPolicy,
        cuda: bool,
        facts: Option<&EngineFacts>,
        hint: Option<&str>,
        probe: Result<(), &str>,
    ) -> (Result<GpuDecision, String>, Option<GpuRequest>) {
        let asked = std::sync::Mutex::new(None);
        let inputs = GpuInputs {
            policy,
            image_has_cuda: cuda,
            facts,
            host_hint: hint.map(String::from),
        };
        let decided = futures_util::FutureExt::now_or_never(decide_gpu(inputs, async |r| {
            *asked.lock().unwrap() = Some(r);
            probe.map_err(String::from)
        }))
        .expect("no real I/O");
        (decided, asked.into_inner().unwrap())
    }

    // The words of dockerd, nvidia-container-cli and the CUDA runtime, as they print them.
    const NO_TOOLKIT: &str = "Error response from daemon: could not select device driver \"nvidia\" with capabilities: [[gpu]]";
    const NO_DRIVER: &str = "failed to create task for container: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\nnvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open shared object file: no such file or directory: unknown";
    const TOO_OLD: &str = "error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\nnvidia-container-cli: requirement error: unsatisfied condition: cuda>=11.8, please update your driver to a newer version, or use an earlier cuda container: unknown";
    const NO_DEVICE: &str = "error running hook #0: error running hook: exit status 1, stdout: , stderr: nvidia-container-cli: device error: 1: unknown device: unknown";

    #[test]
    fn each_probe_failure_is_classified() {
        assert_eq!(GpuFailure::classify(NO_TOOLKIT), GpuFailure::NoToolkit);
        assert_eq!(GpuFailure::classify(NO_DRIVER), GpuFailure::NoDriver);
        assert_eq!(GpuFailure::classify(TOO_OLD), GpuFailure::DriverTooOld);
        assert_eq!(GpuFailure::classify(NO_DEVICE), GpuFailure::NoDevice);
        assert_eq!(GpuFailure::classify("disk full"), GpuFailure::Other);
    }

    #[test]
    fn gpu_decisions() {
        let cpu = facts(false, &[]);
        let nvidia = facts(true, &[]);
        // auto, nothing anywhere: CPU without a probe.
        let (d, asked) = decide(GpuPolicy::Auto, true, Some(&cpu), None, Ok(()));
        assert_eq!((d.unwrap().device, asked), ("cpu".to_string(), None));
        // off: never a request, and the devices hidden.
        let (d, asked) = decide(
            GpuPolicy::Off,
            true,
            Some(&nvidia),
            Some("/dev/nvidia0"),
            Ok(()),
        );
        let d = d.unwrap();
        assert!(
            d.request.is_none() && asked.is_none() && d.reason.contains("void"),
            "{d:?}"
        );
        // The ci profile (no CUDA torch) on a host listing the nvidia runtime: CPU, no probe.
        let (d, asked) = decide(
            GpuPolicy::Auto,
            false,
            Some(&nvidia),
            Some("/dev/nvidia0"),
            Ok(()),
        );
        assert_eq!((d.unwrap().device, asked), ("cpu".to_string(), None));
        let (d, _) = decide(GpuPolicy::Required, false, Some(&nvidia), None, Ok(()));
        assert!(d.unwrap_err().contains("cuda = false"));
        // The runtime listed, the probe passes: the GPU.
        let (d, asked) = decide(GpuPolicy::Auto, true, Some(&nvidia), None, Ok(()));
        assert_eq!(d.unwrap().device, "gpu");
        assert_eq!(asked, Some(GpuRequest::Nvidia));
        // docker info failed: not "no GPU" — the probe decides.
        let (d, asked) = decide(GpuPolicy::Auto, true, None, None, Ok(()));
        assert_eq!(
            (d.unwrap().device, asked),
            ("gpu".to_string(), Some(GpuRequest::Nvidia))
        );
        // A runtime without a driver on a host with no GPU: CPU, classified.
        let (d, _) = decide(GpuPolicy::Auto, true, Some(&nvidia), None, Err(NO_DRIVER));
        let d = d.unwrap();
        assert_eq!(
            (d.device.as_str(), d.failure),
            ("cpu", Some(GpuFailure::NoDriver))
        );
        // A host with a GPU that the container could not use: a failure with the cause.
        let (d, _) = decide(
            GpuPolicy::Auto,
            true,
            Some(&nvidia),
            Some("/dev/nvidia0"),
            Err(TOO_OLD),
        );
        let e = d.unwrap_err();
        assert!(
            e.contains("could not use") && e.contains("too old") && e.contains("/dev/nvidia0"),
            "{e}"
        );
        // The toolkit installed but its runtime not registered: the host hint makes it probe.
        let (d, asked) = decide(
            GpuPolicy::Auto,
            true,
            Some(&cpu),
            Some("/dev/nvidia0"),
            Err(NO_TOOLKIT),
        );
        assert!(asked.is_some());
        assert!(d.unwrap_err().contains("no NVIDIA Container Toolkit"));
        let (d, _) = decide(GpuPolicy::Required, true, Some(&cpu), None, Err(NO_TOOLKIT));
        let e = d.unwrap_err();
        assert!(
            e.contains("--gpu required") && e.contains("no NVIDIA runtime") && e.contains("runc"),
            "{e}"
        );
    }

    #[test]
    fn one_request_for_the_gpus() {
        let cdi = facts(
            false,
            &[
                "nvidia.com/gpu=0",
                "nvidia.com/gpu=GPU-6f1a",
                "nvidia.com/gpu=all",
                "amd.com/gpu=0",
            ],
        );
        assert_eq!(
            gpu_request_for(&cdi),
            GpuRequest::Cdi {
                devices: vec!["nvidia.com/gpu=all".into()]
            }
        );
        let two = facts(
            false,
            &[
                "nvidia.com/gpu=0",
                "nvidia.com/gpu=1",
                "nvidia.com/gpu=GPU-6f1a",
            ],
        );
        assert_eq!(
            gpu_request_for(&two),
            GpuRequest::Cdi {
                devices: vec!["nvidia.com/gpu=0".into(), "nvidia.com/gpu=1".into()]
            }
        );
        assert_eq!(
            gpu_request_for(&facts(true, &["amd.com/gpu=0"])),
            GpuRequest::Nvidia
        );
        for request in [GpuRequest::Nvidia, gpu_request_for(&cdi)] {
            assert_eq!(request.device_requests().len(), 1);
        }
    }

    #[test]
    fn nvidia_requests_all_gpus() {
        let r = GpuRequest::Nvidia.device_requests();
        assert_eq!(r[0].count, Some(-1));
        assert_eq!(r[0].capabilities, Some(vec![vec!["gpu".to_string()]]));
    }

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
