//! Carrying out a plan: parallel deletion, host reclaimers, and a per-item account.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rayon::prelude::*;

use crate::accounting;
use crate::action::Action;
use crate::catalog::{Catalog, ReclaimKind};
use crate::error::Result;
use crate::fsio;
use crate::host;
use crate::lock;
use crate::measure::measure_excluding;
use crate::plan::{
    self, Environment, Plan, PlanRequest, PlannedItem, Selection, join_paths as join, within,
};
use crate::progress::{Event, NoProgress, Progress};
use crate::remove::{Links, remove_planned};
use crate::report::{FreeReport, ItemReport, lossy};
use crate::resolve::{self, Resolve};
use crate::usage::{available_bytes, sync_filesystem};

/// Options of a reclaim.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReclaimOptions {
    /// Report the plan, delete nothing.
    pub dry_run: bool,
}

/// Carry out `plan`. Items fail one by one: a failing item never stops the others.
///
/// Before the first unlink: the lock of the plan's directory is taken (one deleter at a
/// time), the directory the plan resolved from must still be the one it opened, and each
/// item's paths must still be the inodes, on the mounts, that were planned. Afterwards the
/// bytes counted are checked against the filesystem's own figure (see [`Accounting`]).
///
/// [`Accounting`]: crate::Accounting
pub fn reclaim(plan: &Plan, options: ReclaimOptions, progress: &dyn Progress) -> FreeReport {
    let mut report = FreeReport::from_plan(plan);
    if options.dry_run {
        return report;
    }
    report.dry_run = false;
    for item in &mut report.items {
        if item.action == Action::Planned {
            item.freed_bytes = 0;
        }
    }
    report.freed_bytes = 0;
    let start = Instant::now();
    // Read free space at the mount point: the target path itself may be inside an item.
    let target = plan.filesystem.mount_point.clone();
    let dev = rustix::fs::stat(&target).map_or(0, |s| s.st_dev);
    let anchor = plan.anchor.as_deref();

    // Refusals that hold for every item: another instance, or a root replaced since planning.
    let mut refusal = None;
    let _lock = match anchor.map(|a| lock::acquire(&a.id)) {
        Some(Ok(lock)) => {
            report.lock = Some(lock.path.to_string_lossy().into_owned());
            Some(lock)
        }
        Some(Err(why)) => {
            refusal = Some(why);
            None
        }
        None => {
            refusal = Some("the plan holds no directory to resolve from; plan again".into());
            None
        }
    };
    if refusal.is_none()
        && let Some(anchor) = anchor
        && let Err(why) = anchor.check_still_named()
    {
        refusal = Some(why);
    }

    let held_before = accounting::before(dev, &target);
    let before = available_bytes(&target).unwrap_or(plan.filesystem.available_bytes);
    let links = Links::default();
    let ctx = ItemCtx {
        plan,
        progress,
        links: &links,
        refusal: refusal.as_deref(),
    };

    // Package removals first and one at a time: dpkg runs maintainer scripts that expect
    // their files, so nothing may delete package files before apt has removed them.
    let (packages, others): (Vec<&PlannedItem>, Vec<&PlannedItem>) = plan
        .selected()
        .partition(|i| i.spec.reclaim == ReclaimKind::AptRemove);
    let mut outcomes: Vec<ItemReport> = packages.iter().map(|item| ctx.run(item)).collect();
    outcomes.extend(fsio::pool().install(|| {
        others
            .par_iter()
            .map(|item| ctx.run(item))
            .collect::<Vec<_>>()
    }));

    sync_filesystem(&target);
    let after = available_bytes(&target).unwrap_or(before);
    let held_after = accounting::held(dev, &target, &held_before);
    let held = accounting::new_held_open(&held_before.inodes, &held_after);
    let mut unlinked = 0u64;
    let mut held_total = 0u64;
    let mut example = None;
    for mut outcome in outcomes {
        unlinked += outcome.freed_bytes;
        if let Some(planned) = plan.items.iter().find(|i| i.spec.name == outcome.name)
            && matches!(
                planned.spec.reclaim,
                ReclaimKind::Delete | ReclaimKind::Swap
            )
        {
            let (bytes, ex) = accounting::held_under(&held, &planned.paths);
            outcome.held_open_bytes = bytes;
            outcome.freed_bytes = outcome.freed_bytes.saturating_sub(bytes);
            held_total += bytes;
            if example.is_none() {
                example = ex;
            }
        }
        if let Some(slot) = report.items.iter_mut().find(|i| i.name == outcome.name) {
            *slot = outcome;
        }
    }
    for p in &mut report.protected {
        p.kept = std::fs::symlink_metadata(&p.path).is_ok();
    }
    report.filesystem.available_before = before;
    report.filesystem.available_after = after;
    report.freed_bytes = report.items.iter().map(|i| i.freed_bytes).sum();
    report.filesystem_delta_bytes = after as i64 - before as i64;
    report.accounting = accounting::explain(
        &plan.filesystem.fs_type,
        unlinked,
        held_total,
        example.as_deref(),
        report.filesystem_delta_bytes,
    );
    report.target_met = plan.need.is_none_or(|n| after >= n);
    report.seconds = start.elapsed().as_secs_f64();
    report
}

