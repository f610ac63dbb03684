//! A GitHub-hosted runner in a box: the job's user, its directories and environment, and one
//! of the 2026 disk layouts, scaled down, for the workflow runner ([`crate::workflow`]) to run
//! a repository's own workflow in.
//!
//! - **The user.** `runner`, uid 1001, primary group `docker` (the engine's socket needs no
//!   sudo), home `/home/runner`, and — unless the box is made without it — passwordless sudo
//!   through `/etc/sudoers.d/headroom-runner-box`, as on GitHub.
//! - **The directories.** The workspace `/home/runner/work/R/R`, `RUNNER_TEMP` at
//!   `/home/runner/work/_temp`, the step files (`GITHUB_OUTPUT`, `GITHUB_ENV`,
//!   `GITHUB_STEP_SUMMARY`, `GITHUB_PATH`) under it, one set per step.
//! - **The layout.** A loop-mounted ext4 standing for the runner's `/` (and for `dual` a
//!   second one at its `/mnt`), holding the operating system and the preinstalled trees at the
//!   catalog's paths, **root-owned**, in the proportions of `workload/layouts.toml`; what is
//!   left is the runner's free share at the same scale. Steps find it as `$HEADROOM_BOX_ROOT`
//!   (the host's own `/` cannot be swapped for it without a private mount namespace for each
//!   step, which the engine's socket and `sudo` would not see). The box never puts Docker's
//!   data root, the BuildKit image or any infrastructure on it: the layout filesystem holds
//!   only what is measured.
//! - **The programs.** `cargo xtask` is the prebuilt binary, copied into the box (a shim
//!   `cargo` on the runner's `PATH` runs it): toolchain actions are no-ops here.
//!
//! One box at a time per process (a lock), at fixed names, so that what a killed run left is
//! torn down by the next one; the drop tears down everything: the user and its home, the
//! sudoers entry, the mounts, the disk files.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result, bail};

use crate::sandbox::loopfs::{self, Mkfs};
use crate::sh::cmd;
use crate::workload::layouts::{self, HostedLayout};
use crate::workload::runner::{self as runner_fill, AreaSummary};

/// The job's user, as on GitHub.
pub const USER: &str = "runner";
pub const UID: u32 = 1001;
pub const GROUP: &str = "docker";
pub const HOME: &str = "/home/runner";
/// The repository's name: the workspace is `/home/runner/work/R/R`.
pub const REPO: &str = "R";
const SUDOERS: &str = "/etc/sudoers.d/headroom-runner-box";
/// Marks a user this lab made, so that a `runner` it did not make is never removed.
const GECOS: &str = "headroom runner box";

/// What to make.
#[derive(Debug, Clone)]
pub struct BoxSpec {
    /// A layout of `workload/layouts.toml`: `public-145`, `private-72`, `dual`, `arm`.
    pub layout: String,
    /// Passwordless sudo for the runner user, as on GitHub.
    pub sudo: bool,
    /// Where the disk files, mounts and the box's programs go (fixed: a killed run's are
    /// found there).
    pub dir: PathBuf,
    /// The `cargo xtask` the steps run.
    pub xtask: PathBuf,
}

/// A runner box while it stands; torn down when dropped.
#[derive(Debug)]
pub struct RunnerBox {
    pub spec: BoxSpec,
    pub layout: HostedLayout,
    /// The layout's `/`.
    pub root: PathBuf,
    /// What was written to each area of the layout.
    pub areas: Vec<AreaSummary>,
    /// Available on the fresh root filesystem: what the layout was scaled to.
    pub usable: u64,
    _one_at_a_time: MutexGuard<'static, ()>,
}

static ONE_BOX: Mutex<()> = Mutex::new(());

impl RunnerBox {
    /// Tear down what an earlier box left at `spec.dir`, then make the user, the directories
    /// and the layout.
    pub fn create(spec: BoxSpec) -> Result<RunnerBox> {
        if !rustix::process::geteuid().is_root() {
            bail!("the runner box needs root: it adds a user, a sudoers entry and loop mounts");
        }
        let guard = ONE_BOX.lock().unwrap_or_else(|e| e.into_inner());
        let layout = layouts::layout(&spec.layout)?;
        for problem in teardown(&spec.dir) {
            eprintln!("runner box: warning: {problem}");
        }
        let root = spec.dir.join("root");
        let mut made = RunnerBox {
            layout,
            root,
            areas: Vec::new(),
            usable: 0,
            _one_at_a_time: guard,
            spec,
        };
        // On an error, `made` is dropped: torn down.
        made.make()?;
        Ok(made)
    }

