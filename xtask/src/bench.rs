//! `cargo xtask bench …`: benchmarks recorded in docs/benchmarks.md.
//!
//! `bench free` builds a synthetic tree shaped like the Android SDK (the biggest item on a
//! hosted runner: deep directories, many small files, a few big ones), three times, and times
//! [`headroom_disk::measure`] against `du -s` and diskus, and [`headroom_disk::remove_tree`]
//! against `rm -rf` and rmz, each on its own identical copy, with cold and with warm caches.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use headroom_disk::{format_size, parse_size};
use rayon::prelude::*;

use crate::ui;

#[derive(Subcommand, Debug)]
pub(crate) enum Bench {
    // The help text is `FreeBench`'s doc comment.
    Free(FreeBench),
    Pipeline(crate::bench_pipeline::PipelineBench),
    Image(crate::bench_image::ImageBench),
    Inspect(crate::bench_inspect::InspectBench),
    Lint(crate::bench_lint::LintBench),
    Build(crate::bench_build::BuildBench),
    Store(crate::bench_store::StoreBench),
}

impl Bench {
    pub(crate) fn run(self) -> Result<ExitCode> {
        match self {
            Bench::Free(bench) => bench.run(),
            Bench::Pipeline(bench) => bench.run(),
            Bench::Image(bench) => bench.run(),
            Bench::Inspect(bench) => bench.run(),
            Bench::Lint(bench) => bench.run(),
            Bench::Build(bench) => bench.run(),
            Bench::Store(bench) => bench.run(),
        }
    }
}

/// Reclaim vs `rm -rf` and rmz, measure vs `du -s` and diskus, on a synthetic
/// Android-SDK-shaped tree.
///
/// Each run writes three identical copies of the tree, one per family of tools (headroom;
/// coreutils' `du -s` and `rm -rf`; the peers diskus and rmz), then times the three
/// measurers, each on its own copy, then the three deleters on the same copies. The order
/// of the three rotates from run to run, so that no tool always goes first.
///
/// Cold (`--cache cold`): page caches are dropped before each timed command (as root).
/// Warm (`--cache warm`): each measurer runs once untimed on its copy first, and nothing is
/// dropped; the deleters then find their copy's inodes in the cache. `both` (the default)
/// does every run once cold and once warm.
///
/// rmz and diskus are installed into <project root>/target/peers by
/// `cargo install --locked --root target/peers rmz diskus` when missing.
///
/// Only DIR/copy-a, DIR/copy-b and DIR/copy-c are ever deleted; DIR itself is removed when
/// left empty.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FreeBench {
    /// Work directory for the three copies [default: <project root>/target/bench-free].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Files in the tree.
    #[arg(long, value_name = "N", default_value_t = 200_000,
          value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    files: u64,
    /// Apparent size of the tree (e.g. 2.2G, 500MiB).
    #[arg(long, value_name = "SIZE", default_value = "2.2G", value_parser = SizeArg::parse)]
    size: SizeArg,
    /// Timed runs per cache mode; medians are reported. The order of the tools rotates: a
    /// multiple of 3 gives each tool each place equally often.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Caches: cold (dropped before each timed command), warm (each measurer run once
    /// untimed first), or both.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = CacheArg::Both)]
    cache: CacheArg,
    /// Write the results into docs/benchmarks.md (between the bench-free markers).
    #[arg(long)]
    record: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CacheArg {
    Cold,
    Warm,
    Both,
}

impl CacheArg {
    fn modes(self) -> &'static [Cache] {
        match self {
            CacheArg::Cold => &[Cache::Cold],
            CacheArg::Warm => &[Cache::Warm],
            CacheArg::Both => &[Cache::Cold, Cache::Warm],
        }
    }

    fn name(self) -> &'static str {
        match self {
            CacheArg::Cold => "cold",
            CacheArg::Warm => "warm",
            CacheArg::Both => "both",
        }
    }
}

/// How a run's caches stand when a timed command starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    Cold,
    Warm,
}

impl Cache {
    fn name(self) -> &'static str {
        match self {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        }
    }
}

/// A size as typed (kept for the command that reproduces a run) and in bytes.
#[derive(Debug, Clone)]
struct SizeArg {
    text: String,
    bytes: u64,
}

impl SizeArg {
    fn parse(s: &str) -> Result<SizeArg, String> {
        let bytes = parse_size(s).map_err(|e| e.to_string())?;
        Ok(SizeArg {
            text: s.trim().to_string(),
            bytes,
        })
    }
}

/// The seed of the synthetic tree: the same flags always give the same tree.
const SEED: u64 = 0x4845_4144_524f_4f4d; // "HEADROOM"

const MARK_START: &str = "<!-- bench-free:start -->";
const MARK_END: &str = "<!-- bench-free:end -->";

/// A family of tools: each measures one copy of the tree and then deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// `headroom_disk::measure` and `headroom_disk::remove_tree`.
    Headroom,
    /// `du -s` and `rm -rf`.
    Coreutils,
    /// diskus and rmz.
    Peer,
}

impl Tool {
    const ALL: [Tool; 3] = [Tool::Headroom, Tool::Coreutils, Tool::Peer];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Tool::Headroom => "headroom",
            Tool::Coreutils => "coreutils",
            Tool::Peer => "peers",
        }
    }

    fn measurer(self) -> &'static str {
        match self {
            Tool::Headroom => "measure",
            Tool::Coreutils => "du -s",
            Tool::Peer => "diskus",
        }
    }

    fn deleter(self) -> &'static str {
        match self {
            Tool::Headroom => "reclaim",
            Tool::Coreutils => "rm -rf",
            Tool::Peer => "rmz",
        }
    }
}

/// The order of the tools in run `run` (0-based): [`Tool::ALL`] rotated left by `run`, so
/// that over any three consecutive runs each tool goes first, second and third once.
fn rotation(run: usize) -> [Tool; 3] {
    let mut order = Tool::ALL;
    order.rotate_left(run % Tool::ALL.len());
    order
}

/// Seconds of one run, indexed by [`Tool::index`].
#[derive(Debug, Clone, Copy)]
struct RunTimes {
    cache: Cache,
    order: [Tool; 3],
    measure: [f64; 3],
    remove: [f64; 3],
}

/// Facts about the machine, printed and recorded with the figures.
#[derive(Debug)]
struct Facts {
    nproc: String,
    kernel: String,
    fs_type: String,
    mount_point: PathBuf,
    threads: Option<String>,
    caches: Result<(), String>,
    rmz: String,
    diskus: String,
}

/// What the measured tree held (from the first run's measure, checked against `du`).
#[derive(Debug, Clone)]
struct TreeFacts {
    files: u64,
    dirs: u64,
    apparent_bytes: u64,
    disk_bytes: u64,
    /// What diskus counted, against `du -sB1 -x` on the same copy.
    diskus_check: String,
}

