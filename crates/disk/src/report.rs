//! What a reclaim did (or would do), as serde types.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::accounting::Accounting;
use crate::action::Action;
use crate::layout::LayoutReport;
use crate::plan::{Decision, Plan, Protected};

/// The filesystem that was freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemReport {
    pub path: String,
    pub mount_point: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub available_before: u64,
    pub available_after: u64,
}

/// One item's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemReport {
    pub name: String,
    /// Paths as text (names that are not UTF-8 are shown with replacement characters).
    pub paths: Vec<String>,
    /// Bytes on disk as measured before reclaiming.
    pub size_bytes: u64,
    pub apparent_bytes: u64,
    pub files: u64,
    pub action: Action,
    pub reason: Option<String>,
    pub seconds: f64,
    pub estimated_seconds: f64,
    /// Bytes this item freed: measured size minus what remains afterwards.
    pub freed_bytes: u64,
    /// Paths kept inside the item (other filesystems, protected paths).
    pub kept: Vec<String>,
    pub errors: Vec<String>,
    /// Bytes of hard-linked files with links outside the item: not freed by deleting it.
    pub shared_bytes: u64,
    /// Bytes of this item's files that were deleted but are still held open by processes:
    /// not returned yet, not in `freed_bytes`.
    #[serde(default)]
    pub held_open_bytes: u64,
    /// Directories that were renamed out of the item while it was being deleted: kept,
    /// with whatever they held (the item is then `partial`).
    #[serde(default)]
    pub left: Vec<String>,
}

/// The result of a reclaim, or of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreeReport {
    pub filesystem: FilesystemReport,
    pub need_bytes: Option<u64>,
    /// Whether `available_after` reaches `need_bytes` (true when there is no target).
    pub target_met: bool,
    pub dry_run: bool,
    pub items: Vec<ItemReport>,
    /// Sum of the items' freed bytes (for a dry run: what the plan would free).
    pub freed_bytes: u64,
    /// Change in the filesystem's available bytes over the reclaim.
    pub filesystem_delta_bytes: i64,
    pub seconds: f64,
    /// How paths were resolved: `openat2`, or `openat+mount-id` where it is missing.
    #[serde(default)]
    pub resolver: String,
    /// The lock file held while deleting (none for a dry run).
    #[serde(default)]
    pub lock: Option<String>,
    /// How `freed_bytes` was counted, checked against the filesystem.
    #[serde(default)]
    pub accounting: Accounting,
    /// The protect entries: what each resolved to and whether it is there (after a reclaim:
    /// whether it survived).
    #[serde(default)]
    pub protected: Vec<Protected>,
    /// The hosted-runner layout recognised (`layouts.toml`), with its evidence.
    #[serde(default)]
    pub layout: Option<LayoutReport>,
}

/// Paths as text for reports.
pub(crate) fn lossy(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

impl FreeReport {
    /// The report of a plan that is not carried out.
    pub fn from_plan(plan: &Plan) -> FreeReport {
        let fs = &plan.filesystem;
        let items: Vec<ItemReport> = plan
            .items
            .iter()
            .map(|i| {
                let (action, reason) = match &i.decision {
                    Decision::Reclaim => (Action::Planned, None),
                    Decision::Skip(why) => (Action::Skipped, Some(why.clone())),
                };
                ItemReport {
                    name: i.spec.name.clone(),
                    paths: lossy(&i.paths),
                    size_bytes: i.size.disk_bytes,
                    apparent_bytes: i.size.apparent_bytes,
                    files: i.size.files,
                    action,
                    reason: reason.or_else(|| (!i.notes.is_empty()).then(|| i.notes.join("; "))),
                    seconds: 0.0,
                    estimated_seconds: i.estimated_seconds,
                    freed_bytes: 0,
                    kept: lossy(&i.keep),
                    errors: Vec::new(),
                    shared_bytes: i.size.shared_bytes,
                    held_open_bytes: 0,
                    left: Vec::new(),
                }
            })
            .collect();
        FreeReport {
            filesystem: FilesystemReport {
                path: fs.path.to_string_lossy().into_owned(),
                mount_point: fs.mount_point.to_string_lossy().into_owned(),
                fs_type: fs.fs_type.clone(),
                total_bytes: fs.total_bytes,
                available_before: fs.available_bytes,
                available_after: fs.available_bytes,
            },
            need_bytes: plan.need,
            target_met: plan.need.is_none_or(|n| fs.available_bytes >= n),
            dry_run: true,
            freed_bytes: plan.planned_bytes(),
            filesystem_delta_bytes: 0,
            items,
            seconds: 0.0,
            resolver: plan.resolver.to_string(),
            lock: None,
            accounting: Accounting::default(),
            protected: plan.protected.clone(),
            layout: plan.layout.clone(),
        }
    }

    pub fn failed(&self) -> impl Iterator<Item = &ItemReport> {
        self.items.iter().filter(|i| i.action == Action::Failed)
    }
}
