//! `cargo xtask simulate`: the original failure and its cure, end to end, on a simulated
//! small-disk runner.
//!
//! A loop-mounted ext4 file plays the runner's root disk, filled like a hosted runner scaled
//! down (synthetic software at the catalog's paths, `simulate_runner.toml`). A dedicated
//! `dockerd` keeps its data root on it; a registry with a password listens on loopback. Then
//! the real `cargo xtask image` runs three times against them:
//!
//! 1. `naive`: docker/simulate/Dockerfile.naive with the free stage skipped — it must run out
//!    of space, and headroom's report must say so (`cause: no_space`, low-water mark, what
//!    was reclaimable);
//! 2. `pipeline`: free to a target → lint → build of the merged Dockerfile → smoke → push;
//! 3. `background`: the same with `--free-in-background` on a refilled disk.
//!
//! Everything it starts is torn down at the end, on failure and on Ctrl-C; what a killed run
//! left behind is found by name and removed before the next one starts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::{MountTable, format_size, parse_size};
use headroom_docker::local::{Registry, busybox_image_all_applets};
use headroom_pipeline::{Cause, Report, Stage, StageStatus};
use serde::{Deserialize, Serialize};

use crate::ui;

/// Reproduce a CI build that runs out of disk, and its cure, on a simulated runner disk.
///
/// Needs root (loop mount, a second dockerd, a network bridge). Writes a JSON and a Markdown
/// summary; exits non-zero unless the naive build failed for lack of space and both pipeline
/// runs passed.
#[derive(Args, Debug)]
pub(crate) struct Simulate {
    /// Size of the simulated runner disk; the workload scales with it.
    #[arg(long, value_name = "SIZE", default_value = "3GiB", value_parser = size_arg)]
    size: u64,
    /// Where to write the JSON summary; the Markdown one goes beside it (.md).
    /// [default: target/headroom/simulate/summary.json]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Working directory: the disk file, its mount point, logs and the runs' reports.
    /// [default: target/headroom/simulate]
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// single: one root disk, cured by freeing space. dual: a hosted runner with a second,
    /// larger disk at /mnt, cured by moving the data root there with nothing deleted.
    #[arg(long, value_enum, default_value_t = DiskLayout::Single)]
    layout: DiskLayout,
    /// Size of the second disk (dual layout) [default: three times --size].
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    second_size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum DiskLayout {
    Single,
    Dual,
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// The smallest disk that holds ext4's own metadata, the engine and a meaningful workload.
const MIN_SIZE: u64 = 1 << 30;
const MAX_SIZE: u64 = 256 << 30;
/// Short and fixed, so a killed run's leftovers are found by name (and the socket path stays
/// under the 108-byte limit of unix sockets).
const RUN_DIR: &str = "/run/headroom-simulate";
pub(crate) const BRIDGE: &str = "hrsim0";
const BASE_IMAGE: &str = "headroom/sim-base";
const REGISTRY_USER: &str = "headroom";
/// Processes a run may have started (dockerd starts containerd, which starts shims).
const OUR_COMMANDS: &[&str] = &[
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "docker-proxy",
    "docker-registry",
];

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The `cargo xtask image` child running now (0: none), to pass SIGTERM on to.
static CHILD: AtomicU32 = AtomicU32::new(0);

/// The runner's disk, as data (`simulate_runner.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunnerLayout {
    disk_gb: f64,
    free_gb: f64,
    #[serde(rename = "area")]
    areas: Vec<Area>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Area {
    path: String,
    gb: f64,
    mean_file_kb: u64,
}

fn runner_layout() -> Result<RunnerLayout> {
    let layout: RunnerLayout = toml::from_str(include_str!("simulate_runner.toml"))
        .context("xtask/src/simulate_runner.toml")?;
    let filled: f64 = layout.areas.iter().map(|a| a.gb).sum();
    if (filled + layout.free_gb - layout.disk_gb).abs() > 0.01 {
        bail!(
            "xtask/src/simulate_runner.toml: areas ({filled} GB) and free_gb ({}) do not add up \
             to disk_gb ({})",
            layout.free_gb,
            layout.disk_gb
        );
    }
    Ok(layout)
}

/// Every path a run uses.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) work: PathBuf,
    pub(crate) disk_file: PathBuf,
    /// The second disk (dual layout), mounted at the runner's `/mnt`.
    pub(crate) second_file: PathBuf,
    pub(crate) mnt: PathBuf,
    /// The synthetic runner's `/` (on the simulated disk).
    pub(crate) runner_root: PathBuf,
    /// The dedicated engine's data root (on the simulated disk).
    pub(crate) data_root: PathBuf,
    pub(crate) logs: PathBuf,
    pub(crate) run_dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(work: PathBuf) -> Layout {
        let mnt = work.join("mnt");
        Layout {
            disk_file: work.join("disk.img"),
            second_file: work.join("second.img"),
            runner_root: mnt.join("runner"),
            data_root: mnt.join("docker"),
            logs: work.join("logs"),
            run_dir: PathBuf::from(RUN_DIR),
            mnt,
            work,
        }
    }

    pub(crate) fn docker_host(&self) -> String {
        format!("unix://{}/docker.sock", self.run_dir.display())
    }

    fn pidfile(&self) -> PathBuf {
        self.run_dir.join("docker.pid")
    }

    /// The runner's second disk: its `/mnt`.
    fn second_mnt(&self) -> PathBuf {
        self.runner_root.join("mnt")
    }

    /// The engine's configuration, where the runner keeps it.
    fn daemon_json(&self) -> PathBuf {
        self.runner_root.join("etc/docker/daemon.json")
    }

    /// The runner's service manager for its engine: `engine start`, `engine stop`.
    fn engine_service(&self) -> PathBuf {
        self.run_dir.join("engine")
    }

    /// While it exists, the service passes `--data-root` (its contents) on dockerd's command
    /// line, as some unit files do.
    fn unit_data_root(&self) -> PathBuf {
        self.run_dir.join("unit-data-root")
    }
}

/// What one `cargo xtask image` run showed, from its report.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RunSummary {
    /// `passed` or `failed`.
    pub(crate) result: String,
    /// `no_space` when the data root's filesystem filled up.
    pub(crate) cause: Option<String>,
    pub(crate) exit_code: Option<i32>,
    /// Wall time of the whole `cargo xtask image` run.
    pub(crate) seconds: f64,
    /// From the start to a built image: the stages up to the build, less a free stage that
    /// ran alongside (the smoke test and push after it add the same to every run).
    pub(crate) to_built_seconds: Option<f64>,
    pub(crate) available_before: Option<u64>,
    pub(crate) available_after: Option<u64>,
    pub(crate) low_water_bytes: Option<u64>,
    pub(crate) freed_bytes: Option<u64>,
    pub(crate) freed_items: BTreeMap<String, u64>,
    pub(crate) reclaimable_bytes: Option<u64>,
    pub(crate) reclaimable_items: Vec<String>,
    pub(crate) floor_bytes: Option<u64>,
    /// Times the build stopped at a step boundary to keep the floor (background only).
    pub(crate) build_stops: Option<u64>,
    pub(crate) layers: Option<u64>,
    pub(crate) size_bytes: Option<u64>,
    pub(crate) digest: Option<String>,
    /// The digest the registry serves for the first tag, read back after the run.
    pub(crate) registry_digest: Option<String>,
    /// How the free stage made room: target_met, move_data_root or delete.
    pub(crate) placement: Option<String>,
    /// The engine's data root after a move.
    pub(crate) relocated_to: Option<PathBuf>,
    /// Seconds the move took.
    pub(crate) relocation_seconds: Option<f64>,
    pub(crate) stages: Vec<String>,
    pub(crate) error: Option<String>,
    pub(crate) report: PathBuf,
    pub(crate) log: PathBuf,
}

