//! The pipeline's rules, as functions of their inputs: what a smoke run must show, what a
//! failed pull means, and how much disk the next build needs.

use std::collections::BTreeMap;

use headroom_docker::smoke::SmokeRun;

use crate::report::Report;

/// What the configuration expects of the smoke run, on top of the script's own checks.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeExpectations {
    /// The torch version to find (the local `+cuXXX` part is ignored unless given).
    pub torch: Option<String>,
    /// Minimum matrix-multiply throughput, TFLOP/s.
    pub min_tflops: Option<f64>,
    /// Whether the command prints a JSON result to judge (headroom's smoke script does).
    pub json: bool,
    /// The exit status the command must end with.
    pub exit_code: i64,
}

impl Default for SmokeExpectations {
    fn default() -> Self {
        SmokeExpectations {
            torch: None,
            min_tflops: None,
            json: true,
            exit_code: 0,
        }
    }
}

/// What the last build consumed on the data root (before − low-water), plus a quarter and
/// 2 GB of margin: the space to have free before the next one.
pub fn estimate_need(previous: &Report) -> Option<u64> {
    let before = previous.disk.available_before?;
    let low = previous.disk.low_water_bytes?;
    let consumed = before.checked_sub(low)?;
    Some(consumed + consumed / 4 + 2_000_000_000)
}

/// The smoke script's rule: `2.0.1` matches `2.0.1+cu117`, `2.0` matches `2.0.1`, but
/// `2.0.1` not `2.0.10`; a wanted local part (`2.0.1+cu117`) must match exactly.
pub fn version_matches(have: &str, want: &str) -> bool {
    if want.contains('+') {
        return have == want;
    }
    let have: Vec<&str> = have.split('+').next().unwrap_or(have).split('.').collect();
    let want: Vec<&str> = want.split('.').collect();
    have.len() >= want.len() && have[..want.len()] == want[..]
}