    fn make(&mut self) -> Result<()> {
        let start = std::time::Instant::now();
        let say = |what: &str| {
            eprintln!(
                "runner box: {what} ({:.1} s)",
                start.elapsed().as_secs_f64()
            )
        };
        let dir = self.spec.dir.clone();
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        // The runner must reach the layout and the box's programs.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        make_user()?;
        say("user runner made");
        if self.spec.sudo {
            std::fs::write(SUDOERS, format!("{USER} ALL=(ALL) NOPASSWD:ALL\n"))
                .with_context(|| SUDOERS.to_string())?;
            std::fs::set_permissions(SUDOERS, std::fs::Permissions::from_mode(0o440))?;
        }
        // The box's programs: the xtask binary and a `cargo` that runs it.
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin)?;
        let xtask = bin.join("xtask");
        std::fs::copy(&self.spec.xtask, &xtask)
            .with_context(|| format!("copying {}", self.spec.xtask.display()))?;
        std::fs::set_permissions(&xtask, std::fs::Permissions::from_mode(0o755))?;
        let shim = bin.join("cargo");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\n# The runner box's cargo: `cargo xtask` is the prebuilt binary.\n\
                 if [ \"$1\" = xtask ]; then shift; exec {} \"$@\"; fi\n\
                 echo \"runner box: only 'cargo xtask' is provided, not 'cargo $1'\" >&2\n\
                 exit 127\n",
                xtask.display()
            ),
        )?;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755))?;
        // The layout: the root disk, filled root-owned, and the second disk at its /mnt.
        let image = dir.join("root.img");
        loopfs::make(
            &image,
            &self.root,
            self.layout.root_bytes(),
            &Mkfs::runner_disk("hrbox"),
        )
        .with_context(|| format!("making the layout {}", self.layout.describe()))?;
        // Scaled to what the fresh filesystem makes available, as the simulator does: what
        // is left after the fill is the runner's free share of it.
        let usable = headroom_disk::available_bytes(&self.root)?;
        self.usable = usable;
        say(&format!("made {}", self.layout.describe()));
        self.areas = runner_fill::fill(&self.root, &self.layout.root, usable)
            .with_context(|| format!("filling {}", self.root.display()))?;
        if let Some(bytes) = self.layout.second_bytes() {
            loopfs::make(
                &dir.join("second.img"),
                &self.root.join("mnt"),
                bytes,
                &Mkfs::runner_disk("hrbox-mnt"),
            )?;
        }
        say("filled");
        // The runner's directories, its own.
        for d in [self.workspace(), self.temp()] {
            std::fs::create_dir_all(&d).with_context(|| d.display().to_string())?;
        }
        chown_runner(Path::new(HOME))?;
        Ok(())
    }

    /// `/home/runner/work/R/R`.
    pub fn workspace(&self) -> PathBuf {
        Path::new(HOME).join("work").join(REPO).join(REPO)
    }

    /// `RUNNER_TEMP`: `/home/runner/work/_temp`.
    pub fn temp(&self) -> PathBuf {
        Path::new(HOME).join("work/_temp")
    }

    /// The box's programs (`cargo`, `xtask`), first on the runner's `PATH`.
    pub fn bin(&self) -> PathBuf {
        self.spec.dir.join("bin")
    }

    /// The Actions environment of a job in this box (the step files are the runner's, per
    /// step: see the workflow runner).
    pub fn environment(&self) -> BTreeMap<String, String> {
        let arm = self.layout.name == "arm";
        let vars = [
            ("CI", "true".to_string()),
            ("GITHUB_ACTIONS", "true".into()),
            ("RUNNER_ENVIRONMENT", "github-hosted".into()),
            ("RUNNER_OS", "Linux".into()),
            ("RUNNER_ARCH", if arm { "ARM64" } else { "X64" }.into()),
            ("ImageOS", "ubuntu24".into()),
            ("HOME", HOME.into()),
            ("USER", USER.into()),
            ("LOGNAME", USER.into()),
            (
                "PATH",
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.bin().display()
                ),
            ),
            ("RUNNER_TEMP", self.temp().display().to_string()),
            ("GITHUB_WORKSPACE", self.workspace().display().to_string()),
            ("GITHUB_REPOSITORY", format!("headroom-lab/{REPO}")),
            (
                "GITHUB_SHA",
                "0123456789abcdef0123456789abcdef01234567".into(),
            ),
            ("GITHUB_REF", "refs/heads/main".into()),
            ("GITHUB_REF_NAME", "main".into()),
            ("GITHUB_EVENT_NAME", "push".into()),
            ("HEADROOM_BOX_ROOT", self.root.display().to_string()),
            ("HEADROOM_BOX_LAYOUT", self.layout.name.clone()),
            // One of the runner's GB in the box: how headroom reads the layout's sizes.
            (
                "HEADROOM_RUNNER_GB",
                format!("{}MiB", self.layout.mib_per_gb),
            ),
        ];
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Paths under the runner's home (not crossing into other filesystems) owned by root: a
    /// step that ran something as root and left its files where the user cannot remove them.
    pub fn root_owned_in_home(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(home) = std::fs::symlink_metadata(HOME) else {
            return found;
        };
        walk_root_owned(Path::new(HOME), home.dev(), &mut found);
        found
    }
}

