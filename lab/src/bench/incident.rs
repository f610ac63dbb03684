//! `cargo xtask bench incident`: the seed's incident at full size — a private repository's
//! runner (`private-72` in `workload/layouts.toml`: one 72 GB disk, 16 GB free, the
//! preinstalled trees at their real sizes), the real CUDA/PyTorch stack from PyPI, built
//! through the workflow's `docker-container` builder. The naive Dockerfile runs out of space;
//! the pipeline (free what it needs, then the push-pull route) passes. Each output route and
//! the engine's own builder run on a fresh copy of the runner, side by side with the seed's
//! figures.
//!
//! The runner's disk is a sparse file: the preinstalled trees are allocated with
//! `fallocate` (the filesystem counts every block, as a runner's does; the host's disk holds
//! none of them), so only what the builds write costs the host.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use headroom_disk::{WatchConfig, Watchdog, format_size};
use headroom_pipeline::{Report, Stage, StageStatus};
use serde::Serialize;

use super::store::Nat;
use crate::image_run::{RunSummary, run_image_on};
use crate::report::{self, benchmarks_md, record_between};
use crate::sandbox::builder::{BUILDKIT_IMAGE, BuilderSpec, ContainerBuilder};
use crate::sandbox::runner::{Layout, say};
use crate::sh::cmd;
use crate::signals;
use crate::workload::layouts;
use runner::{GB, Sandbox, fill};

mod runner;

const CUDA_BASE: &str = "headroom/cuda:11.8.0-cudnn8-runtime-ubuntu22.04";
/// NVIDIA's `nvidia/cuda:11.7.1-cudnn8-runtime-ubuntu22.04` variables on the 11.8.0 stand-in.
const BASE_117: &str = "FROM {base}\n\
    ENV CUDA_VERSION=11.7.1 NV_CUDNN_VERSION=8.5.0.96 \
    NVIDIA_REQUIRE_CUDA=\"cuda>=11.7\"\n";
const NAIVE: &str = "docker/examples/Dockerfile.naive";
const START: &str = "<!-- bench incident: start -->";
const END: &str = "<!-- bench incident: end -->";

/// The seed's incident at full size: the private-repo runner layout, the CUDA/PyTorch stack
/// from PyPI, the workflow's container builder; naive Dockerfile vs the pipeline, per route.
///
/// Each run gets a fresh runner: a sparse loop-mounted ext4 with the layout's preinstalled
/// trees (allocated, at --tree-scale of their real sizes, at the catalog's paths) and
/// --free left free, a dedicated dockerd with its data root on it, a registry with a
/// password holding the CUDA stand-in base (`cargo xtask base-image --cuda`), and for the
/// container routes a `docker-container` builder as `docker/setup-buildx-action` makes it.
/// Runs: `naive` (docker/examples/Dockerfile.naive with `--load`, nothing freed), `pipeline`
/// (docker/Dockerfile, free first, `--route auto`), `push` (no smoke test), `load`, and
/// `engine` (the engine's own builder). A watchdog reads the disk's free space every 100 ms.
#[derive(Args, Debug)]
pub struct IncidentBench {
    /// The runner layout (lab/src/workload/layouts.toml).
    #[arg(long, default_value = "private-72")]
    layout: String,
    /// The preinstalled trees and the operating system at this fraction of their real sizes.
    #[arg(long, default_value_t = 1.0)]
    tree_scale: f64,
    /// Free space at the start [default: the layout's].
    #[arg(long, value_parser = size_arg)]
    free: Option<u64>,
    /// full: the real stack (docker/image.toml); ci: the ci profile (a check of the harness).
    #[arg(long, value_enum, default_value_t = Profile::Full)]
    profile: Profile,
    /// What the free stage must reach [default: the profile's configuration].
    #[arg(long, value_parser = size_arg)]
    need: Option<u64>,
    /// The runs, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "naive,pipeline,engine,push,load"
    )]
    runs: Vec<Kind>,
    /// Write the results into docs/benchmarks.md.
    #[arg(long)]
    record: bool,
}

