//! Helpers for the adversarial deletion suite (`tests/tests/it/free_attacks.rs`): each test body
//! runs in a private mount namespace, on small loop-mounted ext4, xfs or btrfs filesystems,
//! with content snapshots (every file's size and checksum) of what must survive, and a
//! seeded PRNG for the random trees.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Set in the re-executed test process: the body runs, already in its own mount namespace.
const NS_VAR: &str = "HEADROOM_ATTACK_IN_NS";

/// The resolver the body is run under (`HEADROOM_RESOLVER`): "default" or "fallback".
pub fn resolver() -> &'static str {
    match std::env::var("HEADROOM_RESOLVER").as_deref() {
        Ok("fallback") => "fallback",
        _ => "default",
    }
}

/// The `resolver` a report must name under [`resolver`]: the fallback is forced by
/// `HEADROOM_RESOLVER=fallback`; otherwise this kernel (≥ 5.6) has openat2.
pub fn expected_resolver() -> &'static str {
    match resolver() {
        "fallback" => "openat+mount-id",
        _ => "openat2",
    }
}

/// True inside the re-executed test process (run the body); false in the outer one, after
/// the body has run and passed in a private mount namespace (`unshare -m --propagation
/// private`). The test needs root (`Need::Root` in its table).
///
/// `unshare()` in the test thread would not do: the deleter runs on a thread pool whose
/// threads keep the namespace they were started in, so the whole process is re-executed.
pub fn in_private_mount_ns() -> bool {
    in_namespaces(&[None])
}

/// [`in_private_mount_ns`], with the body run twice: with the default resolver and with
/// `HEADROOM_RESOLVER=fallback` (openat + mount id), each in its own process and namespace.
pub fn in_private_mount_ns_each_resolver() -> bool {
    in_namespaces(&[None, Some("fallback")])
}

