//! How full is the filesystem that holds a path.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::mounts::MountTable;

/// The filesystem holding a path, and how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FsUsage {
    /// The path that was asked about.
    pub path: PathBuf,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// `major:minor` of the device; two paths with the same device share free space.
    pub device: String,
    pub total_bytes: u64,
    /// Bytes an unprivileged writer can still use (`f_bavail`), what `df` shows as "Avail".
    pub available_bytes: u64,
    pub used_bytes: u64,
}

/// The filesystem that holds `path`, its mount point, type and sizes.
pub fn usage(path: &Path) -> Result<FsUsage> {
    let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let stat = rustix::fs::stat(&canonical).map_err(|e| Error::io(path, e))?;
    let dev = (
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev),
    );
    let vfs = rustix::fs::statvfs(&canonical).map_err(|e| Error::io(path, e))?;
    let table = MountTable::read()?;
    let mount = table.containing(&canonical, Some(dev));
    let frsize = vfs.f_frsize;
    Ok(FsUsage {
        path: path.to_path_buf(),
        mount_point: mount.map_or_else(|| PathBuf::from("/"), |m| m.mount_point.clone()),
        fs_type: mount.map_or_else(|| "unknown".to_string(), |m| m.fs_type.clone()),
        device: format!("{}:{}", dev.0, dev.1),
        total_bytes: vfs.f_blocks.saturating_mul(frsize),
        available_bytes: vfs.f_bavail.saturating_mul(frsize),
        used_bytes: vfs
            .f_blocks
            .saturating_sub(vfs.f_bfree)
            .saturating_mul(frsize),
    })
}

/// Available bytes on the filesystem of `path`: one `statvfs`, cheap enough to sample often.
pub fn available_bytes(path: &Path) -> Result<u64> {
    let vfs = rustix::fs::statvfs(path).map_err(|e| Error::io(path, e))?;
    Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
}

/// Device number of the filesystem holding `path` (no symlink followed at the last step).
pub(crate) fn device_of(path: &Path) -> Result<u64> {
    rustix::fs::lstat(path)
        .map(|s| s.st_dev)
        .map_err(|e| Error::io(path, e))
}

/// Flush the filesystem of `path` so that freed blocks show in `statvfs`.
pub(crate) fn sync_filesystem(path: &Path) {
    // A directory only: opening a FIFO for reading would block.
    if let Ok(fd) = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        let _ = rustix::fs::syncfs(&fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_a_temp_dir_is_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let u = usage(dir.path()).unwrap();
        assert!(u.total_bytes > 0);
        assert!(u.available_bytes <= u.total_bytes);
        assert!(u.used_bytes <= u.total_bytes);
        assert!(
            dir.path()
                .canonicalize()
                .unwrap()
                .starts_with(&u.mount_point)
        );
        assert!(!u.fs_type.is_empty());
    }

    #[test]
    fn usage_of_a_missing_path_names_it() {
        let err = usage(Path::new("/no/such/headroom/path")).unwrap_err();
        assert!(err.to_string().contains("/no/such/headroom/path"), "{err}");
    }
}
