//! `headroom inspect` (and `cargo xtask inspect`): where an image's bytes went — per layer, wasted bytes with the layer
//! (and Dockerfile line) that wrote and removed them, dive's figures beside ours, and a CI
//! gate with dive-compatible thresholds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use headroom_inspect::{Analysis, AnalyzeOptions, analyze, analyze_file};
use headroom_pipeline::gate::{GateResult, finish, thresholds};
use headroom_pipeline::render;

use crate::{UsageError, ui};

/// Exit status of a configuration error (`.dive-ci`, the [inspect] table): 2, as for every
/// usage error; a crossed threshold under --ci is 1.
const EXIT_CONFIG: u8 = 2;

/// Analyse an image: layer sizes, wasted bytes (bytes stored in a layer but not visible in
/// the final image), the paths that waste most, and dive's figures for comparison.
///
/// TARGET is an image in the engine (streamed from `docker save`'s API, never written to
/// disk) or a `docker save` / OCI archive file.
///
/// With --ci, fail when the image is over its thresholds: dive's `.dive-ci` keys
/// (lowestEfficiency 0.9, highestWastedBytes disabled, highestUserWastedPercent 0.1 by
/// default) and the [inspect] table of the image config (max_image_size, max_layers, and
/// the same three as lowest_efficiency, highest_wasted_bytes, highest_user_wasted_percent).
/// `.dive-ci` is read as dive reads it: rules dive does not evaluate (plugin rules) are
/// ignored with a note. Exit status: 0 passed (or no --ci), 1 a threshold crossed under
/// --ci, 2 a configuration or usage error.
#[derive(Args, Debug)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:
  headroom inspect ghcr.io/me/app:latest
  headroom inspect image.tar --json > inspect.json
  headroom inspect ghcr.io/me/app:latest --ci --dockerfile Dockerfile"
)]
pub struct Inspect {
    /// Image name or archive path.
    target: String,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// How many wasted paths to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// The Dockerfile the image was built from, to point at lines.
    #[arg(long, value_name = "FILE")]
    dockerfile: Option<PathBuf>,
    /// Fail (exit 1) when a threshold is crossed.
    #[arg(long)]
    ci: bool,
    /// dive's CI configuration file (used when it exists).
    #[arg(long, value_name = "FILE", default_value = ".dive-ci")]
    ci_config: PathBuf,
    /// Image configuration with an [inspect] table (used when it exists).
    #[arg(long, value_name = "FILE", default_value = "docker/image.toml")]
    config: PathBuf,
    /// Check every blob against the digest it is named by and every layer against the
    /// config's diff ids (a SHA-256 of every byte). Without it, an archive file's plain
    /// layers are read by their headers, and only files whose size another file shares are
    /// read, to find duplicates.
    #[arg(long)]
    verify: bool,
}

impl Inspect {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let start = std::time::Instant::now();
        // The configuration first: a bad one costs no read of the image, and it is a usage
        // error (exit 2), not a gate failure (exit 1).
        let thresholds = match thresholds(&self.ci_config, &self.config) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("inspect: configuration error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        };
        for note in &thresholds.notes {
            eprintln!("inspect: note: {note}");
        }
        let options = AnalyzeOptions {
            top_n: self.top,
            verify: self.verify,
            ..AnalyzeOptions::default()
        };
        let analysis = if Path::new(&self.target).is_file() {
            // An archive that cannot be read is bad input (exit 2), not a failed gate.
            let file = std::fs::File::open(&self.target)
                .map_err(|e| UsageError(format!("{}: {e}", self.target)))?;
            analyze_file(&file, &options).map_err(|e| {
                UsageError(format!(
                    "{}: not a docker save or OCI archive: {e}",
                    self.target
                ))
            })?
        } else if looks_like_a_path(&self.target) {
            return Err(UsageError(format!("{}: no such file", self.target)).into());
        } else {
            analyze_from_engine(&self.target, options)?
        };
        let dockerfile = match &self.dockerfile {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| UsageError(format!("--dockerfile {}: {e}", f.display())))?,
            ),
            None => None,
        };
        let gate = match thresholds.evaluate(&analysis) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("inspect: configuration error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        };
        let mut report = finish(
            analysis,
            dockerfile.as_deref(),
            gate,
            start.elapsed().as_secs_f64(),
        );
        report.peak_memory_bytes = peak_memory_bytes();
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render::human::inspect_report(&report));
        }
        ui::github_step_summary(&render::markdown::inspect(&report))?;
        let failed: Vec<&GateResult> = report.gate.iter().filter(|g| !g.passed).collect();
        if self.ci && !failed.is_empty() {
            for g in &failed {
                eprintln!(
                    "inspect: {} failed: {} (limit {})",
                    g.rule, g.actual, g.limit
                );
            }
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A target no image reference can be: an absolute or `./` path, or an archive's name.
fn looks_like_a_path(target: &str) -> bool {
    target.starts_with('/')
        || target.starts_with("./")
        || target.starts_with("../")
        || [".tar", ".tar.gz", ".tgz", ".oci"]
            .iter()
            .any(|ext| target.ends_with(ext))
}

/// Stream an image out of the engine into the analyser.
fn analyze_from_engine(image: &str, options: AnalyzeOptions) -> Result<Analysis> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let engine =
            headroom_docker::engine::Engine::from_env(std::time::Duration::from_secs(5)).await?;
        if engine.docker.inspect_image(image).await.is_err() {
            return Err(
                UsageError(format!("{image}: not an image in the engine, nor a file")).into(),
            );
        }
        let reader = headroom_docker::export::export(&engine, image);
        let image = image.to_string();
        tokio::task::spawn_blocking(move || {
            analyze(std::io::BufReader::with_capacity(1 << 20, reader), &options)
                .with_context(|| format!("analysing {image}"))
        })
        .await
        .context("the analysis thread")?
    })
}

/// This process's peak resident memory (`VmHWM` in `/proc/self/status`), where Linux says.
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}