fn in_namespaces(resolvers: &[Option<&str>]) -> bool {
    // What `--exact` matches: the harness runs each test on a thread named after it.
    let test = crate::harness::current_test().expect("a test run by headroom_tests::harness");
    if std::env::var_os(NS_VAR).is_some() {
        eprintln!("{test}: resolver {}", resolver());
        return true;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut failures = Vec::new();
    for r in resolvers {
        let label = r.unwrap_or("default");
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private"])
            .arg(&exe)
            .args(["--exact", &test, "--nocapture", "--test-threads=1"])
            .env(NS_VAR, "1");
        match r {
            Some(v) => cmd.env("HEADROOM_RESOLVER", v),
            None => cmd.env_remove("HEADROOM_RESOLVER"),
        };
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{test}: running unshare: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A filter that matches nothing also exits 0: the body must have run and passed.
        let passed = out.status.success() && text.contains("test result: ok. 1 passed");
        if passed {
            // Its output is shown when it fails (the harness does not capture a passing
            // test's output, as libtest did).
            eprintln!("{test}, resolver {label}: passed in its own mount namespace");
        } else {
            failures.push(format!("resolver {label}: {}", excerpt(&text)));
        }
    }
    assert!(
        failures.is_empty(),
        "{test} failed in its private mount namespace:\n{}",
        failures.join("\n=====\n")
    );
    false
}

/// What a failed run said: its first panic and its last one (else its end), each at most
/// 6000 bytes.
fn excerpt(text: &str) -> String {
    const MAX: usize = 6000;
    let clip = |start: usize| {
        let mut start = start.min(text.len());
        while !text.is_char_boundary(start) {
            start += 1;
        }
        let mut end = (start + MAX).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[start..end]
    };
    match (text.find("panicked at"), text.rfind("panicked at")) {
        (Some(first), Some(last)) if first == last => clip(first).to_string(),
        (Some(first), Some(last)) => format!("{}\n[…]\n{}", clip(first), clip(last)),
        _ => clip(text.len().saturating_sub(MAX)).to_string(),
    }
}

/// Filesystem types the suite makes.
pub use headroom_lab::sandbox::FsKind;

/// Make a filesystem of `kind` in the image file `img`: no reserved blocks and, for ext4, no
/// lazy init, so free space is exact and steady.
pub fn make_fs(kind: FsKind, img: &str) {
    headroom_lab::sandbox::Mkfs::steady(kind)
        .make(Path::new(img))
        .unwrap_or_else(|e| panic!("{img}: {e:#}"));
}

/// A small filesystem in a sparse file, loop-mounted on a temporary directory (root only,
/// inside the test's private mount namespace): the lab's loop filesystem. Unmounted and
/// deleted on drop.
#[derive(Debug)]
pub struct TestFs(crate::LoopFs);

impl TestFs {
    pub fn ext4(mib: u64) -> TestFs {
        TestFs::new(FsKind::Ext4, mib)
    }

    /// At least the size `kind`'s mkfs accepts (300 MiB for xfs, 160 for btrfs).
    pub fn new(kind: FsKind, mib: u64) -> TestFs {
        TestFs(crate::LoopFs::of(kind, mib))
    }

    /// Available bytes after a `syncfs`, as `statvfs` counts them.
    pub fn available(&self) -> u64 {
        self.0.available()
    }
}

impl std::ops::Deref for TestFs {
    type Target = crate::LoopFs;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// `syncfs` on the filesystem holding `path`, so that freed blocks show in `statvfs`.
pub use headroom_lab::sandbox::loopfs::sync_fs;

fn unmount(path: &Path) {
    let _ = headroom_lab::sandbox::loopfs::unmount(path);
}

/// A mount made by the test, unmounted on drop.
#[derive(Debug)]
pub struct MountGuard {
    pub target: PathBuf,
    mounted: bool,
}

impl MountGuard {
    /// Unmount now (the hidden tree below becomes visible again).
    pub fn unmount(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if self.mounted {
            self.mounted = false;
            unmount(&self.target);
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        self.release();
    }
}

/// `mount --bind SOURCE TARGET`: of the same filesystem it shares `st_dev` with everything
/// else; of another [`TestFs`]'s mount point it puts that filesystem at `target`.
pub fn bind(source: &Path, target: &Path) -> MountGuard {
    try_bind(source, target).unwrap_or_else(|e| panic!("{e}"))
}

/// [`bind`], with an error instead of a panic (for progress hooks on the deleter's threads).
pub fn try_bind(source: &Path, target: &Path) -> Result<MountGuard, String> {
    let out = Command::new("mount")
        .arg("--bind")
        .arg(source)
        .arg(target)
        .output()
        .map_err(|e| format!("mount --bind: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mount --bind {} {}: {}",
            source.display(),
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(MountGuard {
        target: target.to_path_buf(),
        mounted: true,
    })
}

/// Mount points in this namespace.
pub use headroom_lab::sandbox::loopfs::mount_points;

/// True when `path` is a mount point in this namespace.
pub fn is_mount_point(path: &Path) -> bool {
    headroom_lab::sandbox::loopfs::is_mounted(path)
}

/// One entry of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    /// Size and FNV-1a checksum of the content.
    File {
        len: u64,
        hash: u64,
    },
    Symlink(PathBuf),
    Other,
}

/// Every entry below a directory, by path relative to it, with each file's size and
/// checksum: what "intact" means in this suite (count and content). Symlinks are recorded,
/// never followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Entry>);

impl Snapshot {
    /// Everything below `root` (empty when `root` is missing).
    pub fn of(root: &Path) -> Snapshot {
        Snapshot::of_except(root, &[])
    }

    /// Everything below `root` except the subtrees at the absolute paths `skip`.
    pub fn of_except(root: &Path, skip: &[PathBuf]) -> Snapshot {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        // Bounded: a tree in these tests has far fewer entries.
        let mut budget = 1_000_000usize;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                budget = budget.checked_sub(1).expect("snapshot: over 1e6 entries");
                let p = e.path();
                if skip.iter().any(|s| p.starts_with(s)) {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                let rel = p.strip_prefix(root).expect("below root").to_path_buf();
                let ft = meta.file_type();
                let entry = if ft.is_dir() {
                    stack.push(p.clone());
                    Entry::Dir
                } else if ft.is_symlink() {
                    Entry::Symlink(std::fs::read_link(&p).unwrap_or_default())
                } else if ft.is_file() {
                    Entry::File {
                        len: meta.len(),
                        hash: checksum(&p),
                    }
                } else {
                    Entry::Other
                };
                out.insert(rel, entry);
            }
        }
        Snapshot(out)
    }

    /// The entries not below any of the relative paths `prefixes`.
    pub fn without(&self, prefixes: &[PathBuf]) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .filter(|(p, _)| !prefixes.iter().any(|x| p.starts_with(x)))
                .map(|(p, e)| (p.clone(), e.clone()))
                .collect(),
        )
    }

    pub fn files(&self) -> usize {
        self.0
            .values()
            .filter(|e| matches!(e, Entry::File { .. }))
            .count()
    }

    pub fn bytes(&self) -> u64 {
        self.0
            .values()
            .map(|e| match e {
                Entry::File { len, .. } => *len,
                _ => 0,
            })
            .sum()
    }

    /// Panics, showing the first differences, unless `now` equals `self`.
    #[track_caller]
    pub fn assert_same(&self, now: &Snapshot, what: &str) {
        let gone: Vec<_> = self
            .0
            .keys()
            .filter(|k| !now.0.contains_key(*k))
            .take(8)
            .collect();
        let new: Vec<_> = now
            .0
            .keys()
            .filter(|k| !self.0.contains_key(*k))
            .take(8)
            .collect();
        let changed: Vec<_> = self
            .0
            .iter()
            .filter(|(k, v)| now.0.get(*k).is_some_and(|n| n != *v))
            .map(|(k, _)| k)
            .take(8)
            .collect();
        assert!(
            gone.is_empty() && new.is_empty() && changed.is_empty(),
            "{what}: {} of {} entries gone (first: {gone:?}), new {new:?}, changed {changed:?} \
             (files {} before, {} now)",
            self.0.keys().filter(|k| !now.0.contains_key(*k)).count(),
            self.0.len(),
            self.files(),
            now.files()
        );
    }
}

/// FNV-1a (64 bit) of a file's content.
pub fn checksum(path: &Path) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The lab's deterministic generator (SplitMix64): the same seed, the same tree.
pub use headroom_lab::workload::Rng;

/// Write `len` bytes from `rng` (non-zero, so the file is really allocated).
pub fn write_random(path: &Path, len: usize, rng: &mut Rng) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        data.extend_from_slice(&(rng.next_u64() | 0x0101_0101_0101_0101).to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Plant a tree of precious data at `dir` (nested files of assorted sizes, a symlink, a hard
/// link) and return its snapshot; it is never empty.
pub fn plant_precious(dir: &Path, seed: u64) -> Snapshot {
    let mut rng = Rng::new(seed);
    for i in 0..24u64 {
        let sub = dir.join(format!("p{}/q{}", i % 4, i % 3));
        let len = rng.range(1, 40_000) as usize;
        write_random(&sub.join(format!("precious-{i}.bin")), len, &mut rng);
    }
    write_random(&dir.join("big.bin"), 1_500_000, &mut rng);
    std::os::unix::fs::symlink("big.bin", dir.join("link-to-big")).expect("symlink");
    std::fs::hard_link(dir.join("big.bin"), dir.join("p0/hard-big.bin")).expect("hard link");
    let snap = Snapshot::of(dir);
    assert!(snap.files() > 20, "precious tree planted");
    snap
}

/// A report (library or CLI) as JSON, so tests read fields that may not exist yet.
pub fn report_json(report: &headroom_disk::FreeReport) -> Value {
    serde_json::to_value(report).expect("FreeReport serializes")
}

/// The item `name` of a report.
#[track_caller]
pub fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["items"]
        .as_array()
        .expect("items array")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("item {name} missing from {report:#}"))
}

/// An item's `reason`, lower case ("" when there is none).
pub fn reason(item: &Value) -> String {
    item["reason"].as_str().unwrap_or("").to_lowercase()
}

/// An item's action ("removed", "failed", "skipped", "planned").
pub fn action(item: &Value) -> &str {
    item["action"].as_str().unwrap_or("")
}

/// A byte count field that must be there.
#[track_caller]
pub fn bytes(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is not a byte count: {value}"))
}

/// Whether `freed` is within 1 % of the filesystem's `delta`.
pub fn within_1pct(freed: u64, delta: i64) -> bool {
    let f = freed as f64;
    let d = delta as f64;
    (f - d).abs() <= 0.01 * f.max(d.abs())
}

/// The report names the resolver this run forced or expects.
#[track_caller]
pub fn assert_resolver(report: &Value) {
    assert_eq!(
        report["resolver"].as_str(),
        Some(expected_resolver()),
        "report.resolver under HEADROOM_RESOLVER={} (report.resolver: {:?})",
        resolver(),
        report.get("resolver")
    );
}

/// A plan of the built-in catalog under `root`, of the `only` items, everything taken.
pub fn plan_only(
    root: &Path,
    only: &[&str],
    progress: &dyn headroom_disk::Progress,
) -> headroom_disk::Plan {
    headroom_disk::plan(
        &headroom_disk::Catalog::builtin(),
        &headroom_disk::Environment::under_root(root),
        &headroom_disk::PlanRequest {
            target_path: root.to_path_buf(),
            need: None,
            selection: headroom_disk::Selection {
                all: true,
                only: only.iter().map(|s| s.to_string()).collect(),
                skip: Vec::new(),
            },
            protect: Vec::new(),
        },
        progress,
    )
    .unwrap_or_else(|e| panic!("plan under {}: {e}", root.display()))
}

/// A one-shot signal between threads, waited for with a bound.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Wait until opened; false when `timeout` passed first.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while !*open {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            open = self
                .cond
                .wait_timeout(open, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Opens a [`Gate`] when dropped (so a panicking test never leaves a thread waiting).
#[derive(Debug)]
pub struct OpenOnDrop<'a>(pub &'a Gate);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}
