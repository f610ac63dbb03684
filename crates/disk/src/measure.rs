//! What deleting a set of paths would free: bytes on disk as `du -sB1 -x` counts them.

use std::collections::HashMap;
use std::ops::Add;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Stat};
use serde::Serialize;

use crate::fsio::{self, name_path};
use crate::resolve::Child;

/// Sizes of a tree. `disk_bytes` counts allocated blocks (`st_blocks * 512`) of every file,
/// directory and symlink, each hard-linked inode once: what deleting the tree frees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Size {
    pub disk_bytes: u64,
    pub apparent_bytes: u64,
    /// Files, symlinks and other non-directories.
    pub files: u64,
    pub dirs: u64,
    /// Bytes of hard-linked files that also have links outside the measured paths:
    /// counted in `disk_bytes` (as `du` does) but not freed by deleting these paths.
    pub shared_bytes: u64,
}

impl Size {
    /// What deleting the measured paths frees: `disk_bytes` less the shared bytes.
    pub fn reclaimable_bytes(&self) -> u64 {
        self.disk_bytes.saturating_sub(self.shared_bytes)
    }
}

impl Add for Size {
    type Output = Size;
    fn add(self, o: Size) -> Size {
        Size {
            disk_bytes: self.disk_bytes + o.disk_bytes,
            apparent_bytes: self.apparent_bytes + o.apparent_bytes,
            files: self.files + o.files,
            dirs: self.dirs + o.dirs,
            shared_bytes: self.shared_bytes + o.shared_bytes,
        }
    }
}

/// The result of [`measure`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurement {
    pub size: Size,
    /// Paths that were asked for but do not exist.
    pub missing: Vec<PathBuf>,
    /// Directories on another filesystem (mount points) that were not entered.
    pub other_filesystems: Vec<PathBuf>,
    /// Excluded paths that were found and left out.
    pub excluded: Vec<PathBuf>,
    /// Entries that could not be read, as `path: error`.
    pub errors: Vec<String>,
}

/// Measure `paths`: never follows symlinks, never crosses into another filesystem than the
/// one each given path is on, counts hard links once, walks directories in parallel.
pub fn measure(paths: &[PathBuf]) -> Measurement {
    measure_excluding(paths, &[])
}

/// [`measure`], leaving out `exclude`d subtrees (protected paths).
pub fn measure_excluding(paths: &[PathBuf], exclude: &[PathBuf]) -> Measurement {
    let walker = Walker {
        exclude,
        links: LinkSet::default(),
        notes: Mutex::new(Notes::default()),
    };
    let roots = outermost(paths);
    let size = fsio::pool().install(|| {
        roots
            .par_iter()
            .map(|p| walker.measure_root(p))
            .reduce(Size::default, Size::add)
    });
    let mut size = size;
    size.shared_bytes = walker.links.shared_bytes();
    let notes = walker.notes.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut m = Measurement {
        size,
        missing: notes.missing,
        other_filesystems: notes.other_filesystems,
        excluded: notes.excluded,
        errors: notes.errors,
    };
    for list in [&mut m.missing, &mut m.other_filesystems, &mut m.excluded] {
        list.sort();
    }
    m.errors.sort();
    m
}

