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
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
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
/// `path` is not an error: there is nothing to do. The parent directories of `path` are
/// resolved as the system resolves them; use [`remove_tree_beneath`] to confine the walk.
pub fn remove_tree(
    path: &Path,
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
) -> RemoveOutcome {
    run_remover(exclude, on_progress, |r| r.remove_root(None, path))
}

/// [`remove_tree`], confined to `root`: every directory from `root` down to `path` is opened
/// with `O_NOFOLLOW`, so a symlink anywhere on the way (even one swapped in after planning)
/// makes the removal fail instead of leading it outside `root`.
pub fn remove_tree_beneath(
    root: &Path,
    path: &Path,
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
) -> RemoveOutcome {
    run_remover(exclude, on_progress, |r| r.remove_root(Some(root), path))
}

fn run_remover(
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
    body: impl FnOnce(&Remover<'_>) + Send,
) -> RemoveOutcome {
    let remover = Remover {
        exclude,
        on_progress,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        notes: Mutex::new((Vec::new(), Vec::new())),
    };
    fsio::pool().install(|| body(&remover));
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
        self.fail_msg(path, std::io::Error::from(e).to_string());
    }

    fn fail_msg(&self, path: &Path, message: String) {
        let line = format!("{}: {message}", path.display());
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .push(line);
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|e| path.starts_with(e))
    }

    /// Open the directory that holds `path`: beneath `root` one component at a time without
    /// following symlinks, or (no root) as the system resolves it.
    fn open_parent(&self, root: Option<&Path>, path: &Path) -> Result<OwnedFd, String> {
        let parent = path
            .parent()
            .ok_or_else(|| "has no parent directory".to_string())?;
        let Some(root) = root else {
            return rustix::fs::openat(
                CWD,
                parent,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| std::io::Error::from(e).to_string());
        };
        let rel = parent
            .strip_prefix(root)
            .map_err(|_| format!("is outside {}; refused", root.display()))?;
        let mut fd = rustix::fs::openat(
            CWD,
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("{}: {}", root.display(), std::io::Error::from(e)))?;
        for component in rel.components() {
            let std::path::Component::Normal(name) = component else {
                return Err(format!("unexpected component {component:?}; refused"));
            };
            let name = std::ffi::CString::new(name.as_bytes())
                .map_err(|_| "a name contains NUL".to_string())?;
            fd = fsio::open_dir_at(&fd, &name).map_err(|e| match e {
                Errno::LOOP | Errno::NOTDIR => format!(
                    "a parent directory is a symlink or not a directory ({}); refused",
                    name.to_string_lossy()
                ),
                e => std::io::Error::from(e).to_string(),
            })?;
        }
        Ok(fd)
    }

    fn remove_root(&self, root: Option<&Path>, path: &Path) {
        if self.excluded(path) {
            self.keep(path.to_path_buf());
            return;
        }
        let Some(name) = path.file_name() else {
            return self.fail_msg(path, "has no file name; refused".into());
        };
        let Ok(name) = std::ffi::CString::new(name.as_bytes()) else {
            return self.fail_msg(path, "the name contains NUL".into());
        };
        let parent = match self.open_parent(root, path) {
            Ok(fd) => fd,
            Err(e) if e.contains("No such file") => return,
            Err(e) => return self.fail_msg(path, e),
        };
        let st = match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return,
            Err(e) => return self.fail(path, e),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            match rustix::fs::unlinkat(&parent, &name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {
                    self.files.fetch_add(1, Ordering::Relaxed);
                    (self.on_progress)(1);
                }
                Err(e) => self.fail(path, e),
            }
            return;
        }
        // The same checks as any subdirectory: not followed, not on another filesystem.
        let parent_dev = rustix::fs::fstat(&parent)
            .map(|s| s.st_dev)
            .unwrap_or(st.st_dev);
        if st.st_dev != parent_dev && root.is_some() {
            self.keep(path.to_path_buf());
            return;
        }
        self.remove_subdir(&parent, path.parent().unwrap_or(path), &name, st.st_dev);
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
    fn very_deep_trees_are_measured_and_removed() {
        use rustix::fs::{Mode, OFlags, mkdirat, openat};
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("deep");
        fs::create_dir(&top).unwrap();
        // 3000 levels: deeper than PATH_MAX allows as one path, so build it with *at calls.
        let mut fd = openat(
            rustix::fs::CWD,
            &top,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        for _ in 0..3000 {
            mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            fd = openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        }
        drop(fd);
        let m = crate::measure(std::slice::from_ref(&top));
        assert_eq!(m.size.dirs, 3001);
        assert!(m.errors.is_empty(), "{:?}", &m.errors[..1]);
        let out = remove_tree(&top, &[], &|_| {});
        assert!(out.ok(), "{:?}", out.errors.first());
        assert!(!top.exists());
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