#[derive(Debug, Default, Serialize)]
struct DiskSummary {
    layout: Option<DiskLayout>,
    size_bytes: u64,
    /// The second disk (dual layout): its size and what was available on it at the start.
    second_size_bytes: Option<u64>,
    second_available_bytes: Option<u64>,
    /// Available on the fresh filesystem with the engine started: what the layout scales to.
    usable_bytes: u64,
    /// The workload's unit (`UNIT_MB`): the merged build needs about 5 of them, the naive
    /// one about 8, and the runner starts with about 3.5 free.
    unit_bytes: u64,
    need_bytes: u64,
    floor_bytes: u64,
    /// Synthetic software written: bytes and files per catalog path.
    areas: Vec<AreaSummary>,
    fill_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
struct AreaSummary {
    path: String,
    bytes: u64,
    files: u64,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    passed: bool,
    problems: Vec<String>,
    disk: DiskSummary,
    naive: RunSummary,
    pipeline: RunSummary,
    /// The single layout only: on the dual one, placement makes room without freeing.
    background: Option<RunSummary>,
    /// Dual layout: the keys of the runner's daemon.json after the move, besides data-root,
    /// which must be the ones it had before.
    daemon_json_keys_before: Vec<String>,
    daemon_json_keys_after: Vec<String>,
    /// Dual layout: a move whose restart fails, and what was put back.
    restore: Option<RestoreCheck>,
    /// Free-then-build minus free-in-background time to a built image (positive: the
    /// background run was faster).
    background_saved_seconds: Option<f64>,
    seconds: f64,
}

impl Simulate {
    pub(crate) fn run(self) -> Result<ExitCode> {
        if !rustix::process::geteuid().is_root() {
            bail!(
                "cargo xtask simulate needs root: it loop-mounts a filesystem, starts a second \
                 dockerd and creates a network bridge"
            );
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            bail!(
                "--size {}: give between {} and {}",
                format_size(self.size),
                format_size(MIN_SIZE),
                format_size(MAX_SIZE)
            );
        }
        if let Some(second) = self.second_size {
            if self.layout != DiskLayout::Dual {
                bail!("--second-size: only with --layout dual");
            }
            if !(2 * self.size..=4 * MAX_SIZE).contains(&second) {
                bail!(
                    "--second-size {}: give at least twice --size ({}), at most {}",
                    format_size(second),
                    format_size(2 * self.size),
                    format_size(4 * MAX_SIZE)
                );
            }
        }
        let runner = runner_layout()?;
        let root = crate::project_root();
        let work = self
            .work
            .clone()
            .unwrap_or_else(|| root.join("target/headroom/simulate"));
        let work = if work.is_absolute() {
            work
        } else {
            std::env::current_dir()?.join(work)
        };
        let layout = Layout::new(work);
        let report_path = self
            .report
            .clone()
            .unwrap_or_else(|| layout.work.join("summary.json"));
        watch_signals();

        let start = Instant::now();
        say(&format!(
            "tearing down what an earlier run left under {} and {RUN_DIR}",
            layout.work.display()
        ));
        for problem in teardown(&layout) {
            say(&format!("warning: {problem}"));
        }
        let mut sandbox = Sandbox {
            layout: layout.clone(),
            registry: None,
        };
        let mut summary = Summary::default();
        let result = self.simulate(&mut sandbox, &runner, &mut summary);
        drop(sandbox);
        summary.seconds = start.elapsed().as_secs_f64();
        if let Err(e) = &result {
            summary.problems.push(format!("{e:#}"));
        }
        summary.passed = result.is_ok() && summary.problems.is_empty();
        write_summary(&summary, &report_path)?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            eprintln!("error: interrupted: everything the simulation started was torn down");
            return Ok(ExitCode::from(130));
        }
        result?;
        if !summary.passed {
            for p in &summary.problems {
                eprintln!("error: {p}");
            }
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }

    fn simulate(
        &self,
        sandbox: &mut Sandbox,
        runner: &RunnerLayout,
        summary: &mut Summary,
    ) -> Result<()> {
        let layout = sandbox.layout.clone();
        for dir in [&layout.work, &layout.logs, &layout.mnt] {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        say(&format!(
            "creating the runner's disk: {} ext4 in {}",
            format_size(self.size),
            layout.disk_file.display()
        ));
        make_disk(&layout, self.size)?;
        let dual = self.layout == DiskLayout::Dual;
        summary.disk.layout = Some(self.layout);
        if dual {
            let second = self.second_size.unwrap_or(3 * self.size);
            say(&format!(
                "creating the runner's second disk: {} ext4 at the runner's /mnt",
                format_size(second)
            ));
            make_second_disk(&layout, second)?;
            summary.disk.second_size_bytes = Some(second);
        }
        start_dockerd(&layout, &serde_json::json!({}))?;
        import_base(&layout)?;
        let password = random_password()?;
        let registry = Registry::start(&layout.work.join("registry"), REGISTRY_USER, &password)
            .context("starting the registry")?;
        let image = format!("{}/headroom/simulate", registry.host());
        sandbox.registry = Some(registry);
        check_interrupted()?;

        let usable = headroom_disk::available_bytes(&layout.mnt)?;
        // The workload unit: the runner's free share is about 3.5 units, the merged build
        // needs about 5, the naive one about 8, and the catalog's items hold about 7.
        let unit = usable / 16;
        let unit_mb = (unit >> 20).max(8);
        summary.disk = DiskSummary {
            layout: summary.disk.layout,
            second_size_bytes: summary.disk.second_size_bytes,
            second_available_bytes: dual
                .then(|| headroom_disk::available_bytes(&layout.second_mnt()).ok())
                .flatten(),
            size_bytes: self.size,
            usable_bytes: usable,
            unit_bytes: unit_mb << 20,
            need_bytes: (unit_mb << 20) * 13 / 2,
            floor_bytes: (unit_mb << 20) * 3 / 2,
            ..DiskSummary::default()
        };
        let fill_start = Instant::now();
        summary.disk.areas = fill(&layout, runner, usable)?;
        summary.disk.fill_seconds = fill_start.elapsed().as_secs_f64();
        say(&format!(
            "runner filled in {:.1} s: {} available (a hosted runner's share: {:.0} of {:.0} GB)",
            summary.disk.fill_seconds,
            format_size(headroom_disk::available_bytes(&layout.mnt)?),
            runner.free_gb,
            runner.disk_gb
        ));

        let password = sandbox
            .registry
            .as_ref()
            .map(|r| r.password().to_string())
            .unwrap_or_default();
        let run = |name: &str, extra: &[String]| -> Result<RunSummary> {
            let mut args = vec![
                "--config".to_string(),
                crate::project_root()
                    .join("docker/simulate/image.toml")
                    .display()
                    .to_string(),
                "--image".into(),
                image.clone(),
                "--build-arg".into(),
                format!("UNIT_MB={unit_mb}"),
                "--push".into(),
            ];
            args.extend_from_slice(extra);
            let summary = run_image(&layout, name, &args, &password)?;
            Ok(summary)
        };

        // a. The naive Dockerfile, no freeing: it must run out of space.
        let naive_dockerfile = crate::project_root().join("docker/simulate/Dockerfile.naive");
        // --root too, so the report can say what the free stage would have reclaimed.
        summary.naive = run(
            "naive",
            &[
                "--dockerfile".into(),
                naive_dockerfile.display().to_string(),
                "--skip".into(),
                "free".into(),
                "--root".into(),
                layout.runner_root.display().to_string(),
            ],
        )?;
        check_interrupted()?;
        if summary.naive.result != "failed" || summary.naive.cause.as_deref() != Some("no_space") {
            summary.problems.push(format!(
                "naive: expected a build that runs out of space (result failed, cause no_space), \
                 got result {} and cause {:?}: {}",
                summary.naive.result,
                summary.naive.cause,
                summary.naive.error.as_deref().unwrap_or("no error")
            ));
        }

        if dual
            && !summary
                .naive
                .error
                .as_deref()
                .is_some_and(|e| e.contains("was not used"))
        {
            summary.problems.push(format!(
                "naive: the no-space advice does not name the unused second disk: {}",
                summary.naive.error.as_deref().unwrap_or("no error")
            ));
        }

        // b. The whole pipeline: free to a target, then build the merged Dockerfile.
        reset_engine(&layout)?;
        let mut freeing = vec![
            "--root".to_string(),
            layout.runner_root.display().to_string(),
            "--need".into(),
            summary.disk.need_bytes.to_string(),
            "--yes".into(),
        ];
        if dual {
            freeing.extend([
                "--engine-service".into(),
                layout.engine_service().display().to_string(),
            ]);
            summary.daemon_json_keys_before = daemon_json_keys(&layout, false)?;
            // b0. A move whose restart fails puts everything back.
            let restore = check_restore(&layout, &|| run("restore", &freeing))?;
            summary
                .problems
                .extend(restore.problems.iter().map(|p| format!("restore: {p}")));
            summary.restore = Some(restore);
            check_interrupted()?;
        }
        summary.pipeline = run("pipeline", &freeing)?;
        check_interrupted()?;
        summary.pipeline.registry_digest = registry_digest(sandbox, &summary.pipeline);
        check_passed("pipeline", &summary.pipeline, &mut summary.problems);
        if dual {
            summary.daemon_json_keys_after = daemon_json_keys(&layout, true)?;
            check_placed(&layout, summary);
            return Ok(());
        }

        // c. The same with the free stage in the background, on a refilled runner.
        reset_engine(&layout)?;
        say("refilling the runner's disk for the background run");
        refill(&layout, runner, usable)?;
        let mut background = freeing.to_vec();
        background.extend([
            "--free-in-background".into(),
            "--free-floor".into(),
            summary.disk.floor_bytes.to_string(),
        ]);
        let mut bg = run("background", &background)?;
        bg.registry_digest = registry_digest(sandbox, &bg);
        check_passed("background", &bg, &mut summary.problems);
        if bg.cause.as_deref() == Some("no_space") {
            summary
                .problems
                .push("background: the build ran out of space".into());
        }
        if summary.pipeline.result == "passed" && bg.result == "passed" {
            summary.background_saved_seconds = summary
                .pipeline
                .to_built_seconds
                .zip(bg.to_built_seconds)
                .map(|(p, b)| p - b);
        }
        summary.background = Some(bg);
        Ok(())
    }
}

/// Stops what a run started, whatever happens (errors, Ctrl-C unwinding the stack).
struct Sandbox {
    layout: Layout,
    registry: Option<Registry>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut r) = self.registry.take() {
            r.stop();
        }
        say("tearing down: engine, registry, mount, disk file, bridge");
        for problem in teardown(&self.layout) {
            say(&format!("warning: {problem}"));
        }
    }
}

/// One line of progress (plain: it interleaves with the runs' own lines).
pub(crate) fn say(line: &str) {
    eprintln!("simulate: {line}");
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Ctrl-C and SIGTERM (CI's cancel) set the flag and reach the running child, so every step
/// ends soon and the sandbox is torn down on the way out.
pub(crate) fn watch_signals() {
    let spawned = std::thread::Builder::new()
        .name("simulate-signals".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            INTERRUPTED.store(true, Ordering::SeqCst);
            say("interrupted: stopping the current step, then tearing down");
            let child = CHILD.load(Ordering::SeqCst);
            if child != 0 {
                signal(child, rustix::process::Signal::TERM);
            }
        });
    if let Err(e) = spawned {
        say(&format!(
            "warning: no signal handler ({e}): Ctrl-C will not tear down"
        ));
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::kill_process(p, sig).is_ok())
}

/// Run a command to completion; its stdout, or an error with its stderr.
pub(crate) fn cmd(program: &str, args: &[&str]) -> Result<String> {
    let mut c = Command::new(program);
    c.args(args);
    output(c, program, args)
}

/// The docker CLI against the dedicated engine.
pub(crate) fn docker(layout: &Layout, args: &[&str]) -> Result<String> {
    let mut c = Command::new("docker");
    c.args(args)
        .env("DOCKER_HOST", layout.docker_host())
        .env_remove("DOCKER_CONTEXT");
    output(c, "docker", args)
}

fn output(mut c: Command, program: &str, args: &[&str]) -> Result<String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} (run scripts/provision)"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn make_disk(layout: &Layout, size: u64) -> Result<()> {
    let file = layout.disk_file.display().to_string();
    let mnt = layout.mnt.display().to_string();
    cmd("truncate", &["-s", &size.to_string(), &file])?;
    // No reserved blocks: a runner's root disk shows its free space to the build user too.
    cmd("mkfs.ext4", &["-q", "-F", "-m", "0", "-L", "hrsim", &file])?;
    cmd("mount", &["-o", "loop", &file, &mnt])?;
    Ok(())
}

