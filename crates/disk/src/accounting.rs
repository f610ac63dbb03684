//! Freed bytes that are true: what this process unlinked, checked against what the
//! filesystem reports, and any difference explained rather than hidden.
//!
//! The deleter counts the blocks of each inode whose last link it removed. Two things make
//! the filesystem get back less than that: a deleted file still held — open by a process
//! (found by scanning `/proc/*/fd` for deleted files on the filesystem), bind-mounted
//! elsewhere (a mount whose root `/proc/self/mountinfo` shows as `//deleted`), or backing a
//! loop device (`/sys/block/loop*/loop/backing_file` ending in ` (deleted)`) — and blocks
//! shared with files that remain (reflinked copies, deduplicated extents, snapshots, on
//! xfs and btrfs). Other writers move `statvfs` either way. So the count is compared with
//! the `statvfs` delta, and a difference beyond 1 % is reported with its likely cause.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::size::format_size;

/// How a reclaim's bytes were counted and how that compares with the filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// What `freed_bytes` counts.
    pub method: String,
    /// Blocks of the inodes whose last link this process removed.
    pub unlinked_bytes: u64,
    /// Of those, bytes of deleted files that processes still hold open: not yet returned,
    /// and not counted in `freed_bytes`.
    pub held_open_bytes: u64,
    /// The change of available bytes (`statvfs`) over the reclaim.
    pub filesystem_delta_bytes: i64,
    /// `freed_bytes` minus `filesystem_delta_bytes`.
    pub difference_bytes: i64,
    /// On filesystems that share extents (xfs, btrfs): the part of the difference that is
    /// most likely blocks still referenced by other files.
    pub shared_extent_bytes: u64,
    /// Why the filesystem's figure differs from ours, when it differs beyond 1 % or bytes
    /// are held open.
    pub explanation: Option<String>,
}

pub(crate) const METHOD: &str = "blocks of the inodes whose last link this process removed, \
    less deleted files still held open; other reclaimers report their own figure";

/// A deleted file something still holds: a process, a mount or a loop device.
#[derive(Debug, Clone)]
pub(crate) struct HeldOpen {
    pub bytes: u64,
    /// The path it had, as the holder shows it.
    pub path: PathBuf,
    pub holder: Holder,
}

/// What holds a deleted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A process has it open.
    Process(u32),
    /// It is bind-mounted here (the mount keeps it).
    Mount(PathBuf),
    /// It backs this loop device.
    Loop(String),
}

impl HeldOpen {
    fn describe(&self) -> String {
        match &self.holder {
            Holder::Process(pid) => format!("pid {pid} holds {}", self.path.display()),
            Holder::Mount(at) => format!(
                "{} is bind-mounted at {} (another mount of the same filesystem keeps it)",
                self.path.display(),
                at.display()
            ),
            Holder::Loop(dev) => format!("{} backs the loop device {dev}", self.path.display()),
        }
    }
}

/// What holds files before a reclaim: the held inodes (so only new ones count), and the
/// loop devices' backing files with their inodes and blocks (sysfs names a backing file
/// only by its path, so its size is taken while it still has one).
#[derive(Debug, Default)]
pub(crate) struct Before {
    pub inodes: HashSet<u64>,
    loops: HashMap<String, (PathBuf, u64, u64)>,
}

/// Look before a reclaim of device `dev` (see [`Before`]).
pub(crate) fn before(dev: u64, mount_point: &std::path::Path) -> Before {
    let mut loops = HashMap::new();
    for (device, path) in loop_backing_files() {
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && meta.dev() == dev
            && meta.is_file()
        {
            loops.insert(
                device,
                (path, meta.ino(), meta.blocks().saturating_mul(512)),
            );
        }
    }
    Before {
        inodes: held(dev, mount_point, &Before::default())
            .into_keys()
            .collect(),
        loops,
    }
}

/// Every loop device's backing file, as sysfs shows it (` (deleted)` and all).
fn loop_backing_files() -> Vec<(String, PathBuf)> {
    let Ok(devices) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    devices
        .flatten()
        .filter_map(|d| {
            let name = d.file_name().to_str()?.to_string();
            let text = std::fs::read(d.path().join("loop/backing_file")).ok()?;
            let text = text.strip_suffix(b"\n").unwrap_or(&text);
            Some((
                format!("/dev/{name}"),
                PathBuf::from(std::ffi::OsStr::from_bytes(text)),
            ))
        })
        .collect()
}

