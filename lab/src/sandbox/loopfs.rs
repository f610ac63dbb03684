//! Loop filesystems: a real ext4, xfs or btrfs in a sparse file, loop-mounted (root only).
//!
//! [`LoopFs`] is the guard tests hold: made in a directory of theirs, unmounted on drop. [`make`] makes one without a guard, for a sandbox that is torn down
//! by name ([`discard`]) so that a killed run's leftovers are found again.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::sh::cmd;

/// Filesystem types the lab makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    /// `mkfs.xfs -m reflink=1` (at least 300 MiB: mkfs.xfs refuses smaller ones).
    Xfs,
    /// At least 160 MiB.
    Btrfs,
}

impl FsKind {
    pub fn mkfs(self) -> &'static str {
        match self {
            FsKind::Ext4 => "mkfs.ext4",
            FsKind::Xfs => "mkfs.xfs",
            FsKind::Btrfs => "mkfs.btrfs",
        }
    }

    /// The smallest filesystem its mkfs makes, in MiB.
    pub fn min_mib(self) -> u64 {
        match self {
            FsKind::Ext4 => 1,
            FsKind::Xfs => 300,
            FsKind::Btrfs => 160,
        }
    }
}

/// How to make the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mkfs {
    pub kind: FsKind,
    pub label: Option<String>,
    /// ext4: leave the inode tables and the journal to be initialised in the background
    /// (a big disk is made at once) rather than now (free space is exact and steady).
    pub lazy_init: bool,
}

impl Mkfs {
    /// `kind`, no label; ext4 initialised now, with no reserved blocks.
    pub fn steady(kind: FsKind) -> Mkfs {
        Mkfs {
            kind,
            label: None,
            lazy_init: false,
        }
    }

    /// ext4 as a runner's disk: no reserved blocks (a runner's root disk shows its free
    /// space to the build user too), initialised lazily, labelled.
    pub fn runner_disk(label: &str) -> Mkfs {
        Mkfs {
            kind: FsKind::Ext4,
            label: Some(label.to_string()),
            lazy_init: true,
        }
    }

    /// Make the filesystem in the file `image`.
    pub fn make(&self, image: &Path) -> Result<()> {
        cmd(self.kind.mkfs(), self.args(image)).read().map(drop)
    }

    fn args(&self, image: &Path) -> Vec<String> {
        let mut args: Vec<String> = match self.kind {
            FsKind::Ext4 => ["-q", "-F", "-m", "0"].map(String::from).to_vec(),
            FsKind::Xfs => ["-q", "-f", "-m", "reflink=1"].map(String::from).to_vec(),
            FsKind::Btrfs => ["-q", "-f"].map(String::from).to_vec(),
        };
        if self.kind == FsKind::Ext4 && !self.lazy_init {
            args.extend(["-E".into(), "lazy_itable_init=0,lazy_journal_init=0".into()]);
        }
        if let Some(label) = &self.label {
            args.extend(["-L".into(), label.clone()]);
        }
        args.push(image.display().to_string());
        args
    }
}

/// Make `image` (a sparse file of `bytes`), the filesystem in it, and loop-mount it on
/// `mount` (made when missing). No guard: see [`LoopFs`] for one.
pub fn make(image: &Path, mount: &Path, bytes: u64, mkfs: &Mkfs) -> Result<()> {
    std::fs::create_dir_all(mount).with_context(|| mount.display().to_string())?;
    let file = std::fs::File::create(image).with_context(|| image.display().to_string())?;
    file.set_len(bytes)
        .with_context(|| format!("{}: sizing to {bytes} bytes", image.display()))?;
    drop(file);
    mkfs.make(image)?;
    let args = [
        OsStr::new("-o"),
        OsStr::new("loop"),
        image.as_os_str(),
        mount.as_os_str(),
    ];
    cmd("mount", args).read()?;
    Ok(())
}