/// A free 10.x.y.0/24 for the bridge: one that no route on this machine covers.
fn free_subnet() -> Result<String> {
    let routes = cmd("ip", &["-4", "route", "show"])?;
    for third in [213u8, 214, 215, 216, 217] {
        let prefix = format!("10.213.{third}.");
        if !routes.contains(&prefix) {
            return Ok(format!("10.213.{third}.1/24"));
        }
    }
    bail!("no free subnet for the simulator's bridge among 10.213.213-217.0/24")
}

pub(crate) fn start_dockerd(layout: &Layout, extra: &serde_json::Value) -> Result<()> {
    say("starting a dedicated dockerd with its data root on the runner's disk");
    std::fs::create_dir_all(&layout.run_dir)
        .with_context(|| layout.run_dir.display().to_string())?;
    // Its own bridge, so its builds and containers have a network without touching docker0.
    cmd("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    cmd("ip", &["addr", "add", &free_subnet()?, "dev", BRIDGE])?;
    cmd("ip", &["link", "set", BRIDGE, "up"])?;
    // daemon.json where the runner keeps it, with settings besides the data root that a
    // move must keep. No iptables: the host's firewall rules belong to the main engine.
    let mut config = serde_json::json!({
        "data-root": layout.data_root,
        "bridge": BRIDGE,
        "iptables": false,
        "log-level": "warn",
        "labels": ["headroom-simulate=runner"],
    });
    if let (Some(map), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    let path = layout.daemon_json();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&config)? + "\n")
        .with_context(|| path.display().to_string())?;
    write_engine_service(layout)?;
    cmd(&layout.engine_service().display().to_string(), &["start"])?;
    wait_answering(layout)
}

/// The runner's service manager for the dedicated engine, as a script: `start` runs dockerd
/// detached (setsid: a terminal's Ctrl-C must reach us, not the engine) with the runner's
/// daemon.json; `stop` ends it and waits until it has removed its pid file. The pipeline
/// restarts the engine through it when it moves the data root.
fn write_engine_service(layout: &Layout) -> Result<()> {
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let script = format!(
        "#!/bin/sh\n\
         # The simulated runner's service manager for its engine (cargo xtask simulate).\n\
         set -eu\n\
         pidfile={pid}\n\
         case \"${{1:-}}\" in\n\
         start)\n\
         \x20 # A unit file that passes --data-root itself (the restore check sets it).\n\
         \x20 if [ -f {unit} ]; then set -- --data-root \"$(cat {unit})\"; else set --; fi\n\
         \x20 setsid dockerd --config-file {config} --exec-root {exec} --pidfile \"$pidfile\" \\\n\
         \x20   -H {host} \"$@\" </dev/null >>{log} 2>&1 &\n\
         \x20 child=$!\n\
         \x20 # Like systemd's start job: done when the engine answers, failed if it exits.\n\
         \x20 i=0\n\
         \x20 while [ \"$i\" -lt 600 ]; do\n\
         \x20   state=$(cut -d' ' -f3 /proc/$child/stat 2>/dev/null || echo gone)\n\
         \x20   case \"$state\" in Z|gone) echo \"dockerd exited at start; see {log}\" >&2; exit 1 ;; esac\n\
         \x20   DOCKER_HOST={host} docker version >/dev/null 2>&1 && exit 0\n\
         \x20   sleep 0.1; i=$((i + 1))\n\
         \x20 done\n\
         \x20 echo \"dockerd did not answer in 60 s; see {log}\" >&2; exit 1\n\
         \x20 ;;\n\
         stop)\n\
         \x20 pid=$(cat \"$pidfile\" 2>/dev/null) || exit 0\n\
         \x20 kill -TERM \"$pid\" 2>/dev/null || exit 0\n\
         \x20 i=0\n\
         \x20 while [ -e \"$pidfile\" ] && [ \"$i\" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\n\
         \x20 [ ! -e \"$pidfile\" ] || {{ echo \"dockerd $pid did not stop in 60 s\" >&2; exit 1; }}\n\
         \x20 ;;\n\
         *) echo \"usage: $0 start|stop\" >&2; exit 2 ;;\n\
         esac\n",
        pid = q(&layout.pidfile()),
        unit = q(&layout.unit_data_root()),
        config = q(&layout.daemon_json()),
        exec = q(&layout.run_dir.join("exec")),
        host = layout.docker_host(),
        log = q(&layout.logs.join("dockerd.log")),
    );
    let path = layout.engine_service();
    std::fs::write(&path, script).with_context(|| path.display().to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| path.display().to_string())
}

/// The dual layout's second disk: a larger ext4 at the runner's `/mnt`, empty.
fn make_second_disk(layout: &Layout, size: u64) -> Result<()> {
    let file = layout.second_file.display().to_string();
    let mnt = layout.second_mnt();
    std::fs::create_dir_all(&mnt).with_context(|| mnt.display().to_string())?;
    cmd("truncate", &["-s", &size.to_string(), &file])?;
    cmd(
        "mkfs.ext4",
        &["-q", "-F", "-m", "0", "-L", "hrsim-mnt", &file],
    )?;
    cmd("mount", &["-o", "loop", &file, &mnt.display().to_string()])?;
    Ok(())
}

/// The keys of the runner's daemon.json besides data-root (and, `after` a move, a check that
/// data-root now points to the second disk).
fn daemon_json_keys(layout: &Layout, after: bool) -> Result<Vec<String>> {
    let path = layout.daemon_json();
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let Some(map) = value.as_object() else {
        bail!("{}: not a JSON object", path.display());
    };
    if after {
        let root = map.get("data-root").and_then(|v| v.as_str()).unwrap_or("");
        if !Path::new(root).starts_with(layout.second_mnt()) {
            bail!(
                "{}: data-root is {root:?} after the pipeline, not on the second disk {}",
                path.display(),
                layout.second_mnt().display()
            );
        }
    }
    Ok(map.keys().filter(|k| *k != "data-root").cloned().collect())
}

