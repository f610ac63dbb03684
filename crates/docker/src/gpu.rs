//! GPUs for the smoke containers: the policy (`--gpu`), the request (one: the NVIDIA
//! device driver's for all GPUs, or CDI names), and the decision — probed with a throwaway
//! container whose error is classified from a table ([`GPU_FAILURES`]), with this host's
//! `/dev/nvidia*` or `nvidia-smi` as a hint.

use bollard::models::DeviceRequest;
use serde::{Deserialize, Serialize};

use crate::engine::EngineFacts;

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
}