/// Deleted files on device `dev` (mounted at `mount_point`) that something still holds, by
/// inode: processes' open files, bind mounts of a file, loop devices' backing files (those
/// seen in `before`).
pub(crate) fn held(
    dev: u64,
    mount_point: &std::path::Path,
    before: &Before,
) -> HashMap<u64, HeldOpen> {
    let mut found = held_by_processes(dev);
    held_by_mounts(dev, mount_point, &mut found);
    for (device, path) in loop_backing_files() {
        let text = path.as_os_str().as_bytes();
        let Some(original) = text.strip_suffix(b" (deleted)") else {
            continue;
        };
        let original = PathBuf::from(std::ffi::OsStr::from_bytes(original));
        if let Some((was, ino, bytes)) = before.loops.get(&device)
            && *was == original
        {
            found.entry(*ino).or_insert(HeldOpen {
                bytes: *bytes,
                path: original,
                holder: Holder::Loop(device),
            });
        }
    }
    found
}

/// Files bind-mounted somewhere whose source was deleted: mountinfo shows the mount's root
/// with `//deleted`; the mount point is the file itself.
fn held_by_mounts(dev: u64, mount_point: &std::path::Path, found: &mut HashMap<u64, HeldOpen>) {
    let Ok(text) = std::fs::read("/proc/self/mountinfo") else {
        return;
    };
    let want = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if fields.len() < 5 || fields[2] != want.as_bytes() {
            continue;
        }
        let root = crate::mounts::unescape(fields[3]);
        let Some(root) = root.strip_suffix(b"//deleted") else {
            continue;
        };
        let at = PathBuf::from(std::ffi::OsString::from_vec(crate::mounts::unescape(
            fields[4],
        )));
        let Ok(meta) = std::fs::metadata(&at) else {
            continue;
        };
        if meta.dev() != dev || meta.nlink() != 0 {
            continue;
        }
        let rel = std::ffi::OsStr::from_bytes(root.strip_prefix(b"/").unwrap_or(root));
        found.entry(meta.ino()).or_insert_with(|| HeldOpen {
            bytes: meta.blocks().saturating_mul(512),
            path: mount_point.join(rel),
            holder: Holder::Mount(at),
        });
    }
}

/// Deleted files on device `dev` that processes hold open, by inode.
fn held_by_processes(dev: u64) -> HashMap<u64, HeldOpen> {
    let mut found = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let text = target.as_os_str().as_encoded_bytes();
            let Some(original) = text.strip_suffix(b" (deleted)") else {
                continue;
            };
            // metadata() follows the /proc link to the open inode itself.
            let Ok(meta) = std::fs::metadata(fd.path()) else {
                continue;
            };
            if meta.dev() != dev || meta.nlink() != 0 {
                continue;
            }
            found.entry(meta.ino()).or_insert_with(|| HeldOpen {
                bytes: meta.blocks().saturating_mul(512),
                path: PathBuf::from(std::ffi::OsStr::from_bytes(original)),
                holder: Holder::Process(pid),
            });
        }
    }
    found
}

/// Held-open files that appeared during the reclaim (not in `before`), grouped by the item
/// path they were under.
pub(crate) fn new_held_open<'a>(
    before: &HashSet<u64>,
    after: &'a HashMap<u64, HeldOpen>,
) -> Vec<&'a HeldOpen> {
    after
        .iter()
        .filter(|(ino, _)| !before.contains(ino))
        .map(|(_, h)| h)
        .collect()
}

/// Bytes of `held` under any of `paths`.
pub(crate) fn held_under(held: &[&HeldOpen], paths: &[PathBuf]) -> (u64, Option<String>) {
    let mine: Vec<&&HeldOpen> = held
        .iter()
        .filter(|h| paths.iter().any(|p| h.path.starts_with(p)))
        .collect();
    let bytes = mine.iter().map(|h| h.bytes).sum();
    let example = mine.iter().max_by_key(|h| h.bytes).map(|h| h.describe());
    (bytes, example)
}

