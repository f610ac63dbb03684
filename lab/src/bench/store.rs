//! `cargo xtask bench store`: the engine's classic image store against the containerd image
//! store, on the same build — how much disk the build takes at its peak, what the engine
//! keeps afterwards, and whether the build cache can be exported with the default `docker`
//! driver.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use headroom_disk::format_size;
use serde::Serialize;

use crate::image_run::{RunSummary, run_image};
use crate::report::{self, benchmarks_md, record_between};
use crate::sandbox::bridge::Bridge;
use crate::sandbox::runner::{Layout, Runner, say};
use crate::sh::cmd;
use crate::signals;

/// Classic image store vs containerd image store: peak disk of one build, what stays, and
/// cache export with the default driver.
///
/// For each store, a dedicated dockerd (the simulator's: own socket, exec root, bridge) keeps
/// its data root on a fresh loop-mounted ext4 of --size, so the filesystem's readings are the
/// build's alone. `cargo xtask image --backend buildx` builds the profile there (BuildKit
/// with the default `docker` driver: the builder CI runners use); the watchdog's low-water
/// mark gives the peak. Then the data root is measured, and a cached rebuild tries
/// `--cache-to type=local,mode=max`. `containerd` sets `features.containerd-snapshotter` in
/// that engine's daemon.json. A `docker-container` builder (`--load` from a separate
/// BuildKit) cannot run here: its image cannot be pulled.
///
/// Profiles: `sim` is the simulator's workload (no network); `full` is docker/Dockerfile on
/// the local Debian base (`cargo xtask base-image`), with PyPI reached through NAT on the
/// dedicated bridge, added for the run and removed after.
#[derive(Args, Debug)]
pub struct StoreBench {
    #[arg(long, value_enum, default_value_t = Profile::Sim)]
    profile: Profile,
    /// The sim profile's unit (its build writes about 5 of them).
    #[arg(long, default_value_t = 512)]
    unit_mb: u64,
    /// Size of each store's filesystem.
    #[arg(long, default_value = "48GiB", value_parser = size_arg)]
    size: u64,
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
    Sim,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Store {
    Classic,
    Containerd,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Classic => "classic (overlay2)",
            Store::Containerd => "containerd (overlayfs snapshotter)",
        }
    }

    fn daemon_json(self) -> serde_json::Value {
        match self {
            Store::Classic => serde_json::json!({}),
            Store::Containerd => serde_json::json!({"features": {"containerd-snapshotter": true}}),
        }
    }
}

#[derive(Debug, Serialize)]
struct StoreResult {
    store: Store,
    build_passed: bool,
    build_error: Option<String>,
    build_seconds: f64,
    /// Available at the start minus the low-water mark: the build's peak.
    peak_bytes: Option<u64>,
    /// Available at the start minus at the end: what the engine keeps.
    kept_bytes: Option<u64>,
    /// The data root measured after the build (every copy the engine keeps).
    data_root_bytes: u64,
    image_bytes: Option<u64>,
    cache_export_passed: bool,
    cache_export_error: Option<String>,
    cache_bytes: u64,
}

const START: &str = "<!-- bench store: start -->";
const END: &str = "<!-- bench store: end -->";
const IMAGE: &str = "headroom/bench-store";
const FULL_BASE: &str = "headroom/debian:bookworm";