/// A move whose restart fails, for real: the runner's unit passes `--data-root` itself, so
/// dockerd refuses the merged daemon.json that sets it too.
#[derive(Debug, Default, Serialize)]
struct RestoreCheck {
    result: String,
    error: Option<String>,
    /// daemon.json byte for byte as it was before the run.
    daemon_json_restored: bool,
    /// The engine's data root after the run: the old one again.
    data_root_after: Option<PathBuf>,
    base_image_kept: bool,
    /// The partial copy headroom left on the second disk (removed by the simulator after).
    partial_copy_left: bool,
    problems: Vec<String>,
}

fn check_restore(layout: &Layout, run: &dyn Fn() -> Result<RunSummary>) -> Result<RestoreCheck> {
    let service = layout.engine_service().display().to_string();
    let config = layout.daemon_json();
    let original = std::fs::read(&config).with_context(|| config.display().to_string())?;
    let mut unit_config: serde_json::Value = serde_json::from_slice(&original)?;
    if let Some(map) = unit_config.as_object_mut() {
        map.remove("data-root");
    }
    say("restore check: the engine's unit now passes --data-root itself");
    cmd(&service, &["stop"])?;
    std::fs::write(
        layout.unit_data_root(),
        layout.data_root.display().to_string(),
    )?;
    let unit_text = serde_json::to_string_pretty(&unit_config)? + "\n";
    std::fs::write(&config, &unit_text)?;
    cmd(&service, &["start"])?;
    wait_answering(layout)?;
    let run = run();
    let after = std::fs::read(&config).unwrap_or_default();
    let root = docker(layout, &["info", "--format", "{{.DockerRootDir}}"])
        .ok()
        .map(|r| PathBuf::from(r.trim()));
    let base = docker(layout, &["image", "inspect", BASE_IMAGE]).is_ok();
    let copy = layout.second_mnt().join("docker");
    let mut check = RestoreCheck {
        daemon_json_restored: after == unit_text.as_bytes(),
        data_root_after: root.clone(),
        base_image_kept: base,
        partial_copy_left: copy.exists(),
        ..RestoreCheck::default()
    };
    match run {
        Ok(r) => {
            check.result = r.result.clone();
            check.error = r.error.clone();
        }
        Err(e) => check.problems.push(format!("{e:#}")),
    }
    if check.result != "failed" {
        check
            .problems
            .push(format!("expected a failed move, got {:?}", check.result));
    }
    if !check
        .error
        .as_deref()
        .is_some_and(|e| e.contains("restored"))
    {
        check.problems.push(format!(
            "the error does not say what was restored: {:?}",
            check.error
        ));
    }
    if !check.daemon_json_restored {
        check.problems.push("daemon.json is not as it was".into());
    }
    if root.as_deref() != Some(layout.data_root.as_path()) {
        check
            .problems
            .push(format!("the engine is not back on its old root: {root:?}"));
    }
    if !base {
        check.problems.push(format!("{BASE_IMAGE} is gone"));
    }
    // Back to the runner as it was; the partial copy is the simulator's to clear.
    cmd(&service, &["stop"])?;
    std::fs::remove_file(layout.unit_data_root())?;
    std::fs::write(&config, &original)?;
    if copy.exists() {
        let outcome = headroom_disk::remove_tree(&copy, &[], &|_| {});
        if let Some(e) = outcome.errors.first() {
            bail!("clearing {}: {e}", copy.display());
        }
    }
    cmd(&service, &["start"])?;
    wait_answering(layout)?;
    Ok(check)
}

/// Wait up to 60 s for the simulator's engine to answer.
fn wait_answering(layout: &Layout) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        check_interrupted()?;
        if docker(layout, &["version", "--format", "{{.Server.Version}}"]).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = layout.logs.join("dockerd.log");
            bail!(
                "the simulator's dockerd did not answer on {} within 60 s; its log {} ends with:\n{}",
                layout.docker_host(),
                log.display(),
                tail(&log, 15)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Dual layout: the pipeline passed by placement alone.
fn check_placed(layout: &Layout, summary: &mut Summary) {
    let run = &summary.pipeline;
    let mut problem = |p: String| summary.problems.push(format!("pipeline: {p}"));
    if run.placement.as_deref() != Some("move_data_root") {
        problem(format!(
            "expected placement move_data_root, got {:?}",
            run.placement
        ));
    }
    if !run
        .relocated_to
        .as_deref()
        .is_some_and(|p| p.starts_with(layout.second_mnt()))
    {
        problem(format!(
            "the data root is not on the second disk {}: {:?}",
            layout.second_mnt().display(),
            run.relocated_to
        ));
    }
    if run.freed_bytes.unwrap_or(0) != 0 || !run.freed_items.is_empty() {
        problem(format!(
            "something was deleted: {:?} bytes, items {:?}",
            run.freed_bytes,
            run.freed_items.keys().collect::<Vec<_>>()
        ));
    }
    if summary.daemon_json_keys_before != summary.daemon_json_keys_after {
        summary.problems.push(format!(
            "daemon.json: keys {:?} before the move, {:?} after",
            summary.daemon_json_keys_before, summary.daemon_json_keys_after
        ));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The workload's base: busybox with all its applets (httpd, wget, stat), nothing pulled.
pub(crate) fn import_base(layout: &Layout) -> Result<()> {
    busybox_image_all_applets(
        BASE_IMAGE,
        Some(&layout.docker_host()),
        &layout.work.join("base"),
    )
    .context("importing the simulator's base image")
}

/// Back to an engine holding only the base image: no build cache, images or containers
/// from the run before.
fn reset_engine(layout: &Layout) -> Result<()> {
    docker(layout, &["system", "prune", "--all", "--force"])?;
    import_base(layout)
}

/// Fill the runner's areas so that what is left is the runner's free share of `usable`.
fn fill(layout: &Layout, runner: &RunnerLayout, usable: u64) -> Result<Vec<AreaSummary>> {
    let scale = usable as f64 / runner.disk_gb;
    let mut out = Vec::new();
    for (i, area) in runner.areas.iter().enumerate() {
        check_interrupted()?;
        let bytes = (area.gb * scale) as u64;
        let dir = layout.runner_root.join(area.path.trim_start_matches('/'));
        let files = write_area(&dir, bytes, area.mean_file_kb.max(1) * 1024, i as u64)
            .with_context(|| format!("filling {}", dir.display()))?;
        out.push(AreaSummary {
            path: area.path.clone(),
            bytes,
            files,
        });
    }
    Ok(out)
}

/// Remove what is left of the runner's tree and fill it again.
fn refill(layout: &Layout, runner: &RunnerLayout, usable: u64) -> Result<()> {
    if layout.runner_root.exists() {
        // The runner's /etc (daemon.json) stays.
        let keep = [layout.runner_root.join("etc")];
        let outcome = headroom_disk::remove_tree(&layout.runner_root, &keep, &|_| {});
        if let Some(e) = outcome.errors.first() {
            bail!("clearing {}: {e}", layout.runner_root.display());
        }
    }
    fill(layout, runner, usable).map(|_| ())
}

/// Write `bytes` in files averaging `mean` bytes (sizes cycle through ¼, ½, 1 and 2¼ of it),
/// 64 to a directory. Zeros are written, so every block is allocated.
fn write_area(dir: &Path, bytes: u64, mean: u64, seed: u64) -> Result<u64> {
    const SHAPE: [u64; 4] = [1, 2, 4, 9]; // quarters of the mean: averages 1
    let buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut files = 0u64;
    while written < bytes {
        if files % 256 == 0 {
            check_interrupted()?;
        }
        let sub = dir.join(format!("lib{:03}", files / 64));
        if files % 64 == 0 {
            std::fs::create_dir_all(&sub).with_context(|| sub.display().to_string())?;
        }
        let shape = SHAPE[((files + seed) % 4) as usize];
        let size = (mean * shape / 4).clamp(1, bytes - written);
        let path = sub.join(format!("f{files:05}.so"));
        let mut f = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])
                .with_context(|| path.display().to_string())?;
            left -= n as u64;
        }
        written += size;
        files += 1;
    }
    Ok(files)
}