/// The peers' binaries, installed by `cargo install` when missing.
#[derive(Debug)]
struct Peers {
    rmz: PathBuf,
    diskus: PathBuf,
}

/// The crates of the peers; each installs a binary of the same name.
const PEER_CRATES: [&str; 2] = ["rmz", "diskus"];

impl Peers {
    /// Find rmz and diskus under `root`/bin, installing the missing ones with
    /// `cargo install --locked --root ROOT …`.
    fn ensure(root: &Path) -> Result<Peers> {
        let bin = root.join("bin");
        let missing: Vec<&str> = PEER_CRATES
            .into_iter()
            .filter(|name| !bin.join(name).is_file())
            .collect();
        if !missing.is_empty() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["install", "--locked", "--root"])
                .arg(root)
                .args(&missing)
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let shown = format!(
                "cargo install --locked --root {} {}",
                shell_quote(&root.display().to_string()),
                missing.join(" ")
            );
            eprintln!(
                "bench: {} missing from {}; installing: {shown}",
                missing.join(" and "),
                bin.display()
            );
            let status = cmd
                .status()
                .with_context(|| format!("installing the peers: running `{shown}`"))?;
            if !status.success() {
                bail!(
                    "installing the peers: `{shown}` failed ({status}); run it by hand (it needs \
                     crates.io), or put {} into {}",
                    missing.join(" and "),
                    bin.display()
                );
            }
            for name in &missing {
                if !bin.join(name).is_file() {
                    bail!(
                        "installing the peers: `{shown}` succeeded but left no {}",
                        bin.join(name).display()
                    );
                }
            }
        }
        Ok(Peers {
            rmz: bin.join("rmz"),
            diskus: bin.join("diskus"),
        })
    }
}

/// The bytes diskus printed: to a pipe, the bare count; to a terminal, a summary that ends
/// with `(N bytes)`, N with separators.
fn diskus_bytes(out: &str) -> Option<u64> {
    let out = out.trim();
    let count = match out.rsplit_once('(') {
        Some((_, tail)) => tail.strip_suffix(" bytes)")?,
        None => out,
    };
    let digits: String = count.chars().filter(|c| !",._ '".contains(*c)).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The three copies of one run, by [`Tool::index`].
#[derive(Debug)]
struct Copies<'a>([&'a Path; 3]);

impl Copies<'_> {
    fn of(&self, tool: Tool) -> &Path {
        self.0[tool.index()]
    }
}

