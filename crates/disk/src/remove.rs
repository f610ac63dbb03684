//! Parallel, descriptor-relative deletion of a tree, with an honest account of what it freed.
//!
//! The deleter opens each directory relative to its parent (see [`crate::resolve`]): never
//! through a symlink, never into a mount point — another filesystem or a bind mount of this
//! one — and unlinks entries relative to that descriptor, so a symlink is removed as a link
//! and a path outside the tree can never be reached. A mount point or an excluded path is
//! kept, and with it its ancestors.
//!
//! The walk stays inside its tree whatever moves meanwhile: after listing a directory and
//! before unlinking anything in it, the deleter asks the kernel where that directory is now
//! (`/proc/self/fd`, or where that path is too long, the `..` chain up to the tree's parent
//! against the identities held on the way down). A directory renamed out of the tree
//! mid-walk is named in [`RemoveOutcome::left`] and nothing in it is deleted; only entries
//! listed while it was still inside are ever unlinked, so nothing created after such a
//! rename is touched.
//!
//! Bytes are counted as the filesystem gets them back: the blocks of each inode whose last
//! link this deleter removed. A file hard-linked elsewhere is not counted until its last link
//! goes, and then once, whichever tree held it.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::Serialize;

use crate::fsio::{self, name_path};
use crate::resolve::{self, Anchor, Child, Identity, Resolve};

/// What [`remove_tree`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoveOutcome {
    /// Non-directories unlinked (files, symlinks, sockets…).
    pub files: u64,
    pub dirs: u64,
    /// Blocks of the inodes whose last link this removal unlinked (directories included).
    pub freed_bytes: u64,
    /// Paths deliberately kept: mount points and excluded paths.
    pub kept: Vec<PathBuf>,
    /// Entries that could not be removed, as `path: error`.
    pub errors: Vec<String>,
    /// Directories that left the tree while it was being deleted (renamed out of it):
    /// nothing in them was deleted after they left.
    pub left: Vec<PathBuf>,
}

impl RemoveOutcome {
    /// True when nothing failed (kept paths are not failures).
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Hard-linked inodes met while deleting: how many of their links were removed, so the
/// blocks are counted by the removal of the last one. Shared by every item of a reclaim, so
/// a file linked from two removed items is counted once.
#[derive(Debug, Default)]
pub(crate) struct Links {
    shards: [Mutex<LinkShard>; 16],
}

/// (device, inode) → (links when first seen, links of it this process removed).
type LinkShard = HashMap<(u64, u64), (u64, u64)>;

impl Links {
    /// Record the unlink of one link of `id` (as looked at just before); true when it was
    /// the last. The count of links is the one first seen: it falls as links go, and a file
    /// with a link this process leaves (in a refused or kept path) must never count.
    fn unlinked(&self, id: &Identity) -> bool {
        // A directory's link count is its subdirectories' `..`, not hard links: an emptied
        // directory that is removed is gone.
        if id.is_dir {
            return true;
        }
        let shard = &self.shards[(id.ino as usize) % self.shards.len()];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&(id.dev, id.ino)) {
            Some((first, removed)) => {
                *removed += 1;
                *removed >= *first
            }
            None if id.nlink <= 1 => true,
            None => {
                map.insert((id.dev, id.ino), (id.nlink, 1));
                false
            }
        }
    }
}

/// Delete `path` and everything below it that is on the same mount as `path`, except
/// `exclude`d subtrees. `on_progress(files)` is called as directories are emptied. A missing
/// `path` is not an error: there is nothing to do. The parent directories of `path` are
/// resolved as the system resolves them; use [`remove_tree_beneath`] to confine the walk.
pub fn remove_tree(
    path: &Path,
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
) -> RemoveOutcome {
    let links = Links::default();
    run_remover(exclude, on_progress, &links, |r| {
        let Some(name) = c_name(r, path) else { return };
        let parent = path.parent().unwrap_or(Path::new("/"));
        let parent_fd = match rustix::fs::openat(
            CWD,
            parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return,
            Err(e) => return r.fail(path, e),
        };
        r.remove_entry(&parent_fd, path, &name, None, None);
    })
}

