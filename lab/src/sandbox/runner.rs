//! The simulated runner: a loop-mounted ext4 playing a CI runner's root disk (and, on the
//! dual layout, a second disk at the runner's `/mnt`), a throwaway engine keeping its data
//! root there, and the registry the runs push to.
//!
//! Everything sits at fixed paths and names, so that what a killed run left is found and
//! torn down by the next one ([`teardown`]). The simulator and `bench store` run in it.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::sandbox::base_image::busybox_image_all_applets;
use crate::sandbox::bridge::Bridge;
use crate::sandbox::engine::{self, Engine, EngineSpec, Listen, Start};
use crate::sandbox::loopfs::{self, Mkfs};
use crate::sandbox::registry::Registry;

/// Short and fixed, so a killed run's leftovers are found by name (and the socket path stays
/// under the 108-byte limit of unix sockets).
pub const RUN_DIR: &str = "/run/headroom-simulate";
/// The runner engine's bridge.
pub const BRIDGE: &str = "hrsim0";
/// The base of the workload: busybox with all its applets.
pub const BASE_IMAGE: &str = "headroom/sim-base";

/// One line of progress (plain: it interleaves with the runs' own lines).
pub fn say(line: &str) {
    eprintln!("simulate: {line}");
}

/// Every path a run uses.
#[derive(Debug, Clone)]
pub struct Layout {
    pub work: PathBuf,
    pub disk_file: PathBuf,
    /// The second disk (dual layout), mounted at the runner's `/mnt`.
    pub second_file: PathBuf,
    pub mnt: PathBuf,
    /// The synthetic runner's `/` (on the simulated disk).
    pub runner_root: PathBuf,
    /// The runner engine's data root (on the simulated disk).
    pub data_root: PathBuf,
    pub logs: PathBuf,
    pub run_dir: PathBuf,
}

impl Layout {
    pub fn new(work: PathBuf) -> Layout {
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

    /// The runner's second disk: its `/mnt`.
    pub fn second_mnt(&self) -> PathBuf {
        self.runner_root.join("mnt")
    }

    /// The engine's configuration, where the runner keeps it.
    pub fn daemon_json(&self) -> PathBuf {
        self.runner_root.join("etc/docker/daemon.json")
    }
}

/// A simulated runner while it runs: torn down, whatever happens (errors, Ctrl-C unwinding
/// the stack), when dropped.
#[derive(Debug)]
pub struct Runner {
    pub layout: Layout,
    engine: Option<Engine>,
    pub registry: Option<Registry>,
}

impl Runner {
    /// Tear down what an earlier run left at `layout`'s paths; an empty runner.
    pub fn new(layout: Layout) -> Runner {
        for problem in teardown(&layout) {
            say(&format!("warning: {problem}"));
        }
        Runner {
            layout,
            engine: None,
            registry: None,
        }
    }

    /// The runner's root disk: `size` bytes of ext4 at `mnt`.
    pub fn make_disk(&self, size: u64) -> Result<()> {
        let l = &self.layout;
        for dir in [&l.work, &l.logs, &l.mnt] {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        loopfs::make(&l.disk_file, &l.mnt, size, &Mkfs::runner_disk("hrsim"))
    }

    /// The dual layout's second disk: a larger ext4 at the runner's `/mnt`, empty.
    pub fn make_second_disk(&self, size: u64) -> Result<()> {
        let l = &self.layout;
        loopfs::make(
            &l.second_file,
            &l.second_mnt(),
            size,
            &Mkfs::runner_disk("hrsim-mnt"),
        )
    }

    /// Start the runner's engine with its data root on the runner's disk, its daemon.json
    /// where the runner keeps it (with settings besides the data root that a move must
    /// keep, and `settings`), and a service that starts it as systemd does.
    pub fn start_engine(&mut self, settings: &serde_json::Value) -> Result<&Engine> {
        say("starting a dedicated dockerd with its data root on the runner's disk");
        let l = &self.layout;
        let mut all = serde_json::json!({
            "log-level": "warn",
            "labels": ["headroom-simulate=runner"],
        });
        if let (Some(map), Some(extra)) = (all.as_object_mut(), settings.as_object()) {
            map.extend(extra.clone());
        }
        let engine = Engine::start(EngineSpec {
            dir: l.run_dir.clone(),
            config: l.daemon_json(),
            settings: all,
            data_root: l.data_root.clone(),
            data_root_as_flag: false,
            bridge: Bridge::create(BRIDGE, 213, 213..=217)?,
            log: l.logs.join("dockerd.log"),
            listen: Listen::Socket,
            start: Start::Waits,
            extra_path: None,
        })?;
        Ok(self.engine.insert(engine))
    }

    /// The runner's engine; an error before [`Runner::start_engine`].
    pub fn engine(&self) -> Result<&Engine> {
        self.engine
            .as_ref()
            .context("the simulated runner's engine is not started")
    }

    /// The registry the runs push to, with a password of its own.
    pub fn start_registry(&mut self) -> Result<&Registry> {
        let registry = Registry::start_in(&self.layout.work.join("registry"), "headroom")?;
        Ok(self.registry.insert(registry))
    }

    /// The workload's base: busybox with all its applets (httpd, wget, stat), nothing pulled.
    pub fn import_base(&self) -> Result<()> {
        busybox_image_all_applets(
            BASE_IMAGE,
            Some(&self.engine()?.host),
            &self.layout.work.join("base"),
        )
        .context("importing the simulator's base image")
    }

    /// Back to an engine holding only the base image: no build cache, images or containers
    /// from the run before.
    pub fn reset_engine(&self) -> Result<()> {
        self.engine()?
            .docker(&["system", "prune", "--all", "--force"])
            .read()?;
        self.import_base()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(mut r) = self.registry.take() {
            r.stop();
        }
        say("tearing down: engine, registry, mount, disk file, bridge");
        if let Some(mut engine) = self.engine.take()
            && let Err(e) = engine.stop()
        {
            say(&format!("warning: stopping the engine: {e:#}"));
        }
        for problem in teardown(&self.layout) {
            say(&format!("warning: {problem}"));
        }
    }
}

/// Stop and remove everything a run starts, found by its fixed names, so this also cleans
/// up after a run that was killed. Returns what could not be undone.
pub fn teardown(layout: &Layout) -> Vec<String> {
    // 1. The engine, gracefully, then anything of ours still running.
    engine::stop_leftovers(&layout.run_dir, &[&layout.work]);
    // 2. Mounts beneath the run directory (network namespaces) and the disks, deepest first.
    let mut problems = loopfs::unmount_under(&[&layout.run_dir, &layout.mnt], false);
    // 3. Loop devices still backed by the disk files, then the files.
    problems.extend(loopfs::discard(&layout.disk_file));
    problems.extend(loopfs::discard(&layout.second_file));
    // 4. The run directory (sockets, pid files), the bridge.
    if layout.run_dir.exists() {
        let outcome = headroom_disk::remove_tree(&layout.run_dir, &[], &|_| {});
        if let Some(e) = outcome.errors.first() {
            problems.push(format!("removing {}: {e}", layout.run_dir.display()));
        }
    }
    if let Err(e) = Bridge::remove(BRIDGE) {
        problems.push(format!("removing the bridge {BRIDGE}: {e:#}"));
    }
    problems
}