impl FreeBench {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let dir = match &self.dir {
            Some(d) => std::path::absolute(d).with_context(|| format!("--dir {}", d.display()))?,
            None => crate::project_root().join("target").join("bench-free"),
        };
        let copies = [dir.join("copy-a"), dir.join("copy-b"), dir.join("copy-c")];
        // Leftovers of a killed run.
        for copy in &copies {
            remove_copy(copy)
                .with_context(|| format!("--dir {}: removing leftovers", dir.display()))?;
        }
        let peers = Peers::ensure(&crate::project_root().join("target").join("peers"))?;
        std::fs::create_dir_all(&dir).with_context(|| format!("--dir {}", dir.display()))?;
        let result = self.bench(&dir, &Copies([&copies[0], &copies[1], &copies[2]]), &peers);
        let mut cleanup = Vec::new();
        for copy in &copies {
            if let Err(e) = remove_copy(copy) {
                cleanup.push(format!("{e:#}"));
            }
        }
        // Only when empty: DIR may be the user's own directory.
        let _ = std::fs::remove_dir(&dir);
        result?;
        if !cleanup.is_empty() {
            bail!(
                "cleaning up --dir {}: {}",
                dir.display(),
                cleanup.join("; ")
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    fn bench(&self, dir: &Path, copies: &Copies<'_>, peers: &Peers) -> Result<()> {
        let files = usize::try_from(self.files).context("--files: too many for this machine")?;
        eprintln!(
            "bench: planning a tree of {files} files, {} …",
            format_size(self.size.bytes)
        );
        let tree = plan_tree(files, self.size.bytes);
        let usage =
            headroom_disk::usage(dir).with_context(|| format!("--dir {}", dir.display()))?;
        // Three copies; every file and directory takes at least a block.
        let need =
            3 * (self.size.bytes + (tree.files.len() as u64 + tree.dirs.len() as u64) * 4096);
        if usage.available_bytes < need {
            bail!(
                "--dir {}: {} available on {}, three copies need about {}; lower --size or \
                 --files, or pick another --dir",
                dir.display(),
                format_size(usage.available_bytes),
                usage.mount_point.display(),
                format_size(need)
            );
        }
        let facts = Facts {
            nproc: capture(&mut Command::new("nproc"))?,
            kernel: capture(Command::new("uname").arg("-r"))?,
            fs_type: usage.fs_type.clone(),
            mount_point: usage.mount_point.clone(),
            threads: std::env::var("HEADROOM_THREADS")
                .ok()
                .filter(|v| !v.is_empty()),
            caches: probe_drop_caches(),
            rmz: capture(Command::new(&peers.rmz).arg("--version"))?,
            diskus: capture(Command::new(&peers.diskus).arg("--version"))?,
        };
        let modes = self.cache.modes();
        match &facts.caches {
            Ok(()) if modes.contains(&Cache::Cold) => {
                eprintln!("bench: cold runs drop page caches before each timed command");
            }
            Ok(()) => {}
            Err(why) if modes.contains(&Cache::Cold) => eprintln!(
                "bench: page caches are NOT dropped ({why}); run as root for cold-cache figures"
            ),
            Err(_) => {}
        }
        let can_drop = facts.caches.is_ok();
        let buffer = content_buffer();
        let bed = Bed {
            tree: &tree,
            copies,
            peers,
            buffer: &buffer,
        };
        let total = self.runs as usize * modes.len();

        let mut runs = Vec::new();
        let mut tree_facts = None;
        for run in 0..self.runs as usize {
            for &cache in modes {
                let n = runs.len() + 1;
                let order = rotation(run);
                let label = format!("run {n}/{total} ({})", cache.name());
                let times = bed.run(
                    &label,
                    cache,
                    cache == Cache::Cold && can_drop,
                    order,
                    &mut tree_facts,
                )?;
                eprintln!(
                    "bench: {label}: {}",
                    Tool::ALL
                        .iter()
                        .map(|t| format!("{} {:.3} s", t.measurer(), times.measure[t.index()]))
                        .chain(Tool::ALL.iter().map(|t| format!(
                            "{} {:.3} s",
                            t.deleter(),
                            times.remove[t.index()]
                        )))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                runs.push(times);
            }
        }

        let tree_facts = tree_facts.context("no run measured the tree")?;
        let report = Report {
            command: self.command(),
            facts,
            tree: tree_facts,
            runs,
        };
        print!("{}", report.text());
        if self.record {
            let date = capture(Command::new("date").args(["-u", "+%F"]))?;
            let path = crate::project_root().join("docs").join("benchmarks.md");
            record(&path, &report.markdown(&date))?;
            eprintln!("bench: recorded in {}", path.display());
        }
        Ok(())
    }

    /// The command line that reproduces this run.
    fn command(&self) -> String {
        let mut cmd = String::new();
        if let Some(threads) = std::env::var("HEADROOM_THREADS")
            .ok()
            .filter(|v| !v.is_empty())
        {
            let _ = write!(cmd, "HEADROOM_THREADS={} ", shell_quote(&threads));
        }
        let _ = write!(
            cmd,
            "cargo xtask bench free --files {} --size {} --runs {} --cache {}",
            self.files,
            shell_quote(&self.size.text),
            self.runs,
            self.cache.name()
        );
        if let Some(dir) = &self.dir {
            let _ = write!(cmd, " --dir {}", shell_quote(&dir.display().to_string()));
        }
        cmd
    }
}

/// What every run works with: the tree, where its copies go, the peers' binaries.
#[derive(Debug)]
struct Bed<'a> {
    tree: &'a Tree,
    copies: &'a Copies<'a>,
    peers: &'a Peers,
    buffer: &'a [u8],
}

impl Bed<'_> {
    /// One run: write the three copies, time the measurers, then the deleters, in `order`;
    /// `drop`: drop page caches before each timed command. The first run also checks the
    /// counts against `du -sB1 -x` into `tree_facts`.
    fn run(
        &self,
        label: &str,
        cache: Cache,
        drop: bool,
        order: [Tool; 3],
        tree_facts: &mut Option<TreeFacts>,
    ) -> Result<RunTimes> {
        let Bed {
            tree,
            copies,
            peers,
            buffer,
        } = *self;
        for tool in Tool::ALL {
            eprintln!("bench: {label}: generating {}…", copies.of(tool).display());
            write_tree(tree, copies.of(tool), buffer)?;
        }
        run_status(&mut Command::new("sync"))?;
        let order_text = order.map(Tool::name).join(", ");

        let measure_once = |tool: Tool| -> Result<Measured> {
            let path = copies.of(tool);
            Ok(match tool {
                Tool::Headroom => Measured::Headroom(headroom_disk::measure(&[path.to_path_buf()])),
                Tool::Coreutils => {
                    run_status(Command::new("du").arg("-s").arg(path))?;
                    Measured::Other(String::new())
                }
                Tool::Peer => Measured::Other(capture(Command::new(&peers.diskus).arg(path))?),
            })
        };
        if cache == Cache::Warm {
            eprintln!("bench: {label}: warming up the measurers ({order_text})…");
            for tool in order {
                measure_once(tool)?;
            }
        }
        eprintln!("bench: {label}: measuring ({order_text})…");
        let mut measure = [0.0; 3];
        let mut measured = None;
        let mut diskus_out = String::new();
        for tool in order {
            prepare(drop)?;
            let (out, secs) = timed(|| measure_once(tool))?;
            measure[tool.index()] = secs;
            match out {
                Measured::Headroom(m) => measured = Some(m),
                Measured::Other(text) if tool == Tool::Peer => diskus_out = text,
                Measured::Other(_) => {}
            }
        }
        let mine = copies.of(Tool::Headroom);
        let measured = measured.context("measure did not run")?;
        if !measured.errors.is_empty() {
            bail!(
                "measuring {}: {}",
                mine.display(),
                measured.errors.join("; ")
            );
        }
        let size = measured.size;
        let expected_dirs = tree.dirs.len() as u64 + 1;
        if size.files != tree.files.len() as u64 || size.dirs != expected_dirs {
            bail!(
                "measuring {}: found {} files and {} directories, wrote {} and {}",
                mine.display(),
                size.files,
                size.dirs,
                tree.files.len(),
                expected_dirs
            );
        }
        if tree_facts.is_none() {
            let du = du_bytes(mine)?;
            if du != size.disk_bytes {
                bail!(
                    "measuring {}: headroom counted {} bytes on disk, `du -sB1 -x` {}",
                    mine.display(),
                    size.disk_bytes,
                    du
                );
            }
            eprintln!("bench: measure agrees with `du -sB1 -x`: {du} bytes on disk");
            let peer_copy = copies.of(Tool::Peer);
            let peer_du = du_bytes(peer_copy)?;
            let diskus_check = match diskus_bytes(&diskus_out) {
                Some(b) if b == peer_du => format!("diskus counted {b} bytes (= `du -sB1 -x`)"),
                Some(b) => format!(
                    "diskus counted {b} bytes, `du -sB1 -x` {peer_du} on the same copy ({:+}); \
                     timed all the same",
                    i128::from(b) - i128::from(peer_du)
                ),
                None => bail!(
                    "measuring {} with diskus: printed {diskus_out:?}, not a byte count",
                    peer_copy.display()
                ),
            };
            eprintln!("bench: {diskus_check}");
            *tree_facts = Some(TreeFacts {
                files: size.files,
                dirs: size.dirs,
                apparent_bytes: size.apparent_bytes,
                disk_bytes: size.disk_bytes,
                diskus_check,
            });
        }

        eprintln!("bench: {label}: removing ({order_text})…");
        let mut remove = [0.0; 3];
        for tool in order {
            let path = copies.of(tool);
            prepare(drop)?;
            remove[tool.index()] = match tool {
                Tool::Headroom => {
                    let (out, secs) = timed(|| Ok(headroom_disk::remove_tree(path, &[], &|_| {})))?;
                    if !out.ok() || !out.kept.is_empty() {
                        bail!(
                            "removing {}: {} error(s), {} kept: {}",
                            path.display(),
                            out.errors.len(),
                            out.kept.len(),
                            out.errors.join("; ")
                        );
                    }
                    if out.files != size.files || out.dirs != size.dirs {
                        bail!(
                            "removing {}: removed {} files and {} directories of {} and {}",
                            path.display(),
                            out.files,
                            out.dirs,
                            size.files,
                            size.dirs
                        );
                    }
                    secs
                }
                Tool::Coreutils => timed(|| run_status(Command::new("rm").arg("-rf").arg(path)))?.1,
                Tool::Peer => timed(|| run_status(Command::new(&peers.rmz).arg(path)))?.1,
            };
            if std::fs::symlink_metadata(path).is_ok() {
                bail!("{} left {} behind", tool.deleter(), path.display());
            }
        }
        Ok(RunTimes {
            cache,
            order,
            measure,
            remove,
        })
    }
}

/// What one measurer returned.
#[derive(Debug)]
enum Measured {
    Headroom(headroom_disk::Measurement),
    /// A system tool's stdout.
    Other(String),
}

fn remove_copy(path: &Path) -> Result<()> {
    let out = headroom_disk::remove_tree(path, &[], &|_| {});
    if !out.ok() || !out.kept.is_empty() || std::fs::symlink_metadata(path).is_ok() {
        bail!(
            "{} could not be removed: {}",
            path.display(),
            if out.errors.is_empty() {
                "part of it is on another filesystem".to_string()
            } else {
                out.errors.join("; ")
            }
        );
    }
    Ok(())
}

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Drop page caches once, to learn whether it can be done (root, writable /proc/sys).
fn probe_drop_caches() -> Result<(), String> {
    run_status(&mut Command::new("sync")).map_err(|e| format!("{e:#}"))?;
    std::fs::write(DROP_CACHES, "3").map_err(|e| format!("{DROP_CACHES}: {e}"))
}

/// Before a timed operation: flush, and drop page caches when allowed.
fn prepare(cold: bool) -> Result<()> {
    run_status(&mut Command::new("sync"))?;
    if cold {
        std::fs::write(DROP_CACHES, "3").with_context(|| format!("writing {DROP_CACHES}"))?;
    }
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let value = f()?;
    Ok((value, start.elapsed().as_secs_f64()))
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Run a command and return its trimmed stdout; failure names the command.
pub(crate) fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run_status(cmd: &mut Command) -> Result<()> {
    capture(cmd).map(|_| ())
}

/// Bytes on disk as `du -sB1 -x` counts them.
fn du_bytes(path: &Path) -> Result<u64> {
    let mut cmd = Command::new("du");
    cmd.arg("-sB1").arg("-x").arg(path);
    let out = capture(&mut cmd)?;
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("`{}` printed {out:?}, not a byte count", describe(&cmd)))
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------------------
// The synthetic tree.

/// A tree to write: every directory (parents first) and every file, relative to the root.
#[derive(Debug)]
struct Tree {
    dirs: Vec<PathBuf>,
    files: Vec<(PathBuf, u64)>,
}

/// xorshift64*: small, fast, and the same on every machine.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// A part of the SDK: where its directories start, how they branch below, what files hold.
struct Family {
    /// Share of the leaf directories.
    weight: u64,
    /// Components from the tree's root; `{ndk}`, `{clang}`, `{api}`, `{bt}`, `{cmake}` are
    /// versions drawn per directory.
    prefix: &'static [&'static str],
    /// Names for the levels below the prefix, in order; deeper levels use [`FILLER`].
    levels: &'static [&'static [&'static str]],
    exts: &'static [&'static str],
}

const NDK_LLVM: [&str; 7] = [
    "sdk",
    "ndk",
    "{ndk}",
    "toolchains",
    "llvm",
    "prebuilt",
    "linux-x86_64",
];

const fn llvm(rest: [&'static str; 3]) -> [&'static str; 10] {
    let mut out = [""; 10];
    let mut i = 0;
    while i < 7 {
        out[i] = NDK_LLVM[i];
        i += 1;
    }
    while i < 10 {
        out[i] = rest[i - 7];
        i += 1;
    }
    out
}

const CLANG_PREFIX: [&str; 10] = llvm(["lib", "clang", "{clang}"]);
const INCLUDE_PREFIX: [&str; 10] = llvm(["sysroot", "usr", "include"]);
const LIB_PREFIX: [&str; 10] = llvm(["sysroot", "usr", "lib"]);
const PYTHON_PREFIX: [&str; 9] = [
    "sdk",
    "ndk",
    "{ndk}",
    "toolchains",
    "llvm",
    "prebuilt",
    "linux-x86_64",
    "lib",
    "python3.11",
];

const FAMILIES: &[Family] = &[
    Family {
        weight: 6,
        prefix: &CLANG_PREFIX,
        levels: &[
            &["lib", "include", "share"],
            &["linux", "sanitizer", "fuzzer", "xray", "profile", "orc"],
        ],
        exts: &["a", "so", "h", "txt"],
    },
    Family {
        weight: 22,
        prefix: &INCLUDE_PREFIX,
        levels: &[
            &[
                "linux",
                "asm-generic",
                "android",
                "sys",
                "netinet",
                "arpa",
                "bits",
                "c++",
                "media",
                "aaudio",
                "camera",
                "EGL",
                "GLES3",
                "vulkan",
                "sound",
                "scsi",
                "rdma",
                "drm",
                "misc",
                "xen",
            ],
            &[
                "v1",
                "uapi",
                "detail",
                "__ranges",
                "experimental",
                "__algorithm",
                "__format",
                "__chrono",
                "ext",
                "impl",
            ],
        ],
        exts: &["h"],
    },
    Family {
        weight: 8,
        prefix: &LIB_PREFIX,
        levels: &[
            &[
                "aarch64-linux-android",
                "arm-linux-androideabi",
                "i686-linux-android",
                "x86_64-linux-android",
            ],
            &[
                "21", "22", "23", "24", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35",
            ],
        ],
        exts: &["so", "a", "o"],
    },
    Family {
        weight: 10,
        prefix: &PYTHON_PREFIX,
        levels: &[
            &[
                "site-packages",
                "lib2to3",
                "email",
                "encodings",
                "json",
                "xml",
                "asyncio",
                "unittest",
                "multiprocessing",
                "idlelib",
                "tkinter",
                "ctypes",
                "concurrent",
                "importlib",
            ],
            &[
                "__pycache__",
                "tests",
                "dom",
                "etree",
                "parsers",
                "sax",
                "fixes",
                "pgen2",
                "command",
                "futures",
                "resources",
                "metadata",
            ],
            &["__pycache__", "data", "util"],
        ],
        exts: &["py", "pyc"],
    },
    Family {
        weight: 10,
        prefix: &["sdk", "ndk", "{ndk}", "sources", "third_party"],
        levels: &[
            &["googletest", "vulkan", "shaderc", "libc++abi"],
            &["src", "include", "test", "build"],
            &[
                "gtest",
                "internal",
                "custom",
                "impl",
                "spirv",
                "glslang",
                "libshaderc",
            ],
            &["detail", "common", "util", "gen"],
            &["v1", "v2", "x86_64", "arm64"],
        ],
        exts: &["cc", "h", "cpp", "txt"],
    },
    Family {
        weight: 14,
        prefix: &["sdk", "sources", "{api}"],
        levels: &[
            &[
                "android", "com", "java", "javax", "dalvik", "libcore", "org",
            ],
            &[
                "android",
                "internal",
                "util",
                "net",
                "security",
                "widget",
                "view",
                "app",
                "content",
                "graphics",
                "media",
                "os",
                "provider",
                "telephony",
            ],
            &[
                "internal",
                "util",
                "concurrent",
                "atomic",
                "impl",
                "provider",
                "location",
                "hardware",
                "camera2",
                "bluetooth",
                "wifi",
                "text",
            ],
            &[
                "policy",
                "params",
                "utils",
                "os",
                "widget",
                "telephony",
                "uicc",
                "cdma",
                "gsm",
                "display",
            ],
            &["data", "impl", "util", "metadata"],
        ],
        exts: &["java"],
    },
    Family {
        weight: 12,
        prefix: &["sdk", "platforms", "{api}"],
        levels: &[
            &["data", "skins", "templates", "optional"],
            &["res", "fonts", "keyboards", "WXGA800", "HVGA", "QVGA"],
            &[
                "drawable-hdpi",
                "drawable-xhdpi",
                "drawable-xxhdpi",
                "values",
                "values-fr",
                "values-de",
                "values-ja",
                "layout",
                "xml",
                "raw",
                "mipmap-hdpi",
                "color",
                "anim",
            ],
        ],
        exts: &["xml", "png", "ttf", "jar"],
    },
    Family {
        weight: 8,
        prefix: &["sdk", "build-tools", "{bt}"],
        levels: &[
            &["lib64", "lib", "renderscript", "core-lambda-stubs"],
            &["include", "clang-include", "lib", "bc", "jni"],
            &["arm64-v8a", "armeabi-v7a", "x86", "x86_64", "packaged"],
        ],
        exts: &["so", "jar", "h", "bc"],
    },
    Family {
        weight: 4,
        prefix: &["sdk", "system-images", "{api}", "google_apis", "x86_64"],
        levels: &[
            &["data", "system", "vendor"],
            &["app", "priv-app", "framework", "lib64", "etc"],
            &[
                "PrebuiltGmsCore",
                "Chrome",
                "Phonesky",
                "arm64",
                "oat",
                "permissions",
            ],
        ],
        exts: &["img", "apk", "odex", "vdex", "xml"],
    },
    Family {
        weight: 6,
        prefix: &["sdk", "cmake", "{cmake}", "share", "cmake-3.22"],
        levels: &[
            &["Modules", "Help", "Templates"],
            &[
                "Platform",
                "Compiler",
                "FindPython",
                "Internal",
                "CPack",
                "command",
                "module",
                "variable",
                "prop_tgt",
            ],
            &["CheckTypeSize", "IntelVSImplicitPath", "Android", "Darwin"],
        ],
        exts: &["cmake", "rst", "txt", "in"],
    },
];

const FILLER: &[&str] = &[
    "src", "main", "res", "impl", "internal", "common", "detail", "util", "core", "base", "gen",
    "include", "lib", "share", "meta", "data", "v1", "v2",
];

const STEMS: &[&str] = &[
    "lib", "android", "util", "core", "test", "res", "main", "config", "module", "common",
];

/// File sizes before scaling: (share in 1/100000, smallest, largest). Mostly small files
/// (headers, sources, resources), with a long tail of libraries and images.
const SIZE_CLASSES: &[(u64, u64, u64)] = &[
    (40_000, 100, 1 << 10),
    (30_000, 1 << 10, 4 << 10),
    (18_000, 4 << 10, 16 << 10),
    (8_500, 16 << 10, 64 << 10),
    (2_900, 64 << 10, 256 << 10),
    (500, 256 << 10, 1 << 20),
    (90, 1 << 20, 8 << 20),
    (10, 8 << 20, 64 << 20),
];

/// Plan the tree: `files` files in leaf directories 8–12 levels deep, 10–200 files each,
/// sizes drawn from [`SIZE_CLASSES`] and scaled so that they add up to exactly `total`.
fn plan_tree(files: usize, total: u64) -> Tree {
    let mut rng = Rng(SEED);
    let weights: u64 = FAMILIES.iter().map(|f| f.weight).sum();
    let mut leaves: Vec<(PathBuf, &'static [&'static str], usize)> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    let mut placed = 0;
    while placed < files {
        // 10–200 files, skewed towards the smaller counts.
        let fan = 10 + (rng.range(0, 190) * rng.range(0, 190) / 190) as usize;
        let fan = fan.min(files - placed);
        placed += fan;
        let mut w = rng.next() % weights;
        let family = FAMILIES
            .iter()
            .find(|f| {
                if w < f.weight {
                    true
                } else {
                    w -= f.weight;
                    false
                }
            })
            .unwrap_or(&FAMILIES[0]);
        // Draw a directory; draw again (a few times) rather than grow one past 200 files.
        let mut tries = 0;
        let path = loop {
            let path = draw_dir(&mut rng, family);
            tries += 1;
            let full = index.get(&path).is_some_and(|&i| leaves[i].2 + fan > 200);
            if !full || tries >= 20 {
                break path;
            }
        };
        match index.get(&path) {
            Some(&i) => leaves[i].2 += fan,
            None => {
                index.insert(path.clone(), leaves.len());
                leaves.push((path, family.exts, fan));
            }
        }
    }

    let mut dirs = BTreeSet::new();
    let mut files_out = Vec::with_capacity(files);
    let mut raw = Vec::with_capacity(files);
    for (dir, exts, count) in &leaves {
        let mut d = dir.as_path();
        while dirs.insert(d.to_path_buf()) {
            match d.parent() {
                Some(p) if !p.as_os_str().is_empty() => d = p,
                _ => break,
            }
        }
        for n in 0..*count {
            let name = format!("{}_{n:03}.{}", rng.pick(STEMS), rng.pick(exts));
            files_out.push((dir.join(name), 0));
            let mut share = rng.next() % 100_000;
            let &(_, lo, hi) = SIZE_CLASSES
                .iter()
                .find(|(s, _, _)| {
                    if share < *s {
                        true
                    } else {
                        share -= s;
                        false
                    }
                })
                .unwrap_or(&SIZE_CLASSES[0]);
            raw.push(rng.range(lo, hi));
        }
    }
    let sum: u128 = raw.iter().map(|&r| u128::from(r)).sum::<u128>().max(1);
    let mut written = 0u64;
    for (file, r) in files_out.iter_mut().zip(&raw) {
        file.1 = (u128::from(*r) * u128::from(total) / sum) as u64;
        written += file.1;
    }
    if let Some(largest) = files_out.iter_mut().max_by_key(|f| f.1) {
        largest.1 += total - written;
    }
    Tree {
        dirs: dirs.into_iter().collect(),
        files: files_out,
    }
}

/// A directory of `family`, 8–12 levels deep and at least one level below its prefix.
fn draw_dir(rng: &mut Rng, family: &Family) -> PathBuf {
    let target = rng.range(8, 12) as usize;
    let mut path = PathBuf::new();
    for part in family.prefix {
        path.push(match *part {
            "{ndk}" => rng.pick(&["25.2.9519653", "26.3.11579264", "27.2.12479018"]),
            "{clang}" => rng.pick(&["17", "18"]),
            "{api}" => rng.pick(&["android-31", "android-33", "android-34", "android-35"]),
            "{bt}" => rng.pick(&["33.0.2", "34.0.0", "35.0.0"]),
            "{cmake}" => rng.pick(&["3.22.1", "3.31.5"]),
            other => other,
        });
    }
    let mut level = 0;
    while level == 0 || path.components().count() < target {
        path.push(rng.pick(family.levels.get(level).copied().unwrap_or(FILLER)));
        level += 1;
    }
    path
}

/// What every file holds: a repeated, non-zero pattern (real blocks, never sparse).
fn content_buffer() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8 + 1).collect()
}