/// Unmount `path`; lazily when a plain unmount fails (something still holds it).
pub fn unmount(path: &Path) -> Result<()> {
    if cmd("umount", [path]).read().is_err() {
        cmd("umount", [OsStr::new("-l"), path.as_os_str()]).read()?;
    }
    Ok(())
}

/// Mount points in this mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    headroom_disk::MountTable::read()
        .map(|t| t.mounts.into_iter().map(|m| m.mount_point).collect())
        .unwrap_or_default()
}

/// Whether `path` is a mount point in this mount namespace.
pub fn is_mounted(path: &Path) -> bool {
    mount_points().iter().any(|m| m == path)
}

/// Unmount whatever is mounted at or below `dirs` (`strictly`: only below), deepest first:
/// what an engine left (network namespaces, overlays) and the disks. What could not be
/// unmounted, even lazily.
pub fn unmount_under(dirs: &[&Path], strictly: bool) -> Vec<String> {
    let mut mounts: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| {
            dirs.iter()
                .any(|d| m.starts_with(d) && !(strictly && m == d))
        })
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts
        .iter()
        .filter_map(|m| {
            unmount(m)
                .err()
                .map(|e| format!("unmounting {}: {e:#}", m.display()))
        })
        .collect()
}

/// Detach the loop devices still backed by `image`, then remove it: what a killed run left.
/// What could not be undone.
pub fn discard(image: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if !image.exists() {
        return problems;
    }
    if let Ok(list) = cmd("losetup", [OsStr::new("-j"), image.as_os_str()]).read() {
        for dev in list.lines().filter_map(|l| l.split(':').next()) {
            if let Err(e) = cmd("losetup", ["-d", dev]).read() {
                problems.push(format!("detaching {dev}: {e:#}"));
            }
        }
    }
    if let Err(e) = std::fs::remove_file(image) {
        problems.push(format!("removing {}: {e}", image.display()));
    }
    problems
}

/// `syncfs` on the filesystem holding `path`, so that freed blocks show in `statvfs`.
pub fn sync_fs(path: &Path) {
    if let Ok(fd) = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        let _ = rustix::fs::syncfs(&fd);
    }
}

/// A small filesystem in a sparse file, loop-mounted beside it (root only). Unmounted on drop;
/// the directory is the caller's (a test's temporary directory, say).
#[derive(Debug)]
pub struct LoopFs {
    pub mount: PathBuf,
    pub image: PathBuf,
    pub kind: FsKind,
}

impl LoopFs {
    /// A steady ([`Mkfs::steady`]) filesystem of `kind` and `mib` MiB (at least what its
    /// mkfs accepts): `DIR/fs.img`, mounted on `DIR/mnt`.
    pub fn create(dir: &Path, kind: FsKind, mib: u64) -> Result<LoopFs> {
        let image = dir.join("fs.img");
        let mount = dir.join("mnt");
        make(
            &image,
            &mount,
            mib.max(kind.min_mib()) << 20,
            &Mkfs::steady(kind),
        )?;
        Ok(LoopFs { mount, image, kind })
    }

    /// Available bytes after a `syncfs`, as `statvfs` counts them.
    pub fn available(&self) -> Result<u64> {
        sync_fs(&self.mount);
        let vfs = rustix::fs::statvfs(&self.mount)
            .with_context(|| format!("statvfs {}", self.mount.display()))?;
        Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = unmount(&self.mount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkfs_arguments_by_kind() {
        let img = Path::new("/x/fs.img");
        assert_eq!(
            Mkfs::steady(FsKind::Ext4).args(img),
            [
                "-q",
                "-F",
                "-m",
                "0",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                "/x/fs.img"
            ]
        );
        assert_eq!(
            Mkfs::runner_disk("hrsim").args(img),
            ["-q", "-F", "-m", "0", "-L", "hrsim", "/x/fs.img"]
        );
        assert_eq!(
            Mkfs::steady(FsKind::Xfs).args(img),
            ["-q", "-f", "-m", "reflink=1", "/x/fs.img"]
        );
        assert_eq!(FsKind::Btrfs.min_mib(), 160);
    }
}
