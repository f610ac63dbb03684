//! Helpers for the workspace tests: the xtask binary, real filesystems (temporary trees and
//! loop-mounted ext4 images), and the harness of the integration binary ([`harness`]): a test
//! that needs root, Docker or a program this machine lacks is reported as ignored, with the
//! reason, and fails under `CI=true`.

pub mod attack;
pub mod engine;
pub mod equiv;
pub mod harness;
pub mod registry;
pub mod remote;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// True under CI (`CI=true`): missing prerequisites are failures there. What a test needs
/// is declared in its module's table and checked by the [`harness`] before it runs.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The repository's root directory.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
}

/// The local Debian base (debootstrap + docker import by `cargo xtask base-image`), made
/// once per test process; its name.
pub fn debian_base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let run = xtask(&["base-image", "--name", "headroom/debian:bookworm"], &[]);
        assert!(run.success(), "cargo xtask base-image: {run:?}");
        run.stdout.trim().to_string()
    })
}

/// The stand-in of NVIDIA's CUDA base (`cargo xtask base-image --cuda`, on the Debian base):
/// its entrypoint, environment, labels, user and paths, without libraries and driver. Made
/// once per test process; its name.
pub fn cuda_base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let run = xtask(&["base-image", "--cuda"], &[]);
        assert!(run.success(), "cargo xtask base-image --cuda: {run:?}");
        run.stdout.trim().to_string()
    })
}

/// Path of the xtask binary, built once per test process with the same profile.
pub fn xtask_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("xtask", "xtask"))
}

/// Path of the `headroom` binary (headroom-cli), built once per test process with the same
/// profile.
pub fn headroom_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("headroom-cli", "headroom"))
}

/// `cargo build -p PACKAGE` with the test's profile; the path of its binary `bin`.
fn build_bin(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--package", package, "--bin", bin]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo build -p {package}: {e}"));
    assert!(status.success(), "cargo build -p {package} failed");
    profile_dir.join(bin)
}

/// The outcome of one xtask run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout as JSON, or a panic that shows both streams.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e})\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Take GitHub Actions' variables (and the tool cache's) out of a command's environment, so a
/// test sees what it sets and nothing of the machine it runs on.
pub fn without_github_env(cmd: &mut Command) {
    for var in [
        "GITHUB_ACTIONS",
        "RUNNER_ENVIRONMENT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
        "AGENT_TOOLSDIRECTORY",
    ] {
        cmd.env_remove(var);
    }
}

/// Run `xtask ARGS` with a clean GitHub environment plus `envs`.
pub fn xtask(args: &[&str], envs: &[(&str, &str)]) -> Run {
    xtask_in(None, args, envs)
}

/// [`xtask`] in the working directory `cwd`.
pub fn xtask_in(cwd: Option<&Path>, args: &[&str], envs: &[(&str, &str)]) -> Run {
    run_in(xtask_bin(), cwd, args, envs)
}

/// Run `headroom ARGS` in `cwd` with a clean GitHub environment plus `envs`.
pub fn headroom_in(cwd: Option<&Path>, args: &[&str], envs: &[(&str, &str)]) -> Run {
    run_in(headroom_bin(), cwd, args, envs)
}