/// When a build failed because its base image could not be pulled (an offline or
/// air-gapped machine), say so and name the override.
pub fn base_pull_hint(
    message: &str,
    lines: &[String],
    args: &BTreeMap<String, String>,
) -> Option<String> {
    let text = std::iter::once(message)
        .chain(lines.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n")
        .to_ascii_lowercase();
    let pull_failed = [
        "pull access denied",
        "failed to resolve source metadata",
        "failed to do request",
        "manifest unknown",
        "repository does not exist",
        "no such host",
        "i/o timeout",
    ]
    .iter()
    .any(|p| text.contains(p));
    if !pull_failed {
        return None;
    }
    let current = args
        .get("BASE_IMAGE")
        .map(|b| format!(" (BASE_IMAGE={b})"))
        .unwrap_or_default();
    Some(format!(
        "\nThe base image could not be pulled{current}: this machine may be offline or unable to reach \
         the registry. Make a local stand-in with `cargo xtask base-image` and build with \
         --build-arg BASE_IMAGE=headroom/debian:bookworm (or another image the engine already has)."
    ))
}

/// Everything the smoke run got wrong, spelled out: its own failed checks, and the
/// expectations of the config (checked here too, so a script that forgets one cannot pass).
pub fn smoke_mismatches(
    run: &SmokeRun,
    expect: &SmokeExpectations,
    gpu_requested: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if !expect.json {
        if run.exit_code != expect.exit_code {
            out.push(format!(
                "the smoke command exited with code {}, {} expected; last lines: {}",
                run.exit_code,
                expect.exit_code,
                run.log_tail.join(" | ")
            ));
        }
        return out;
    }
    let Some(r) = &run.result else {
        out.push(format!(
            "the smoke test printed no JSON result (no HEADROOM-SMOKE-JSON line; exit code {}); last lines: {}",
            run.exit_code,
            run.log_tail.join(" | ")
        ));
        return out;
    };
    if r["ok"] != true {
        out.push(format!(
            "the smoke test reports ok: {}",
            serde_json::to_string(&r["ok"]).unwrap_or_default()
        ));
    }
    for check in r["checks"].as_array().into_iter().flatten() {
        if check["ok"] != true {
            out.push(format!(
                "check {} failed: {}",
                check["name"].as_str().unwrap_or("?"),
                check["detail"].as_str().unwrap_or("")
            ));
        }
    }
    if let Some(want) = &expect.torch {
        let got = r["torch"].as_str().unwrap_or("none");
        if !version_matches(got, want) && !out.iter().any(|m| m.contains("torch")) {
            out.push(format!("torch {got} found, {want} expected"));
        }
    }
    for problem in cuda_build_problems(r) {
        if !out.iter().any(|m| m.contains("cuda_build")) {
            out.push(problem);
        }
    }
    if gpu_requested {
        if r["cuda_available"] != true {
            if !out.iter().any(|m| m.contains("cuda_available")) {
                out.push(
                    "GPUs were requested but the container reports cuda_available: false".into(),
                );
            }
        } else {
            out.extend(gpu_evidence_problems(r));
        }
    }
    if let Some(min) = expect.min_tflops {
        let got = r["matmul"]["tflops"].as_f64().unwrap_or(0.0);
        if got < min && !out.iter().any(|m| m.contains("tflops")) {
            out.push(format!("matmul {got:.3} TFLOP/s, at least {min} expected"));
        }
    }
    if run.exit_code != expect.exit_code && out.is_empty() {
        out.push(format!(
            "the smoke test exited with code {}, {} expected",
            run.exit_code, expect.exit_code
        ));
    }
    out
}

fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// torch's CUDA against its wheel's `+cuXYZ` tag, what the build installed it for
/// (`built_for_cuda`, from the image's `build.json`) and the image's `CUDA_VERSION`, judged
/// here again (a script that forgets the check cannot pass): `+cu118` reporting CUDA 12.1 is
/// impossible on any device; a cu117 build where the build asked for cu118 is the PyPI
/// fallback gone wrong; PyPI's cu117 build where the build chose PyPI runs on an 11.8 base
/// (same major, not newer). Without a record, torch's CUDA must be the image's.
pub fn cuda_build_problems(r: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(cuda) = r["cuda"].as_str() else {
        return out;
    };
    let torch = r["torch"].as_str().unwrap_or("");
    if let Some((_, local)) = torch.split_once('+')
        && let Some(digits) = local.strip_prefix("cu")
        && digits.len() >= 2
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        let tagged = format!(
            "{}.{}",
            &digits[..digits.len() - 1],
            &digits[digits.len() - 1..]
        );
        if major_minor(cuda) != tagged {
            out.push(format!(
                "torch {torch} is tagged for CUDA {tagged} but reports CUDA {cuda}"
            ));
        }
    }
    let image = r["image_cuda"].as_str();
    if let Some(built_for) = r["built_for_cuda"].as_str() {
        if major_minor(cuda) != major_minor(built_for) {
            out.push(format!(
                "torch is built for CUDA {cuda}, the build installed it for CUDA {built_for}"
            ));
        }
        if let Some(image) = image {
            let runs = match (cuda_parts(cuda), cuda_parts(image)) {
                (Some(have), Some(base)) => have.0 == base.0 && have <= base,
                _ => false,
            };
            if !runs {
                out.push(format!(
                    "torch is built for CUDA {cuda}, which the image's CUDA {image} cannot run"
                ));
            }
        }
    } else if let Some(image) = image
        && major_minor(cuda) != major_minor(image)
    {
        out.push(format!(
            "torch is built for CUDA {cuda}, the image for CUDA {image}"
        ));
    }
    out
}

