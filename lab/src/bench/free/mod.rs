//! `cargo xtask bench free`: reclaim against `rm -rf` and rmz, measure against `du -s` and
//! diskus, on a synthetic tree shaped like the Android SDK (the biggest item on a hosted
//! runner: deep directories, many small files, a few big ones), each tool on its own
//! identical copy, with cold and with warm caches.

mod results;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use headroom_disk::{format_size, parse_size};

use crate::harness::timed;
use crate::report::{benchmarks_md, record_between, today};
use crate::sh::{NO_ARGS, cmd, quote};
use crate::workload::android::{Tree, content_buffer, plan_tree, write_tree};
use results::{Cache, Facts, MARK_END, MARK_START, Report, RunTimes, Tool, TreeFacts, rotation};

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
pub struct FreeBench {
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
            let mut args: Vec<std::ffi::OsString> = vec![
                "install".into(),
                "--locked".into(),
                "--root".into(),
                root.into(),
            ];
            args.extend(missing.iter().map(Into::into));
            let install = cmd(cargo, args).stdout_null();
            eprintln!(
                "bench: {} missing from {}; installing: {}",
                missing.join(" and "),
                bin.display(),
                install.shown()
            );
            install.run().with_context(|| {
                format!(
                    "installing the peers; run it by hand (it needs crates.io), or put {} into {}",
                    missing.join(" and "),
                    bin.display()
                )
            })?;
            for name in &missing {
                if !bin.join(name).is_file() {
                    bail!(
                        "installing the peers: `cargo install` succeeded but left no {}",
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
    pub fn run(self) -> Result<ExitCode> {
        let dir = match &self.dir {
            Some(d) => std::path::absolute(d).with_context(|| format!("--dir {}", d.display()))?,
            None => crate::repo::project_root()
                .join("target")
                .join("bench-free"),
        };
        let copies = [dir.join("copy-a"), dir.join("copy-b"), dir.join("copy-c")];
        // Leftovers of a killed run.
        for copy in &copies {
            remove_copy(copy)
                .with_context(|| format!("--dir {}: removing leftovers", dir.display()))?;
        }
        let peers = Peers::ensure(&crate::repo::project_root().join("target").join("peers"))?;
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
            nproc: cmd("nproc", NO_ARGS).read()?,
            kernel: cmd("uname", ["-r"]).read()?,
            fs_type: usage.fs_type.clone(),
            mount_point: usage.mount_point.clone(),
            threads: std::env::var("HEADROOM_THREADS")
                .ok()
                .filter(|v| !v.is_empty()),
            caches: probe_drop_caches(),
            rmz: cmd(&peers.rmz, ["--version"]).read()?,
            diskus: cmd(&peers.diskus, ["--version"]).read()?,
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
            let path = benchmarks_md();
            record_between(&path, &report.markdown(&today()?), MARK_START, MARK_END)?;
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
            let _ = write!(cmd, "HEADROOM_THREADS={} ", quote(&threads));
        }
        let _ = write!(
            cmd,
            "cargo xtask bench free --files {} --size {} --runs {} --cache {}",
            self.files,
            quote(&self.size.text),
            self.runs,
            self.cache.name()
        );
        if let Some(dir) = &self.dir {
            let _ = write!(cmd, " --dir {}", quote(&dir.display().to_string()));
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
        cmd("sync", NO_ARGS).read()?;
        let order_text = order.map(Tool::name).join(", ");

        let measure_once = |tool: Tool| -> Result<Measured> {
            let path = copies.of(tool);
            Ok(match tool {
                Tool::Headroom => Measured::Headroom(headroom_disk::measure(&[path.to_path_buf()])),
                Tool::Coreutils => {
                    cmd("du", ["-s".as_ref(), path.as_os_str()]).read()?;
                    Measured::Other(String::new())
                }
                Tool::Peer => Measured::Other(cmd(&peers.diskus, [path]).read()?),
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
                Tool::Coreutils => {
                    let rm = cmd("rm", ["-rf".as_ref(), path.as_os_str()]);
                    timed(|| rm.read())?.1
                }
                Tool::Peer => {
                    let rmz = cmd(&peers.rmz, [path]);
                    timed(|| rmz.read())?.1
                }
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
    cmd("sync", NO_ARGS).read().map_err(|e| format!("{e:#}"))?;
    std::fs::write(DROP_CACHES, "3").map_err(|e| format!("{DROP_CACHES}: {e}"))
}

/// Before a timed operation: flush, and drop page caches when allowed.
fn prepare(cold: bool) -> Result<()> {
    cmd("sync", NO_ARGS).read()?;
    if cold {
        std::fs::write(DROP_CACHES, "3").with_context(|| format!("writing {DROP_CACHES}"))?;
    }
    Ok(())
}

/// Bytes on disk as `du -sB1 -x` counts them.
fn du_bytes(path: &Path) -> Result<u64> {
    let du = cmd("du", ["-sB1".as_ref(), "-x".as_ref(), path.as_os_str()]);
    let out = du.read()?;
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("`{}` printed {out:?}, not a byte count", du.shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
