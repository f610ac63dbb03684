//! `docker/Dockerfile` built for real on the stand-in of NVIDIA's CUDA base (the ci profile, and
//! the full profile with torch from PyPI), its smoke test on CPU, the GPU policy, the health
//! probe, and the smoke contract for any image (a user's image that keeps NVIDIA's entrypoint
//! banner; exit status only; no health).

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use headroom_tests::harness::Need;
use headroom_tests::registry::base_image;
use headroom_tests::{cuda_base, sh, xtask};
use serde_json::Value;

headroom_tests::tests! {
    the_cuda_stand_in_behaves_as_nvidias_base needs Docker;
    the_ci_profile_builds_smokes_on_cpu_and_answers_health needs Docker, Tool("check-jsonschema");
    the_full_profile_from_pypi_builds_smokes_on_cpu_and_answers_health needs Docker, Tool("check-jsonschema"), PYPI;
    a_users_image_keeping_nvidias_entrypoint_passes_the_smoke_contract needs Docker, Tool("check-jsonschema");
    gpu_required_fails_clearly_without_a_gpu needs Docker, Tool("check-jsonschema");
    a_container_that_never_becomes_healthy_fails_in_time_and_is_removed needs Docker;
    the_dockerfile_is_clean_under_hadolint needs Tool("hadolint");
    the_smoke_scripts_pass_their_own_tests;
    a_base_that_cannot_be_pulled_names_the_override needs Docker;
}

fn root() -> PathBuf {
    headroom_tests::repo_root().to_path_buf()
}

const CI_IMAGE: &str = "headroom-test/cuda-pytorch-ci";

/// The ci-profile image, built once per test process through the whole pipeline.
fn ci_build() -> &'static (Value, String) {
    static BUILT: OnceLock<(Value, String)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let report_path = tmp.path().join("r.json");
        let base = format!("BASE_IMAGE={}", cuda_base());
        let config = root().join("docker/image.ci.toml");
        let run = xtask(
            &[
                "image",
                "--config",
                config.to_str().unwrap(),
                "--image",
                CI_IMAGE,
                "--build-arg",
                &base,
                "--skip",
                "free,push",
                "--gpu",
                "auto",
                "--report",
                report_path.to_str().unwrap(),
            ],
            &[],
        );
        assert!(run.success(), "{run:?}");
        headroom_tests::check_report(&report_path);
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
        (report, run.stderr)
    })
}

fn the_ci_profile_builds_smokes_on_cpu_and_answers_health() {
    let (r, stderr) = ci_build();
    let stages: Vec<(&str, &str)> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert!(
        stages.contains(&("build", "passed")) && stages.contains(&("smoke", "passed")),
        "{stages:?}"
    );
    assert_eq!(
        r["build"]["backend"], "buildx",
        "RUN --mount needs BuildKit"
    );
    let smoke = &r["smoke"];
    assert_eq!(smoke["device"], "cpu");
    assert!(smoke["note"].as_str().unwrap().contains("CPU"), "{smoke:#}");
    assert!(
        smoke["gpu"]["reason"]
            .as_str()
            .unwrap()
            .contains("cuda = false"),
        "{smoke:#}"
    );
    assert!(stderr.contains("runs on CPU"), "said in the output too");
    // NVIDIA's entrypoint is reset: the image runs its command as given, no banner.
    let entrypoint = sh(
        "docker",
        &[
            "inspect",
            "--format",
            "{{json .Config.Entrypoint}}",
            r["image"]["references"][0].as_str().unwrap(),
        ],
    );
    assert!(matches!(entrypoint.trim(), "null" | "[]"), "{entrypoint}");
    let result = &smoke["run"]["result"];
    assert_eq!(result["cuda_available"], false, "{result:#}");
    assert_eq!(result["ok"], true, "{result:#}");
    assert!(result["matmul"]["tflops"].as_f64().unwrap() > 0.0);
    assert_eq!(smoke["health"]["docker_status"], "healthy");
    assert_eq!(smoke["health"]["response"]["status"], "healthy");
    // At most 12 layers on top of the base; the proxy CA was a secret, not a file.
    let base_layers = layers(cuda_base());
    // The first reference: `latest` is given on the default branch only.
    let image = r["image"]["references"][0].as_str().unwrap().to_string();
    assert!(
        layers(&image) - base_layers <= 12,
        "{} layers added",
        layers(&image) - base_layers
    );
    let secrets = sh(
        "docker",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            &image,
            "-c",
            "ls -A /run/secrets 2>/dev/null | wc -l",
        ],
    );
    assert_eq!(secrets.trim(), "0");
    let user = sh(
        "docker",
        &["inspect", "--format", "{{.Config.User}}", &image],
    );
    assert_eq!(user.trim(), "10001:10001");
}