/// Compare `freed` (ours) with the filesystem's `delta` and say why they differ.
pub(crate) fn explain(
    fs_type: &str,
    unlinked: u64,
    held: u64,
    held_example: Option<&str>,
    delta: i64,
) -> Accounting {
    let freed = unlinked.saturating_sub(held);
    let difference = freed as i64 - delta;
    // 1 %, and never less than the metadata noise of a small reclaim (journal, bitmaps).
    let tolerance = ((freed.max(delta.unsigned_abs()) as f64) * 0.01).max(256.0 * 1024.0);
    let mut why: Vec<String> = Vec::new();
    if held > 0 {
        why.push(format!(
            "{} of deleted files are still held open (by running processes, bind mounts \
             elsewhere or loop devices they back){}; the filesystem gets them back when those \
             let go, so they are not counted as freed",
            format_size(held),
            held_example
                .map(|e| format!(" (e.g. {e})"))
                .unwrap_or_default(),
        ));
    }
    let mut shared = 0;
    if (difference.unsigned_abs() as f64) > tolerance {
        let gap = format_size(difference.unsigned_abs());
        if difference > 0 {
            if matches!(fs_type, "xfs" | "btrfs" | "bcachefs" | "zfs" | "ocfs2") {
                shared = difference as u64;
                why.push(format!(
                    "{gap} counted as freed did not come back: on {fs_type}, blocks shared with \
                     files that remain (reflinked copies, deduplicated extents, snapshots) are \
                     freed only with the last copy; or another process wrote meanwhile"
                ));
            } else {
                why.push(format!(
                    "{gap} counted as freed did not come back: another process wrote to the \
                     filesystem meanwhile, or something this process cannot see (another \
                     mount namespace, a kernel user) still holds a deleted file"
                ));
            }
        } else {
            why.push(format!(
                "the filesystem got back {gap} more than this process freed: another process \
                 deleted files meanwhile, or copies sharing extents were all removed"
            ));
        }
    }
    Accounting {
        method: METHOD.to_string(),
        unlinked_bytes: unlinked,
        held_open_bytes: held,
        filesystem_delta_bytes: delta,
        difference_bytes: difference,
        shared_extent_bytes: shared,
        explanation: (!why.is_empty()).then(|| why.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_within_one_percent_needs_no_explanation() {
        let a = explain("ext4", 100_000_000, 0, None, 99_500_000);
        assert_eq!(a.difference_bytes, 500_000);
        assert!(a.explanation.is_none(), "{a:?}");
    }

    #[test]
    fn held_open_bytes_are_not_freed_and_are_explained() {
        let a = explain(
            "ext4",
            100_000_000,
            40_000_000,
            Some("pid 7 holds /x"),
            60_000_000,
        );
        assert_eq!(a.difference_bytes, 0);
        let why = a.explanation.unwrap();
        assert!(why.contains("held open") && why.contains("pid 7"), "{why}");
    }

    #[test]
    fn reflinks_explain_a_shortfall_on_xfs_and_btrfs_only() {
        let x = explain("xfs", 100_000_000, 0, None, 10_000_000);
        assert_eq!(x.shared_extent_bytes, 90_000_000);
        assert!(x.explanation.unwrap().contains("reflinked"));
        let e = explain("ext4", 100_000_000, 0, None, 10_000_000);
        assert_eq!(e.shared_extent_bytes, 0);
        assert!(e.explanation.unwrap().contains("another process"));
        let more = explain("ext4", 10_000_000, 0, None, 100_000_000);
        assert!(more.explanation.unwrap().contains("more than"));
    }

    #[test]
    fn held_open_files_are_found_in_proc() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("held");
        std::fs::write(&path, vec![7u8; 200_000]).unwrap();
        let dev = std::fs::metadata(&path).unwrap().dev();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let found = held(dev, t.path(), &Before::default());
        let mine: Vec<&HeldOpen> = found.values().filter(|h| h.path == path).collect();
        assert_eq!(mine.len(), 1, "{found:?}");
        assert!(mine[0].bytes >= 200_000);
        assert_eq!(mine[0].holder, Holder::Process(std::process::id()));
        let (bytes, example) = held_under(&mine, &[t.path().to_path_buf()]);
        assert_eq!(bytes, mine[0].bytes);
        assert!(example.unwrap().contains("held"));
        drop(file);
    }
}
