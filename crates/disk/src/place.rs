//! Where else a build's storage could go: the other local filesystems with room, cheapest
//! first, so the free stage can move the engine's data root before it deletes anything.
//!
//! A candidate is a writable, block-backed filesystem of a type the engine's storage driver
//! supports, mounted outside the system's own trees, on another device than the data root.
//! Several mounts of one device (bind mounts) are one candidate, at its shortest mount point.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mounts::{Mount, MountTable};

/// Filesystem types a data root can live on (overlay2 needs `d_type`, which these have).
pub const DATA_ROOT_FS_TYPES: &[&str] = &["ext4", "ext3", "ext2", "xfs", "btrfs", "f2fs"];

/// Trees that belong to the system or the engine itself: never a new home for a data root.
const SYSTEM_TREES: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/boot",
    "/efi",
    "/snap",
    "/var/lib/docker",
    "/var/lib/containerd",
];

/// A filesystem the data root could move to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// `major:minor`.
    pub device: String,
    pub available_bytes: u64,
    pub total_bytes: u64,
}

impl Candidate {
    /// Where the data root goes on it: `<mount>/docker`, as the runners' own docs put it.
    pub fn data_root(&self) -> PathBuf {
        self.mount_point.join("docker")
    }
}

/// Sizes and flags of a mounted filesystem (statvfs), or `None` where it cannot be asked.
pub type Probe<'a> = &'a dyn Fn(&Path) -> Option<(u64, u64, bool)>;

/// The filesystem's total and available bytes, and whether it is read-only.
pub fn statvfs_probe(path: &Path) -> Option<(u64, u64, bool)> {
    let v = rustix::fs::statvfs(path).ok()?;
    let ro = v.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY);
    Some((
        v.f_blocks.saturating_mul(v.f_frsize),
        v.f_bavail.saturating_mul(v.f_frsize),
        ro,
    ))
}

/// The candidates besides the filesystem of `current` (device `current_dev`), most room
/// first. `within`: only filesystems mounted strictly below it (a simulated runner's `/`).
pub fn candidates(
    table: &MountTable,
    current_dev: (u32, u32),
    within: Option<&Path>,
    probe: Probe<'_>,
) -> Vec<Candidate> {
    let mut mounts: Vec<&Mount> = table
        .mounts
        .iter()
        .filter(|m| (m.major, m.minor) != current_dev)
        .filter(|m| DATA_ROOT_FS_TYPES.contains(&m.fs_type.as_str()))
        .filter(|m| match within {
            Some(root) => m.mount_point != root && m.mount_point.starts_with(root),
            None => !SYSTEM_TREES.iter().any(|t| m.mount_point.starts_with(t)),
        })
        .collect();
    // One device, one candidate: its shortest mount point.
    mounts.sort_by_key(|m| (m.major, m.minor, m.mount_point.as_os_str().len()));
    mounts.dedup_by_key(|m| (m.major, m.minor));
    let mut out: Vec<Candidate> = mounts
        .into_iter()
        .filter_map(|m| {
            let (total, available, ro) = probe(&m.mount_point)?;
            (!ro).then(|| Candidate {
                mount_point: m.mount_point.clone(),
                fs_type: m.fs_type.clone(),
                device: format!("{}:{}", m.major, m.minor),
                available_bytes: available,
                total_bytes: total,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.available_bytes
            .cmp(&a.available_bytes)
            .then_with(|| a.mount_point.cmp(&b.mount_point))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNER: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/root rw
23 22 0:5 / /dev rw shared:2 - devtmpfs udev rw
24 22 0:21 / /proc rw shared:12 - proc proc rw
25 22 0:22 / /run rw shared:5 - tmpfs tmpfs rw
26 22 8:17 / /mnt rw,relatime shared:13 - ext4 /dev/sdb1 rw
27 22 8:15 / /boot/efi rw,relatime shared:14 - vfat /dev/sda15 rw
28 22 8:17 /work /home/runner/work rw shared:13 - ext4 /dev/sdb1 rw
29 22 7:0 / /snap/core rw shared:15 - squashfs /dev/loop0 ro
30 22 8:33 / /data rw shared:16 - xfs /dev/sdc1 rw
31 22 8:49 / /ro rw shared:17 - ext4 /dev/sdd1 ro
32 22 0:40 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw
";

    fn probe(p: &Path) -> Option<(u64, u64, bool)> {
        match p.to_str()? {
            "/mnt" => Some((75 << 30, 66 << 30, false)),
            "/data" => Some((20 << 30, 10 << 30, false)),
            "/ro" => Some((90 << 30, 80 << 30, true)),
            _ => Some((10 << 30, 5 << 30, false)),
        }
    }

    #[test]
    fn a_runners_second_disk_comes_first_once_and_read_only_or_system_mounts_never() {
        let table = MountTable::parse(RUNNER.as_bytes());
        let found = candidates(&table, (8, 1), None, &probe);
        let points: Vec<&Path> = found.iter().map(|c| c.mount_point.as_path()).collect();
        assert_eq!(points, [Path::new("/mnt"), Path::new("/data")]);
        assert_eq!(found[0].data_root(), Path::new("/mnt/docker"));
        assert_eq!(found[0].device, "8:17");
        assert_eq!(found[0].available_bytes, 66 << 30);
    }

    #[test]
    fn the_current_filesystem_is_never_a_candidate() {
        let table = MountTable::parse(RUNNER.as_bytes());
        let found = candidates(&table, (8, 17), None, &probe);
        assert!(found.iter().all(|c| c.device != "8:17"), "{found:?}");
        assert!(found.iter().any(|c| c.device == "8:1"));
    }

    #[test]
    fn under_a_root_only_mounts_below_it_count() {
        let table = MountTable::parse(RUNNER.as_bytes());
        let found = candidates(&table, (8, 1), Some(Path::new("/home/runner")), &probe);
        let points: Vec<&Path> = found.iter().map(|c| c.mount_point.as_path()).collect();
        assert_eq!(points, [Path::new("/home/runner/work")]);
        assert!(candidates(&table, (8, 1), Some(Path::new("/mnt")), &probe).is_empty());
    }

    #[test]
    fn a_filesystem_that_cannot_be_asked_is_left_out() {
        let table = MountTable::parse(RUNNER.as_bytes());
        let none = |_: &Path| None;
        assert!(candidates(&table, (8, 1), None, &none).is_empty());
    }
}