const FULL_IMAGE: &str = "headroom-test/cuda-pytorch-full";

/// PyPI answers (its index and the host its files come from): the full profile downloads
/// about 2.5 GB of wheels from it.
const PYPI: Need = Need::Other {
    missing: "needs https://pypi.org and https://files.pythonhosted.org (the full profile's wheels)",
    met: || {
        ["pypi.org:443", "files.pythonhosted.org:443"]
            .iter()
            .all(|h| reachable(h))
    },
};

/// A TCP connection to `host:port` opens within 10 s (any of its addresses).
fn reachable(host: &str) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    host.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(10)).is_ok())
    })
}

/// What pip prints when PyPI cannot be reached or a download breaks off (after its retries).
const DOWNLOAD_FAILURES: &[&str] = &[
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "IncompleteRead",
    "ProtocolError",
    "Could not find a version that satisfies",
    "No matching distribution found",
    "THESE PACKAGES DO NOT MATCH THE HASHES",
];

/// The full profile (`docker/image.toml`: torch 2.0.1, transformers, diffusers, accelerate,
/// about 4.8 GB) as a user without the PyTorch index builds it: torch and its nvidia-*-cu11
/// libraries from PyPI, on the stand-in of the CUDA 11.8 base, through the whole pipeline.
/// PyPI's torch is a CUDA 11.7 build; the image records that the build chose it, so the smoke
/// test's CUDA check passes (on CPU as it would on a GPU) instead of calling it a fallback.
fn the_full_profile_from_pypi_builds_smokes_on_cpu_and_answers_health() {
    let base = format!("BASE_IMAGE={}", cuda_base());
    // Removes the image and its build cache (about 5 GB) however the test ends.
    let _leftovers = BuildLeftovers::new(FULL_IMAGE);
    let tmp = tempfile::tempdir().unwrap();
    let report_path = tmp.path().join("r.json");
    let summary = tmp.path().join("summary.md");
    let outputs = tmp.path().join("outputs.txt");
    let config = root().join("docker/image.toml");
    let run = xtask(
        &[
            "image",
            "--config",
            config.to_str().unwrap(),
            "--image",
            FULL_IMAGE,
            "--build-arg",
            &base,
            "--build-arg",
            "TORCH_INDEX_URL=https://pypi.org/simple",
            "--skip",
            "free,push",
            "--gpu",
            "auto",
            "--report",
            report_path.to_str().unwrap(),
        ],
        &[
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
        ],
    );
    if !run.success() {
        let log = format!("{}\n{}", run.stdout, run.stderr);
        match DOWNLOAD_FAILURES.iter().find(|p| log.contains(*p)) {
            Some(p) => panic!(
                "pip could not get the full profile's packages ({p}, after its retries): this \
                 test needs https://pypi.org and https://files.pythonhosted.org (if they answer, \
                 a pin in docker/requirements*.txt is wrong); {run:?}"
            ),
            None => panic!("the full profile failed: {run:?}"),
        }
    }
    headroom_tests::check_report(&report_path);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let stages: Vec<(&str, &str)> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert!(
        stages.contains(&("build", "passed")) && stages.contains(&("smoke", "passed")),
        "{stages:?}"
    );
    let smoke = &r["smoke"];
    assert_eq!(smoke["device"], "cpu", "{smoke:#}");
    let result = &smoke["run"]["result"];
    assert_eq!(result["ok"], true, "{result:#}");
    assert!(
        result["torch"].as_str().unwrap().starts_with("2.0.1"),
        "{result:#}"
    );
    assert_eq!(result["cuda_available"], false, "{result:#}");
    // PyPI's torch 2.0.1 is built for CUDA 11.7; the image is 11.8 and says which it chose.
    assert_eq!(
        (
            &result["cuda"],
            &result["built_for_cuda"],
            &result["image_cuda"]
        ),
        (&"11.7".into(), &"11.7".into(), &"11.8.0".into()),
        "{result:#}"
    );
    let check = |name: &str| {
        result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {result:#}"))
            .clone()
    };
    let cuda_build = check("cuda_build");
    assert_eq!(cuda_build["ok"], true, "{cuda_build}");
    assert!(
        cuda_build["detail"]
            .as_str()
            .unwrap()
            .contains("as the build chose, which the image's CUDA 11.8.0 runs"),
        "{cuda_build}"
    );
    // The checked work ran with torch on the CPU, exactly.
    for key in ["matmul_check", "conv"] {
        assert_eq!(result[key]["device"], "cpu", "{result:#}");
        assert_eq!(result[key]["max_error"].as_f64(), Some(0.0), "{result:#}");
    }
    assert_eq!(result["matmul"]["backend"], "torch", "{result:#}");
    for name in ["transformers", "diffusers", "accelerate", "safetensors"] {
        assert!(
            result["imports"][name]["error"].is_null()
                && !result["imports"][name]["version"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty(),
            "{name}: {result:#}"
        );
    }
    assert_eq!(smoke["health"]["docker_status"], "healthy", "{smoke:#}");
    assert_eq!(
        smoke["health"]["response"]["status"], "healthy",
        "{smoke:#}"
    );
    // The summary and the outputs name the device.
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("**smoke** on **cpu** (CUDA 11.7)"),
        "{summary}"
    );
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    for want in ["device=cpu", "cuda=11.7"] {
        assert!(outputs.lines().any(|l| l == want), "{want}: {outputs}");
    }
}

/// What a build leaves on the engine, removed on drop (so also when the test panics): every
/// tag of its image, and the build-cache records made since it was created, children before
/// parents. Records that another test of this process made meanwhile and no longer uses go
/// too; that costs them only a cache hit.
struct BuildLeftovers {
    image: &'static str,
    before: BTreeSet<String>,
}

impl BuildLeftovers {
    fn new(image: &'static str) -> BuildLeftovers {
        remove_image(image);
        BuildLeftovers {
            image,
            before: cache_records().into_keys().collect(),
        }
    }
}

impl Drop for BuildLeftovers {
    fn drop(&mut self) {
        remove_image(self.image);
        // A record is held by its children: prune the records of ours that no record of ours
        // names as a parent, then again, until none is left or a round frees nothing (one
        // that is in use, or not ours to judge).
        let mut left = usize::MAX;
        loop {
            let records = cache_records();
            let ours: BTreeMap<&String, &Vec<String>> = records
                .iter()
                .filter(|(id, _)| !self.before.contains(*id))
                .collect();
            if ours.is_empty() || ours.len() >= left {
                return;
            }
            left = ours.len();
            let parents: BTreeSet<&String> = ours.values().flat_map(|p| p.iter()).collect();
            for id in ours.keys().filter(|id| !parents.contains(*id)) {
                let _ = Command::new("docker")
                    .args(["builder", "prune", "--force", "--filter"])
                    .arg(format!("id={id}"))
                    .output();
            }
        }
    }
}

fn remove_image(image: &str) {
    let Ok(out) = Command::new("docker")
        .args(["images", "--quiet", "--no-trunc", image])
        .output()
    else {
        return;
    };
    let ids: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for id in ids {
        let _ = Command::new("docker")
            .args(["rmi", "--force", &id])
            .output();
    }
}

/// The default builder's cache records: id → parents (`docker buildx du --verbose`).
fn cache_records() -> BTreeMap<String, Vec<String>> {
    let out = Command::new("docker")
        .args(["buildx", "du", "--verbose"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut records = BTreeMap::new();
    let mut id: Option<String> = None;
    for line in out.lines() {
        let (key, value) = line.split_once(':').unwrap_or(("", line));
        match key.trim() {
            "ID" => {
                id = Some(value.trim().to_string());
                records.insert(value.trim().to_string(), Vec::new());
            }
            "Parent" | "Parents" => {
                if let Some(parents) = id.as_ref().and_then(|i| records.get_mut(i)) {
                    parents.extend(
                        value
                            .split([',', ' ', '\t'])
                            .filter(|p| !p.is_empty())
                            .map(str::to_string),
                    );
                }
            }
            _ => {}
        }
    }
    records
}

fn layers(image: &str) -> usize {
    sh(
        "docker",
        &["inspect", "--format", "{{len .RootFS.Layers}}", image],
    )
    .trim()
    .parse()
    .unwrap()
}

fn gpu_required_fails_clearly_without_a_gpu() {
    ci_build();
    let tmp = tempfile::tempdir().unwrap();
    // [smoke] with cuda left on: the image claims CUDA, so the GPU is probed and refused.
    let config = tmp.path().join("image.toml");
    std::fs::write(&config, "[smoke]\ngpu = \"required\"\n").unwrap();
    let start = Instant::now();
    let run = xtask(
        &[
            "image",
            "--config",
            config.to_str().unwrap(),
            "--image",
            CI_IMAGE,
            "--skip",
            "lint,free,build,push",
            "--gpu",
            "required",
            "--report",
            tmp.path().join("r.json").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(
        run.stderr.contains("--gpu required")
            && run.stderr.contains("no NVIDIA Container Toolkit")
            && run.stderr.contains("no NVIDIA runtime"),
        "{}",
        run.stderr
    );
    // The container never started, yet the report has its smoke section with the cause.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("r.json")).unwrap()).unwrap();
    headroom_tests::check_report(&tmp.path().join("r.json"));
    let smoke = &report["smoke"];
    assert_eq!(smoke["device"], "none", "{report:#}");
    assert!(
        smoke["error"]
            .as_str()
            .unwrap()
            .contains("could not select device driver"),
        "{smoke:#}"
    );
    let left = sh(
        "docker",
        &[
            "ps",
            "-a",
            "--filter",
            "name=headroom-gpu-probe-",
            "--format",
            "{{.Names}}",
        ],
    );
    assert_eq!(left.trim(), "", "probe containers left behind");
}

fn the_cuda_stand_in_behaves_as_nvidias_base() {
    let base = cuda_base();
    let inspect = sh("docker", &["inspect", "--format", "{{json .Config}}", base]);
    let config: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/opt/nvidia/nvidia_entrypoint.sh"])
    );
    assert_eq!(
        config["User"].as_str().unwrap_or(""),
        "",
        "root, as NVIDIA's"
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in [
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        "CUDA_VERSION=11.8.0",
        "NV_CUDNN_VERSION=8.9.6.50",
        "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
        "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
    assert!(
        env.iter()
            .any(|e| e.starts_with("NVIDIA_REQUIRE_CUDA=cuda>=11.8 brand=tesla,driver>=470")),
        "{env:?}"
    );
    // The entrypoint prints its banner, the license text and the no-driver warning on
    // stdout, then execs the command.
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            base,
            "sh",
            "-c",
            "echo last; readlink /usr/local/cuda",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for want in [
        "== CUDA ==",
        "CUDA Version 11.8.0",
        "NVIDIA Deep Learning Container License",
        "WARNING: The NVIDIA Driver was not detected.",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    assert!(stdout.ends_with("last\ncuda-11.8\n"), "{stdout}");
}

fn a_users_image_keeping_nvidias_entrypoint_passes_the_smoke_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // A user's image: NVIDIA's entrypoint kept, no HEALTHCHECK, no health endpoint.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\nCMD [\"sleep\", \"300\"]\n", cuda_base()),
    )
    .unwrap();
    let image = "headroom-test/users-cuda";
    let run_with = |smoke: &str, skip: &str| {
        let config = tmp.path().join("image.toml");
        std::fs::write(&config, format!("[smoke]\nhealth = false\n{smoke}")).unwrap();
        let report = tmp.path().join("r.json");
        let run = xtask(
            &[
                "image",
                "--config",
                config.to_str().unwrap(),
                "--context",
                ctx.to_str().unwrap(),
                "--image",
                image,
                "--skip",
                skip,
                "--report",
                report.to_str().unwrap(),
            ],
            &[],
        );
        headroom_tests::check_report(&report);
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        (run, r)
    };
    // The marked line comes through the banner and is judged.
    let (run, r) = run_with(
        "json = true\ncommand = [\"sh\", \"-c\", \"echo 'HEADROOM-SMOKE-JSON {\\\"checks\\\": [], \\\"ok\\\": true}'\"]\n",
        "free,push",
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(r["smoke"]["run"]["result"]["ok"], true, "{r:#}");
    assert!(
        r["smoke"]["run"]["log_tail"].as_array().unwrap().is_empty(),
        "{r:#}"
    );
    // Plain JSON after the banner is no result: it says so.
    let (run, r) = run_with(
        "json = true\ncommand = [\"sh\", \"-c\", \"echo '{\\\"ok\\\": true}'\"]\n",
        "free,build,push",
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        r["smoke"]["mismatches"][0]
            .as_str()
            .unwrap()
            .contains("no HEADROOM-SMOKE-JSON line"),
        "{r:#}"
    );
    // A command of yours is judged by its exit status.
    let (run, _) = run_with(
        "command = [\"sh\", \"-c\", \"exit 3\"]\nexit_code = 3\n",
        "free,build,push",
    );
    assert!(run.success(), "{run:?}");
    let (run, r) = run_with("command = [\"false\"]\n", "free,build,push");
    assert!(!run.success(), "{run:?}");
    assert!(
        r["smoke"]["mismatches"][0]
            .as_str()
            .unwrap()
            .contains("exited with code 1, 0 expected"),
        "{r:#}"
    );
}

fn a_container_that_never_becomes_healthy_fails_in_time_and_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nHEALTHCHECK --interval=1s --retries=100 CMD [\"false\"]\nCMD [\"sleep\", \"300\"]\n",
            base_image()
        ),
    )
    .unwrap();
    let config = tmp.path().join("image.toml");
    std::fs::write(
        &config,
        "[smoke]\ncommand = [\"sh\", \"-c\", \"echo '{\\\"checks\\\": [], \\\"ok\\\": true}'\"]\nhealth_timeout = 4\n",
    )
    .unwrap();
    headroom_tests::xtask_bin(); // built (when it must be) before the clock starts
    let start = Instant::now();
    let run = xtask(
        &[
            "image",
            "--config",
            config.to_str().unwrap(),
            "--context",
            ctx.to_str().unwrap(),
            "--image",
            "headroom-test/never-healthy",
            "--skip",
            "free,push",
            "--report",
            tmp.path().join("r.json").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(run.stderr.contains("health check"), "{}", run.stderr);
    let left = sh(
        "docker",
        &[
            "ps",
            "-a",
            "--filter",
            "name=headroom-health-",
            "--format",
            "{{.Names}} {{.Image}}",
        ],
    );
    // Other tests of this binary start health containers of their own images meanwhile.
    let left: Vec<&str> = left
        .lines()
        .filter(|l| l.contains("headroom-test/never-healthy"))
        .collect();
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

fn the_dockerfile_is_clean_under_hadolint() {
    let bin = headroom_tests::harness::tool("hadolint");
    let out = std::process::Command::new(&bin)
        .arg(root().join("docker/Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn the_smoke_scripts_pass_their_own_tests() {
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "docker/smoke",
            "-p",
            "test_*.py",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn a_base_that_cannot_be_pulled_names_the_override() {
    let tmp = tempfile::tempdir().unwrap();
    let config = root().join("docker/image.ci.toml");
    let run = xtask(
        &[
            "image",
            "--config",
            config.to_str().unwrap(),
            "--image",
            "headroom-test/no-base",
            "--build-arg",
            "BASE_IMAGE=headroom-test/not-here-anywhere:1",
            "--skip",
            "free,smoke,push",
            "--report",
            tmp.path().join("r.json").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains("could not be pulled")
            && run
                .stderr
                .contains("BASE_IMAGE=headroom-test/not-here-anywhere:1")
            && run.stderr.contains("cargo xtask base-image"),
        "{}",
        run.stderr
    );
}
