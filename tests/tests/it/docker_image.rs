//! `docker/Dockerfile` built for real (ci profile, on the stand-in of NVIDIA's CUDA base), its
//! smoke test on CPU, the GPU policy, the health probe, and the smoke contract for any image
//! (a user's image that keeps NVIDIA's entrypoint banner; exit status only; no health).

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use headroom_tests::registry::base_image;
use headroom_tests::{cuda_base, sh, xtask};
use serde_json::Value;

headroom_tests::tests! {
    the_cuda_stand_in_behaves_as_nvidias_base needs Docker;
    the_ci_profile_builds_smokes_on_cpu_and_answers_health needs Docker, Tool("check-jsonschema");
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
