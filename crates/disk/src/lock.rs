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
    // Never follow a symlink planted as the lock file, never wait on a FIFO, and take only
    // a regular file: anyone who can write the lock directory could plant something else.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(open_flags())
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the lock file {}: {e}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the lock file {} is not a regular file (someone else made it); nothing deleted: \
             remove it, or point HEADROOM_LOCK_DIR at a directory only you can write",
            path.display()
        ));
    }
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let who = holder(&mut file)
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
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

/// `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`: a symlink planted as the lock file is never
/// followed, and a FIFO never blocks the open.
fn open_flags() -> i32 {
    use rustix::fs::OFlags;
    (OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32
}

/// The holder's pid as the lock file says it: at most 20 bytes read, and shown only when
/// they are a number (the file is not ours to trust).
fn holder(file: &mut std::fs::File) -> Option<u32> {
    let mut buf = [0u8; 20];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&buf[..len]).ok()?.trim().parse().ok()
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

    fn lock_path(dir: &std::path::Path, dev: u64, ino: u64) -> std::path::PathBuf {
        dir.join(format!(
            "free-{}-{}-{ino}.lock",
            rustix::fs::major(dev),
            rustix::fs::minor(dev)
        ))
    }

    #[test]
    fn a_huge_sparse_lock_file_held_by_another_is_read_no_further_than_a_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), 7, 3);
        let file = std::fs::File::create(&path).unwrap();
        // 2 GB of holes, then text: shown it would flood the terminal and the memory.
        file.set_len(2 << 30).unwrap();
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        let err = super::acquire_in(dir.path(), 7, 3).unwrap_err();
        assert!(err.contains("another headroom"), "{err}");
        assert!(!err.contains("pid"), "no pid in a file of holes: {err}");
        assert!(err.len() < 400, "{} bytes of message", err.len());
        drop(file);
        std::fs::write(&path, b"not a pid\n\x1b[2J").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        let err = super::acquire_in(dir.path(), 7, 3).unwrap_err();
        assert!(!err.contains("not a pid") && !err.contains('\x1b'), "{err}");
    }

    #[test]
    fn a_fifo_or_a_symlink_as_the_lock_file_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = lock_path(dir.path(), 7, 4);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        let err = super::acquire_in(dir.path(), 7, 4).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");

        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"precious").unwrap();
        let link = lock_path(dir.path(), 7, 5);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = super::acquire_in(dir.path(), 7, 5).unwrap_err();
        assert!(err.contains("cannot open the lock file"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }
}