impl Drop for RunnerBox {
    fn drop(&mut self) {
        for problem in teardown(&self.spec.dir) {
            eprintln!("runner box: warning: {problem}");
        }
    }
}

fn walk_root_owned(dir: &Path, dev: u64, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if m.uid() == 0 {
            found.push(path.clone());
        }
        if m.is_dir() && m.dev() == dev {
            walk_root_owned(&path, dev, found);
        }
    }
}

/// Make the user `runner` (uid 1001, group docker, home /home/runner), unless this lab's own
/// is there; refuse one it did not make.
fn make_user() -> Result<()> {
    if let Some(line) = passwd_line(USER) {
        bail!("a user {USER} that the runner box did not make is there ({line}): not touching it");
    }
    if let Some(line) = passwd_uid(UID) {
        bail!("uid {UID} is taken ({line}): the runner box needs it for {USER}");
    }
    if cmd("getent", ["group", GROUP]).read().is_err() {
        cmd("groupadd", ["--system", GROUP]).read()?;
    }
    cmd(
        "useradd",
        [
            "--uid",
            &UID.to_string(),
            "--gid",
            GROUP,
            "--home-dir",
            HOME,
            "--create-home",
            "--shell",
            "/bin/bash",
            "--comment",
            GECOS,
            USER,
        ],
    )
    .read()
    .context("adding the runner user")?;
    Ok(())
}

fn passwd_line(user: &str) -> Option<String> {
    let line = cmd("getent", ["passwd", user]).read().ok()?;
    let line = line.trim().to_string();
    (!line.is_empty() && !line.contains(GECOS)).then_some(line)
}

fn passwd_uid(uid: u32) -> Option<String> {
    let line = cmd("getent", ["passwd", &uid.to_string()]).read().ok()?;
    let line = line.trim().to_string();
    (!line.is_empty() && !line.contains(GECOS)).then_some(line)
}

/// `chown -R runner:docker PATH`, not following symbolic links.
pub fn chown_runner(path: &Path) -> Result<()> {
    cmd(
        "chown",
        [
            OsStr::new("-R"),
            OsStr::new("-h"),
            OsStr::new(&format!("{USER}:{GROUP}")),
            path.as_os_str(),
        ],
    )
    .read()
    .map(drop)
}

/// Remove everything a box makes, found by its fixed names: the runner's processes are the
/// caller's to have ended; the user (this lab's only) with its home, the sudoers entry, the
/// mounts under `dir`, the disk files. What could not be undone.
pub fn teardown(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if Path::new(SUDOERS).exists()
        && let Err(e) = std::fs::remove_file(SUDOERS)
    {
        problems.push(format!("removing {SUDOERS}: {e}"));
    }
    let ours = cmd("getent", ["passwd", USER])
        .read()
        .is_ok_and(|l| l.contains(GECOS));
    if ours && let Err(e) = cmd("userdel", ["--remove", USER]).read() {
        // userdel complains of a missing mail spool, and still removes the user.
        if cmd("getent", ["passwd", USER]).read().is_ok() {
            problems.push(format!("removing the user {USER}: {e:#}"));
        }
    }
    if ours && Path::new(HOME).exists() {
        let outcome = headroom_disk::remove_tree(Path::new(HOME), &[], &|_| {});
        if let Some(e) = outcome.errors.first() {
            problems.push(format!("removing {HOME}: {e}"));
        }
    }
    problems.extend(loopfs::unmount_under(&[dir], false));
    problems.extend(loopfs::discard(&dir.join("second.img")));
    problems.extend(loopfs::discard(&dir.join("root.img")));
    if dir.exists() {
        let outcome = headroom_disk::remove_tree(dir, &[], &|_| {});
        if let Some(e) = outcome.errors.first() {
            problems.push(format!("removing {}: {e}", dir.display()));
        }
    }
    problems
}