/// 24 letters and digits from the system's randomness.
fn random_password() -> Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(24);
    let mut urandom = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut byte = [0u8; 1];
    while password.len() < 24 {
        urandom
            .read_exact(&mut byte)
            .context("reading /dev/urandom")?;
        // 248 = 4 × 62: below it every letter is equally likely.
        if byte[0] < 248 {
            password.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

/// Run the real `cargo xtask image` (this binary) against the dedicated engine; stream its
/// lines with the run's name in front, keep them in a log, and read its report.
pub(crate) fn run_image(
    layout: &Layout,
    name: &str,
    args: &[String],
    password: &str,
) -> Result<RunSummary> {
    let report = layout.work.join(format!("{name}.json"));
    let log_path = layout.logs.join(format!("{name}.log"));
    let _ = std::fs::remove_file(&report);
    say(&format!("{name}: cargo xtask image {}", args.join(" ")));
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .arg("image")
        .args(args)
        .arg("--report")
        .arg(&report)
        .current_dir(crate::project_root())
        .env("DOCKER_HOST", layout.docker_host())
        .env("REGISTRY_USERNAME", REGISTRY_USER)
        .env("REGISTRY_PASSWORD", password)
        // The simulation writes its own summary; the runs must not add theirs.
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo xtask image")?;
    CHILD.store(child.id(), Ordering::SeqCst);
    let log = std::sync::Mutex::new(
        std::fs::File::create(&log_path).with_context(|| log_path.display().to_string())?,
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let status = std::thread::scope(|s| {
        let pump = |pipe: Box<dyn std::io::Read + Send>| {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(f, "{line}");
            }
        };
        if let Some(o) = stdout {
            s.spawn(move || pump(Box::new(o)));
        }
        if let Some(e) = stderr {
            s.spawn(move || pump(Box::new(e)));
        }
        child.wait()
    });
    CHILD.store(0, Ordering::SeqCst);
    let status = status.context("waiting for cargo xtask image")?;
    let seconds = start.elapsed().as_secs_f64();
    let typed = Report::read(&report).with_context(|| {
        format!(
            "{name}: cargo xtask image wrote no readable report at {} (exit status {status}; log {})",
            report.display(),
            log_path.display()
        )
    })?;
    let mut summary = summarize(&typed);
    summary.exit_code = status.code();
    summary.result = if status.success() { "passed" } else { "failed" }.into();
    summary.seconds = seconds;
    summary.report = report;
    summary.log = log_path;
    say(&format!(
        "{name}: {} in {seconds:.1} s{}",
        summary.result,
        summary
            .cause
            .as_ref()
            .map(|c| format!(" (cause: {c})"))
            .unwrap_or_default()
    ));
    Ok(summary)
}

/// The figures of an image report.
fn summarize(r: &Report) -> RunSummary {
    let disk = &r.disk;
    let freed_items = r
        .free
        .iter()
        .flat_map(|f| &f.items)
        .filter(|i| i.action == headroom_disk::Action::Removed)
        .map(|i| (i.name.clone(), i.freed_bytes))
        .collect();
    let background = disk.free_in_background;
    let mut to_built = 0.0;
    let mut built = false;
    for stage in &r.stages {
        if background && stage.name == Stage::Free {
            continue;
        }
        to_built += stage.seconds;
        if stage.name == Stage::Build {
            built = stage.status == StageStatus::Passed;
            break;
        }
    }
    RunSummary {
        to_built_seconds: built.then_some(to_built),
        cause: r.cause.map(|c| match c {
            Cause::NoSpace => "no_space".to_string(),
            Cause::Interrupted => "interrupted".to_string(),
        }),
        available_before: disk.available_before,
        available_after: disk.available_after,
        low_water_bytes: disk.low_water_bytes,
        freed_bytes: disk.freed_bytes,
        freed_items,
        reclaimable_bytes: disk.reclaimable_bytes,
        reclaimable_items: disk.reclaimable_items.clone(),
        floor_bytes: disk.floor_bytes,
        build_stops: Some(u64::from(disk.build_stops)),
        layers: r.image.layers.map(|l| l as u64),
        size_bytes: r.image.size_bytes,
        digest: r.image.digest.clone(),
        stages: r
            .stages
            .iter()
            .map(|s| format!("{}: {}", s.name, s.status.as_str()))
            .collect(),
        error: r.errors.first().cloned(),
        placement: r.placement.as_ref().map(|p| p.method.as_str().to_string()),
        relocated_to: r
            .placement
            .as_ref()
            .filter(|p| p.copied_bytes.is_some())
            .and_then(|p| p.to.clone()),
        relocation_seconds: r
            .placement
            .as_ref()
            .filter(|p| p.copied_bytes.is_some())
            .map(|p| p.seconds),
        ..RunSummary::default()
    }
}

fn check_passed(name: &str, run: &RunSummary, problems: &mut Vec<String>) {
    if run.result != "passed" {
        problems.push(format!(
            "{name}: cargo xtask image failed: {} (log {})",
            run.error.as_deref().unwrap_or("no error recorded"),
            run.log.display()
        ));
        return;
    }
    if run.digest.is_none() || run.digest != run.registry_digest {
        problems.push(format!(
            "{name}: the pushed digest {:?} is not what the registry serves ({:?})",
            run.digest, run.registry_digest
        ));
    }
}

/// What the registry serves for the run's first tag (`Docker-Content-Digest`).
fn registry_digest(sandbox: &Sandbox, run: &RunSummary) -> Option<String> {
    let registry = sandbox.registry.as_ref()?;
    let report = Report::read(&run.report).ok()?;
    let reference = report.image.references.first()?;
    let (repo, tag) = reference.rsplit_once(':')?;
    registry.manifest_digest(repo.split_once('/')?.1, tag)
}

/// Stop and remove everything a run starts, found by its fixed names, so this also cleans
/// up after a run that was killed. Returns what could not be undone.
pub(crate) fn teardown(layout: &Layout) -> Vec<String> {
    let mut problems = Vec::new();
    // 1. The engine, gracefully (it stops its containers and containerd), then anything of
    //    ours still running.
    if let Some(pid) = std::fs::read_to_string(layout.pidfile())
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|pid| our_process(*pid, layout))
    {
        signal(pid, rustix::process::Signal::TERM);
        wait_gone(pid, Duration::from_secs(30));
    }
    for pid in our_processes(layout) {
        signal(pid, rustix::process::Signal::KILL);
        wait_gone(pid, Duration::from_secs(5));
    }
    // 2. Mounts beneath the run directory (network namespaces) and the disk, deepest first.
    if let Ok(table) = MountTable::read() {
        let mut mounts: Vec<PathBuf> = table
            .mounts
            .iter()
            .map(|m| m.mount_point.clone())
            .filter(|p| p.starts_with(&layout.run_dir) || p.starts_with(&layout.mnt))
            .collect();
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mounts {
            let path = m.display().to_string();
            if cmd("umount", &[&path]).is_err()
                && let Err(e) = cmd("umount", &["-l", &path])
            {
                problems.push(format!("unmounting {path}: {e:#}"));
            }
        }
    }
    // 3. Loop devices still backed by the disk files, then the files.
    for disk_file in [&layout.disk_file, &layout.second_file] {
        if !disk_file.exists() {
            continue;
        }
        let file = disk_file.display().to_string();
        if let Ok(list) = cmd("losetup", &["-j", &file]) {
            for dev in list.lines().filter_map(|l| l.split(':').next()) {
                if let Err(e) = cmd("losetup", &["-d", dev]) {
                    problems.push(format!("detaching {dev}: {e:#}"));
                }
            }
        }
        if let Err(e) = std::fs::remove_file(disk_file) {
            problems.push(format!("removing {file}: {e}"));
        }
    }
    // 4. The run directory (sockets, pid files), the bridge.
    if layout.run_dir.exists() {
        let outcome = headroom_disk::remove_tree(&layout.run_dir, &[], &|_| {});
        if let Some(e) = outcome.errors.first() {
            problems.push(format!("removing {}: {e}", layout.run_dir.display()));
        }
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists()
        && let Err(e) = cmd("ip", &["link", "del", BRIDGE])
    {
        problems.push(format!("removing the bridge {BRIDGE}: {e:#}"));
    }
    problems
}

/// Is `pid` one of the processes a run starts (by name), pointed at our paths?
fn our_process(pid: u32, layout: &Layout) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !OUR_COMMANDS.contains(&comm.trim()) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    [&layout.run_dir, &layout.work]
        .iter()
        .any(|p| cmdline.contains(&*p.to_string_lossy()))
}

fn our_processes(layout: &Layout) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id() && our_process(*pid, layout))
        .collect()
}