/// Remove `path`, resolved beneath `anchor`; with `expect`, only if it is still the inode
/// (and mount) that was planned.
pub(crate) fn remove_planned(
    anchor: &Anchor,
    path: &Path,
    expect: Option<&Identity>,
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
    links: &Links,
) -> RemoveOutcome {
    run_remover(exclude, on_progress, links, |r| {
        if r.excluded(path) {
            return r.keep(path.to_path_buf());
        }
        match anchor.parent_of(path) {
            Ok((parent, name)) => {
                r.remove_entry(&parent, path, &name, expect, Some(anchor.id.mnt_id))
            }
            Err(Resolve::Missing) => {}
            Err(Resolve::Refused(why)) => r.fail_msg(path, why),
        }
    })
}

fn c_name(r: &Remover<'_>, path: &Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    let Some(name) = path.file_name() else {
        r.fail_msg(path, "has no file name; refused".into());
        return None;
    };
    let name = std::ffi::CString::new(name.as_bytes()).ok();
    if name.is_none() {
        r.fail_msg(path, "the name contains NUL".into());
    }
    name
}

fn run_remover(
    exclude: &[PathBuf],
    on_progress: &(dyn Fn(u64) + Sync),
    links: &Links,
    body: impl FnOnce(&Remover<'_>) + Send,
) -> RemoveOutcome {
    let remover = Remover {
        exclude,
        on_progress,
        links,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        freed: AtomicU64::new(0),
        notes: Mutex::new((Vec::new(), Vec::new())),
        left: Mutex::new(Vec::new()),
        top: std::sync::OnceLock::new(),
    };
    fsio::pool().install(|| body(&remover));
    let (mut kept, mut errors) = remover
        .notes
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    kept.sort();
    kept.dedup();
    errors.sort();
    let mut left = remover.left.into_inner().unwrap_or_else(|p| p.into_inner());
    left.sort();
    RemoveOutcome {
        left,
        files: remover.files.into_inner(),
        dirs: remover.dirs.into_inner(),
        freed_bytes: remover.freed.into_inner(),
        kept,
        errors,
    }
}

struct Remover<'a> {
    exclude: &'a [PathBuf],
    on_progress: &'a (dyn Fn(u64) + Sync),
    links: &'a Links,
    files: AtomicU64,
    dirs: AtomicU64,
    freed: AtomicU64,
    notes: Mutex<(Vec<PathBuf>, Vec<String>)>,
    left: Mutex<Vec<PathBuf>>,
    /// Where the kernel placed the top of the tree when it was opened (`None` without
    /// `/proc`): every directory emptied must still be beneath it.
    top: std::sync::OnceLock<Option<PathBuf>>,
}

/// One directory on the way down: its identity and its parent's. The root level is the
/// parent of the tree's top.
struct Level<'a> {
    dev: u64,
    ino: u64,
    up: Option<&'a Level<'a>>,
}

/// Where the kernel has the directory `fd` now (its path as `/proc/self/fd` shows it).
fn proc_path(fd: &impl AsFd) -> Result<PathBuf, Errno> {
    use std::os::unix::ffi::OsStringExt;
    let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let target = rustix::fs::readlinkat(CWD, link, Vec::new())?;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(
        target.into_bytes(),
    )))
}