/// Write `tree` under `root` (which must not exist), files in parallel.
fn write_tree(tree: &Tree, root: &Path, buffer: &[u8]) -> Result<()> {
    std::fs::create_dir(root).with_context(|| format!("creating {}", root.display()))?;
    for dir in &tree.dirs {
        let path = root.join(dir);
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    tree.files.par_iter().try_for_each(|(rel, len)| {
        let path = root.join(rel);
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut left = *len as usize;
        while left > 0 {
            let n = left.min(buffer.len());
            file.write_all(&buffer[..n])
                .with_context(|| format!("writing {}", path.display()))?;
            left -= n;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Results.

#[derive(Debug)]
struct Report {
    command: String,
    facts: Facts,
    tree: TreeFacts,
    runs: Vec<RunTimes>,
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Medians of the runs of one cache mode, by [`Tool::index`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Medians {
    measure: [f64; 3],
    remove: [f64; 3],
}

impl Medians {
    fn of(runs: &[RunTimes]) -> Medians {
        let of = |f: &dyn Fn(&RunTimes) -> f64| median(runs.iter().map(f).collect());
        Medians {
            measure: Tool::ALL.map(|t| of(&|r| r.measure[t.index()])),
            remove: Tool::ALL.map(|t| of(&|r| r.remove[t.index()])),
        }
    }
}

/// What a goal compares: headroom's measure or its reclaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Measure,
    Remove,
}

/// A goal: headroom's `job` at least `factor` times faster than `against`'s.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Goal {
    job: Job,
    against: Tool,
    factor: f64,
    /// Only with cold caches (as issue 11 states the coreutils goals); else in both modes.
    cold_only: bool,
}

/// The goals of issue 11: ≥ 2.5× `rm -rf` and ≥ 2× `du -s` with cold caches, ≥ 1.3× rmz
/// and ≥ 1.3× diskus cold and warm.
const GOALS: [Goal; 4] = [
    Goal {
        job: Job::Remove,
        against: Tool::Coreutils,
        factor: 2.5,
        cold_only: true,
    },
    Goal {
        job: Job::Measure,
        against: Tool::Coreutils,
        factor: 2.0,
        cold_only: true,
    },
    Goal {
        job: Job::Remove,
        against: Tool::Peer,
        factor: 1.3,
        cold_only: false,
    },
    Goal {
        job: Job::Measure,
        against: Tool::Peer,
        factor: 1.3,
        cold_only: false,
    },
];

impl Goal {
    fn applies(&self, cache: Cache) -> bool {
        !self.cold_only || cache == Cache::Cold
    }

    /// Times faster than `against`: its median over headroom's.
    fn ratio(&self, m: &Medians) -> f64 {
        let times = match self.job {
            Job::Measure => &m.measure,
            Job::Remove => &m.remove,
        };
        ratio(times[self.against.index()], times[Tool::Headroom.index()])
    }

    fn met(&self, m: &Medians) -> bool {
        self.ratio(m) >= self.factor
    }

    fn names(&self) -> (&'static str, &'static str) {
        match self.job {
            Job::Measure => (Tool::Headroom.measurer(), self.against.measurer()),
            Job::Remove => (Tool::Headroom.deleter(), self.against.deleter()),
        }
    }

    /// `reclaim ≥ 2.5× faster than `rm -rf``, the tools' names in backquotes.
    fn describe(&self) -> String {
        let (mine, theirs) = self.names();
        format!("{mine} ≥ {}× faster than `{theirs}`", self.factor)
    }

    /// `met (3.22×)` or `NOT met (1.10×)`.
    fn verdict(&self, m: &Medians) -> String {
        let r = self.ratio(m);
        if self.met(m) {
            format!("met ({r:.2}×)")
        } else {
            format!("NOT met ({r:.2}×)")
        }
    }
}

/// How many times faster than `theirs` (seconds) `mine` (seconds) is.
fn ratio(theirs: f64, mine: f64) -> f64 {
    if mine > 0.0 {
        theirs / mine
    } else {
        f64::INFINITY
    }
}

impl Report {
    /// The cache modes that have runs, in the order they ran.
    fn modes(&self) -> Vec<Cache> {
        let mut modes = Vec::new();
        for r in &self.runs {
            if !modes.contains(&r.cache) {
                modes.push(r.cache);
            }
        }
        modes
    }

    fn runs_of(&self, cache: Cache) -> Vec<RunTimes> {
        self.runs
            .iter()
            .filter(|r| r.cache == cache)
            .copied()
            .collect()
    }

    /// The header of a mode's table: run, order, the measurers, the deleters.
    fn headers() -> Vec<String> {
        let mut h = vec!["run".to_string(), "order".to_string()];
        h.extend(Tool::ALL.map(|t| t.measurer().to_string()));
        h.extend(Tool::ALL.map(|t| t.deleter().to_string()));
        h
    }

    /// One row per run of `cache`, then the medians.
    fn rows(&self, cache: Cache) -> Vec<Vec<String>> {
        let secs = |s: f64| format!("{s:.3}");
        let line = |first: String, order: String, m: &[f64; 3], r: &[f64; 3]| {
            let mut row = vec![first, order];
            row.extend(m.iter().map(|&s| secs(s)));
            row.extend(r.iter().map(|&s| secs(s)));
            row
        };
        let runs = self.runs_of(cache);
        let mut rows: Vec<Vec<String>> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                line(
                    (i + 1).to_string(),
                    r.order.map(Tool::name).join(", "),
                    &r.measure,
                    &r.remove,
                )
            })
            .collect();
        let m = Medians::of(&runs);
        rows.push(line(
            "median".to_string(),
            String::new(),
            &m.measure,
            &m.remove,
        ));
        rows
    }

    /// The ratios of the medians of `cache`, each as `du -s / measure = 2.85×`.
    fn ratio_lines(&self, cache: Cache) -> Vec<String> {
        let m = Medians::of(&self.runs_of(cache));
        let mut lines = Vec::new();
        for (job, times) in [(Job::Remove, &m.remove), (Job::Measure, &m.measure)] {
            for other in [Tool::Coreutils, Tool::Peer] {
                let (mine, theirs) = match job {
                    Job::Measure => (Tool::Headroom.measurer(), other.measurer()),
                    Job::Remove => (Tool::Headroom.deleter(), other.deleter()),
                };
                let r = ratio(times[other.index()], times[Tool::Headroom.index()]);
                lines.push(format!("`{theirs}` / {mine} = {r:.2}×"));
            }
        }
        lines
    }

    /// The goals that apply to `cache`, each with its verdict.
    fn goal_lines(&self, cache: Cache) -> Vec<String> {
        let m = Medians::of(&self.runs_of(cache));
        GOALS
            .iter()
            .filter(|g| g.applies(cache))
            .map(|g| format!("{}: {}", g.describe(), g.verdict(&m)))
            .collect()
    }

    fn cache_title(&self, cache: Cache) -> String {
        match (cache, &self.facts.caches) {
            (Cache::Cold, Ok(())) => "cold caches (dropped before each timed command)".to_string(),
            (Cache::Cold, Err(why)) => {
                format!("cold caches, but NOT dropped ({why}): only no warm-up")
            }
            (Cache::Warm, _) => {
                "warm caches (each measurer run once untimed first; nothing dropped)".to_string()
            }
        }
    }

    fn facts_lines(&self) -> Vec<String> {
        let f = &self.facts;
        let t = &self.tree;
        vec![
            format!("nproc: {}", f.nproc),
            format!("kernel: {}", f.kernel),
            format!(
                "filesystem: {} (mounted at {})",
                f.fs_type,
                f.mount_point.display()
            ),
            format!(
                "HEADROOM_THREADS: {}",
                f.threads.as_deref().unwrap_or("unset")
            ),
            match &f.caches {
                Ok(()) => {
                    "page caches: dropped before each timed command of a cold run".to_string()
                }
                Err(why) => format!("page caches: not dropped ({why})"),
            },
            format!(
                "peers: {}, {} (`cargo install --locked --root target/peers rmz diskus`)",
                f.rmz, f.diskus
            ),
            format!(
                "tree: {} files in {} directories, {} apparent, {} on disk (= `du -sB1 -x`); {}",
                t.files,
                t.dirs,
                format_size(t.apparent_bytes),
                format_size(t.disk_bytes),
                t.diskus_check
            ),
        ]
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let headers = Self::headers();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        for cache in self.modes() {
            let _ = writeln!(out, "{}:", self.cache_title(cache));
            out.push_str(&ui::table(&headers, &self.rows(cache)));
            out.push_str("(seconds)\n");
            for line in self.ratio_lines(cache) {
                let _ = writeln!(out, "{}", line.replace('`', ""));
            }
            for line in self.goal_lines(cache) {
                let _ = writeln!(out, "goal ({}): {}", cache.name(), line.replace('`', ""));
            }
            out.push('\n');
        }
        for line in self.facts_lines() {
            let _ = writeln!(out, "{}", line.replace('`', ""));
        }
        let _ = writeln!(out, "reproduce: {}", self.command);
        out
    }

    fn markdown(&self, date: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{MARK_START}");
        out.push_str("## Reclaim vs `rm -rf` and rmz, measure vs `du -s` and diskus\n\n");
        let _ = writeln!(
            out,
            "A synthetic tree shaped like the Android SDK, three identical copies per run (one \
             for headroom, one for coreutils, one for the peers rmz and diskus); each family \
             measures its copy, then deletes it; the order of the three rotates from run to \
             run. Recorded {date} with:\n"
        );
        let _ = writeln!(out, "```sh\n{}\n```\n", self.command);
        for line in self.facts_lines() {
            let _ = writeln!(out, "- {line}");
        }
        let mut header = String::from("| run | order |");
        let mut rule = String::from("|---|---|");
        let names = |name: fn(Tool) -> &'static str| {
            Tool::ALL.map(|t| match t {
                Tool::Headroom => format!("{} (s)", name(t)),
                _ => format!("`{}` (s)", name(t)),
            })
        };
        for name in names(Tool::measurer).iter().chain(&names(Tool::deleter)) {
            let _ = write!(header, " {name} |");
            rule.push_str("--:|");
        }
        for cache in self.modes() {
            let _ = writeln!(out, "\n### {}\n", capitalise(&self.cache_title(cache)));
            let _ = writeln!(out, "{header}\n{rule}");
            for mut row in self.rows(cache) {
                if row[0] == "median" {
                    for cell in &mut row {
                        if !cell.is_empty() {
                            *cell = format!("**{cell}**");
                        }
                    }
                }
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            let _ = writeln!(
                out,
                "\nRatios of the medians: {}.\n",
                self.ratio_lines(cache).join("; ")
            );
            out.push_str("Goals:\n\n");
            for line in self.goal_lines(cache) {
                let _ = writeln!(out, "- {line}");
            }
        }
        let _ = writeln!(out, "{MARK_END}");
        out
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Put `section` (markers included) into the Markdown file at `path`: in place of the old
/// section when the markers are there, else at the end; create the file when absent.
/// Replace (or append) the section between `start` and `end` markers in `path`.
pub(crate) fn record(path: &Path, section: &str) -> Result<()> {
    record_between(path, section, MARK_START, MARK_END)
}

pub(crate) fn record_between(
    path: &Path,
    section: &str,
    start_mark: &str,
    end_mark: &str,
) -> Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from(
            "# Benchmarks\n\nEvery figure here comes with the command that reproduces it.\n",
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let new = match (old.find(start_mark), old.find(end_mark)) {
        (Some(start), Some(end)) if start < end => {
            let mut after = &old[end + end_mark.len()..];
            after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..start])
        }
        (None, None) => {
            let mut text = old.trim_end().to_string();
            text.push_str("\n\n");
            text.push_str(section);
            text
        }
        _ => bail!(
            "{}: the markers {} and {} are unbalanced; fix them by hand",
            path.display(),
            start_mark,
            end_mark
        ),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_deterministic_deep_and_sized_exactly() {
        let a = plan_tree(5_000, 50_000_000);
        let b = plan_tree(5_000, 50_000_000);
        assert_eq!(a.files, b.files);
        assert_eq!(a.dirs, b.dirs);
        assert_eq!(a.files.len(), 5_000);
        assert_eq!(a.files.iter().map(|f| f.1).sum::<u64>(), 50_000_000);
        let names: BTreeSet<&PathBuf> = a.files.iter().map(|f| &f.0).collect();
        assert_eq!(names.len(), a.files.len(), "file names are unique");
        for (file, _) in &a.files {
            let depth = file.components().count() - 1;
            assert!((8..=12).contains(&depth), "{}", file.display());
        }
        let mut sizes: Vec<u64> = a.files.iter().map(|f| f.1).collect();
        sizes.sort_unstable();
        assert!(sizes[sizes.len() / 2] < 50_000_000 / 5_000, "mostly small");
        assert!(
            sizes[sizes.len() - 1] > 20 * 50_000_000 / 5_000,
            "a long tail"
        );
    }

    #[test]
    fn record_replaces_the_section_or_appends_it() {
        let t = tempfile_dir();
        let path = t.join("benchmarks.md");
        let section = |n: u32| format!("{MARK_START}\nrun {n}\n{MARK_END}\n");
        record(&path, &section(1)).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with("# Benchmarks\n"));
        assert!(first.ends_with(&section(1)));
        std::fs::write(&path, format!("{first}\n## Other\n")).unwrap();
        record(&path, &section(2)).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(second.contains(&section(2)) && !second.contains("run 1"));
        assert!(second.ends_with("\n## Other\n"));
        std::fs::remove_dir_all(&t).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("headroom-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn the_order_rotates_so_that_each_tool_takes_each_place() {
        assert_eq!(rotation(0), [Tool::Headroom, Tool::Coreutils, Tool::Peer]);
        assert_eq!(rotation(1), [Tool::Coreutils, Tool::Peer, Tool::Headroom]);
        assert_eq!(rotation(2), [Tool::Peer, Tool::Headroom, Tool::Coreutils]);
        assert_eq!(rotation(3), rotation(0));
        for start in 0..6 {
            for place in 0..3 {
                let mut seen: Vec<Tool> = (start..start + 3).map(|r| rotation(r)[place]).collect();
                seen.sort_by_key(|t| t.index());
                assert_eq!(seen, Tool::ALL, "runs {start}.. place {place}");
            }
        }
    }

    #[test]
    fn diskus_output_to_a_pipe_and_to_a_terminal() {
        assert_eq!(diskus_bytes("1388544\n"), Some(1_388_544));
        assert_eq!(diskus_bytes("1.39 MB (1,388,544 bytes)"), Some(1_388_544));
        assert_eq!(
            diskus_bytes("9.59 GB (9587408896 bytes)"),
            Some(9_587_408_896)
        );
        assert_eq!(diskus_bytes(""), None);
        assert_eq!(diskus_bytes("1.39 MB"), None);
        assert_eq!(diskus_bytes("[diskus warning] error (1 bytes)"), Some(1));
        assert_eq!(diskus_bytes("(x bytes)"), None);
    }

    fn times(cache: Cache, measure: [f64; 3], remove: [f64; 3]) -> RunTimes {
        RunTimes {
            cache,
            order: rotation(0),
            measure,
            remove,
        }
    }

    #[test]
    fn medians_per_tool_and_the_goals_they_meet() {
        // headroom, coreutils, peers.
        let runs = [
            times(Cache::Cold, [0.5, 1.5, 0.7], [4.0, 12.0, 6.0]),
            times(Cache::Cold, [0.4, 1.4, 0.6], [5.0, 11.0, 6.4]),
            times(Cache::Cold, [0.6, 1.0, 0.9], [4.4, 10.0, 5.0]),
        ];
        let m = Medians::of(&runs);
        assert_eq!(m.measure, [0.5, 1.4, 0.7]);
        assert_eq!(m.remove, [4.4, 11.0, 6.0]);
        let [rm, du, rmz, diskus] = GOALS;
        assert!((rm.ratio(&m) - 2.5).abs() < 1e-9);
        assert!(rm.met(&m), "2.5× is met at exactly 2.5×");
        assert!((du.ratio(&m) - 2.8).abs() < 1e-9 && du.met(&m));
        assert!((rmz.ratio(&m) - 6.0 / 4.4).abs() < 1e-9 && rmz.met(&m));
        assert!((diskus.ratio(&m) - 1.4).abs() < 1e-9 && diskus.met(&m));
        assert_eq!(rm.verdict(&m), "met (2.50×)");
        assert_eq!(rm.describe(), "reclaim ≥ 2.5× faster than `rm -rf`");
        assert_eq!(diskus.describe(), "measure ≥ 1.3× faster than `diskus`");

        let slow = Medians {
            measure: [1.0, 1.5, 1.2],
            remove: [5.0, 11.0, 6.0],
        };
        assert!(!du.met(&slow) && !rm.met(&slow) && !rmz.met(&slow) && !diskus.met(&slow));
        assert_eq!(du.verdict(&slow), "NOT met (1.50×)");
        assert_eq!(ratio(1.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn coreutils_goals_are_cold_only_and_the_peers_goals_hold_in_both_modes() {
        let warm: Vec<String> = GOALS
            .iter()
            .filter(|g| g.applies(Cache::Warm))
            .map(Goal::describe)
            .collect();
        assert_eq!(
            warm,
            [
                "reclaim ≥ 1.3× faster than `rmz`",
                "measure ≥ 1.3× faster than `diskus`"
            ]
        );
        assert_eq!(GOALS.iter().filter(|g| g.applies(Cache::Cold)).count(), 4);
    }

    #[test]
    fn the_report_shows_every_mode_and_a_failing_goal() {
        let report = Report {
            command: "cargo xtask bench free --files 10 --size 1M --runs 1 --cache both"
                .to_string(),
            facts: Facts {
                nproc: "2".into(),
                kernel: "6".into(),
                fs_type: "ext4".into(),
                mount_point: PathBuf::from("/"),
                threads: None,
                caches: Ok(()),
                rmz: "rmz 3.2.1".into(),
                diskus: "diskus 0.9.0".into(),
            },
            tree: TreeFacts {
                files: 10,
                dirs: 3,
                apparent_bytes: 1_000_000,
                disk_bytes: 1_100_000,
                diskus_check: "diskus counted 1100000 bytes (= `du -sB1 -x`)".into(),
            },
            runs: vec![
                times(Cache::Cold, [0.5, 1.5, 0.7], [4.0, 12.0, 6.0]),
                times(Cache::Warm, [0.1, 0.3, 0.2], [3.0, 9.0, 3.3]),
            ],
        };
        let text = report.text();
        assert!(text.contains("cold caches (dropped"), "{text}");
        assert!(text.contains("warm caches"), "{text}");
        assert!(text.contains("goal (warm): reclaim ≥ 1.3× faster than rmz: NOT met (1.10×)"));
        assert!(text.contains("goal (cold): reclaim ≥ 2.5× faster than rm -rf: met (3.00×)"));
        assert!(!text.contains("goal (warm): reclaim ≥ 2.5×"), "{text}");
        assert!(text.contains("rm -rf / reclaim = 3.00×"), "{text}");
        assert!(text.contains("reproduce: cargo xtask bench free"));
        let md = report.markdown("2026-12-02");
        assert!(md.starts_with(MARK_START) && md.trim_end().ends_with(MARK_END));
        assert!(
            md.contains(
                "| run | order | measure (s) | `du -s` (s) | `diskus` (s) | reclaim (s) | \
             `rm -rf` (s) | `rmz` (s) |"
            ),
            "{md}"
        );
        assert!(md.contains("| 1 | headroom, coreutils, peers | 0.500 | 1.500 | 0.700 |"));
        assert!(md.contains("- reclaim ≥ 1.3× faster than `rmz`: NOT met (1.10×)"));
        assert!(md.contains("```sh\ncargo xtask bench free --files 10"));
    }
}
