//! `cargo xtask bench …`: benchmarks recorded in docs/benchmarks.md.
//!
//! `bench free` builds a synthetic tree shaped like the Android SDK (the biggest item on a
//! hosted runner: deep directories, many small files, a few big ones), twice, and times
//! `du -s` against [`headroom_disk::measure`] and `rm -rf` against
//! [`headroom_disk::remove_tree`] on the two identical copies, cold where it can.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
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
}

impl Bench {
    pub(crate) fn run(self) -> Result<ExitCode> {
        match self {
            Bench::Free(bench) => bench.run(),
            Bench::Pipeline(bench) => bench.run(),
            Bench::Image(bench) => bench.run(),
            Bench::Inspect(bench) => bench.run(),
            Bench::Lint(bench) => bench.run(),
        }
    }
}

/// Reclaim vs `rm -rf`, and measure vs `du -s`, on a synthetic Android-SDK-shaped tree.
///
/// Each run writes two identical copies of the tree, then times `du -s` on one and
/// headroom's measure on the other, then `rm -rf` on one and headroom's reclaim on the
/// other, alternating which goes first. As root, page caches are dropped before each timed
/// operation so that both start equally cold.
///
/// Only DIR/copy-a and DIR/copy-b are ever deleted; DIR itself is removed when left empty.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FreeBench {
    /// Work directory for the two copies [default: <project root>/target/bench-free].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Files in the tree.
    #[arg(long, value_name = "N", default_value_t = 200_000,
          value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    files: u64,
    /// Apparent size of the tree (e.g. 2.2G, 500MiB).
    #[arg(long, value_name = "SIZE", default_value = "2.2G", value_parser = SizeArg::parse)]
    size: SizeArg,
    /// Timed runs; medians are reported.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Write the results into docs/benchmarks.md (between the bench-free markers).
    #[arg(long)]
    record: bool,
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

/// Goal: headroom is at least this many times faster than the system tool.
const GOAL: f64 = 2.0;

/// Seconds of one run.
#[derive(Debug, Clone, Copy)]
struct RunTimes {
    /// `du -s` and `rm -rf` went first in this run.
    system_first: bool,
    du: f64,
    measure: f64,
    rm: f64,
    reclaim: f64,
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
}

/// What the measured tree held (from the first run's measure, checked against `du`).
#[derive(Debug, Clone, Copy)]
struct TreeFacts {
    files: u64,
    dirs: u64,
    apparent_bytes: u64,
    disk_bytes: u64,
}