/// Drop paths that lie inside another given path, so nothing is counted twice.
pub(crate) fn outermost(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut sorted: Vec<PathBuf> = paths.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in sorted {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

#[derive(Default)]
struct Notes {
    missing: Vec<PathBuf>,
    other_filesystems: Vec<PathBuf>,
    excluded: Vec<PathBuf>,
    errors: Vec<String>,
}

/// Inodes with more than one link: how many of their links were seen, so each is counted
/// once and those with links elsewhere are known. Sharded to keep locks short.
#[derive(Default)]
struct LinkSet {
    shards: [Mutex<HashMap<(u64, u64), Link>>; 16],
}

struct Link {
    nlink: u64,
    seen: u64,
    bytes: u64,
}

impl LinkSet {
    /// True the first time an inode is seen.
    fn first_sight(&self, st: &Stat) -> bool {
        let shard = &self.shards[(st.st_ino as usize) % self.shards.len()];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let link = map.entry((st.st_dev, st.st_ino)).or_insert(Link {
            nlink: st.st_nlink,
            seen: 0,
            bytes: (st.st_blocks as u64).saturating_mul(512),
        });
        link.seen += 1;
        link.seen == 1
    }

    /// Bytes of inodes whose links were not all seen.
    fn shared_bytes(&self) -> u64 {
        self.shards
            .iter()
            .flat_map(|s| {
                let map = s.lock().unwrap_or_else(|p| p.into_inner());
                map.values()
                    .filter(|l| l.seen < l.nlink)
                    .map(|l| l.bytes)
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

struct Walker<'a> {
    exclude: &'a [PathBuf],
    links: LinkSet,
    notes: Mutex<Notes>,
}

impl Walker<'_> {
    fn note(&self, f: impl FnOnce(&mut Notes)) {
        f(&mut self.notes.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn excluded(&self, path: &Path) -> bool {
        if self.exclude.iter().any(|e| path.starts_with(e)) {
            self.note(|n| n.excluded.push(path.to_path_buf()));
            return true;
        }
        false
    }

    fn measure_root(&self, path: &PathBuf) -> Size {
        if self.excluded(path) {
            return Size::default();
        }
        let st = match rustix::fs::lstat(path) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => {
                self.note(|n| n.missing.push(path.clone()));
                return Size::default();
            }
            Err(e) => {
                self.note(|n| n.errors.push(format!("{}: {e}", path.display())));
                return Size::default();
            }
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return self.file_size(&st);
        }
        let own = dir_size(&st);
        match fsio::open_dir(path) {
            Ok(fd) => {
                let mnt_id = crate::resolve::identity(&fd).map_or(0, |id| id.mnt_id);
                own + self.walk(fd, path.clone(), st.st_dev, mnt_id)
            }
            Err(e) => {
                self.note(|n| n.errors.push(format!("{}: {e}", path.display())));
                own
            }
        }
    }

    fn file_size(&self, st: &Stat) -> Size {
        if st.st_nlink > 1 && !self.links.first_sight(st) {
            return Size::default();
        }
        Size {
            disk_bytes: (st.st_blocks as u64).saturating_mul(512),
            apparent_bytes: st.st_size as u64,
            files: 1,
            dirs: 0,
            shared_bytes: 0,
        }
    }

    fn walk(&self, dir: OwnedFd, path: PathBuf, dev: u64, mnt_id: u64) -> Size {
        let entries = match fsio::read_entries(&dir) {
            Ok(e) => e,
            Err(e) => {
                self.note(|n| n.errors.push(format!("{}: {e}", path.display())));
                return Size::default();
            }
        };
        let mut size = Size::default();
        let mut subdirs = Vec::new();
        for entry in entries {
            let st = match rustix::fs::statat(&dir, &entry.name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(rustix::io::Errno::NOENT) => continue, // removed while we walked
                Err(e) => {
                    let p = path.join(name_path(&entry.name));
                    self.note(|n| n.errors.push(format!("{}: {e}", p.display())));
                    continue;
                }
            };
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if is_dir || st.st_dev != dev || !self.exclude.is_empty() {
                let child = path.join(name_path(&entry.name));
                if st.st_dev != dev {
                    self.note(|n| n.other_filesystems.push(child));
                    continue;
                }
                if self.excluded(&child) {
                    continue;
                }
                if is_dir {
                    size = size + dir_size(&st);
                    subdirs.push((entry.name, child));
                    continue;
                }
            }
            size = size + self.file_size(&st);
        }
        let below = subdirs
            .into_par_iter()
            .map(
                |(name, child)| match crate::resolve::open_child(&dir, &name, mnt_id) {
                    Ok(fd) => self.walk(fd, child, dev, mnt_id),
                    Err(Child::Missing | Child::NotDir) => Size::default(),
                    // A bind mount of this filesystem: not this tree, never counted.
                    Err(Child::Mount) => {
                        self.note(|n| n.other_filesystems.push(child));
                        Size::default()
                    }
                    Err(Child::Error(e)) => {
                        self.note(|n| n.errors.push(format!("{}: {e}", child.display())));
                        Size::default()
                    }
                },
            )
            .reduce(Size::default, Size::add);
        size + below
    }
}

fn dir_size(st: &Stat) -> Size {
    Size {
        disk_bytes: (st.st_blocks as u64).saturating_mul(512),
        apparent_bytes: st.st_size as u64,
        files: 0,
        dirs: 1,
        shared_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn counts_files_dirs_and_hard_links_once() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("tree");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/one"), vec![1u8; 10_000]).unwrap();
        fs::write(root.join("a/b/two"), vec![2u8; 5_000]).unwrap();
        fs::hard_link(root.join("a/one"), root.join("a/b/one-again")).unwrap();
        std::os::unix::fs::symlink("/", root.join("a/root-link")).unwrap();
        let m = measure(std::slice::from_ref(&root));
        assert_eq!(m.size.dirs, 3);
        assert_eq!(
            m.size.files, 3,
            "two files (one hard-linked twice) and a symlink"
        );
        assert!(m.size.apparent_bytes >= 15_000);
        assert!(m.size.disk_bytes >= 15_000);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        // Measuring a subtree and its parent together counts it once.
        let twice = measure(&[root.clone(), root.join("a")]);
        assert_eq!(twice.size, m.size);
    }

    #[test]
    fn missing_paths_are_reported_not_counted() {
        let t = tempfile::tempdir().unwrap();
        let m = measure(&[t.path().join("nope")]);
        assert_eq!(m.size, Size::default());
        assert_eq!(m.missing, vec![t.path().join("nope")]);
    }

    #[test]
    fn excluded_subtrees_are_left_out() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("keep")).unwrap();
        fs::write(t.path().join("keep/big"), vec![0u8; 100_000]).unwrap();
        fs::write(t.path().join("small"), b"x").unwrap();
        let all = measure(&[t.path().to_path_buf()]);
        let some = measure_excluding(&[t.path().to_path_buf()], &[t.path().join("keep")]);
        assert_eq!(some.excluded, vec![t.path().join("keep")]);
        assert_eq!(some.size.files, 1);
        assert!(all.size.disk_bytes - some.size.disk_bytes >= 100_000);
    }
}