/// `11.8.0` as (11, 8); None when it is not numbers.
fn cuda_parts(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// On a GPU, the evidence that the work ran there: a driver, at least one device with its
/// name, compute capability and memory, the timed matmul on `cuda`, and the exact integer
/// matmul and cuDNN convolution on `cuda`.
pub fn gpu_evidence_problems(r: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let count = r["device_count"].as_u64().unwrap_or(0);
    let gpus = r["gpus"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if count == 0 || gpus.len() as u64 != count {
        out.push(format!(
            "device_count {count} but {} GPU(s) described",
            gpus.len()
        ));
    }
    for g in gpus {
        if g["name"].as_str().is_none()
            || g["capability"].as_str().is_none()
            || g["memory_bytes"].as_u64().unwrap_or(0) == 0
        {
            out.push(format!(
                "GPU without name, compute capability or memory: {g}"
            ));
        }
    }
    if r["driver"].as_str().is_none() && r["cuda_driver"].as_str().is_none() {
        out.push("no NVIDIA driver version reported".into());
    }
    if r["matmul"]["device"] != "cuda" {
        out.push(format!(
            "the timed matmul ran on {}, not the GPU",
            r["matmul"]["device"]
        ));
    }
    for (key, what) in [("matmul_check", "integer matmul"), ("conv", "convolution")] {
        let w = &r[key];
        if w["device"] != "cuda" || w["max_error"].as_f64() != Some(0.0) || !w["error"].is_null() {
            out.push(format!(
                "the checked {what} did not run exactly on the GPU: {w}"
            ));
        }
    }
    if r["conv"]["cudnn"] != true {
        out.push("the convolution ran without cuDNN".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DiskReport;

    fn fixture(name: &str) -> SmokeRun {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docker/smoke/fixtures")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        SmokeRun {
            exit_code: 0,
            result: headroom_docker::smoke::parse_one_json(&text),
            gpu: None,
            seconds: 1.0,
            log_tail: Vec::new(),
        }
    }

    #[test]
    fn the_next_target_is_what_the_last_build_consumed_plus_margin() {
        let mut r = Report::default();
        assert_eq!(estimate_need(&r), None);
        r.disk = DiskReport {
            available_before: Some(30_000_000_000),
            low_water_bytes: Some(10_000_000_000),
            ..DiskReport::default()
        };
        assert_eq!(estimate_need(&r), Some(27_000_000_000));
        r.disk.low_water_bytes = Some(40_000_000_000);
        assert_eq!(estimate_need(&r), None, "more free at the end than before");
    }

    #[test]
    fn a_recorded_gpu_run_passes_the_gpu_policy() {
        let run = fixture("gpu-fake-h200.json");
        let config = SmokeExpectations {
            torch: Some("2.0.1".into()),
            min_tflops: Some(100.0),
            ..SmokeExpectations::default()
        };
        assert_eq!(smoke_mismatches(&run, &config, true), Vec::<String>::new());
        let r = run.result.as_ref().unwrap();
        assert_eq!(r["devices"][0], "NVIDIA H200");
        assert!(r["peak_gpu_memory_bytes"].as_u64().unwrap() > 0);
    }

    #[test]
    fn a_cpu_run_fails_gpu_and_torch_expectations_with_the_mismatch_spelled_out() {
        let run = fixture("cpu-no-torch.json");
        let config = SmokeExpectations {
            torch: Some("2.0.1".into()),
            ..SmokeExpectations::default()
        };
        let mismatches = smoke_mismatches(&run, &config, true);
        assert!(
            mismatches
                .iter()
                .any(|m| m.contains("torch none found, 2.0.1 expected")),
            "{mismatches:?}"
        );
        assert!(
            mismatches
                .iter()
                .any(|m| m.contains("cuda_available: false")),
            "{mismatches:?}"
        );
        assert!(smoke_mismatches(&run, &SmokeExpectations::default(), false).is_empty());
    }

    #[test]
    fn an_impossible_or_thin_gpu_run_fails_on_the_rust_side() {
        // The script's own checks are erased: the Rust side must still refuse.
        let mut run = fixture("gpu-fake-h200.json");
        let r = run.result.as_mut().unwrap();
        r["checks"] = serde_json::json!([]);
        r["cuda"] = "12.1".into();
        let m = smoke_mismatches(&run, &SmokeExpectations::default(), true);
        assert!(
            m.iter()
                .any(|m| m.contains("tagged for CUDA 11.8 but reports CUDA 12.1"))
                && m.iter().any(|m| m.contains("the image for CUDA 11.8.0")),
            "{m:?}"
        );
        let mut run = fixture("gpu-fake-h200.json");
        let r = run.result.as_mut().unwrap();
        r["conv"]["device"] = "cpu".into();
        r["conv"]["cudnn"] = false.into();
        r["matmul_check"]["max_error"] = 2.0.into();
        r["gpus"] = serde_json::json!([]);
        r["driver"] = serde_json::Value::Null;
        r["cuda_driver"] = serde_json::Value::Null;
        let m = smoke_mismatches(&run, &SmokeExpectations::default(), true);
        for want in [
            "checked convolution",
            "checked integer matmul",
            "without cuDNN",
            "0 GPU(s) described",
            "no NVIDIA driver",
        ] {
            assert!(m.iter().any(|m| m.contains(want)), "{want}: {m:?}");
        }
        // The same result on CPU is not judged as GPU work.
        let cpu = fixture("cpu-no-torch.json");
        assert!(smoke_mismatches(&cpu, &SmokeExpectations::default(), false).is_empty());
    }

    #[test]
    fn torch_is_judged_against_the_cuda_the_build_chose() {
        // PyPI's torch 2.0.1 (CUDA 11.7, no local tag) in the 11.8 base, as the build chose:
        // passes on CPU and on a GPU alike.
        let mut run = fixture("gpu-fake-h200.json");
        let r = run.result.as_mut().unwrap();
        r["checks"] = serde_json::json!([]);
        r["torch"] = "2.0.1".into();
        r["cuda"] = "11.7".into();
        r["built_for_cuda"] = "11.7".into();
        assert_eq!(
            smoke_mismatches(&run, &SmokeExpectations::default(), true),
            Vec::<String>::new()
        );
        // The same torch where the build asked for the PyTorch index's cu118: the fallback.
        let r = run.result.as_mut().unwrap();
        r["built_for_cuda"] = "11.8".into();
        let m = cuda_build_problems(r);
        assert_eq!(
            m,
            ["torch is built for CUDA 11.7, the build installed it for CUDA 11.8"]
        );
        // No record: the image's CUDA is the measure.
        r["built_for_cuda"] = serde_json::Value::Null;
        assert_eq!(
            cuda_build_problems(r),
            ["torch is built for CUDA 11.7, the image for CUDA 11.8.0"]
        );
        // A CUDA newer than the base's, or of another major, the base cannot run.
        for (cuda, torch) in [("12.1", "2.1.0+cu121"), ("11.9", "2.0.1"), ("x", "2.0.1")] {
            r["cuda"] = cuda.into();
            r["torch"] = torch.into();
            r["built_for_cuda"] = cuda.into();
            assert_eq!(
                cuda_build_problems(r),
                [format!(
                    "torch is built for CUDA {cuda}, which the image's CUDA 11.8.0 cannot run"
                )]
            );
        }
        // Impossible whatever the build chose.
        r["torch"] = "2.0.1+cu118".into();
        r["cuda"] = "12.1".into();
        r["built_for_cuda"] = "11.8".into();
        let m = cuda_build_problems(r);
        assert!(
            m.iter()
                .any(|m| m.contains("tagged for CUDA 11.8 but reports CUDA 12.1")),
            "{m:?}"
        );
    }

    #[test]
    fn without_json_the_exit_status_decides() {
        let run = SmokeRun {
            exit_code: 3,
            result: None,
            gpu: None,
            seconds: 0.1,
            log_tail: vec!["banner".into()],
        };
        let plain = SmokeExpectations {
            json: false,
            ..SmokeExpectations::default()
        };
        let m = smoke_mismatches(&run, &plain, false);
        assert!(m[0].contains("exited with code 3, 0 expected"), "{m:?}");
        let three = SmokeExpectations {
            exit_code: 3,
            ..plain
        };
        assert!(smoke_mismatches(&run, &three, false).is_empty());
    }

    #[test]
    fn a_run_that_says_it_failed_fails_even_without_failed_checks() {
        let run = SmokeRun {
            exit_code: 0,
            result: serde_json::from_str(
                r#"{"ok": false, "checks": [{"name": "x", "ok": "false"}]}"#,
            )
            .ok(),
            gpu: None,
            seconds: 0.1,
            log_tail: Vec::new(),
        };
        let m = smoke_mismatches(&run, &SmokeExpectations::default(), false);
        assert!(m.iter().any(|m| m.contains("ok: false")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("check x failed")), "{m:?}");
    }

    #[test]
    fn no_json_is_a_mismatch_with_the_last_lines() {
        let run = SmokeRun {
            exit_code: 1,
            result: None,
            gpu: None,
            seconds: 0.1,
            log_tail: vec!["python3: can't open file".into()],
        };
        let m = smoke_mismatches(&run, &SmokeExpectations::default(), false);
        assert!(
            m[0].contains("no JSON result") && m[0].contains("can't open file"),
            "{m:?}"
        );
    }

    #[test]
    fn torch_versions_match_as_the_smoke_script_matches_them() {
        assert!(version_matches("2.0.1+cu117", "2.0.1"));
        assert!(version_matches("2.0.1+cu117", "2.0"));
        assert!(!version_matches("2.0.10", "2.0.1"));
        assert!(version_matches("2.0.1+cu118", "2.0.1+cu118"));
        assert!(!version_matches("2.0.1+cu117", "2.0.1+cu118"));
        assert!(!version_matches("none", "2.0.1"));
    }

    #[test]
    fn pull_failures_name_the_override() {
        let args = BTreeMap::from([("BASE_IMAGE".to_string(), "nvidia/cuda:x".to_string())]);
        let hint = base_pull_hint(
            "failed to resolve source metadata for docker.io/nvidia/cuda:x",
            &[],
            &args,
        )
        .unwrap();
        assert!(
            hint.contains("BASE_IMAGE=nvidia/cuda:x") && hint.contains("cargo xtask base-image")
        );
        assert!(base_pull_hint("exit code 1", &[], &args).is_none());
    }
}
