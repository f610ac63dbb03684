//! `cargo xtask smoke-judge FILE`: the Rust side's judgement of a smoke result that was made
//! elsewhere — `docker/smoke/smoke.py`'s stdout, run outside any container on a lent GPU
//! machine by `scripts/gpu-check` — with the same rules the smoke stage applies
//! ([`headroom_pipeline::policy::smoke_mismatches`]), printed as one verdict line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use headroom_docker::smoke::{SmokeRun, parse_result};
use headroom_pipeline::policy::{SmokeExpectations, smoke_mismatches};

/// Judge a smoke result (smoke.py's stdout) as the smoke stage does; one verdict line:
/// `PASS`, `FAIL` or `NO GPU`, exit status 0 only for `PASS`.
#[derive(Args, Debug)]
pub struct SmokeJudge {
    /// smoke.py's stdout (its last `HEADROOM-SMOKE-JSON` line is the result).
    file: PathBuf,
    /// The GPU was required: judge the evidence of work on it.
    #[arg(long)]
    gpu: bool,
    /// smoke.py's exit status.
    #[arg(long, default_value_t = 0)]
    exit_code: i64,
}

impl SmokeJudge {
    pub fn run(self) -> Result<ExitCode> {
        let text = std::fs::read_to_string(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        let line = verdict(&text, self.exit_code, self.gpu);
        println!("{line}");
        Ok(if line.starts_with("PASS") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// The verdict line for smoke.py's stdout.
pub fn verdict(stdout: &str, exit_code: i64, gpu: bool) -> String {
    let run = SmokeRun {
        exit_code,
        result: parse_result(stdout),
        gpu: None,
        seconds: 0.0,
        log_tail: Vec::new(),
    };
    let Some(r) = &run.result else {
        return format!("FAIL: no smoke result in the output (exit code {exit_code})");
    };
    if gpu && r["cuda_available"] != true {
        let why = r["torch_error"]
            .as_str()
            .map(|e| format!("torch does not import: {e}"))
            .unwrap_or_else(|| "torch.cuda.is_available() is false".into());
        return format!("NO GPU: {why}");
    }
    let mismatches = smoke_mismatches(&run, &SmokeExpectations::default(), gpu);
    if !mismatches.is_empty() {
        return format!("FAIL: {}", mismatches.join("; "));
    }
    let device = if gpu {
        let g = &r["gpus"][0];
        format!(
            "{} x{} (compute capability {}, {:.1} GiB), driver {}",
            g["name"].as_str().unwrap_or("?"),
            r["device_count"],
            g["capability"].as_str().unwrap_or("?"),
            g["memory_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64,
            r["driver"]
                .as_str()
                .or(r["cuda_driver"].as_str())
                .unwrap_or("?")
        )
    } else {
        "cpu".into()
    };
    format!(
        "PASS on {device}: torch {} CUDA {} cuDNN {}; matmul {} TFLOP/s; integer matmul and convolution exact on {}",
        r["torch"].as_str().unwrap_or("none"),
        r["cuda"].as_str().unwrap_or("none"),
        r["cudnn"],
        r["matmul"]["tflops"],
        r["conv"]["device"].as_str().unwrap_or("?"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = crate::repo::project_root()
            .join("docker/smoke/fixtures")
            .join(name);
        let json = std::fs::read_to_string(path).unwrap_or_default();
        format!("banner\nHEADROOM-SMOKE-JSON {}\n", json.replace('\n', " "))
    }

    #[test]
    fn verdicts() {
        let gpu = verdict(&fixture("gpu-fake-h200.json"), 0, true);
        assert!(
            gpu.starts_with("PASS on NVIDIA H200 x1 (compute capability 9.0"),
            "{gpu}"
        );
        let cpu = fixture("cpu-no-torch.json");
        assert!(verdict(&cpu, 0, true).starts_with("NO GPU: torch does not import"));
        assert!(verdict(&cpu, 0, false).starts_with("PASS on cpu"));
        assert!(verdict("Traceback", 1, true).starts_with("FAIL: no smoke result"));
        let wrong = fixture("gpu-fake-h200.json").replace("\"max_error\": 0", "\"max_error\": 1");
        assert!(verdict(&wrong, 0, true).starts_with("FAIL:"), "{wrong}");
    }
}
