//! `cargo xtask bench pipeline`: what the pipeline adds over the plain commands — the same
//! small build and push through `cargo xtask image` and through `docker build && docker push`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::harness::median;
use crate::report::{self, benchmarks_md, record_between, today};
use crate::sandbox::base_image::busybox_image;
use crate::sandbox::registry::Registry;
use crate::sh::cmd;

/// The same build + push through `cargo xtask image` and through plain `docker build` and
/// `docker push`, against a local registry with authentication.
///
/// Each run builds a fresh layer of SIZE random bytes (a build argument changes every run,
/// so neither side hits the cache) and pushes it under the same three tags. Both sides use
/// the engine's classic builder (`DOCKER_BUILDKIT=0` for the plain commands), so the figure
/// is the pipeline's own overhead, not a difference between builders.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct PipelineBench {
    /// Timed runs of each; medians are reported.
    #[arg(long, value_name = "N", default_value_t = 9,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Bytes the build writes into its layer (e.g. 200M).
    #[arg(long, value_name = "SIZE", default_value = "200M")]
    size: String,
    /// Write the results into docs/benchmarks.md (between the bench-pipeline markers).
    #[arg(long)]
    record: bool,
}

const START: &str = "<!-- bench-pipeline:start -->";
const END: &str = "<!-- bench-pipeline:end -->";

