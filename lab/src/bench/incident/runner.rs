//! The incident's runner: a sparse loop-mounted disk with the layout's preinstalled trees
//! allocated on it, a dedicated dockerd with its data root there and a registry, apart from
//! the simulator's and torn down by name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use headroom_disk::format_size;

use crate::sandbox::bridge::Bridge;
use crate::sandbox::engine::{self, Engine, EngineSpec, Listen, Start};
use crate::sandbox::loopfs::{self, Mkfs};
use crate::sandbox::registry::Registry;
use crate::sandbox::runner::{Layout, say};
use crate::signals;
use crate::workload::runner::Area;

/// Fixed and apart from the simulator's, so a killed run's leftovers are found by name and
/// a simulation running beside it is not touched.
const RUN_DIR: &str = "/run/headroom-incident";
const BRIDGE: &str = "hrinc0";
pub(super) const GB: f64 = 1e9;

/// The runner's disk, engine and registry, apart from the simulator's; everything torn down
/// by name on drop, and before a run (what a killed one left).
pub(super) struct Sandbox {
    pub(super) layout: Layout,
    engine: Option<Engine>,
    registry: Option<Registry>,
}

impl Sandbox {
    pub(super) fn new(mut layout: Layout) -> Sandbox {
        layout.run_dir = PathBuf::from(RUN_DIR);
        for problem in teardown(&layout) {
            say(&format!("warning: {problem}"));
        }
        Sandbox {
            layout,
            engine: None,
            registry: None,
        }
    }

    pub(super) fn make_disk(&self, size: u64) -> Result<()> {
        let l = &self.layout;
        for dir in [&l.work, &l.logs, &l.mnt] {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        loopfs::make(&l.disk_file, &l.mnt, size, &Mkfs::runner_disk("hrincident"))
    }

    pub(super) fn start_engine(&mut self) -> Result<&Engine> {
        let l = &self.layout;
        let engine = Engine::start(EngineSpec {
            dir: l.run_dir.clone(),
            config: l.daemon_json(),
            settings: serde_json::json!({"log-level": "warn"}),
            data_root: l.data_root.clone(),
            data_root_as_flag: false,
            bridge: Bridge::create(BRIDGE, 215, 100..=104)?,
            log: l.logs.join("dockerd.log"),
            listen: Listen::Socket,
            start: Start::Waits,
            extra_path: None,
        })?;
        Ok(self.engine.insert(engine))
    }

    pub(super) fn engine(&self) -> Result<&Engine> {
        self.engine
            .as_ref()
            .context("the runner's engine is not started")
    }

    pub(super) fn start_registry(&mut self) -> Result<()> {
        self.registry = Some(Registry::start_in(
            &self.layout.work.join("registry"),
            "headroom",
        )?);
        Ok(())
    }

    pub(super) fn registry(&self) -> Result<&Registry> {
        self.registry
            .as_ref()
            .context("the runner's registry is not started")
    }
}

impl Drop for Sandbox {
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

/// Stop and remove what a run starts, found by its fixed names; what could not be undone.
fn teardown(layout: &Layout) -> Vec<String> {
    engine::stop_leftovers(&layout.run_dir, &[&layout.work]);
    let mut problems = loopfs::unmount_under(&[&layout.run_dir, &layout.mnt], false);
    problems.extend(loopfs::discard(&layout.disk_file));
    for dir in [layout.run_dir.clone(), layout.work.join("registry")] {
        if dir.exists() {
            let outcome = headroom_disk::remove_tree(&dir, &[], &|_| {});
            if let Some(e) = outcome.errors.first() {
                problems.push(format!("removing {}: {e}", dir.display()));
            }
        }
    }
    if let Err(e) = Bridge::remove(BRIDGE) {
        problems.push(format!("removing the bridge {BRIDGE}: {e:#}"));
    }
    problems
}

/// The preinstalled trees (every area but the first, the operating system) at `scale` of
/// their sizes, then the operating system's area until `free` is left.
pub(super) fn fill(layout: &Layout, areas: &[Area], scale: f64, free: u64) -> Result<()> {
    let root = &layout.runner_root;
    for (i, area) in areas.iter().enumerate().skip(1) {
        let dir = root.join(area.path.trim_start_matches('/'));
        let bytes = (area.gb * scale * GB) as u64;
        let files = allocate_area(&dir, bytes, area.mean_file_kb.max(1) * 1024, i as u64)
            .with_context(|| format!("filling {}", dir.display()))?;
        say(&format!(
            "{}: {} in {files} files",
            area.path,
            format_size(bytes)
        ));
    }
    let Some(os) = areas.first() else {
        return Ok(());
    };
    let dir = root.join(os.path.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mut n = 0u64;
    loop {
        signals::check()?;
        let available = headroom_disk::available_bytes(&layout.mnt)?;
        if available <= free + (1 << 20) {
            break;
        }
        let size = (available - free).min(256 << 20);
        allocate(&dir.join(format!("part{n:05}")), size)?;
        n += 1;
    }
    let available = headroom_disk::available_bytes(&layout.mnt)?;
    if available + (512 << 20) < free {
        bail!(
            "the runner's disk has {} free after the trees, under the {} wanted: the \
             filesystem's own overhead is bigger than the operating system's share at this scale",
            format_size(available),
            format_size(free)
        );
    }
    Ok(())
}

/// `bytes` allocated in files averaging `mean` bytes (sizes cycle through ¼, ½, 1 and 2¼ of
/// it, as the simulator's), 64 to a directory.
fn allocate_area(dir: &Path, bytes: u64, mean: u64, seed: u64) -> Result<u64> {
    const SHAPE: [u64; 4] = [1, 2, 4, 9];
    let mut done = 0u64;
    let mut files = 0u64;
    while done < bytes {
        if files % 256 == 0 {
            signals::check()?;
        }
        let sub = dir.join(format!("lib{:04}", files / 64));
        if files % 64 == 0 {
            std::fs::create_dir_all(&sub).with_context(|| sub.display().to_string())?;
        }
        let size = (mean * SHAPE[((files + seed) % 4) as usize] / 4).clamp(1, bytes - done);
        allocate(&sub.join(format!("f{files:06}.so")), size)?;
        done += size;
        files += 1;
    }
    Ok(files)
}

fn allocate(path: &Path, size: u64) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size)
        .with_context(|| format!("fallocate {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_allocated_to_the_byte_in_files_of_their_mean_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = allocate_area(dir.path(), 5_000_000, 100_000, 0).expect("allocate");
        assert!((40..=60).contains(&files), "{files} files");
        let total: u64 = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).expect("read_dir").flatten())
            .map(|f| f.metadata().expect("meta").len())
            .sum();
        assert_eq!(total, 5_000_000);
    }
}