impl StoreBench {
    pub fn run(self) -> Result<ExitCode> {
        if !rustix::process::geteuid().is_root() {
            bail!(
                "cargo xtask bench store needs root: it loop-mounts filesystems and starts dockerd"
            );
        }
        let root = crate::repo::project_root();
        if self.profile == Profile::Full
            && !cmd("docker", ["image", "inspect", FULL_BASE]).succeeds()
        {
            bail!(
                "the full profile builds on {FULL_BASE}: make it first with cargo xtask base-image"
            );
        }
        signals::watch(say);
        let work = root.join("target/bench-store");
        let mut results = Vec::new();
        for store in [Store::Classic, Store::Containerd] {
            let layout = Layout::new(work.join(match store {
                Store::Classic => "classic",
                Store::Containerd => "containerd",
            }));
            let mut runner = Runner::new(layout);
            let result = self.one(&root, &mut runner, store);
            drop(runner);
            results.push(result?);
        }
        let md = self.markdown(&results);
        let table = self.table(&results);
        eprintln!("\n{table}");
        let json = serde_json::to_string_pretty(&results)? + "\n";
        std::fs::write(work.join("results.json"), json)
            .context("target/bench-store/results.json")?;
        report::github_step_summary(&md)?;
        if self.record {
            record_between(&benchmarks_md(), &md, START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        Ok(ExitCode::SUCCESS)
    }

    fn one(&self, root: &Path, runner: &mut Runner, store: Store) -> Result<StoreResult> {
        say(&format!(
            "{}: a fresh {} ext4 and a dockerd on it",
            store.name(),
            format_size(self.size)
        ));
        runner.make_disk(self.size)?;
        runner.start_engine(&store.daemon_json())?;
        let runner: &Runner = runner;
        let layout = &runner.layout;
        let mut args: Vec<String> = Vec::new();
        let _nat = match self.profile {
            Profile::Sim => {
                runner.import_base()?;
                args.extend([
                    "--config".into(),
                    root.join("docker/simulate/image.toml")
                        .display()
                        .to_string(),
                    "--build-arg".into(),
                    format!("UNIT_MB={}", self.unit_mb),
                ]);
                None
            }
            Profile::Full => {
                say(&format!(
                    "{}: loading {FULL_BASE} from the host's engine",
                    store.name()
                ));
                cmd("docker", ["save", FULL_BASE])
                    .pipe(runner.engine()?.docker(&["load", "-q"]))
                    .run()
                    .with_context(|| format!("loading {FULL_BASE} into the bench's engine"))?;
                args.extend([
                    "--config".into(),
                    root.join("docker/image.toml").display().to_string(),
                    "--build-arg".into(),
                    format!("BASE_IMAGE={FULL_BASE}"),
                    "--build-arg".into(),
                    "TORCH_INDEX_URL=https://pypi.org/simple".into(),
                ]);
                Some(Nat::add(&runner.engine()?.bridge)?)
            }
        };
        args.extend([
            "--image".into(),
            IMAGE.into(),
            "--backend".into(),
            "buildx".into(),
            "--skip".into(),
            "free,smoke,push,inspect".into(),
        ]);
        let name = format!("{:?}", store).to_lowercase();
        let build: RunSummary = run_image(runner, &format!("{name}-build"), &args)?;
        let data_root_bytes = headroom_disk::measure(std::slice::from_ref(&layout.data_root))
            .size
            .disk_bytes;
        let cache = layout.mnt.join("cache");
        let mut cached = args.clone();
        cached.extend([
            "--cache-to".into(),
            format!("type=local,dest={},mode=max", cache.display()),
        ]);
        let export = run_image(runner, &format!("{name}-cache"), &cached)?;
        let cache_bytes = if cache.exists() {
            headroom_disk::measure(&[cache]).size.disk_bytes
        } else {
            0
        };
        let first_line = |e: &Option<String>| {
            e.as_ref().map(|e| {
                let line = e.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                line.trim_start_matches("build failed: ").to_string()
            })
        };
        Ok(StoreResult {
            store,
            build_passed: build.result == "passed",
            build_error: first_line(&build.error),
            build_seconds: build.seconds,
            peak_bytes: build
                .available_before
                .zip(build.low_water_bytes)
                .map(|(b, l)| b.saturating_sub(l)),
            kept_bytes: build
                .available_before
                .zip(build.available_after)
                .map(|(b, a)| b.saturating_sub(a)),
            data_root_bytes,
            image_bytes: build.size_bytes,
            cache_export_passed: export.result == "passed",
            cache_export_error: first_line(&export.error).filter(|_| export.result != "passed"),
            cache_bytes,
        })
    }

    fn rows(&self, results: &[StoreResult]) -> Vec<Vec<String>> {
        let size = |b: Option<u64>| b.map(format_size).unwrap_or_else(|| "—".into());
        results
            .iter()
            .map(|r| {
                vec![
                    r.store.name().to_string(),
                    if r.build_passed {
                        format!("{:.0} s", r.build_seconds)
                    } else {
                        "failed".into()
                    },
                    size(r.peak_bytes),
                    size(r.kept_bytes),
                    format_size(r.data_root_bytes),
                    size(r.image_bytes),
                    if r.cache_export_passed {
                        format!("works ({})", format_size(r.cache_bytes))
                    } else {
                        format!("fails: {}", r.cache_export_error.as_deref().unwrap_or("?"))
                    },
                ]
            })
            .collect()
    }

    const HEADER: [&'static str; 7] = [
        "image store",
        "build",
        "peak disk",
        "kept after",
        "data root",
        "image size",
        "cache export (type=local, docker driver)",
    ];

    fn table(&self, results: &[StoreResult]) -> String {
        report::table(&Self::HEADER, &self.rows(results))
    }

    fn markdown(&self, results: &[StoreResult]) -> String {
        let (flags, profile) = match self.profile {
            Profile::Sim => (
                format!("--profile sim --unit-mb {}", self.unit_mb),
                "the simulator's workload",
            ),
            Profile::Full => (
                "--profile full".to_string(),
                "docker/Dockerfile on the local Debian base",
            ),
        };
        let mut md = format!(
            "{START}\n## Image stores: classic vs containerd (peak disk of one build)\n\n\
             `cargo xtask bench store {flags} --record` ({profile}; each store on its own fresh \
             {} ext4, BuildKit through buildx's default `docker` driver):\n\n",
            format_size(self.size)
        );
        md.push_str(&format!("| {} |\n", Self::HEADER.join(" | ")));
        md.push_str(&format!("|{}\n", "---|".repeat(Self::HEADER.len())));
        for row in self.rows(results) {
            md.push_str(&format!("| {} |\n", row.join(" | ").replace('\n', " ")));
        }
        let _ = writeln!(
            md,
            "\nPeak disk: available at the start minus the watchdog's low-water mark. Kept after: \
             available at the start minus at the end. Data root: its blocks measured after the \
             build (the containerd store's content and snapshots live under it too)."
        );
        if let [classic, containerd] = results
            && let (Some(a), Some(b)) = (classic.peak_bytes, containerd.peak_bytes)
            && a > 0
        {
            let _ = writeln!(
                md,
                "\nThe containerd store's peak is {:.2}× the classic store's: it keeps the \
                 compressed layers beside the unpacked snapshots, so it is no way to fit a build \
                 on a small disk. What it gives is cache export with the default driver; \
                 `--engine-store containerd` switches to it for that.",
                b as f64 / a as f64
            );
        }
        let _ = writeln!(md, "{END}");
        md
    }
}

/// Outbound NAT for the dedicated bridge (its engine runs without iptables), removed on drop.
pub(super) struct Nat {
    rules: Vec<Vec<String>>,
}

impl Nat {
    pub(super) fn add(bridge: &Bridge) -> Result<Nat> {
        let net = bridge.network();
        let b = bridge.name.as_str();
        let rules: Vec<Vec<String>> = [
            vec![
                "-t",
                "nat",
                "POSTROUTING",
                "-s",
                &net,
                "!",
                "-o",
                b,
                "-j",
                "MASQUERADE",
            ],
            vec!["-t", "filter", "FORWARD", "-i", b, "-j", "ACCEPT"],
            vec![
                "-t",
                "filter",
                "FORWARD",
                "-o",
                b,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
        let mut nat = Nat { rules: Vec::new() };
        for rule in rules {
            let mut args: Vec<&str> = vec![&rule[0], &rule[1], "-I", &rule[2]];
            args.extend(rule[3..].iter().map(String::as_str));
            cmd("iptables", args).read()?;
            nat.rules.push(rule);
        }
        Ok(nat)
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        for rule in self.rules.drain(..) {
            let mut args: Vec<&str> = vec![&rule[0], &rule[1], "-D", &rule[2]];
            args.extend(rule[3..].iter().map(String::as_str));
            if let Err(e) = cmd("iptables", args).read() {
                say(&format!("warning: removing an iptables rule: {e:#}"));
            }
        }
    }
}