fn run_in(bin: &Path, cwd: Option<&Path>, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.args(args);
    without_github_env(&mut cmd);
    cmd.envs(envs.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Bytes on disk as `du -sB1 -x` counts them (hard links once across all paths).
pub fn du_bytes(paths: &[PathBuf]) -> u64 {
    let out = Command::new("du")
        .args(["-sB1", "-x", "-c"])
        .args(paths)
        .output()
        .expect("running du");
    assert!(
        out.status.success(),
        "du failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text.lines().last().expect("du prints a total");
    total
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du total is a number")
}

/// Run a command, panicking with its stderr when it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small ext4 filesystem in a file, loop-mounted on a temporary directory (root only):
/// the lab's [`headroom_lab::sandbox::LoopFs`]. Unmounted and deleted on drop.
#[derive(Debug)]
pub struct LoopFs {
    // Unmounted before its directory goes.
    fs: headroom_lab::sandbox::LoopFs,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    pub fn new(mib: u64) -> LoopFs {
        LoopFs::of(headroom_lab::sandbox::FsKind::Ext4, mib)
    }

    /// A filesystem of `kind` (at least the size its mkfs accepts).
    pub fn of(kind: headroom_lab::sandbox::FsKind, mib: u64) -> LoopFs {
        let dir = tempfile::Builder::new()
            .prefix("headroom-loopfs-")
            .tempdir()
            .expect("tempdir");
        let fs = headroom_lab::sandbox::LoopFs::create(dir.path(), kind, mib)
            .unwrap_or_else(|e| panic!("a {mib} MiB {kind:?} loop filesystem: {e:#}"));
        LoopFs { fs, _dir: dir }
    }

    pub fn is_mounted(path: &Path) -> bool {
        headroom_lab::sandbox::loopfs::is_mounted(path)
    }

    /// Available bytes after a `syncfs`, as `statvfs` counts them.
    pub fn available(&self) -> u64 {
        self.fs.available().expect("statvfs")
    }
}

impl std::ops::Deref for LoopFs {
    type Target = headroom_lab::sandbox::LoopFs;

    fn deref(&self) -> &Self::Target {
        &self.fs
    }
}

/// Write `len` bytes of non-zero data (so the file is really allocated).
pub fn write_file(path: &Path, len: usize) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Fill `dir` with `files` files of `each` bytes, spread over nested directories.
pub fn fill(dir: &Path, files: usize, each: usize) {
    for i in 0..files {
        let sub = dir.join(format!("d{}/e{}", i % 7, i % 3));
        write_file(&sub.join(format!("f{i}")), each);
    }
}

/// Every path below `root` (symlinks not followed), with file sizes, for before/after checks.
pub fn listing(root: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, meta.len());
        }
    }
    out
}

/// Assert two listings are equal, showing only the first differences.
#[track_caller]
pub fn assert_same_tree(
    before: &BTreeMap<PathBuf, u64>,
    after: &BTreeMap<PathBuf, u64>,
    what: &str,
) {
    let gone: Vec<_> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .take(5)
        .collect();
    let new: Vec<_> = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .take(5)
        .collect();
    let changed: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        gone.is_empty() && new.is_empty() && changed.is_empty(),
        "{what}: gone {gone:?}, new {new:?}, changed {changed:?}"
    );
}

/// Check a pipeline report: it validates against `crates/pipeline/report.schema.json` (with
/// `check-jsonschema` from the tools venv: a test that calls this needs
/// `Tool("check-jsonschema")`) and reads back as `headroom_pipeline::Report`.
pub fn check_report(path: &Path) -> headroom_pipeline::Report {
    let tool = harness::tool("check-jsonschema");
    let schema = repo_root().join("crates/pipeline/report.schema.json");
    let out = Command::new(&tool)
        .arg("--schemafile")
        .arg(&schema)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/provision installs it)", tool.display()));
    assert!(
        out.status.success(),
        "{} does not validate against {}:\n{}{}",
        path.display(),
        schema.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    headroom_pipeline::Report::read(path)
        .unwrap_or_else(|e| panic!("{}: not a typed report: {e}", path.display()))
}

/// Unmount whatever is mounted strictly below `dirs`, deepest first: what a test engine left
/// (network namespaces, overlay mounts).
pub fn unmount_below(dirs: &[&Path]) {
    headroom_lab::sandbox::loopfs::unmount_under(dirs, true);
}

/// A network bridge of a test's own engine, with a free 10.214.x.0/24: the lab's
/// [`headroom_lab::sandbox::Bridge`]; removed on drop. A test engine must never run with
/// `bridge: none`: dockerd then deletes docker0, the main engine's bridge, and every later
/// build on it loses its network.
#[derive(Debug)]
pub struct TestBridge(headroom_lab::sandbox::Bridge);

impl TestBridge {
    /// `seed` spreads engines started at once over different subnets (a port, say).
    pub fn new(prefix: &str, seed: u16) -> TestBridge {
        TestBridge(test_bridge(prefix, seed))
    }
}

impl std::ops::Deref for TestBridge {
    type Target = headroom_lab::sandbox::Bridge;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The bridge `PREFIX{seed % 10000}` on the first free 10.214.x.0/24 from `100 + seed % 150`.
pub fn test_bridge(prefix: &str, seed: u16) -> headroom_lab::sandbox::Bridge {
    let name = format!("{prefix}{}", seed % 10000);
    let thirds = (0..150u16).map(move |i| (100 + (seed + i) % 150) as u8);
    headroom_lab::sandbox::Bridge::create(&name, 214, thirds)
        .unwrap_or_else(|e| panic!("the bridge {name}: {e:#}"))
}

/// The docker CLI with this engine environment (no context): its trimmed stdout, or `None`
/// when it failed.
pub fn docker_with(env: &[(String, String)], args: &[&str]) -> Option<String> {
    let out = Command::new("docker")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("DOCKER_CONTEXT")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