/// A reclaim running on its own thread.
#[derive(Debug)]
pub struct ReclaimHandle {
    thread: JoinHandle<FreeReport>,
    started: Instant,
}

impl ReclaimHandle {
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Wait for the reclaim and take its report.
    pub fn join(self) -> std::thread::Result<FreeReport> {
        self.thread.join()
    }
}

/// Start reclaiming `plan` in the background, so a pipeline can go on meanwhile.
pub fn spawn(
    plan: Plan,
    options: ReclaimOptions,
    progress: Arc<dyn Progress + Send>,
) -> std::io::Result<ReclaimHandle> {
    let thread = std::thread::Builder::new()
        .name("headroom-reclaim".into())
        .spawn(move || reclaim(&plan, options, &*progress))?;
    Ok(ReclaimHandle {
        thread,
        started: Instant::now(),
    })
}

struct ItemCtx<'a> {
    plan: &'a Plan,
    progress: &'a dyn Progress,
    links: &'a Links,
    /// Why nothing may be deleted at all, if so.
    refusal: Option<&'a str>,
}

impl ItemCtx<'_> {
    fn run(&self, item: &PlannedItem) -> ItemReport {
        let plan = self.plan;
        let progress = self.progress;
        let name = item.spec.name.as_str();
        progress.event(Event::Started {
            item: name,
            bytes: item.size.disk_bytes,
            files: item.size.files,
        });
        let start = Instant::now();
        let mut errors = Vec::new();
        let mut kept = item.keep.clone();
        let mut gone = Vec::new();
        let mut left = Vec::new();
        let mut freed = 0u64;

        if let Some(why) = self.refusal {
            errors.push(why.to_string());
        } else if let Some(root) = &plan.root
            && let Some(p) = item.paths.iter().find(|p| !within(p, root))
        {
            // Defence in depth: under --root, refuse any path outside it.
            errors.push(format!(
                "{}: outside --root {}; refused",
                p.display(),
                root.display()
            ));
        } else {
            match item.spec.reclaim {
                ReclaimKind::Delete | ReclaimKind::Swap => {
                    if item.spec.reclaim == ReclaimKind::Swap && plan.root.is_none() {
                        let active = host::active_swaps();
                        for p in item.paths.iter().filter(|p| active.contains(p)) {
                            if let Err(e) = host::swapoff(p) {
                                errors.push(e);
                            }
                        }
                    }
                    if errors.is_empty() {
                        freed =
                            self.delete_paths(item, &mut kept, &mut errors, &mut gone, &mut left);
                    }
                }
                ReclaimKind::AptClean => match host::apt_clean() {
                    Ok(()) => freed = remeasure_freed(plan, item),
                    Err(e) => errors.push(e),
                },
                ReclaimKind::DockerImages | ReclaimKind::DockerBuildCache => {
                    match host::docker_prune(item.spec.reclaim == ReclaimKind::DockerBuildCache) {
                        Ok(bytes) => freed = bytes,
                        Err(e) => errors.push(e),
                    }
                }
                ReclaimKind::AptRemove => {
                    // Package removals run alone, so the filesystem's delta is theirs.
                    let mount = &plan.filesystem.mount_point;
                    let before = available_bytes(mount).unwrap_or(0);
                    match host::apt_remove(&item.packages) {
                        Ok(()) => {
                            sync_filesystem(mount);
                            freed = available_bytes(mount)
                                .unwrap_or(before)
                                .saturating_sub(before);
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
        }

        let seconds = start.elapsed().as_secs_f64();
        let (action, reason) = if !errors.is_empty() {
            let more = if errors.len() > 1 {
                format!(" (and {} more)", errors.len() - 1)
            } else {
                String::new()
            };
            (Action::Failed, Some(format!("{}{more}", errors[0])))
        } else if !left.is_empty() {
            (
                Action::Partial,
                Some(format!(
                    "{} director{} left the item while it was being deleted (renamed out of \
                     it) and {} kept with everything in {}: {}",
                    left.len(),
                    if left.len() == 1 { "y" } else { "ies" },
                    if left.len() == 1 { "was" } else { "were" },
                    if left.len() == 1 { "it" } else { "them" },
                    join(&left)
                )),
            )
        } else if !gone.is_empty() && gone.len() == item.paths.len() {
            (
                Action::Skipped,
                Some(format!(
                    "no longer present since planning (moved or deleted by another process); \
                     nothing freed: {}",
                    join(&gone)
                )),
            )
        } else {
            let mut notes = item.notes.clone();
            if !gone.is_empty() {
                notes.push(format!("no longer present since planning: {}", join(&gone)));
            }
            if !kept.is_empty() {
                notes.push(format!(
                    "kept {} path(s): mount points, protected paths or files mounted over: {}",
                    kept.len(),
                    join(&kept)
                ));
            }
            (
                Action::Removed,
                (!notes.is_empty()).then(|| notes.join("; ")),
            )
        };
        progress.event(Event::Finished {
            item: name,
            action,
            freed_bytes: freed,
            seconds,
        });
        ItemReport {
            name: name.to_string(),
            paths: lossy(&item.paths),
            size_bytes: item.size.disk_bytes,
            apparent_bytes: item.size.apparent_bytes,
            files: item.size.files,
            action,
            reason,
            seconds,
            estimated_seconds: item.estimated_seconds,
            freed_bytes: freed,
            kept: lossy(&kept),
            errors,
            shared_bytes: item.size.shared_bytes,
            held_open_bytes: 0,
            left: lossy(&left),
        }
    }

    /// Delete an item's pinned paths; bytes freed (blocks of last links removed).
    fn delete_paths(
        &self,
        item: &PlannedItem,
        kept: &mut Vec<PathBuf>,
        errors: &mut Vec<String>,
        gone: &mut Vec<PathBuf>,
        left: &mut Vec<PathBuf>,
    ) -> u64 {
        let plan = self.plan;
        let Some(anchor) = plan.anchor.as_deref() else {
            errors.push("the plan holds no directory to resolve from; plan again".into());
            return 0;
        };
        // Every path must still be what was planned before anything of the item goes.
        let mut verified = Vec::new();
        for pin in &item.pinned {
            let path = &pin.path;
            match anchor.parent_of(path) {
                Ok((parent, name)) => match resolve::identity_at(&parent, &name) {
                    Ok(now) if now.dev == pin.id.dev && now.ino == pin.id.ino => {
                        if now.mnt_id != pin.id.mnt_id {
                            errors.push(format!(
                                "{}: a mount appeared on it since planning; refused",
                                path.display()
                            ));
                        } else {
                            verified.push(pin);
                        }
                    }
                    Ok(now) => errors.push(format!(
                        "{}: was replaced since planning (planned inode {}, found inode {}{}); refused",
                        path.display(),
                        pin.id.ino,
                        now.ino,
                        if pin.id.is_dir && !now.is_dir {
                            ", a symlink or a file"
                        } else if now.mnt_id != pin.id.mnt_id {
                            ", on another mount"
                        } else {
                            ""
                        }
                    )),
                    Err(rustix::io::Errno::NOENT) => gone.push(path.clone()),
                    Err(e) => errors.push(format!(
                        "{}: {}",
                        path.display(),
                        std::io::Error::from(e)
                    )),
                },
                Err(Resolve::Missing) => gone.push(path.clone()),
                Err(Resolve::Refused(why)) => errors.push(format!(
                    "{}: changed since planning: {why}",
                    path.display()
                )),
            }
        }
        if !errors.is_empty() {
            return 0;
        }
        let exclude: Vec<PathBuf> = item.keep.iter().chain(&plan.protect).cloned().collect();
        let name = item.spec.name.as_str();
        let on_progress = |files: u64| self.progress.event(Event::Removed { item: name, files });
        let mut freed = 0;
        for pin in verified {
            let outcome = remove_planned(
                anchor,
                &pin.path,
                Some(&pin.id),
                &exclude,
                &on_progress,
                self.links,
            );
            freed += outcome.freed_bytes;
            for k in outcome.kept {
                if !kept.contains(&k) {
                    kept.push(k);
                }
            }
            errors.extend(outcome.errors);
            left.extend(outcome.left);
        }
        kept.sort();
        freed
    }
}

/// Bytes freed by `apt-get clean`: the planned size minus what is left of the paths now.
fn remeasure_freed(plan: &Plan, item: &PlannedItem) -> u64 {
    let exclude: Vec<PathBuf> = item.keep.iter().chain(&plan.protect).cloned().collect();
    let left = measure_excluding(&item.paths, &exclude);
    item.size
        .reclaimable_bytes()
        .saturating_sub(left.size.reclaimable_bytes())
}

/// The shortest path for a sibling repository's xtask: free the filesystem holding `path`
/// until `need` bytes are available, with the built-in catalog on this machine, cheapest
/// items first. With `dry_run` nothing is deleted and the report is the plan — do that
/// off CI runners. Docker's items act on the engine `DOCKER_HOST` names.
pub fn free_until(
    path: impl AsRef<std::path::Path>,
    need: u64,
    dry_run: bool,
) -> Result<FreeReport> {
    let plan = plan::plan(
        &Catalog::builtin(),
        &Environment::host(),
        &PlanRequest {
            target_path: path.as_ref().to_path_buf(),
            need: Some(need),
            selection: Selection::default(),
            protect: Vec::new(),
        },
        &NoProgress,
    )?;
    Ok(reclaim(&plan, ReclaimOptions { dry_run }, &NoProgress))
}