fn wait_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        // A child of ours stays a zombie until reaped; its /proc entry says so.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_summary(summary: &Summary, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("--report {}", path.display()))?;
    }
    let json = serde_json::to_string_pretty(summary)?;
    std::fs::write(path, json + "\n").with_context(|| format!("--report {}", path.display()))?;
    let md_path = path.with_extension("md");
    let md = markdown(summary);
    std::fs::write(&md_path, &md).with_context(|| md_path.display().to_string())?;
    eprintln!("\n{}", human(summary));
    say(&format!(
        "summary written to {} and {}",
        path.display(),
        md_path.display()
    ));
    ui::github_step_summary(&md)?;
    ui::github_outputs(&[
        ("simulate-passed", summary.passed.to_string()),
        (
            "naive-cause",
            summary.naive.cause.clone().unwrap_or_default(),
        ),
        (
            "pipeline-digest",
            summary.pipeline.digest.clone().unwrap_or_default(),
        ),
    ])?;
    Ok(())
}

/// The runs side by side: naive, pipeline and (single layout) background.
fn runs(s: &Summary) -> Vec<(&'static str, &RunSummary)> {
    let mut runs = vec![("naive", &s.naive), ("pipeline", &s.pipeline)];
    if let Some(bg) = &s.background {
        runs.push(("background", bg));
    }
    runs
}

/// The table's header: an empty corner, then the runs' names.
fn header(s: &Summary) -> Vec<&'static str> {
    let mut h = vec![""];
    h.extend(runs(s).iter().map(|(name, _)| *name));
    h
}

/// The side-by-side rows, one column per run.
fn rows(s: &Summary) -> Vec<Vec<String>> {
    let runs: Vec<&RunSummary> = runs(s).into_iter().map(|(_, r)| r).collect();
    let size = |b: Option<u64>| b.map(format_size).unwrap_or_else(|| "—".into());
    let row = |label: &str, f: &dyn Fn(&RunSummary) -> String| {
        let mut r = vec![label.to_string()];
        r.extend(runs.iter().map(|run| f(run)));
        r
    };
    vec![
        row("result", &|r| match &r.cause {
            Some(c) => format!("{} ({c})", r.result),
            None => r.result.clone(),
        }),
        row("placement", &|r| {
            r.placement.clone().unwrap_or_else(|| "—".into())
        }),
        row("data root moved to", &|r| {
            r.relocated_to
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "—".into())
        }),
        row("free before", &|r| size(r.available_before)),
        row("freed", &|r| size(r.freed_bytes)),
        row("free after", &|r| size(r.available_after)),
        row("low-water mark", &|r| size(r.low_water_bytes)),
        row("reclaimable (unused)", &|r| size(r.reclaimable_bytes)),
        row("build stops (floor)", &|r| {
            r.build_stops
                .filter(|_| r.floor_bytes.is_some())
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into())
        }),
        row("layers", &|r| {
            r.layers
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into())
        }),
        row("image size", &|r| size(r.size_bytes)),
        row("digest", &|r| {
            r.digest
                .as_deref()
                .map(|d| d.chars().take(19).collect())
                .unwrap_or_else(|| "—".into())
        }),
        row("seconds to a built image", &|r| {
            r.to_built_seconds
                .map(|t| format!("{t:.1}"))
                .unwrap_or_else(|| "—".into())
        }),
        row("seconds in all", &|r| format!("{:.1}", r.seconds)),
    ]
}