impl PipelineBench {
    pub fn run(self) -> Result<ExitCode> {
        let bytes = headroom_disk::parse_size(&self.size).with_context(|| "--size")?;
        let root = crate::repo::project_root();
        let work = root.join("target/bench-pipeline");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).with_context(|| work.display().to_string())?;
        let registry = Registry::start_in(&work.join("registry"), "bench")?;
        eprintln!("bench: registry on {}", registry.host());
        let base = "headroom-bench/busybox:latest";
        busybox_image(base, None, &work)?;
        let ctx = work.join("ctx");
        std::fs::create_dir_all(&ctx)?;
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM {base}\nARG RUN_ID\nRUN head -c {bytes} /dev/urandom > /blob && echo $RUN_ID > /run-id\n"
            ),
        )?;
        // An empty image config: the bench passes everything as flags.
        std::fs::write(work.join("image.toml"), "")?;
        // The plain commands log in through a config file of their own.
        let docker_config = registry.docker_config(&work.join("docker-config"))?;

        // One untimed round first: cargo's freshness check may rebuild the xtask once, and
        // both sides should start with the base image's layers in the page cache.
        eprintln!("bench: warm-up round…");
        self.ours(&root, &work, &ctx, &registry, 0)?;
        self.plain(&ctx, &registry, &docker_config, 0)?;
        let mut ours = Vec::new();
        let mut plain = Vec::new();
        for run in 1..=self.runs {
            let ours_first = run % 2 == 0;
            for side in [ours_first, !ours_first] {
                if side {
                    eprintln!("bench: run {run}/{}: cargo xtask image…", self.runs);
                    ours.push(self.ours(&root, &work, &ctx, &registry, run)?);
                } else {
                    eprintln!(
                        "bench: run {run}/{}: docker build && docker push…",
                        self.runs
                    );
                    plain.push(self.plain(&ctx, &registry, &docker_config, run)?);
                }
            }
        }
        let (m_ours, m_plain) = (median(ours.clone()), median(plain.clone()));
        // The median of paired differences: each pair ran back to back, so it cancels
        // most of the machine's drift between runs.
        let overhead = median(ours.iter().zip(&plain).map(|(o, p)| o - p).collect());
        let pct = 100.0 * overhead / m_plain.max(1e-9);
        let met = overhead < 1.0 && pct < 3.0;
        let rows: Vec<Vec<String>> = ours
            .iter()
            .zip(&plain)
            .enumerate()
            .map(|(i, (o, p))| vec![(i + 1).to_string(), format!("{o:.3}"), format!("{p:.3}")])
            .chain(std::iter::once(vec![
                "median".into(),
                format!("{m_ours:.3}"),
                format!("{m_plain:.3}"),
            ]))
            .collect();
        print!(
            "{}",
            report::table(
                &["run", "cargo xtask image (s)", "docker build+push (s)"],
                &rows
            )
        );
        let command = format!(
            "cargo xtask bench pipeline --runs {} --size {}",
            self.runs, self.size
        );
        let verdict = format!(
            "overhead (median of paired differences) {overhead:+.3} s ({pct:+.1}% of the plain median; \
             the medians themselves differ by {:+.3} s): goal < 1 s and < 3%: {}",
            m_ours - m_plain,
            if met { "met" } else { "not met" }
        );
        println!("{verdict}\nreproduce: {command}");
        if self.record {
            let date = today()?;
            let mut md = format!(
                "{START}\n## Pipeline overhead: `cargo xtask image` vs `docker build && docker push`\n\n\
                 A build that writes {} of random bytes into one layer, pushed under three tags to a local \
                 registry with authentication; classic builder on both sides; which side goes first \
                 alternates. Recorded {date} with:\n\n```sh\n{command}\n```\n\n\
                 | run | `cargo xtask image` (s) | `docker build` + `docker push` (s) |\n|---|--:|--:|\n",
                headroom_disk::format_size(bytes)
            );
            for r in &rows {
                md.push_str(&format!("| {} | {} | {} |\n", r[0], r[1], r[2]));
            }
            md.push_str(&format!("\nResult: {verdict}.\n{END}\n"));
            record_between(&benchmarks_md(), &md, START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        drop(registry);
        let _ = std::fs::remove_dir_all(&work);
        Ok(ExitCode::SUCCESS)
    }

    fn ours(
        &self,
        root: &Path,
        work: &Path,
        ctx: &Path,
        registry: &Registry,
        run: u32,
    ) -> Result<f64> {
        let report = work.join("report.json");
        let args: Vec<String> = [
            "xtask",
            "image",
            "--backend",
            "engine",
            "--push",
            "--skip",
            "free,lint,smoke",
            "--context",
            &ctx.display().to_string(),
            "--image",
            &format!("{}/bench/ours", registry.host()),
            "--tag",
            "latest",
            "--tag",
            &format!("run{run}"),
            "--build-arg",
            &format!("RUN_ID=ours-{run}"),
            "--report",
            &report.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let image = cmd(
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            args,
        )
        .dir(root)
        .env("REGISTRY_USERNAME", &registry.user)
        .env("REGISTRY_PASSWORD", &registry.password)
        .env_remove("GITHUB_ACTIONS");
        let start = Instant::now();
        let out = image.read();
        let seconds = start.elapsed().as_secs_f64();
        out.context("cargo xtask image")?;
        Ok(seconds)
    }

    fn plain(&self, ctx: &Path, registry: &Registry, config: &Path, run: u32) -> Result<f64> {
        let repo = format!("{}/bench/plain", registry.host());
        let short = cmd("git", ["rev-parse", "--short=7", "HEAD"])
            .read()
            .unwrap_or_else(|_| "0000000".into());
        let tags: Vec<String> = [
            "latest".to_string(),
            format!("sha-{short}"),
            format!("run{run}"),
        ]
        .iter()
        .map(|t| format!("{repo}:{t}"))
        .collect();
        let start = Instant::now();
        let mut args: Vec<String> = vec!["build".into(), "-q".into()];
        for t in &tags {
            args.extend(["-t".into(), t.clone()]);
        }
        args.extend([
            "--build-arg".into(),
            format!("RUN_ID=plain-{run}"),
            ctx.display().to_string(),
        ]);
        cmd("docker", args)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", config)
            .read()?;
        for t in &tags {
            cmd("docker", ["push", "-q", t])
                .env("DOCKER_CONFIG", config)
                .read()?;
        }
        Ok(start.elapsed().as_secs_f64())
    }
}
