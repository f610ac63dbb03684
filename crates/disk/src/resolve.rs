//! Resolving paths so that they cannot leave their plan.
//!
//! Everything the reclaim touches is reached from one directory descriptor opened while
//! planning (the [`Anchor`]: `--root`, or the mount point of the filesystem being freed),
//! one component at a time, with `openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`. A symlink, a mount point — a bind mount of
//! the same filesystem included, which shares its `st_dev` — or a `..` on the way fails the
//! resolution instead of leading elsewhere. Where `openat2` is missing (Linux < 5.6, or a
//! seccomp filter that refuses it) each component is opened with `O_NOFOLLOW` and its mount
//! id (`statx` `STATX_MNT_ID`) compared with the anchor's: the same refusals, one more call.
//! `HEADROOM_RESOLVER=fallback` forces that path (tests run both).

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;
use serde::Serialize;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

const CONFINED: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_XDEV)
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// How paths are resolved on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Openat2,
    /// `openat(O_NOFOLLOW)` per component, then the mount id compared.
    Fallback,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::Openat2 => "openat2",
            Method::Fallback => "openat+mount-id",
        }
    }
}

/// The method in use: `openat2` when the kernel answers it, else the fallback.
pub(crate) fn method() -> Method {
    static METHOD: OnceLock<Method> = OnceLock::new();
    *METHOD.get_or_init(|| {
        if std::env::var("HEADROOM_RESOLVER").is_ok_and(|v| v == "fallback") {
            return Method::Fallback;
        }
        // Relative to a directory: BENEATH refuses absolute paths by design.
        let probe = rustix::fs::openat(CWD, "/", DIR_FLAGS, Mode::empty())
            .and_then(|root| rustix::fs::openat2(&root, ".", DIR_FLAGS, Mode::empty(), CONFINED));
        match probe {
            Ok(_) => Method::Openat2,
            Err(_) => Method::Fallback,
        }
    })
}

/// What identifies a file or directory: its device, inode and mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    /// The mount id (`STATX_MNT_ID`); 0 where the kernel does not report it.
    pub mnt_id: u64,
    pub is_dir: bool,
    /// Allocated bytes and links when it was looked at.
    #[serde(skip)]
    pub blocks_bytes: u64,
    #[serde(skip)]
    pub nlink: u64,
}

impl Identity {
    /// Same inode, on the same mount.
    pub(crate) fn same_object(&self, other: &Identity) -> bool {
        self.dev == other.dev && self.ino == other.ino && self.mnt_id == other.mnt_id
    }
}

fn identity_of(st: &rustix::fs::Statx) -> Identity {
    let has_mnt = st.stx_mask & StatxFlags::MNT_ID.bits() != 0;
    Identity {
        dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        mnt_id: if has_mnt { st.stx_mnt_id } else { 0 },
        is_dir: FileType::from_raw_mode(u32::from(st.stx_mode)) == FileType::Directory,
        blocks_bytes: st.stx_blocks.saturating_mul(512),
        nlink: u64::from(st.stx_nlink),
    }
}

const MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::INO)
    .union(StatxFlags::NLINK)
    .union(StatxFlags::BLOCKS)
    .union(StatxFlags::MNT_ID);

/// The identity of `name` inside `dir`, not following a symlink. For a mount point this is
/// the mounted filesystem's root (its own mount id).
pub(crate) fn identity_at(dir: impl AsFd, name: &CStr) -> Result<Identity, Errno> {
    rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, MASK).map(|st| identity_of(&st))
}

/// The identity of an open file or directory.
pub(crate) fn identity(fd: impl AsFd) -> Result<Identity, Errno> {
    rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, MASK).map(|st| identity_of(&st))
}

/// The identity of a path, not following a symlink at its last component.
pub(crate) fn identity_of_path(path: &Path) -> Result<Identity, Errno> {
    rustix::fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, MASK).map(|st| identity_of(&st))
}

/// Why a child directory was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Child {
    /// Gone.
    Missing,
    /// Not a directory (a symlink, a file — perhaps swapped in since it was listed).
    NotDir,
    /// A mount point: another filesystem, or a bind mount of this one. Never entered.
    Mount,
    Error(Errno),
}

/// Open the directory `name` inside `parent`, which is on mount `mnt_id`: never through a
/// symlink, never into a mount point.
pub(crate) fn open_child(parent: impl AsFd, name: &CStr, mnt_id: u64) -> Result<OwnedFd, Child> {
    let classify = |e: Errno| match e {
        Errno::NOENT => Child::Missing,
        Errno::NOTDIR | Errno::LOOP => Child::NotDir,
        Errno::XDEV => Child::Mount,
        e => Child::Error(e),
    };
    match method() {
        Method::Openat2 => {
            rustix::fs::openat2(parent, name, DIR_FLAGS, Mode::empty(), CONFINED).map_err(classify)
        }
        Method::Fallback => {
            let fd =
                rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()).map_err(classify)?;
            let id = identity(&fd).map_err(Child::Error)?;
            if mnt_id != 0 && id.mnt_id != 0 && id.mnt_id != mnt_id {
                return Err(Child::Mount);
            }
            Ok(fd)
        }
    }
}

/// The directory every planned path is resolved from, opened once while planning.
#[derive(Debug)]
pub(crate) struct Anchor {
    pub fd: OwnedFd,
    /// Canonical path it was opened by.
    pub path: PathBuf,
    pub id: Identity,
}