fn size_arg(s: &str) -> Result<u64, String> {
    headroom_disk::parse_size(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Profile {
    Full,
    Ci,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Naive,
    Pipeline,
    Push,
    Load,
    Engine,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Naive => "naive",
            Kind::Pipeline => "pipeline",
            Kind::Push => "push",
            Kind::Load => "load",
            Kind::Engine => "engine",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Naive => "naive Dockerfile, container builder, `--load`, nothing freed",
            Kind::Pipeline => "pipeline, container builder, `--route auto`",
            Kind::Push => "pipeline, container builder, `--route push` (no smoke)",
            Kind::Load => "pipeline, container builder, `--route load`",
            Kind::Engine => "pipeline, engine's builder (buildx `docker` driver, classic store)",
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Outcome {
    kind: Option<Kind>,
    passed: bool,
    cause: Option<String>,
    error: Option<String>,
    /// The build step the error came from (BuildKit's progress line), when it failed.
    failed_step: Option<String>,
    /// The route the report says was taken.
    route: Option<String>,
    layers: Option<u64>,
    image_bytes: Option<u64>,
    compressed_bytes: Option<u64>,
    /// Free space when the run started, and when the build started (after the free stage).
    available_start: u64,
    available_build_start: u64,
    /// The lowest reading from the build's start to the run's end.
    low_bytes: u64,
    peak_bytes: u64,
    freed_bytes: Option<u64>,
    free_seconds: Option<f64>,
    fill_seconds: f64,
    seconds: f64,
    log: PathBuf,
}

impl IncidentBench {
    pub fn run(self) -> Result<ExitCode> {
        if !rustix::process::geteuid().is_root() {
            bail!(
                "cargo xtask bench incident needs root: it loop-mounts a filesystem and starts \
                 dockerd"
            );
        }
        for (image, how) in [
            (BUILDKIT_IMAGE, "run scripts/provision"),
            (CUDA_BASE, "make it with cargo xtask base-image --cuda"),
        ] {
            if !cmd("docker", ["image", "inspect", image])
                .stdout_null()
                .succeeds()
            {
                bail!("the host's engine has no {image}: {how}");
            }
        }
        if !(0.001..=1.0).contains(&self.tree_scale) {
            bail!("--tree-scale {}: give between 0.001 and 1", self.tree_scale);
        }
        let layout = layouts::layout(&self.layout)?;
        signals::watch(say);
        let root = crate::repo::project_root();
        let work = root.join("target/bench-incident");
        std::fs::create_dir_all(&work).with_context(|| work.display().to_string())?;
        let free = self.free.unwrap_or((layout.root.free_gb * GB) as u64);
        let started = machine_and_date();
        let mut results: Vec<Outcome> = Vec::new();
        let mut problems = Vec::new();
        for &kind in &self.runs {
            signals::check()?;
            let host_free = headroom_disk::available_bytes(&work)?;
            // What a run may write to the host: the disk's free space after the free stage
            // (its need), the registry's copy of the image, and 10 GB left to the others.
            let need = self
                .need
                .unwrap_or(match self.profile {
                    Profile::Full => 25_000_000_000,
                    Profile::Ci => 2 * free,
                })
                .max(free);
            let wanted = need + (need / 4) + 10_000_000_000;
            if host_free < wanted {
                problems.push(format!(
                    "{}: not run: the host has {} free, the run needs up to {}",
                    kind.name(),
                    format_size(host_free),
                    format_size(wanted)
                ));
                continue;
            }
            match self.one(kind, &root, &work, &layout.root.areas, free) {
                Ok(outcome) => results.push(outcome),
                Err(e) => {
                    if signals::interrupted() {
                        return Err(e);
                    }
                    problems.push(format!("{}: {e:#}", kind.name()));
                }
            }
            std::fs::write(
                work.join("results.json"),
                serde_json::to_string_pretty(&results)? + "\n",
            )
            .context("target/bench-incident/results.json")?;
        }
        let md = self.markdown(&layout, free, &started, &results, &problems);
        eprintln!("\n{md}");
        report::github_step_summary(&md)?;
        if self.record {
            record_between(&benchmarks_md(), &md, START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        Ok(ExitCode::SUCCESS)
    }

    fn one(
        &self,
        kind: Kind,
        root: &Path,
        work: &Path,
        areas: &[crate::workload::runner::Area],
        free: u64,
    ) -> Result<Outcome> {
        let mut sandbox = Sandbox::new(Layout::new(work.join("runner")));
        let layout = sandbox.layout.clone();
        let filled: f64 = areas.iter().map(|a| a.gb).sum::<f64>() * self.tree_scale;
        let disk = (filled * GB) as u64 + free;
        say(&format!(
            "{}: a fresh {} runner disk (sparse), a dockerd and a registry",
            kind.name(),
            format_size(disk)
        ));
        sandbox.make_disk(disk)?;
        let engine_host = sandbox.start_engine()?.host.clone();
        sandbox.start_registry()?;
        let registry = sandbox.registry()?;
        let host = registry.host();
        let login = registry.docker_config(&layout.work.join("login"))?;
        let engine = sandbox.engine()?;
        let mut loads = vec![CUDA_BASE];
        if kind != Kind::Engine {
            loads.push(BUILDKIT_IMAGE);
        }
        for image in loads {
            say(&format!(
                "{}: loading {image} from the host's engine",
                kind.name()
            ));
            cmd("docker", ["save", image])
                .pipe(engine.docker(&["load", "-q"]))
                .run()
                .with_context(|| format!("loading {image} into the runner's engine"))?;
        }
        // PyPI's torch 2.0.1 is a CUDA 11.7 / cuDNN 8.5 build: its base is NVIDIA's 11.7.1
        // image, which the stand-in becomes by NVIDIA's variables (the smoke test compares
        // torch's build with them).
        let base = format!("{host}/bench/cuda:11.7.1-cudnn8-runtime-ubuntu22.04");
        let base_dir = layout.work.join("base");
        std::fs::create_dir_all(&base_dir).with_context(|| base_dir.display().to_string())?;
        std::fs::write(
            base_dir.join("Dockerfile"),
            BASE_117.replace("{base}", CUDA_BASE),
        )
        .context("the base's Dockerfile")?;
        engine
            .docker(&["build", "-q", "-t", &base, &base_dir.display().to_string()])
            .env("DOCKER_BUILDKIT", "0")
            .read()
            .context("making the CUDA 11.7.1 stand-in")?;
        let config = login.display().to_string();
        engine
            .docker(&["--config", &config, "push", "-q", &base])
            .read()?;
        let builder = match kind {
            Kind::Engine => None,
            // As docker/setup-buildx-action makes it: BuildKit's own GC settings.
            _ => Some(ContainerBuilder::create(
                "hrincident",
                &layout.work,
                &BuilderSpec {
                    insecure_registries: vec![host.clone()],
                    gc: None,
                    docker_config: None,
                    docker_host: Some(engine_host.clone()),
                },
            )?),
        };
        let nat = match kind {
            Kind::Engine => Some(Nat::add(&engine.bridge)?),
            _ => None,
        };
        let fill_start = Instant::now();
        fill(&layout, areas, self.tree_scale, free)?;
        let fill_seconds = fill_start.elapsed().as_secs_f64();
        say(&format!(
            "{}: runner filled in {fill_seconds:.0} s: {} free of {}",
            kind.name(),
            format_size(headroom_disk::available_bytes(&layout.mnt)?),
            format_size(disk)
        ));

        let image = format!("{host}/bench/incident-{}", kind.name());
        let mut args: Vec<String> = vec![
            "--config".into(),
            root.join(match self.profile {
                Profile::Full => "docker/image.toml",
                Profile::Ci => "docker/image.ci.toml",
            })
            .display()
            .to_string(),
            "--image".into(),
            image.clone(),
            "--tag".into(),
            "latest".into(),
            "--push".into(),
            "--build-arg".into(),
            format!("BASE_IMAGE={base}"),
            "--build-arg".into(),
            "TORCH_INDEX_URL=https://pypi.org/simple".into(),
            "--root".into(),
            layout.runner_root.display().to_string(),
        ];
        match kind {
            Kind::Naive => args.extend([
                "--dockerfile".into(),
                root.join(NAIVE).display().to_string(),
                "--skip".into(),
                "free".into(),
            ]),
            _ => {
                args.push("--yes".into());
                if let Some(need) = self.need {
                    args.extend(["--need".into(), need.to_string()]);
                }
            }
        }
        if kind == Kind::Push {
            args.extend(["--skip".into(), "smoke".into()]);
        }
        match (&builder, kind) {
            (Some(b), _) => args.extend([
                "--backend".into(),
                "buildx".into(),
                "--builder".into(),
                b.name().to_string(),
                "--route".into(),
                match kind {
                    Kind::Naive | Kind::Load => "load",
                    Kind::Push => "push",
                    _ => "auto",
                }
                .into(),
            ]),
            // buildx's `docker` driver: the engine's own BuildKit (the engine backend has no
            // build secrets, which the profile's pip step uses).
            (None, _) => args.extend([
                "--backend".into(),
                "buildx".into(),
                "--builder".into(),
                "default".into(),
            ]),
        }

        let before = headroom_disk::available_bytes(&layout.mnt)?;
        let dog = Watchdog::start(
            WatchConfig {
                path: layout.mnt.clone(),
                interval: Duration::from_millis(100),
                floor: None,
            },
            |_| {},
        )?;
        let run = run_image_on(&layout, &engine_host, Some(registry), kind.name(), &args);
        let timeline = dog.stop();
        let run: RunSummary = run?;
        let typed = Report::read(&run.report).ok();
        // The free stage only adds space: the build's peak counts from where it left the disk.
        let mut free_end_ms = None;
        let mut free_seconds = None;
        let mut elapsed = 0.0;
        for stage in typed.iter().flat_map(|r| &r.stages) {
            elapsed += stage.seconds;
            if stage.name == Stage::Free && stage.status == StageStatus::Passed {
                free_end_ms = Some((elapsed * 1000.0) as u64);
                free_seconds = Some(stage.seconds);
            }
        }
        let build_start = typed
            .as_ref()
            .and_then(|r| r.free.as_ref())
            .filter(|_| free_end_ms.is_some())
            .map(|f| f.filesystem.available_after)
            .unwrap_or(before);
        let after = headroom_disk::available_bytes(&layout.mnt)?;
        let low = timeline
            .samples
            .iter()
            .filter(|s| s.ms >= free_end_ms.unwrap_or(0))
            .map(|s| s.available_bytes)
            .chain([after])
            .min()
            .unwrap_or(after);
        let pushed = (run.result == "passed")
            .then(|| {
                compressed_size(
                    &host,
                    &format!("bench/incident-{}", kind.name()),
                    &registry.user,
                    &registry.password,
                )
            })
            .transpose()
            .unwrap_or_else(|e| {
                say(&format!("warning: the image's compressed size: {e:#}"));
                None
            });
        let outcome = Outcome {
            kind: Some(kind),
            passed: run.result == "passed",
            cause: run.cause.clone(),
            error: run
                .error
                .as_ref()
                .and_then(|e| e.lines().find(|l| !l.trim().is_empty()).map(String::from)),
            failed_step: (run.result != "passed")
                .then(|| failed_step(&run.log))
                .flatten(),
            route: typed
                .as_ref()
                .and_then(|r| r.builder.as_ref())
                .and_then(|b| b.route)
                .map(|r| r.as_str().to_string()),
            // Not in the engine (the push route): the pushed manifest's.
            layers: run.layers.or(pushed.map(|(_, layers)| layers)).or_else(|| {
                (kind == Kind::Naive)
                    .then(|| naive_layers(root).ok())
                    .flatten()
            }),
            image_bytes: run.size_bytes,
            compressed_bytes: pushed.map(|(bytes, _)| bytes),
            available_start: before,
            available_build_start: build_start,
            low_bytes: low,
            peak_bytes: build_start.saturating_sub(low),
            freed_bytes: run.freed_bytes,
            free_seconds,
            fill_seconds,
            seconds: run.seconds,
            log: run.log.clone(),
        };
        drop(nat);
        drop(builder);
        drop(sandbox);
        Ok(outcome)
    }

    fn markdown(
        &self,
        layout: &layouts::HostedLayout,
        free: u64,
        started: &str,
        results: &[Outcome],
        problems: &[String],
    ) -> String {
        let mut flags = String::new();
        if self.layout != "private-72" {
            let _ = write!(flags, " --layout {}", self.layout);
        }
        if self.tree_scale != 1.0 {
            let _ = write!(flags, " --tree-scale {}", self.tree_scale);
        }
        if let Some(f) = self.free {
            let _ = write!(flags, " --free {f}");
        }
        if self.profile == Profile::Ci {
            flags.push_str(" --profile ci");
        }
        if let Some(n) = self.need {
            let _ = write!(flags, " --need {n}");
        }
        let runs: Vec<&str> = self.runs.iter().map(|k| k.name()).collect();
        if runs.join(",") != "naive,pipeline,engine,push,load" {
            let _ = write!(flags, " --runs {}", runs.join(","));
        }
        // The floor: the image unpacked (the pipeline's, in the engine after its smoke test)
        // plus its compressed blobs (the registry's manifest), from the same run.
        let reference = results
            .iter()
            .find(|r| r.passed && r.image_bytes.is_some() && r.compressed_bytes.is_some());
        let image = reference.and_then(|r| r.image_bytes);
        let floor = reference.and_then(|r| Some(r.image_bytes? + r.compressed_bytes?));
        let trees: f64 = layout.root.areas.iter().skip(1).map(|a| a.gb).sum();
        // At full size: the box's scale (MiB per GB) is not this runner's.
        let runner = format!(
            "{}: {} GB disk ({} GB free)",
            layout.name, layout.root.disk_gb, layout.root.free_gb
        );
        let mut md = format!(
            "{START}\n## The seed's incident at full size\n\n\
             `cargo xtask bench incident{flags} --record` — the runner {}, {} free at the \
             start, the preinstalled trees ({:.1} GB at full size, {} at the catalog's paths) \
             at {}× their real sizes, allocated with `fallocate` in files of their real mean \
             sizes (the filesystem counts every block as a runner's does; the sparse disk file \
             holds none); `{}` profile, torch from PyPI (`--torch-index-url \
             https://pypi.org/simple`, `docker/requirements-pypi-cuda.txt`: a CUDA 11.7 / \
             cuDNN 8.5 build), on the CUDA stand-in base (`cargo xtask base-image --cuda`: \
             NVIDIA's environment and entrypoint without its 3 GB of libraries, with \
             `nvidia/cuda:11.7.1-cudnn8-runtime-ubuntu22.04`'s CUDA_VERSION, NV_CUDNN_VERSION \
             and NVIDIA_REQUIRE_CUDA to match PyPI's torch) pushed to a local registry. Each run on \
             a fresh runner with a dedicated dockerd on it; the container routes on a \
             `docker-container` builder as `docker/setup-buildx-action` makes it (BuildKit \
             v0.23.2 from `../shared/buildkit/`). Peak = free space when the build starts \
             (after the free stage) less the lowest reading to the end of the run (build, \
             smoke test, push), every 100 ms. Each run downloads its packages from PyPI \
             afresh (a fresh builder has no pip cache, as on a runner). Run {started}.\n\n",
            runner,
            format_size(free),
            trees,
            layout.root.areas.len() - 1,
            self.tree_scale,
            match self.profile {
                Profile::Full => "full",
                Profile::Ci => "ci",
            },
        );
        if let (Some(image), Some(floor)) = (image, floor) {
            let _ = writeln!(
                md,
                "Floor (same run): the image unpacked {} plus its compressed blobs {} = {} = \
                 {:.2}× the image.\n",
                format_size(image),
                format_size(floor - image),
                format_size(floor),
                floor as f64 / image as f64
            );
        }
        md.push_str(
            "| run | result | layers | image | build peak disk | × image | × floor | freed | \
             free time | total time |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n\
             | the seed (reported): naive → merged | failed → passed | 37 → 12 | 6.2 GB | \
             25 → 8 GB | 4.0× → 1.3× | | | | 20–25 min |\n",
        );
        let x = |b: u64, of: Option<u64>| {
            of.map(|o| format!("{:.2}×", b as f64 / o.max(1) as f64))
                .unwrap_or_default()
        };
        for r in results {
            let kind = r.kind.unwrap_or(Kind::Naive);
            let result = if r.passed {
                format!(
                    "passed{}",
                    r.route
                        .as_ref()
                        .map(|route| format!(" (route {route})"))
                        .unwrap_or_default()
                )
            } else {
                format!(
                    "failed{}: {}{}",
                    r.cause
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    r.failed_step
                        .as_ref()
                        .map(|s| format!("at `{}`; ", s.replace('`', "'")))
                        .unwrap_or_default(),
                    shorten(r.error.as_deref().unwrap_or("?"), 160)
                )
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} min |",
                kind.what(),
                result.replace('|', "\\|"),
                r.layers.map(|l| l.to_string()).unwrap_or_default(),
                r.image_bytes.map(format_size).unwrap_or_default(),
                format_size(r.peak_bytes),
                x(r.peak_bytes, image),
                x(r.peak_bytes, floor),
                r.freed_bytes.map(format_size).unwrap_or_default(),
                r.free_seconds
                    .map(|s| format!("{s:.0} s"))
                    .unwrap_or_default(),
                r.seconds / 60.0
            );
        }
        md.push('\n');
        let find = |k: Kind| results.iter().find(|r| r.kind == Some(k));
        if let Some(naive) = find(Kind::Naive) {
            let _ = writeln!(
                md,
                "- the naive build runs out of space: {}",
                verdict(!naive.passed && naive.cause.as_deref() == Some("no_space"))
            );
        }
        if let Some(p) = find(Kind::Pipeline) {
            let _ = writeln!(
                md,
                "- the pipeline passes on the same runner: {}",
                verdict(p.passed)
            );
            if let Some(floor) = floor {
                let _ = writeln!(
                    md,
                    "- pipeline's peak within 10 % of the floor, with smoke and push: {} vs {} \
                     ({:.2}×): {}",
                    format_size(p.peak_bytes),
                    format_size(floor),
                    p.peak_bytes as f64 / floor as f64,
                    verdict(p.passed && p.peak_bytes as f64 <= 1.1 * floor as f64)
                );
            }
        }
        if let (Some(e), Some(image)) = (find(Kind::Engine), image) {
            let _ = writeln!(
                md,
                "- engine's builder ≤ 1.13× the image: {:.2}×: {}",
                e.peak_bytes as f64 / image as f64,
                verdict(e.passed && e.peak_bytes as f64 <= 1.13 * image as f64)
            );
        }
        for p in problems {
            let _ = writeln!(md, "- {}", p.replace('|', "\\|"));
        }
        let _ = writeln!(md, "{END}");
        md
    }
}

/// When and where: the UTC start time, the kernel, the cores and the memory.
fn machine_and_date() -> String {
    let date = cmd("date", ["-u", "+%Y-%m-%d %H:%M UTC"])
        .read()
        .unwrap_or_default();
    let kernel = cmd("uname", ["-sr"]).read().unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: u64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format_size(kb * 1024))
        })
        .unwrap_or_default();
    format!(
        "{} on {}, {cores} cores, {memory} memory",
        date.trim(),
        kernel.trim()
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The naive image's layers: its base's plus one per RUN, COPY and ADD.
fn naive_layers(root: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(root.join(NAIVE)).context(NAIVE)?;
    let own = text
        .lines()
        .filter(|l| {
            let word = l.split_whitespace().next().unwrap_or("");
            ["RUN", "COPY", "ADD"].contains(&word.to_ascii_uppercase().as_str())
        })
        .count() as u64;
    let base: u64 = cmd(
        "docker",
        [
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            CUDA_BASE,
        ],
    )
    .read()?
    .trim()
    .parse()
    .context("the base's layers")?;
    Ok(base + own)
}

/// The step BuildKit's progress names for the first error in the run's log: the first line
/// of the vertex (`#12 [ 9/29] RUN …`) whose number carries `ERROR`.
fn failed_step(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let vertex_of = |line: &str| -> Option<String> {
        let rest = line.split_once('#')?.1;
        let n = rest.split_whitespace().next()?;
        n.chars().all(|c| c.is_ascii_digit()).then(|| n.to_string())
    };
    let failed = text
        .lines()
        .find_map(|l| l.contains(" ERROR").then(|| vertex_of(l)).flatten())?;
    let prefix = format!("#{failed} ");
    text.lines().find_map(|l| {
        let at = l.find(&prefix)?;
        Some(shorten(l[at + prefix.len()..].trim(), 100))
    })
}

/// The compressed size and the layers of `repo:latest` in the registry at `host`: its layers and config
/// (for an index, the linux/amd64 image's), the password given to curl on standard input.
fn compressed_size(host: &str, repo: &str, user: &str, password: &str) -> Result<(u64, u64)> {
    let manifest = super::registry_manifest(
        host,
        repo,
        "latest",
        user,
        password,
        super::ACCEPT_ANY_MANIFEST,
    )?;
    let manifest = match manifest["manifests"].as_array() {
        Some(list) => {
            let digest = list
                .iter()
                .find(|m| {
                    m["platform"]["architecture"] == "amd64" && m["platform"]["os"] == "linux"
                })
                .and_then(|m| m["digest"].as_str())
                .context("no linux/amd64 image in the index")?;
            super::registry_manifest(
                host,
                repo,
                digest,
                user,
                password,
                super::ACCEPT_ANY_MANIFEST,
            )?
        }
        None => manifest,
    };
    let layers = manifest["layers"]
        .as_array()
        .map_or(&[][..], |l| l.as_slice());
    let bytes: u64 = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
    Ok((
        bytes + manifest["config"]["size"].as_u64().unwrap_or(0),
        layers.len() as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_step_is_the_vertex_that_carries_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("naive.log");
        std::fs::write(
            &log,
            "#5 [ 2/29] RUN apt-get update\n#5 DONE 3.0s\n\
             #14 [11/29] RUN pip install torch==2.0.1\n#14 12.1 Downloading\n\
             #14 ERROR: failed to copy: write /x: no space left on device\n",
        )
        .expect("write");
        assert_eq!(
            failed_step(&log).as_deref(),
            Some("[11/29] RUN pip install torch==2.0.1")
        );
        std::fs::write(&log, "no progress here\n").expect("write");
        assert_eq!(failed_step(&log), None);
    }
}
