//! Placement's part of the report (`placement`): how the build got its room, and what a
//! move or a store switch did. A leaf, so that the report can hold it without importing
//! placement's orchestration.

use std::path::PathBuf;

use headroom_disk::Candidate;
use serde::{Deserialize, Serialize};

/// How the build got its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The data root's filesystem already had the target.
    TargetMet,
    /// The data root was moved to another filesystem (or would be, in a dry run).
    MoveDataRoot,
    /// Catalog items are deleted on the data root's filesystem.
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::TargetMet => "target_met",
            Method::MoveDataRoot => "move_data_root",
            Method::Delete => "delete",
        }
    }
}

/// `placement` in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementReport {
    pub method: Method,
    pub reason: String,
    /// The data root before.
    pub from: PathBuf,
    /// The data root after a move (planned, in a dry run).
    pub to: Option<PathBuf>,
    pub need_bytes: u64,
    /// Available on the data root's filesystem before anything was done.
    pub available_bytes: u64,
    /// The old data root's size on disk: what a move copies.
    pub data_root_bytes: u64,
    pub estimated_seconds: f64,
    /// Time the move took (0 when nothing moved).
    pub seconds: f64,
    pub dry_run: bool,
    /// Bytes the copy took on the new filesystem.
    pub copied_bytes: Option<u64>,
    /// Available on the new filesystem after the move.
    pub available_after: Option<u64>,
    /// `daemon.json`, its backup, and the keys besides `data-root` it kept.
    pub config: Option<PathBuf>,
    pub backup: Option<PathBuf>,
    #[serde(default)]
    pub kept_keys: Vec<String>,
    /// How the engine was restarted.
    pub service: Option<String>,
    /// The filesystems considered, most room first.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// Whether the engine was restarted (a move, a store switch, or both).
    #[serde(default)]
    pub restarted: bool,
    /// The move ran as root through `sudo -n` (the privileged helper), this user being
    /// another.
    #[serde(default)]
    pub via_sudo: bool,
    /// `--engine-store`: the image store switched in the same restart.
    #[serde(default)]
    pub store: Option<StoreSwitch>,
}

/// An image store switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSwitch {
    pub from: String,
    pub to: String,
    /// Tagged images brought across (saved from the old store, loaded into the new one).
    #[serde(default)]
    pub carried: Vec<String>,
    /// Images of the old store the new one does not see (untagged ones; their bytes stay on
    /// disk, back when the store is switched back).
    pub images_left_behind: u64,
}