fn human(s: &Summary) -> String {
    let mut out = format!(
        "simulated runner: {} disk, {} usable, workload unit {}; free target {}, floor {}\n",
        format_size(s.disk.size_bytes),
        format_size(s.disk.usable_bytes),
        format_size(s.disk.unit_bytes),
        format_size(s.disk.need_bytes),
        format_size(s.disk.floor_bytes)
    );
    if let Some(second) = s.disk.second_size_bytes {
        out.push_str(&format!(
            "second disk at the runner's /mnt: {}, {} available\n",
            format_size(second),
            s.disk
                .second_available_bytes
                .map(format_size)
                .unwrap_or_else(|| "—".into())
        ));
    }
    out.push_str(&ui::table(&header(s), &rows(s)));
    if let Some(saved) = s.background_saved_seconds {
        out.push_str(&format!(
            "\nfreeing in the background saved {saved:.1} s against free-then-build\n"
        ));
    }
    out.push_str(&format!(
        "{} in {:.1} s\n",
        if s.passed { "passed" } else { "FAILED" },
        s.seconds
    ));
    out
}

fn markdown(s: &Summary) -> String {
    let mut md = String::from("## Simulated small-disk runner\n\n");
    md.push_str(&format!(
        "{} disk ({} usable), filled like a hosted runner; workload unit {}, free target {}, \
         background floor {}.\n\n",
        format_size(s.disk.size_bytes),
        format_size(s.disk.usable_bytes),
        format_size(s.disk.unit_bytes),
        format_size(s.disk.need_bytes),
        format_size(s.disk.floor_bytes)
    ));
    if let Some(second) = s.disk.second_size_bytes {
        md.push_str(&format!(
            "A second disk at the runner's `/mnt`: {}, {} available.\n\n",
            format_size(second),
            s.disk
                .second_available_bytes
                .map(format_size)
                .unwrap_or_else(|| "—".into())
        ));
    }
    let h = header(s);
    md.push_str(&format!("| {} |\n", h.join(" | ")));
    md.push_str(&format!("|{}\n", "---|".repeat(h.len())));
    for r in rows(s) {
        md.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    if let Some(saved) = s.background_saved_seconds {
        md.push_str(&format!(
            "\nFreeing in the background saved {saved:.1} s against free-then-build.\n"
        ));
    }
    if !s.pipeline.freed_items.is_empty() {
        md.push_str("\nFreed by the pipeline's free stage:\n\n| item | freed |\n|---|---|\n");
        for (name, bytes) in &s.pipeline.freed_items {
            md.push_str(&format!("| {name} | {} |\n", format_size(*bytes)));
        }
    }
    if let Some(e) = &s.naive.error {
        let first: Vec<&str> = e.lines().take(3).collect();
        md.push_str(&format!(
            "\nThe naive build's error:\n\n```\n{}\n```\n",
            first.join("\n")
        ));
    }
    for p in &s.problems {
        md.push_str(&format!("\n**Problem:** {p}\n"));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_layout_adds_up_and_names_catalog_paths() {
        let layout = runner_layout().expect("simulate_runner.toml parses and adds up");
        let catalog = headroom_disk::Catalog::builtin();
        let known: Vec<&String> = catalog.items.iter().flat_map(|i| &i.paths).collect();
        let reclaimable = layout
            .areas
            .iter()
            .filter(|a| known.iter().any(|k| **k == a.path))
            .count();
        // Every area but the operating system's is something the catalog reclaims.
        assert_eq!(reclaimable, layout.areas.len() - 1);
    }

    #[test]
    fn areas_are_written_to_the_byte_in_many_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = write_area(dir.path(), 10_000_000, 100_000, 0).expect("write");
        let mut total = 0;
        let mut count = 0;
        for e in walk(dir.path()) {
            total += std::fs::metadata(&e).expect("meta").len();
            count += 1;
        }
        assert_eq!(total, 10_000_000);
        assert_eq!(count, files);
        assert!(files > 50, "{files} files");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    fn item(name: &str, action: &str, freed: u64) -> serde_json::Value {
        serde_json::json!({
            "name": name, "paths": [], "size_bytes": freed, "apparent_bytes": freed, "files": 1,
            "action": action, "reason": null, "seconds": 0.0, "estimated_seconds": 0.0,
            "freed_bytes": freed, "kept": [], "errors": [], "shared_bytes": 0
        })
    }

    #[test]
    fn a_report_is_summarised_with_the_cause_and_what_each_item_freed() {
        let v = serde_json::json!({
            "schema": 1,
            "cause": "no_space",
            "disk": {"available_before": 10, "low_water_bytes": 0, "freed_bytes": 7,
                     "reclaimable_bytes": 99, "reclaimable_items": ["android"], "build_stops": 1},
            "free": {
                "filesystem": {"path": "/", "mount_point": "/", "fs_type": "ext4",
                               "total_bytes": 100, "available_before": 10, "available_after": 17},
                "need_bytes": null, "target_met": true, "dry_run": false,
                "freed_bytes": 5, "filesystem_delta_bytes": 7, "seconds": 1.0,
                "items": [item("dotnet", "removed", 5), item("android", "skipped", 0)]
            },
            "image": {"name": "app", "tags": [], "references": [], "digests": {},
                      "layers": 4, "digest": "sha256:ab"},
            "stages": [{"name": "build", "status": "failed", "seconds": 1.0}],
            "errors": ["build: no space left on device"]
        });
        let s = summarize(&serde_json::from_value(v).expect("a report"));
        assert_eq!(s.cause.as_deref(), Some("no_space"));
        assert_eq!(s.low_water_bytes, Some(0));
        assert_eq!(s.reclaimable_items, ["android"]);
        assert_eq!(s.freed_items.len(), 1);
        assert_eq!(s.freed_items["dotnet"], 5);
        assert_eq!(s.stages, ["build: failed"]);
        assert_eq!(s.layers, Some(4));
    }
}
