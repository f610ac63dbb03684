//! Parallel, descriptor-relative deletion of a tree.
//!
//! The deleter opens each directory relative to its parent with `O_NOFOLLOW` and unlinks
//! entries relative to that descriptor, so a symlink is removed as a link and never
//! followed, and a path outside the tree can never be reached. A directory on another
//! filesystem (a mount point) or an excluded path is kept, and with it its ancestors.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, FileType};
use rustix::io::Errno;
use serde::Serialize;

use crate::fsio::{self, name_path};

/// What [`remove_tree`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoveOutcome {
    /// Non-directories unlinked (files, symlinks, sockets…).
    pub files: u64,
    pub dirs: u64,
    /// Paths deliberately kept: mount points of other filesystems and excluded paths.
    pub kept: Vec<PathBuf>,
    /// Entries that could not be removed, as `path: error`.
    pub errors: Vec<String>,
}

impl RemoveOutcome {
    /// True when nothing failed (kept paths are not failures).
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Delete `path` and everything below it that is on the same filesystem as `path`, except
/// `exclude`d subtrees. `on_progress(files)` is called as directories are emptied. A missing
/// `path` is not an error: there is nothing to do.
pub fn remove_tree(
    path: &Path,
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
) -> RemoveOutcome {
    let remover = Remover {
        exclude,
        on_progress,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        notes: Mutex::new((Vec::new(), Vec::new())),
    };
    fsio::pool().install(|| remover.remove_root(path));
    let (mut kept, mut errors) = remover
        .notes
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    kept.sort();
    errors.sort();
    RemoveOutcome {
        files: remover.files.into_inner(),
        dirs: remover.dirs.into_inner(),
        kept,
        errors,
    }
}

struct Remover<'a> {
    exclude: &'a [PathBuf],
    on_progress: &'a (dyn Fn(u64) + Sync),
    files: AtomicU64,
    dirs: AtomicU64,
    notes: Mutex<(Vec<PathBuf>, Vec<String>)>,
}