impl Anchor {
    /// Open `path` (canonical) as the anchor.
    pub(crate) fn open(path: &Path) -> Result<Anchor, std::io::Error> {
        let fd = rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty())?;
        let id = identity(&fd)?;
        Ok(Anchor {
            fd,
            path: path.to_path_buf(),
            id,
        })
    }

    /// Refuse when `path` no longer names the directory opened while planning (replaced by
    /// a symlink or another directory, or mounted over).
    pub(crate) fn check_still_named(&self) -> Result<(), String> {
        match identity_of_path(&self.path) {
            Ok(now) if now.same_object(&self.id) => Ok(()),
            Ok(now) if !now.is_dir => Err(format!(
                "{} was replaced since planning (it is no longer a directory: a symlink or a file); nothing deleted",
                self.path.display()
            )),
            Ok(now) if now.dev == self.id.dev && now.ino == self.id.ino => Err(format!(
                "{}: a mount appeared on it since planning; nothing deleted",
                self.path.display()
            )),
            Ok(_) => Err(format!(
                "{} was replaced since planning (another directory or a mount is there now); nothing deleted",
                self.path.display()
            )),
            Err(e) => Err(format!(
                "{} was replaced since planning ({}); nothing deleted",
                self.path.display(),
                std::io::Error::from(e)
            )),
        }
    }

    /// The part of `path` below the anchor, checked to be plain names only.
    pub(crate) fn relative<'p>(&self, path: &'p Path) -> Result<&'p Path, String> {
        let rel = path
            .strip_prefix(&self.path)
            .map_err(|_| format!("is outside {}; refused", self.path.display()))?;
        if let Some(c) = rel
            .components()
            .find(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!("has the component {c:?}; refused"));
        }
        Ok(rel)
    }

    /// Open the directory `rel` (plain names, relative to the anchor), one component at a
    /// time: never through a symlink, never across a mount point.
    pub(crate) fn open_dir(&self, rel: &Path) -> Result<OwnedFd, Resolve> {
        let mut fd: Option<OwnedFd> = None;
        let mut walked = self.path.clone();
        for component in rel.components() {
            let Component::Normal(name) = component else {
                return Err(Resolve::Refused(format!(
                    "unexpected component {component:?}; refused"
                )));
            };
            walked.push(name);
            let cname = CString::new(name.as_bytes())
                .map_err(|_| Resolve::Refused("a name contains NUL".into()))?;
            let parent = fd.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            let next = open_child(parent, &cname, self.id.mnt_id).map_err(|e| match e {
                Child::Missing => Resolve::Missing,
                Child::NotDir => Resolve::Refused(format!(
                    "{} is a symlink or not a directory; refused",
                    walked.display()
                )),
                Child::Mount => Resolve::Refused(format!(
                    "{} is a mount point (another filesystem or a bind mount); refused",
                    walked.display()
                )),
                Child::Error(e) => {
                    Resolve::Refused(format!("{}: {}", walked.display(), std::io::Error::from(e)))
                }
            })?;
            fd = Some(next);
        }
        match fd {
            Some(fd) => Ok(fd),
            None => rustix::fs::openat(&self.fd, c".", DIR_FLAGS, Mode::empty())
                .map_err(|e| Resolve::Refused(std::io::Error::from(e).to_string())),
        }
    }

    /// Resolve `path` (below the anchor) to its parent directory and its name.
    pub(crate) fn parent_of(&self, path: &Path) -> Result<(OwnedFd, CString), Resolve> {
        let rel = self.relative(path).map_err(Resolve::Refused)?;
        let name = rel
            .file_name()
            .ok_or_else(|| Resolve::Refused("names the anchor itself; refused".into()))?;
        let name = CString::new(name.as_bytes())
            .map_err(|_| Resolve::Refused("a name contains NUL".into()))?;
        let parent = self.open_dir(rel.parent().unwrap_or(Path::new("")))?;
        Ok((parent, name))
    }
}

/// Why a path could not be resolved beneath the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// A component does not exist.
    Missing,
    /// A symlink, a mount point or an error on the way: the message says which.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn resolves_plain_paths_and_refuses_symlinks_on_the_way() {
        let t = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(t.path()).unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("elsewhere/b")).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("link")).unwrap();
        let anchor = Anchor::open(&root).unwrap();
        assert!(anchor.open_dir(Path::new("a/b")).is_ok());
        let err = anchor.open_dir(Path::new("link/b")).unwrap_err();
        assert!(
            matches!(&err, Resolve::Refused(m) if m.contains("symlink")),
            "{err:?}"
        );
        assert_eq!(
            anchor.open_dir(Path::new("a/nope")).unwrap_err(),
            Resolve::Missing
        );
        assert!(anchor.relative(&root.join("a/../x")).is_err());
        assert!(anchor.relative(Path::new("/etc")).is_err());
        let (parent, name) = anchor.parent_of(&root.join("a/b")).unwrap();
        assert_eq!(name.as_bytes(), b"b");
        assert!(identity_at(&parent, &name).unwrap().is_dir);
        anchor.check_still_named().unwrap();
    }

    #[test]
    fn this_kernel_has_openat2() {
        // Linux >= 5.6 everywhere these tests run; the fallback is forced by name only.
        if std::env::var_os("HEADROOM_RESOLVER").is_none() {
            assert_eq!(method(), Method::Openat2);
        }
    }

    #[test]
    fn a_root_swapped_for_a_symlink_is_noticed() {
        let t = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(t.path()).unwrap();
        let root = base.join("root");
        fs::create_dir(&root).unwrap();
        let anchor = Anchor::open(&root).unwrap();
        fs::rename(&root, base.join("moved")).unwrap();
        std::os::unix::fs::symlink(base.join("moved"), &root).unwrap();
        let err = anchor.check_still_named().unwrap_err();
        assert!(err.contains("replaced"), "{err}");
    }
}
