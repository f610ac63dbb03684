//! Carrying out a plan: parallel deletion, host reclaimers, and a per-item account.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rayon::prelude::*;

use crate::catalog::ReclaimKind;
use crate::fsio;
use crate::host;
use crate::measure::measure_excluding;
use crate::plan::{Plan, PlannedItem, within};
use crate::progress::{Event, Progress};
use crate::remove::{remove_tree, remove_tree_beneath};
use crate::report::{Action, FreeReport, ItemReport, lossy};
use crate::usage::{available_bytes, sync_filesystem};

/// Options of a reclaim.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReclaimOptions {
    /// Report the plan, delete nothing.
    pub dry_run: bool,
}

/// Carry out `plan`. Items fail one by one: a failing item never stops the others.
pub fn reclaim(plan: &Plan, options: ReclaimOptions, progress: &dyn Progress) -> FreeReport {
    let mut report = FreeReport::from_plan(plan);
    if options.dry_run {
        return report;
    }
    report.dry_run = false;
    let start = Instant::now();
    // Read free space at the mount point: the target path itself may be inside an item.
    let target = plan.filesystem.mount_point.clone();
    let before = available_bytes(&target).unwrap_or(plan.filesystem.available_bytes);

    // Package removals first and one at a time: dpkg runs maintainer scripts that expect
    // their files, so nothing may delete package files before apt has removed them.
    let (packages, others): (Vec<&PlannedItem>, Vec<&PlannedItem>) = plan
        .selected()
        .partition(|i| i.spec.reclaim == ReclaimKind::AptRemove);
    let mut outcomes: Vec<ItemReport> = packages
        .iter()
        .map(|item| run_item(plan, item, progress))
        .collect();
    outcomes.extend(fsio::pool().install(|| {
        others
            .par_iter()
            .map(|item| run_item(plan, item, progress))
            .collect::<Vec<_>>()
    }));

    sync_filesystem(&target);
    let after = available_bytes(&target).unwrap_or(before);
    for outcome in outcomes {
        if let Some(slot) = report.items.iter_mut().find(|i| i.name == outcome.name) {
            *slot = outcome;
        }
    }
    report.filesystem.available_before = before;
    report.filesystem.available_after = after;
    report.freed_bytes = report.items.iter().map(|i| i.freed_bytes).sum();
    report.filesystem_delta_bytes = after as i64 - before as i64;
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

fn run_item(plan: &Plan, item: &PlannedItem, progress: &dyn Progress) -> ItemReport {
    let name = item.spec.name.as_str();
    progress.event(Event::Started {
        item: name,
        bytes: item.size.disk_bytes,
        files: item.size.files,
    });
    let start = Instant::now();
    let mut errors = Vec::new();
    let mut kept = item.keep.clone();
    let mut freed = 0u64;

    // Defence in depth: under --root, refuse any path outside it.
    if let Some(root) = &plan.root
        && let Some(p) = item.paths.iter().find(|p| !within(p, root))
    {
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
                    freed = delete_paths(plan, item, progress, &mut kept, &mut errors);
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
    let (action, reason) = if errors.is_empty() {
        let reason = (!kept.is_empty()).then(|| {
            format!(
                "kept {} path(s) on another filesystem or protected: {}",
                kept.len(),
                kept.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        (Action::Removed, reason)
    } else {
        let more = if errors.len() > 1 {
            format!(" (and {} more)", errors.len() - 1)
        } else {
            String::new()
        };
        (Action::Failed, Some(format!("{}{more}", errors[0])))
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
    }
}

fn delete_paths(
    plan: &Plan,
    item: &PlannedItem,
    progress: &dyn Progress,
    kept: &mut Vec<PathBuf>,
    errors: &mut Vec<String>,
) -> u64 {
    let exclude: Vec<PathBuf> = item.keep.iter().chain(&plan.protect).cloned().collect();
    let name = item.spec.name.as_str();
    let on_progress = |files: u64| progress.event(Event::Removed { item: name, files });
    for path in &item.paths {
        let outcome = match &plan.root {
            Some(root) => remove_tree_beneath(root, path, &exclude, &on_progress),
            None => remove_tree(path, &exclude, &on_progress),
        };
        for k in outcome.kept {
            if !kept.contains(&k) {
                kept.push(k);
            }
        }
        errors.extend(outcome.errors);
    }
    kept.sort();
    remeasure_freed(plan, item)
}

/// Bytes freed: the planned size minus what is left of the item's paths now.
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
) -> crate::Result<FreeReport> {
    let plan = crate::plan(
        &crate::Catalog::builtin(),
        &crate::Environment::host(),
        &crate::PlanRequest {
            target_path: path.as_ref().to_path_buf(),
            need: Some(need),
            selection: crate::Selection::default(),
            protect: Vec::new(),
        },
        &crate::NoProgress,
    )?;
    Ok(reclaim(
        &plan,
        ReclaimOptions { dry_run },
        &crate::NoProgress,
    ))
}
