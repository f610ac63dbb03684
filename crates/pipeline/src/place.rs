//! Placement, the free stage's first choice. Cheapest first: the target already met; moving
//! the engine's data root to another local filesystem with room for the target and the old
//! root's copy; and only then deleting catalog items on the filesystem that holds the build.
//! Each option gets an estimated cost, and the report says which was taken and why.

use std::path::{Path, PathBuf};

use headroom_disk::{Candidate, format_size};
use serde::{Deserialize, Serialize};

/// Copying a data root: what a local disk-to-disk `cp -a` of many small files sustains on a
/// hosted runner (bytes per second), and what a stop and a start of the engine take.
pub const COPY_BYTES_PER_SECOND: f64 = 150e6;
pub const RESTART_SECONDS: f64 = 8.0;

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

/// `containerd` or `classic`.
pub fn store_name(containerd: bool) -> &'static str {
    if containerd { "containerd" } else { "classic" }
}

/// The choice, before anything is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub method: Method,
    pub reason: String,
    pub to: Option<PathBuf>,
    pub estimated_seconds: f64,
}

/// Pick the cheapest option. `blocked`: why a move may not happen here (no service manager,
/// running containers, disabled), when it may not.
pub fn choose(
    need: u64,
    available: u64,
    data_root_bytes: u64,
    candidates: &[Candidate],
    blocked: Option<&str>,
) -> Choice {
    if available >= need {
        return Choice {
            method: Method::TargetMet,
            reason: format!(
                "{} available, {} needed",
                format_size(available),
                format_size(need)
            ),
            to: None,
            estimated_seconds: 0.0,
        };
    }
    let delete = |reason: String| Choice {
        method: Method::Delete,
        reason,
        to: None,
        estimated_seconds: 0.0,
    };
    let Some(best) = candidates.first() else {
        return delete("no other local filesystem to move the data root to".into());
    };
    // The copy lands on the new filesystem before the build starts.
    let room = best.available_bytes.saturating_sub(data_root_bytes);
    if room < need {
        return delete(format!(
            "the filesystem with the most room, {}, has {} available: {} after copying the \
             data root ({}), {} needed",
            best.mount_point.display(),
            format_size(best.available_bytes),
            format_size(room),
            format_size(data_root_bytes),
            format_size(need)
        ));
    }
    if let Some(why) = blocked {
        return delete(format!(
            "{} on {} would fit the build, but the data root cannot be moved: {why}",
            format_size(best.available_bytes),
            best.mount_point.display()
        ));
    }
    Choice {
        method: Method::MoveDataRoot,
        reason: format!(
            "{} available here, {} needed; {} has {}: moving the data root deletes nothing",
            format_size(available),
            format_size(need),
            best.mount_point.display(),
            format_size(best.available_bytes)
        ),
        to: Some(best.data_root()),
        estimated_seconds: RESTART_SECONDS + data_root_bytes as f64 / COPY_BYTES_PER_SECOND,
    }
}

/// `daemon.json` for the engine whose runner's `/` is `root` (the real one when `None`).
pub fn daemon_config(root: Option<&Path>) -> PathBuf {
    root.unwrap_or(Path::new("/"))
        .join("etc/docker/daemon.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(point: &str, available_gb: u64) -> Candidate {
        Candidate {
            mount_point: PathBuf::from(point),
            fs_type: "ext4".into(),
            device: "8:17".into(),
            available_bytes: available_gb << 30,
            total_bytes: 80 << 30,
        }
    }

    #[test]
    fn a_met_target_does_nothing() {
        let c = choose(10 << 30, 20 << 30, 0, &[fs("/mnt", 66)], None);
        assert_eq!(c.method, Method::TargetMet);
        assert_eq!(c.to, None);
    }

    #[test]
    fn a_second_disk_with_room_is_taken_before_deleting() {
        let c = choose(
            25 << 30,
            14 << 30,
            1 << 30,
            &[fs("/mnt", 66), fs("/data", 30)],
            None,
        );
        assert_eq!(c.method, Method::MoveDataRoot);
        assert_eq!(c.to.as_deref(), Some(Path::new("/mnt/docker")));
        assert!(c.estimated_seconds > RESTART_SECONDS && c.estimated_seconds < 20.0);
        assert!(c.reason.contains("/mnt"), "{}", c.reason);
    }

    #[test]
    fn the_copy_of_the_old_root_counts_against_the_new_disk() {
        let c = choose(25 << 30, 14 << 30, 10 << 30, &[fs("/mnt", 30)], None);
        assert_eq!(c.method, Method::Delete);
        assert!(c.reason.contains("after copying"), "{}", c.reason);
        let c = choose(25 << 30, 14 << 30, 5 << 30, &[fs("/mnt", 30)], None);
        assert_eq!(c.method, Method::MoveDataRoot);
    }

    #[test]
    fn a_blocked_move_falls_back_to_deleting_and_says_why() {
        let c = choose(
            25 << 30,
            14 << 30,
            0,
            &[fs("/mnt", 66)],
            Some("2 containers run"),
        );
        assert_eq!(c.method, Method::Delete);
        assert!(c.reason.contains("2 containers run"), "{}", c.reason);
        let c = choose(25 << 30, 14 << 30, 0, &[], None);
        assert_eq!(c.method, Method::Delete);
        assert!(
            c.reason.contains("no other local filesystem"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn the_config_is_under_the_simulated_root() {
        assert_eq!(daemon_config(None), Path::new("/etc/docker/daemon.json"));
        assert_eq!(
            daemon_config(Some(Path::new("/sim/runner"))),
            Path::new("/sim/runner/etc/docker/daemon.json")
        );
    }
}