/// Paths longer than this are not asked of `/proc` (the kernel refuses past `PATH_MAX`).
const PROC_PATH_MAX: usize = 4000;

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

    fn account(&self, id: &Identity) {
        if self.links.unlinked(id) {
            self.freed.fetch_add(id.blocks_bytes, Ordering::Relaxed);
        }
    }

    /// Unlink the non-directory `name` in `dir`, whose identity is `id`; true when gone.
    fn unlink(&self, dir: &OwnedFd, path: &Path, name: &CStr, id: &Identity) -> bool {
        self.unlink_with(dir, path, name, id, AtFlags::empty())
    }

    /// `unlinkat` with `flags` (`REMOVEDIR` for an emptied directory), counted when it
    /// removed the last link; something mounted on the entry keeps it.
    fn unlink_with(
        &self,
        dir: &OwnedFd,
        path: &Path,
        name: &CStr,
        id: &Identity,
        flags: AtFlags,
    ) -> bool {
        match rustix::fs::unlinkat(dir, name, flags) {
            Ok(()) => {
                self.account(id);
                true
            }
            Err(Errno::NOENT) => true,
            // A file with something mounted on it (a bind mount): never touched.
            Err(Errno::BUSY) => {
                self.keep(path.to_path_buf());
                false
            }
            Err(e) => {
                self.fail(path, e);
                false
            }
        }
    }

    /// Remove the top of a tree: `name` in `parent`. With `expect`, only when it is still
    /// the planned inode; with `mnt_id`, only when it is on that mount (not a mount point).
    fn remove_entry(
        &self,
        parent: &OwnedFd,
        path: &Path,
        name: &CStr,
        expect: Option<&Identity>,
        mnt_id: Option<u64>,
    ) {
        if self.excluded(path) {
            return self.keep(path.to_path_buf());
        }
        let id = match resolve::identity_at(parent, name) {
            Ok(id) => id,
            Err(Errno::NOENT) => return,
            Err(e) => return self.fail(path, e),
        };
        if let Some(want) = expect
            && !(want.dev == id.dev && want.ino == id.ino)
        {
            return self.fail_msg(
                path,
                format!(
                    "was replaced since planning (planned inode {} on device {}, found inode {} on device {}); refused",
                    want.ino, want.dev, id.ino, id.dev
                ),
            );
        }
        let mount = mnt_id.unwrap_or(id.mnt_id);
        if id.mnt_id != 0 && mount != 0 && id.mnt_id != mount {
            return self.fail_msg(
                path,
                "is a mount point (another filesystem or a bind mount); refused".into(),
            );
        }
        if !id.is_dir {
            if self.unlink(parent, path, name, &id) {
                self.files.fetch_add(1, Ordering::Relaxed);
                (self.on_progress)(1);
            }
            return;
        }
        let root = match resolve::identity(parent) {
            Ok(p) => Level {
                dev: p.dev,
                ino: p.ino,
                up: None,
            },
            Err(e) => return self.fail(path, e),
        };
        self.remove_subdir(parent, path, name, id.dev, mount, Some(&id), &root);
    }

    /// Whether the directory `dir` (at `path`, at `level`) is still inside the tree: beneath
    /// the top's place as the kernel names it, or failing that, its `..` chain is the one
    /// held on the way down.
    fn inside(&self, dir: &OwnedFd, path: &Path, level: &Level<'_>) -> bool {
        let top = self.top.get().and_then(Option::as_ref);
        let beneath = |fd: &OwnedFd, path: &Path| -> Option<bool> {
            let top = top?;
            if path.as_os_str().len() > PROC_PATH_MAX {
                return None;
            }
            proc_path(fd).ok().map(|now| now.starts_with(top))
        };
        if let Some(answer) = beneath(dir, path) {
            return answer;
        }
        let mut node = level;
        let mut ancestors = path.ancestors().skip(1);
        let mut held: Option<OwnedFd> = None;
        loop {
            let Some(up) = node.up else { return true };
            let from: &OwnedFd = held.as_ref().unwrap_or(dir);
            let Ok(parent) = rustix::fs::openat(
                from,
                c"..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                return false;
            };
            match resolve::identity(&parent) {
                Ok(id) if id.dev == up.dev && id.ino == up.ino => {}
                _ => return false,
            }
            if up.up.is_some()
                && let Some(at) = ancestors.next()
                && let Some(answer) = beneath(&parent, at)
            {
                return answer;
            }
            held = Some(parent);
            node = up;
        }
    }

    /// Remove everything inside `dir`; true when it is now empty and may be removed.
    fn empty_dir(
        &self,
        dir: &OwnedFd,
        path: &Path,
        dev: u64,
        mnt_id: u64,
        level: &Level<'_>,
    ) -> bool {
        let entries = match fsio::read_entries(dir) {
            Ok(e) => e,
            Err(e) => {
                self.fail(path, e);
                return false;
            }
        };
        // Listed first, then asked where it is: whatever the walk unlinks below was listed
        // while the directory was still inside the tree.
        if !entries.is_empty() && !self.inside(dir, path, level) {
            self.left
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(path.to_path_buf());
            return false;
        }
        let mut complete = true;
        let mut removed = 0u64;
        let mut subdirs = Vec::new();
        for entry in entries {
            if entry.kind == FileType::Directory {
                subdirs.push(entry.name);
                continue;
            }
            let id = match resolve::identity_at(dir, &entry.name) {
                Ok(id) => id,
                Err(Errno::NOENT) => continue,
                Err(e) => {
                    self.fail(&path.join(name_path(&entry.name)), e);
                    complete = false;
                    continue;
                }
            };
            if id.is_dir {
                subdirs.push(entry.name);
                continue;
            }
            let child = || path.join(name_path(&entry.name));
            if !self.exclude.is_empty() && self.excluded(&child()) {
                self.keep(child());
                complete = false;
                continue;
            }
            if self.unlink(dir, &child(), &entry.name, &id) {
                removed += 1;
            } else {
                complete = false;
            }
        }
        if removed > 0 {
            self.files.fetch_add(removed, Ordering::Relaxed);
            (self.on_progress)(removed);
        }
        let children_complete = subdirs
            .into_par_iter()
            .map(|name| {
                let child = path.join(name_path(&name));
                self.remove_subdir(dir, &child, &name, dev, mnt_id, None, level)
            })
            .reduce(|| true, |a, b| a && b);
        complete && children_complete
    }

    /// Remove the directory `name` inside `parent` (at `path`); true when it is gone. With
    /// `expect`, the directory opened must be that inode; `up` is the parent's level.
    #[allow(clippy::too_many_arguments)]
    fn remove_subdir(
        &self,
        parent: &OwnedFd,
        path: &Path,
        name: &CStr,
        dev: u64,
        mnt_id: u64,
        expect: Option<&Identity>,
        up: &Level<'_>,
    ) -> bool {
        if self.excluded(path) {
            self.keep(path.to_path_buf());
            return false;
        }
        let child = match resolve::open_child(parent, name, mnt_id) {
            Ok(fd) => fd,
            Err(Child::Missing) => return true,
            // Replaced by a symlink or file since it was listed: unlink that instead, never
            // follow it. The top of a planned tree is not replaced silently: refused.
            Err(Child::NotDir) => {
                if expect.is_some() {
                    self.fail_msg(
                        path,
                        "was replaced since planning by a symlink or a file; refused".into(),
                    );
                    return false;
                }
                return match resolve::identity_at(parent, name) {
                    Ok(id) if !id.is_dir => self.unlink(parent, path, name, &id),
                    Ok(_) | Err(Errno::NOENT) => true,
                    Err(e) => {
                        self.fail(path, e);
                        false
                    }
                };
            }
            // Another filesystem or a bind mount is here: never enter it, never unmount it.
            Err(Child::Mount) => {
                self.keep(path.to_path_buf());
                return false;
            }
            Err(Child::Error(e)) => {
                self.fail(path, e);
                return false;
            }
        };
        let id = match resolve::identity(&child) {
            Ok(id) => id,
            Err(e) => {
                self.fail(path, e);
                return false;
            }
        };
        if id.dev != dev {
            self.keep(path.to_path_buf());
            return false;
        }
        if let Some(want) = expect
            && want.ino != id.ino
        {
            self.fail_msg(
                path,
                "was replaced while it was being opened; refused".into(),
            );
            return false;
        }
        if up.up.is_none() {
            let _ = self.top.set(proc_path(&child).ok());
        }
        let level = Level {
            dev: id.dev,
            ino: id.ino,
            up: Some(up),
        };
        if !self.empty_dir(&child, path, dev, mnt_id, &level) {
            return false;
        }
        drop(child);
        let gone = self.unlink_with(parent, path, name, &id, AtFlags::REMOVEDIR);
        if gone {
            self.dirs.fetch_add(1, Ordering::Relaxed);
        }
        gone
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
    fn freed_bytes_count_directories_and_hard_links_once() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(tree.join("a/b/c")).unwrap();
        fs::create_dir_all(tree.join("d")).unwrap();
        fs::write(tree.join("a/f"), vec![1u8; 50_000]).unwrap();
        fs::hard_link(tree.join("a/f"), tree.join("d/f-again")).unwrap();
        fs::write(tree.join("a/b/g"), vec![2u8; 9_000]).unwrap();
        let outside = t.path().join("outside");
        fs::write(&outside, vec![3u8; 30_000]).unwrap();
        fs::hard_link(&outside, tree.join("a/b/c/linked-out")).unwrap();
        let measured = crate::measure(std::slice::from_ref(&tree)).size;
        let out = remove_tree(&tree, &[], &|_| {});
        assert!(out.ok(), "{:?}", out.errors);
        assert_eq!(
            out.freed_bytes,
            measured.reclaimable_bytes(),
            "{measured:?}"
        );
        assert!(outside.exists());
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