impl Remover<'_> {
    fn keep(&self, path: PathBuf) {
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .push(path);
    }

    fn fail(&self, path: &Path, e: Errno) {
        let line = format!("{}: {}", path.display(), std::io::Error::from(e));
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .push(line);
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|e| path.starts_with(e))
    }

    fn remove_root(&self, path: &Path) {
        if self.excluded(path) {
            self.keep(path.to_path_buf());
            return;
        }
        let st = match rustix::fs::lstat(path) {
            Ok(st) => st,
            Err(Errno::NOENT) => return,
            Err(e) => return self.fail(path, e),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            match rustix::fs::unlinkat(CWD, path, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {
                    self.files.fetch_add(1, Ordering::Relaxed);
                    (self.on_progress)(1);
                }
                Err(e) => self.fail(path, e),
            }
            return;
        }
        let dir = match fsio::open_dir(path) {
            Ok(fd) => fd,
            Err(e) => return self.fail(path, e),
        };
        if self.empty_dir(&dir, path, st.st_dev) {
            // Drop our descriptor first: the directory must be closed to be removed cleanly.
            drop(dir);
            match rustix::fs::unlinkat(CWD, path, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {
                    self.dirs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.fail(path, e),
            }
        }
    }

    /// Remove everything inside `dir`; true when it is now empty and may be removed.
    fn empty_dir(&self, dir: &OwnedFd, path: &Path, dev: u64) -> bool {
        let entries = match fsio::read_entries(dir) {
            Ok(e) => e,
            Err(e) => {
                self.fail(path, e);
                return false;
            }
        };
        let mut complete = true;
        let mut removed = 0u64;
        let mut subdirs = Vec::new();
        for entry in entries {
            let mut kind = entry.kind;
            if kind == FileType::Unknown {
                kind = match rustix::fs::statat(dir, &entry.name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(Errno::NOENT) => continue,
                    Err(e) => {
                        self.fail(&path.join(name_path(&entry.name)), e);
                        complete = false;
                        continue;
                    }
                };
            }
            if kind == FileType::Directory {
                subdirs.push(entry.name);
                continue;
            }
            if !self.exclude.is_empty() {
                let child = path.join(name_path(&entry.name));
                if self.excluded(&child) {
                    self.keep(child);
                    complete = false;
                    continue;
                }
            }
            match rustix::fs::unlinkat(dir, &entry.name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => removed += 1,
                Err(e) => {
                    self.fail(&path.join(name_path(&entry.name)), e);
                    complete = false;
                }
            }
        }
        if removed > 0 {
            self.files.fetch_add(removed, Ordering::Relaxed);
            (self.on_progress)(removed);
        }
        let children_complete = subdirs
            .into_par_iter()
            .map(|name| self.remove_subdir(dir, path, &name, dev))
            .reduce(|| true, |a, b| a && b);
        complete && children_complete
    }

    /// Remove the directory `name` inside `parent`; true when it is gone.
    fn remove_subdir(&self, parent: &OwnedFd, parent_path: &Path, name: &CStr, dev: u64) -> bool {
        let path = parent_path.join(name_path(name));
        if self.excluded(&path) {
            self.keep(path);
            return false;
        }
        let child = match fsio::open_dir_at(parent, name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return true,
            // Replaced by a symlink or file since it was listed: unlink that instead.
            Err(Errno::NOTDIR | Errno::LOOP) => {
                return match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => true,
                    Err(e) => {
                        self.fail(&path, e);
                        false
                    }
                };
            }
            Err(e) => {
                self.fail(&path, e);
                return false;
            }
        };
        match rustix::fs::fstat(&child) {
            Ok(st) if st.st_dev != dev => {
                // Another filesystem is mounted here: never enter it, never unmount it.
                self.keep(path);
                return false;
            }
            Ok(_) => {}
            Err(e) => {
                self.fail(&path, e);
                return false;
            }
        }
        if !self.empty_dir(&child, &path, dev) {
            return false;
        }
        drop(child);
        match rustix::fs::unlinkat(parent.as_fd(), name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {
                self.dirs.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.fail(&path, e);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn removes_a_tree_but_not_what_its_symlinks_point_to() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), b"keep me").unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(tree.join("a/b/c")).unwrap();
        for i in 0..50 {
            fs::write(tree.join(format!("a/b/f{i}")), b"data").unwrap();
        }
        std::os::unix::fs::symlink(&outside, tree.join("a/link-to-outside")).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/b/c/link2")).unwrap();
        let seen = AtomicU64::new(0);
        let out = remove_tree(&tree, &[], &|n| {
            seen.fetch_add(n, Ordering::Relaxed);
        });
        assert!(out.ok(), "{:?}", out.errors);
        assert!(!tree.exists());
        assert_eq!(out.files, 52);
        assert_eq!(out.dirs, 4);
        assert_eq!(seen.load(Ordering::Relaxed), 52);
        assert_eq!(fs::read(outside.join("precious")).unwrap(), b"keep me");
    }

    #[test]
    fn keeps_excluded_paths_and_their_ancestors() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(tree.join("keep/inner")).unwrap();
        fs::create_dir_all(tree.join("drop")).unwrap();
        fs::write(tree.join("keep/inner/x"), b"x").unwrap();
        fs::write(tree.join("drop/y"), b"y").unwrap();
        let out = remove_tree(&tree, &[tree.join("keep")], &|_| {});
        assert!(out.ok(), "{:?}", out.errors);
        assert_eq!(out.kept, vec![tree.join("keep")]);
        assert!(tree.join("keep/inner/x").exists());
        assert!(!tree.join("drop").exists());
    }

    #[test]
    fn a_symlink_given_as_the_root_is_removed_as_a_link() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("f"), b"f").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = remove_tree(&link, &[], &|_| {});
        assert!(out.ok());
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(target.join("f").exists());
        assert!(remove_tree(&link, &[], &|_| {}).ok(), "missing is fine");
    }
}
