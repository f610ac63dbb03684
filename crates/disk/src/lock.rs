//! One deleter per tree: an exclusive `flock` on a file named after the device and inode of
//! the directory a plan resolves from (`--root`, or the filesystem's mount point), under `/run/headroom` (or `HEADROOM_LOCK_DIR`). Two reclaims at once would each
//! count the other's work as theirs and race on the same trees; the second one is refused
//! with the first one's pid.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use rustix::fs::FlockOperation;

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub(crate) struct Lock {
    pub path: PathBuf,
    _file: std::fs::File,
}

fn lock_dir() -> PathBuf {
    match std::env::var_os("HEADROOM_LOCK_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ if rustix::process::geteuid().is_root() => PathBuf::from("/run/headroom"),
        // Not root: /run is not ours to write; the user's runtime or temporary directory.
        _ => std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| PathBuf::from(d).join("headroom"))
            .unwrap_or_else(|| {
                std::env::temp_dir()
                    .join(format!("headroom-{}", rustix::process::geteuid().as_raw()))
            }),
    }
}

/// Take the lock of the directory a plan resolves from (its device and inode: the same
/// root, or the same filesystem's mount point), without waiting.
pub(crate) fn acquire(anchor: &crate::resolve::Identity) -> Result<Lock, String> {
    acquire_in(&lock_dir(), anchor.dev, anchor.ino)
}

fn acquire_in(dir: &std::path::Path, dev: u64, ino: u64) -> Result<Lock, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the lock directory {}: {e}", dir.display()))?;
    let path = dir.join(format!(
        "free-{}-{}-{ino}.lock",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc_nofollow())
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(format!(
                "another headroom reclaim{who} is deleting on this filesystem (lock {}); nothing deleted: wait for it to finish, then run again",
                path.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::from(e)
            ));
        }
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(Lock { path, _file: file })
}

/// `O_NOFOLLOW`: a symlink planted as the lock file is never followed.
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_of_the_same_filesystem_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::acquire_in(dir.path(), 12345, 2).unwrap();
        let err = super::acquire_in(dir.path(), 12345, 2).unwrap_err();
        assert!(err.contains("another headroom"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        assert!(
            super::acquire_in(dir.path(), 999, 2).is_ok(),
            "another filesystem"
        );
        drop(first);
        assert!(
            super::acquire_in(dir.path(), 12345, 2).is_ok(),
            "released on drop"
        );
    }
}
