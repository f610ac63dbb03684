//! The pipeline's rules, as functions of their inputs: what a smoke run must show, what a
//! failed pull means, and how much disk the next build needs.

use std::collections::BTreeMap;

use headroom_docker::smoke::SmokeRun;

use crate::report::Report;

/// What the configuration expects of the smoke run, on top of the script's own checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmokeExpectations {
    /// The torch version to find (the local `+cuXXX` part is ignored unless given).
    pub torch: Option<String>,
    /// Minimum matrix-multiply throughput, TFLOP/s.
    pub min_tflops: Option<f64>,
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
    let Some(r) = &run.result else {
        out.push(format!(
            "the smoke test printed no JSON object (exit code {}); last lines: {}",
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
    if gpu_requested
        && r["cuda_available"] != true
        && !out.iter().any(|m| m.contains("cuda_available"))
    {
        out.push("GPUs were requested but the container reports cuda_available: false".into());
    }
    if let Some(min) = expect.min_tflops {
        let got = r["matmul"]["tflops"].as_f64().unwrap_or(0.0);
        if got < min && !out.iter().any(|m| m.contains("tflops")) {
            out.push(format!("matmul {got:.3} TFLOP/s, at least {min} expected"));
        }
    }
    if run.exit_code != 0 && out.is_empty() {
        out.push(format!("the smoke test exited with code {}", run.exit_code));
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
            m[0].contains("no JSON") && m[0].contains("can't open file"),
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
