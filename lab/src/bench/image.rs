//! `cargo xtask bench image`: the original incident's "before" and "after" — the naive
//! Dockerfile and the merged one — built on the same base with the same packages.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use headroom_disk::format_size;

use crate::report::{self, benchmarks_md, record_between, today};
use crate::sh::cmd;

/// Build docker/examples/Dockerfile.naive and docker/Dockerfile (full profile) from an
/// emptied build cache, through `cargo xtask image`, and compare layers, image size, peak
/// disk growth during the build (the watchdog's low-water mark) and build time.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ImageBench {
    /// Base image for both builds (make a local one with `cargo xtask base-image`).
    #[arg(long, value_name = "IMAGE", default_value = "headroom/debian:bookworm")]
    base: String,
    /// Where torch's CUDA builds come from (passed as TORCH_INDEX_URL to both).
    #[arg(long, value_name = "URL")]
    torch_index_url: Option<String>,
    /// Write the results into docs/benchmarks.md (between the bench-image markers).
    #[arg(long)]
    record: bool,
}

const START: &str = "<!-- bench-image:start -->";
const END: &str = "<!-- bench-image:end -->";

struct Measured {
    layers_added: u64,
    size_bytes: u64,
    peak_growth_bytes: u64,
    seconds: f64,
}

impl ImageBench {
    pub fn run(self) -> Result<ExitCode> {
        let root = crate::repo::project_root();
        let work = root.join("target/bench-image");
        std::fs::create_dir_all(&work)?;
        let base_layers = layers(&self.base).with_context(|| {
            format!(
                "--base {}: not in the engine; make it with `cargo xtask base-image`",
                self.base
            )
        })?;
        let mut results = Vec::new();
        for (name, dockerfile) in [
            ("naive", "docker/examples/Dockerfile.naive"),
            ("merged", "docker/Dockerfile"),
        ] {
            eprintln!("bench: {name}: emptying the build cache…");
            cmd("docker", ["builder", "prune", "--all", "--force"]).read()?;
            let image = format!("headroom-bench/{name}");
            let _ = cmd("docker", ["rmi", "-f", &format!("{image}:latest")]).read();
            eprintln!("bench: {name}: building {dockerfile}…");
            let report_path = work.join(format!("{name}.json"));
            let mut args: Vec<String> = [
                "xtask",
                "image",
                "--config",
                "docker/image.toml",
                "--dockerfile",
                dockerfile,
                "--image",
                &image,
                "--skip",
                "free,lint,smoke,push",
                "--build-arg",
                &format!("BASE_IMAGE={}", self.base),
                "--report",
                &report_path.display().to_string(),
            ]
            .map(String::from)
            .to_vec();
            if let Some(url) = &self.torch_index_url {
                args.extend(["--build-arg".into(), format!("TORCH_INDEX_URL={url}")]);
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            cmd(cargo, args)
                .dir(&root)
                .env_remove("GITHUB_ACTIONS")
                .read()
                .with_context(|| format!("{name}: cargo xtask image"))?;
            results.push((name, measure(&report_path, base_layers)?));
        }
        let (naive, merged) = (&results[0].1, &results[1].1);
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|(name, m)| {
                vec![
                    name.to_string(),
                    m.layers_added.to_string(),
                    format_size(m.size_bytes),
                    format_size(m.peak_growth_bytes),
                    format!("{:.0}", m.seconds),
                ]
            })
            .collect();
        print!(
            "{}",
            report::table(
                &[
                    "build",
                    "layers added",
                    "image",
                    "peak build disk",
                    "seconds"
                ],
                &rows
            )
        );
        let goals = [
            (
                format!(
                    "layers ≤ 1/3 of the naive: {} vs {}",
                    merged.layers_added, naive.layers_added
                ),
                merged.layers_added * 3 <= naive.layers_added,
            ),
            (
                format!(
                    "peak build disk ≤ 1.3× the final image: {} vs {} ({:.2}×)",
                    format_size(merged.peak_growth_bytes),
                    format_size(merged.size_bytes),
                    merged.peak_growth_bytes as f64 / merged.size_bytes.max(1) as f64
                ),
                merged.peak_growth_bytes as f64 <= 1.3 * merged.size_bytes as f64,
            ),
            (
                format!(
                    "image below the naive's: {} vs {} ({:.1}% smaller)",
                    format_size(merged.size_bytes),
                    format_size(naive.size_bytes),
                    100.0 * (1.0 - merged.size_bytes as f64 / naive.size_bytes.max(1) as f64)
                ),
                merged.size_bytes < naive.size_bytes,
            ),
        ];
        let command = format!(
            "cargo xtask bench image --base {}{}",
            self.base,
            self.torch_index_url
                .as_ref()
                .map(|u| format!(" --torch-index-url {u}"))
                .unwrap_or_default()
        );
        for (text, met) in &goals {
            println!("goal: {text}: {}", if *met { "met" } else { "not met" });
        }
        println!("reproduce: {command}");
        if self.record {
            let date = today()?;
            let mut md = format!(
                "{START}\n## Naive vs merged image (full profile)\n\n\
                 `docker/examples/Dockerfile.naive` (a RUN per package, caches left, cleanup in later layers) \
                 and `docker/Dockerfile`, same base and packages (torch 2.0.1, transformers 4.30.2, \
                 diffusers 0.18.2, accelerate, safetensors), each from an emptied build cache through \
                 `cargo xtask image` (buildx). Peak build disk is the fall of free space on Docker's data \
                 root during the build (sampled every 0.5 s). Recorded {date} with:\n\n```sh\n{command}\n```\n\n\
                 | build | layers added | image | peak build disk | seconds |\n|---|--:|--:|--:|--:|\n"
            );
            for r in &rows {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    r[0], r[1], r[2], r[3], r[4]
                ));
            }
            md.push_str("\nGoals:\n\n");
            for (text, met) in &goals {
                md.push_str(&format!(
                    "- {text}: {}\n",
                    if *met { "met" } else { "not met" }
                ));
            }
            md.push_str(&format!(
                "\nRatios naive/merged: layers {:.1}×, image {:.2}×, peak build disk {:.2}×, time {:.2}×.\n\
                 What remains in the merged image is the packages themselves: torch and its CUDA \
                 libraries are most of it, and no layer holds a pip or apt cache.\n{END}\n",
                naive.layers_added as f64 / merged.layers_added.max(1) as f64,
                naive.size_bytes as f64 / merged.size_bytes.max(1) as f64,
                naive.peak_growth_bytes as f64 / merged.peak_growth_bytes.max(1) as f64,
                naive.seconds / merged.seconds.max(1e-9),
            ));
            record_between(&benchmarks_md(), &md, START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn layers(image: &str) -> Result<u64> {
    let out = cmd(
        "docker",
        ["inspect", "--format", "{{len .RootFS.Layers}}", image],
    )
    .read()?;
    out.trim()
        .parse()
        .with_context(|| format!("layers of {image}: {out:?}"))
}

fn measure(report: &Path, base_layers: u64) -> Result<Measured> {
    let text = std::fs::read_to_string(report).with_context(|| report.display().to_string())?;
    let r: serde_json::Value = serde_json::from_str(&text)?;
    let build = r["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "build"))
        .context("no build stage in the report")?;
    let before = r["disk"]["available_before"]
        .as_u64()
        .context("no disk.available_before")?;
    let low = r["disk"]["low_water_bytes"]
        .as_u64()
        .context("no disk.low_water_bytes")?;
    Ok(Measured {
        layers_added: r["image"]["layers"]
            .as_u64()
            .context("no image.layers")?
            .saturating_sub(base_layers),
        size_bytes: r["image"]["size_bytes"]
            .as_u64()
            .context("no image.size_bytes")?,
        peak_growth_bytes: before.saturating_sub(low),
        seconds: build["seconds"].as_f64().unwrap_or(0.0),
    })
}
