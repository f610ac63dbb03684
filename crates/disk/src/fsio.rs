//! Low-level directory access shared by the walker and the deleter: directories are opened
//! relative to their parent's descriptor with `O_NOFOLLOW`, so a symbolic link swapped in
//! for a directory is never followed, and entries are read with one `getdents64` buffer.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::OnceLock;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{CWD, FileType, Mode, OFlags, RawDir};
use rustix::io::Errno;

/// One directory entry: its name and the type `getdents` reported (may be `Unknown`).
pub(crate) struct Entry {
    pub name: CString,
    pub kind: FileType,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Open a directory by path without following a symlink at the last component.
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty())
}

/// Read all entries of an open directory, without `.` and `..`.
pub(crate) fn read_entries(dir: impl AsFd) -> Result<Vec<Entry>, Errno> {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut raw = RawDir::new(dir, &mut buf);
    let mut entries = Vec::new();
    while let Some(entry) = raw.next() {
        let entry = entry?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        entries.push(Entry {
            name: name.to_owned(),
            kind: entry.file_type(),
        });
    }
    Ok(entries)
}

/// The thread pool for filesystem walks and deletions. Both wait on the disk more than on
/// the CPU: with cold caches each thread spends most of its time blocked on one inode or
/// directory block read, so the pool is much wider than the number of cores (16× them,
/// 16 to 128) to keep the device's queue full; `HEADROOM_THREADS` overrides it.
pub(crate) fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::env::var("HEADROOM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                (cores * 16).clamp(16, 128)
            });
        raise_open_file_limit();
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("headroom-io-{i}"))
            // The walks recurse once per directory level; deep trees must not overflow.
            .stack_size(256 << 20)
            .build()
            .unwrap_or_else(|_| {
                // A pool of one thread cannot fail to build for lack of resources in a way
                // a wider one would not; fall back to the smallest pool we can get.
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a one-thread pool")
            })
    })
}

/// Each thread holds one descriptor per directory level it is inside: lift the soft limit on
/// open files to the hard one so deep trees on a wide pool do not run out.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.unwrap_or(1 << 20).min(1 << 20);
    if limit.current.is_some_and(|c| c < want) {
        limit.current = Some(want);
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Turn a C name into a path component.
pub(crate) fn name_path(name: &CStr) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()))
}