impl FreeBench {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let dir = match &self.dir {
            Some(d) => std::path::absolute(d).with_context(|| format!("--dir {}", d.display()))?,
            None => crate::project_root().join("target").join("bench-free"),
        };
        let copy_a = dir.join("copy-a");
        let copy_b = dir.join("copy-b");
        // Leftovers of a killed run.
        for copy in [&copy_a, &copy_b] {
            remove_copy(copy)
                .with_context(|| format!("--dir {}: removing leftovers", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("--dir {}", dir.display()))?;
        let result = self.bench(&dir, &copy_a, &copy_b);
        let mut cleanup = Vec::new();
        for copy in [&copy_a, &copy_b] {
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

    fn bench(&self, dir: &Path, copy_a: &Path, copy_b: &Path) -> Result<()> {
        let files = usize::try_from(self.files).context("--files: too many for this machine")?;
        eprintln!(
            "bench: planning a tree of {files} files, {} …",
            format_size(self.size.bytes)
        );
        let tree = plan_tree(files, self.size.bytes);
        let usage =
            headroom_disk::usage(dir).with_context(|| format!("--dir {}", dir.display()))?;
        // Two copies; every file and directory takes at least a block.
        let need =
            2 * (self.size.bytes + (tree.files.len() as u64 + tree.dirs.len() as u64) * 4096);
        if usage.available_bytes < need {
            bail!(
                "--dir {}: {} available on {}, two copies need about {}; lower --size or \
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
        };
        match &facts.caches {
            Ok(()) => eprintln!("bench: page caches are dropped before each timed operation"),
            Err(why) => eprintln!(
                "bench: page caches are NOT dropped ({why}); run as root for cold-cache figures"
            ),
        }
        let cold = facts.caches.is_ok();
        let buffer = content_buffer();

        let mut runs = Vec::new();
        let mut tree_facts = None;
        for run in 1..=self.runs {
            let system_first = run % 2 == 1;
            eprintln!("bench: run {run}/{}: generating copy A…", self.runs);
            write_tree(&tree, copy_a, &buffer)?;
            eprintln!("bench: run {run}/{}: generating copy B…", self.runs);
            write_tree(&tree, copy_b, &buffer)?;
            run_status(&mut Command::new("sync"))?;

            eprintln!(
                "bench: run {run}/{}: measuring ({} first)…",
                self.runs,
                if system_first { "du -s" } else { "headroom" }
            );
            let mut du = 0.0;
            let mut measure = 0.0;
            let mut measured = None;
            for system in [system_first, !system_first] {
                prepare(cold)?;
                if system {
                    du = timed(|| capture(Command::new("du").arg("-s").arg(copy_b)))?.1;
                } else {
                    let (m, secs) = timed(|| Ok(headroom_disk::measure(&[copy_a.to_path_buf()])))?;
                    measure = secs;
                    measured = Some(m);
                }
            }
            let measured = measured.context("measure did not run")?;
            if !measured.errors.is_empty() {
                bail!(
                    "measuring {}: {}",
                    copy_a.display(),
                    measured.errors.join("; ")
                );
            }
            let size = measured.size;
            let expected_dirs = tree.dirs.len() as u64 + 1;
            if size.files != tree.files.len() as u64 || size.dirs != expected_dirs {
                bail!(
                    "measuring {}: found {} files and {} directories, wrote {} and {}",
                    copy_a.display(),
                    size.files,
                    size.dirs,
                    tree.files.len(),
                    expected_dirs
                );
            }
            if tree_facts.is_none() {
                let du_bytes = du_bytes(copy_a)?;
                if du_bytes != size.disk_bytes {
                    bail!(
                        "measuring {}: headroom counted {} bytes on disk, `du -sB1 -x` {}",
                        copy_a.display(),
                        size.disk_bytes,
                        du_bytes
                    );
                }
                eprintln!("bench: measure agrees with `du -sB1 -x`: {du_bytes} bytes on disk");
                tree_facts = Some(TreeFacts {
                    files: size.files,
                    dirs: size.dirs,
                    apparent_bytes: size.apparent_bytes,
                    disk_bytes: size.disk_bytes,
                });
            }

            eprintln!(
                "bench: run {run}/{}: removing ({} first)…",
                self.runs,
                if system_first { "rm -rf" } else { "headroom" }
            );
            let mut rm = 0.0;
            let mut reclaim = 0.0;
            for system in [system_first, !system_first] {
                prepare(cold)?;
                if system {
                    rm = timed(|| run_status(Command::new("rm").arg("-rf").arg(copy_b)))?.1;
                } else {
                    let (out, secs) =
                        timed(|| Ok(headroom_disk::remove_tree(copy_a, &[], &|_| {})))?;
                    reclaim = secs;
                    if !out.ok() || !out.kept.is_empty() {
                        bail!(
                            "removing {}: {} error(s), {} kept: {}",
                            copy_a.display(),
                            out.errors.len(),
                            out.kept.len(),
                            out.errors.join("; ")
                        );
                    }
                    if out.files != size.files || out.dirs != size.dirs {
                        bail!(
                            "removing {}: removed {} files and {} directories of {} and {}",
                            copy_a.display(),
                            out.files,
                            out.dirs,
                            size.files,
                            size.dirs
                        );
                    }
                }
            }
            for (copy, tool) in [(copy_a, "headroom"), (copy_b, "rm -rf")] {
                if std::fs::symlink_metadata(copy).is_ok() {
                    bail!("{tool} left {} behind", copy.display());
                }
            }
            let times = RunTimes {
                system_first,
                du,
                measure,
                rm,
                reclaim,
            };
            eprintln!(
                "bench: run {run}/{}: du -s {:.3} s, measure {:.3} s, rm -rf {:.3} s, reclaim {:.3} s",
                self.runs, times.du, times.measure, times.rm, times.reclaim
            );
            runs.push(times);
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
            "cargo xtask bench free --files {} --size {} --runs {}",
            self.files,
            shell_quote(&self.size.text),
            self.runs
        );
        if let Some(dir) = &self.dir {
            let _ = write!(cmd, " --dir {}", shell_quote(&dir.display().to_string()));
        }
        cmd
    }
}

/// Remove one copy of the tree, if there.
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

impl Report {
    fn medians(&self) -> RunTimes {
        let of = |f: fn(&RunTimes) -> f64| median(self.runs.iter().map(f).collect());
        RunTimes {
            system_first: false,
            du: of(|r| r.du),
            measure: of(|r| r.measure),
            rm: of(|r| r.rm),
            reclaim: of(|r| r.reclaim),
        }
    }

    /// (`rm -rf` / reclaim, `du -s` / measure), from the medians.
    fn ratios(&self) -> (f64, f64) {
        let m = self.medians();
        (m.rm / m.reclaim, m.du / m.measure)
    }

    /// One row per run, then the medians: run, first, du, measure, rm, reclaim.
    fn rows(&self) -> Vec<Vec<String>> {
        let secs = |s: f64| format!("{s:.3}");
        let mut rows: Vec<Vec<String>> = self
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    (i + 1).to_string(),
                    if r.system_first { "du, rm" } else { "headroom" }.to_string(),
                    secs(r.du),
                    secs(r.measure),
                    secs(r.rm),
                    secs(r.reclaim),
                ]
            })
            .collect();
        let m = self.medians();
        rows.push(vec![
            "median".to_string(),
            String::new(),
            secs(m.du),
            secs(m.measure),
            secs(m.rm),
            secs(m.reclaim),
        ]);
        rows
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
                Ok(()) => "page caches: dropped before each timed operation".to_string(),
                Err(why) => format!("page caches: not dropped ({why})"),
            },
            format!(
                "tree: {} files in {} directories, {} apparent, {} on disk (= `du -sB1 -x`)",
                t.files,
                t.dirs,
                format_size(t.apparent_bytes),
                format_size(t.disk_bytes)
            ),
        ]
    }

    fn goals(&self) -> [(String, f64); 2] {
        let (rm, du) = self.ratios();
        [
            (format!("reclaim ≥ {GOAL}× faster than `rm -rf`"), rm),
            (format!("measure ≥ {GOAL}× faster than `du -s`"), du),
        ]
    }

    fn text(&self) -> String {
        let mut out = String::new();
        out.push_str(&ui::table(
            &["run", "first", "du -s", "measure", "rm -rf", "reclaim"],
            &self.rows(),
        ));
        out.push_str("(seconds)\n\n");
        let (rm, du) = self.ratios();
        let _ = writeln!(out, "rm -rf / reclaim: {rm:.2}×");
        let _ = writeln!(out, "du -s / measure:  {du:.2}×");
        for (goal, ratio) in self.goals() {
            let _ = writeln!(out, "goal: {}: {}", goal.replace('`', ""), met(ratio));
        }
        out.push('\n');
        for line in self.facts_lines() {
            let _ = writeln!(out, "{}", line.replace('`', ""));
        }
        let _ = writeln!(out, "reproduce: {}", self.command);
        out
    }

    fn markdown(&self, date: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{MARK_START}");
        out.push_str("## Reclaim vs `rm -rf`, measure vs `du -s`\n\n");
        let _ = writeln!(
            out,
            "A synthetic tree shaped like the Android SDK, two identical copies per run; \
             which tool goes first alternates between runs. Recorded {date} with:\n"
        );
        let _ = writeln!(out, "```sh\n{}\n```\n", self.command);
        for line in self.facts_lines() {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
        out.push_str(
            "| run | first | `du -s` (s) | measure (s) | `rm -rf` (s) | reclaim (s) |\n\
             |---|---|--:|--:|--:|--:|\n",
        );
        for row in self.rows() {
            let mut row = row;
            if row[0] == "median" {
                for cell in &mut row {
                    if !cell.is_empty() {
                        *cell = format!("**{cell}**");
                    }
                }
            }
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
        let (rm, du) = self.ratios();
        let _ = writeln!(
            out,
            "Ratios of the medians: `rm -rf` / reclaim = {rm:.2}×; `du -s` / measure = {du:.2}×.\n"
        );
        out.push_str("Goals:\n\n");
        for (goal, ratio) in self.goals() {
            let _ = writeln!(out, "- {goal}: {}", met(ratio));
        }
        let _ = writeln!(out, "{MARK_END}");
        out
    }
}

fn met(ratio: f64) -> String {
    if ratio >= GOAL {
        format!("met ({ratio:.2}×)")
    } else {
        format!("not met ({ratio:.2}×)")
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
}
