//! The build context, as a tar made in Rust and streamed to the engine.
//!
//! The Engine API's `/build` takes the context as one tar body. The `docker` CLI makes that
//! tar itself; headroom talks to the engine directly, so it has to make it too, and it wants
//! three things the CLI does not promise:
//!
//! * **Docker's own choice of files** — `.dockerignore` (or the Dockerfile-specific
//!   `<Dockerfile>.dockerignore` next to the Dockerfile, which BuildKit prefers) applied with
//!   [`crate::ignore`], the Dockerfile and `.dockerignore` always sent, a Dockerfile outside
//!   the context added under a generated name, and symlinks stored as symlinks, never
//!   followed, so a link pointing outside the context cannot leak what it points to;
//! * **a plan before any byte is sent** — [`plan_context`] walks the tree once and returns
//!   the sorted entries and totals, so callers can report the context size up front;
//! * **deterministic, streamed bytes** — [`write_tar`] writes fixed mtimes, uid/gid 0 and no
//!   owner names, keeps permission bits, and reads every file in small pieces;
//!   [`stream_tar`] runs it on a blocking thread behind a small bounded channel, so a
//!   multi-gigabyte context never sits in memory.
//!
//! As with BuildKit, an excluded directory is still sent (with its own mode) when an exception
//! brings back something inside it; the classic CLI leaves such directories for the engine to
//! create. Sockets, FIFOs and device files are left out and listed in
//! [`ContextPlan::skipped`]; hard links are stored as separate regular files.
//!
//! A Dockerfile from outside the context is removed again by the classic builder (`/build`
//! with builder version 1) because the tar's `.dockerignore` names it; BuildKit through the
//! same endpoint (version 2) does not read that file, so there a `COPY . .` would copy the
//! generated Dockerfile too.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ignore::{DockerIgnore, IgnoreError, MatchState};

/// The modification time written for every entry (the one `tar::HeaderMode::Deterministic`
/// uses: 2006-07-23), so that touching a file does not change the tar.
pub const DETERMINISTIC_MTIME: u64 = 1_153_704_088;

/// Size of the chunks [`stream_tar`] sends.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// How many chunks [`stream_tar`] lets wait for the consumer.
pub const CHANNEL_DEPTH: usize = 16;

/// Name under which a Dockerfile from outside the context is added to it (a `-N` suffix is
/// appended if the context already has an entry of that name).
pub const GENERATED_DOCKERFILE: &str = ".headroom-dockerfile";

const BLOCK: u64 = 512;
/// Names this long or longer get a GNU long-name record, as GNU tar does.
const NAME_FIELD: usize = 100;

/// What to put in the context.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// The context directory.
    pub root: PathBuf,
    /// The Dockerfile; inside or outside `root`. A relative path is taken from the current
    /// directory, like `docker build -f`.
    pub dockerfile: PathBuf,
}

/// The kind of a context entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// Where an entry's content comes from.
#[derive(Debug, Clone)]
pub enum EntryData {
    Dir,
    /// A regular file, streamed from this path when the tar is written.
    File {
        source: PathBuf,
    },
    /// A small file made up by the plan (the `.dockerignore` that names a generated
    /// Dockerfile).
    Generated {
        bytes: Vec<u8>,
    },
    /// A symbolic link, stored as a link; its target is never read.
    Symlink {
        target: PathBuf,
    },
}

/// One entry of the context.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// Path in the tar, relative, `/`-separated, without a trailing `/`.
    pub path: String,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Content size in bytes; 0 for directories and links.
    pub size: u64,
    pub data: EntryData,
}

impl ContextEntry {
    pub fn kind(&self) -> EntryKind {
        match self.data {
            EntryData::Dir => EntryKind::Dir,
            EntryData::File { .. } | EntryData::Generated { .. } => EntryKind::File,
            EntryData::Symlink { .. } => EntryKind::Symlink,
        }
    }
}

/// What [`write_tar`] will write, decided up front.
#[derive(Debug, Clone)]
pub struct ContextPlan {
    /// The context directory, with symlinks resolved.
    pub root: PathBuf,
    /// The ignore file whose rules were applied, if any.
    pub ignore_file: Option<PathBuf>,
    /// The Dockerfile's path inside the tar: what to pass to the engine as `dockerfile`.
    pub dockerfile: String,
    /// True when the Dockerfile came from outside the context and was added as
    /// [`GENERATED_DOCKERFILE`].
    pub dockerfile_generated: bool,
    /// Entries in tar order: sorted component by component, parents before children.
    pub entries: Vec<ContextEntry>,
    /// Regular files in the context.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Sockets, FIFOs and device files that were left out (Docker cannot use them either).
    pub skipped: Vec<String>,
}

impl ContextPlan {
    /// The Dockerfile's path inside the tar, to pass to the engine.
    pub fn dockerfile_name(&self) -> &str {
        &self.dockerfile
    }

    /// The exact size of the tar [`write_tar`] will write, if no file changes meanwhile.
    pub fn tar_len(&self) -> u64 {
        let mut total = 2 * BLOCK;
        for entry in &self.entries {
            let name_len = entry.path.len() + usize::from(entry.kind() == EntryKind::Dir);
            total += BLOCK + long_record_len(name_len) + padded(entry.size);
            if let EntryData::Symlink { target } = &entry.data {
                total += long_record_len(link_bytes(target).map(|b| b.len()).unwrap_or(0));
            }
        }
        total
    }
}

/// Why the context could not be planned or written.
#[derive(Debug, Error)]
pub enum ContextError {
    #[error("build context {}: {source}", .path.display())]
    MissingContext { path: PathBuf, source: io::Error },

    #[error("build context {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },

    #[error("cannot locate Dockerfile {}: {source}", .path.display())]
    MissingDockerfile { path: PathBuf, source: io::Error },

    #[error("Dockerfile {} is not a regular file", .path.display())]
    DockerfileNotAFile { path: PathBuf },

    #[error("cannot read ignore file {}: {source}", .path.display())]
    ReadIgnoreFile { path: PathBuf, source: io::Error },

    #[error(transparent)]
    Ignore(#[from] IgnoreError),

    #[error("cannot list directory {}: {source}", .path.display())]
    ReadDir { path: PathBuf, source: io::Error },

    #[error("cannot inspect {}: {source}", .path.display())]
    Stat { path: PathBuf, source: io::Error },

    #[error("cannot read symlink {}: {source}", .path.display())]
    ReadLink { path: PathBuf, source: io::Error },

    #[error("cannot read {}: {source}", .path.display())]
    ReadFile { path: PathBuf, source: io::Error },

    #[error("{} changed size while the build context was written (planned {expected} bytes)", .path.display())]
    FileChanged { path: PathBuf, expected: u64 },

    #[error("{} has a name that is not valid UTF-8; rename it or exclude it in .dockerignore", .path.display())]
    NonUtf8Path { path: PathBuf },

    #[error("cannot write the build context: {source}")]
    Write { source: io::Error },
}

/// Reads the ignore rules, walks the context and decides every entry of the tar.
pub fn plan_context(opts: &ContextOptions) -> Result<ContextPlan, ContextError> {
    let root = fs::canonicalize(&opts.root).map_err(|source| ContextError::MissingContext {
        path: opts.root.clone(),
        source,
    })?;
    if !root.is_dir() {
        return Err(ContextError::NotADirectory {
            path: opts.root.clone(),
        });
    }
    let dockerfile =
        fs::canonicalize(&opts.dockerfile).map_err(|source| ContextError::MissingDockerfile {
            path: opts.dockerfile.clone(),
            source,
        })?;
    let dockerfile_meta =
        fs::metadata(&dockerfile).map_err(|source| ContextError::MissingDockerfile {
            path: opts.dockerfile.clone(),
            source,
        })?;
    if !dockerfile_meta.is_file() {
        return Err(ContextError::DockerfileNotAFile {
            path: opts.dockerfile.clone(),
        });
    }

    let (ignore_file, mut ignore) = read_ignore(&opts.dockerfile, &root)?;
    let inside = match dockerfile.strip_prefix(&root) {
        Ok(rel) => Some(rel_string(rel, &dockerfile)?),
        Err(_) => None,
    };
    // The CLI appends exceptions for both, so they are sent even when excluded.
    if let Some(rel) = &inside {
        ignore.must_include(rel);
    }
    ignore.must_include(".dockerignore");

    let Walked {
        mut entries,
        skipped,
    } = walk(&root, &ignore)?;

    let dockerfile_generated = inside.is_none();
    let dockerfile_name = match inside {
        Some(rel) => rel,
        None => add_outside_dockerfile(&mut entries, &dockerfile, &dockerfile_meta, &root)?,
    };

    entries.sort_by(|a, b| compare_paths(&a.path, &b.path));
    let regular = entries.iter().filter(|e| e.kind() == EntryKind::File);
    let files = regular.clone().count() as u64;
    let bytes = regular.map(|e| e.size).sum();
    Ok(ContextPlan {
        root,
        ignore_file,
        dockerfile: dockerfile_name,
        dockerfile_generated,
        entries,
        files,
        bytes,
        skipped,
    })
}

/// `<Dockerfile>.dockerignore` next to the Dockerfile if it exists, else `<root>/.dockerignore`.
fn read_ignore(
    dockerfile: &Path,
    root: &Path,
) -> Result<(Option<PathBuf>, DockerIgnore), ContextError> {
    let mut specific = dockerfile.as_os_str().to_owned();
    specific.push(".dockerignore");
    for path in [PathBuf::from(specific), root.join(".dockerignore")] {
        match fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let rules = DockerIgnore::parse(&text, &path.display().to_string())?;
                return Ok((Some(path), rules));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ContextError::ReadIgnoreFile { path, source }),
        }
    }
    Ok((None, DockerIgnore::new()))
}

/// Adds a Dockerfile from outside the context under a generated name and, as the CLI does,
/// lists that name in the tar's `.dockerignore` so the engine drops it from the context after
/// reading it (and `COPY . .` does not pick it up). Returns the generated name.
fn add_outside_dockerfile(
    entries: &mut Vec<ContextEntry>,
    dockerfile: &Path,
    meta: &fs::Metadata,
    root: &Path,
) -> Result<String, ContextError> {
    let taken: HashSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut name = GENERATED_DOCKERFILE.to_string();
    let mut n = 1;
    while taken.contains(name.as_str()) {
        name = format!("{GENERATED_DOCKERFILE}-{n}");
        n += 1;
    }
    entries.push(ContextEntry {
        path: name.clone(),
        mode: mode_of(meta),
        size: meta.len(),
        data: EntryData::File {
            source: dockerfile.to_path_buf(),
        },
    });

    match entries.iter_mut().find(|e| e.path == ".dockerignore") {
        Some(entry) => {
            // A directory or link called `.dockerignore` is left as it is.
            if let EntryData::File { source } = &entry.data {
                let mut bytes = fs::read(source).map_err(|source| ContextError::ReadFile {
                    path: root.join(".dockerignore"),
                    source,
                })?;
                bytes.extend_from_slice(format!("\n{name}\n").as_bytes());
                entry.size = bytes.len() as u64;
                entry.data = EntryData::Generated { bytes };
            }
        }
        None => {
            let bytes = format!(".dockerignore\n{name}\n").into_bytes();
            entries.push(ContextEntry {
                path: ".dockerignore".to_string(),
                mode: 0o644,
                size: bytes.len() as u64,
                data: EntryData::Generated { bytes },
            });
        }
    }
    Ok(name)
}

struct Walked {
    entries: Vec<ContextEntry>,
    skipped: Vec<String>,
}

struct Frame {
    dir: PathBuf,
    rel: String,
    state: MatchState,
    excluded: bool,
    /// Some component of `rel` was not valid UTF-8 (and is shown lossily).
    lossy: bool,
}

/// Walks the context without following symlinks and keeps what the rules let through.
fn walk(root: &Path, ignore: &DockerIgnore) -> Result<Walked, ContextError> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    // Excluded directories that were looked into because an exception might match below;
    // they are sent only if something inside them is (BuildKit does the same).
    let mut held_back: HashMap<String, ContextEntry> = HashMap::new();
    let mut stack = vec![Frame {
        dir: root.to_path_buf(),
        rel: String::new(),
        state: ignore.root_state(),
        excluded: false,
        lossy: false,
    }];
    while let Some(frame) = stack.pop() {
        let reader = match fs::read_dir(&frame.dir) {
            Ok(reader) => reader,
            // Like BuildKit: an excluded directory that cannot be read is just not sent.
            Err(e) if frame.excluded && e.kind() == io::ErrorKind::PermissionDenied => continue,
            Err(source) => {
                return Err(ContextError::ReadDir {
                    path: frame.dir,
                    source,
                });
            }
        };
        for item in reader {
            let item = item.map_err(|source| ContextError::ReadDir {
                path: frame.dir.clone(),
                source,
            })?;
            let name = item.file_name();
            let path = item.path();
            let lossy = frame.lossy || name.to_str().is_none();
            let name = name.to_string_lossy();
            let rel = if frame.rel.is_empty() {
                name.into_owned()
            } else {
                format!("{}/{name}", frame.rel)
            };
            let file_type = item.file_type().map_err(|source| ContextError::Stat {
                path: path.clone(),
                source,
            })?;
            let (excluded, state) = ignore.check(&rel, &frame.state);
            if excluded && !(file_type.is_dir() && ignore.may_include_below(&rel)) {
                continue;
            }
            if lossy && !excluded {
                return Err(ContextError::NonUtf8Path { path });
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                // Removed since it was listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ContextError::Stat { path, source }),
            };
            let mode = mode_of(&meta);
            let kind = meta.file_type();
            if kind.is_dir() {
                let entry = ContextEntry {
                    path: rel.clone(),
                    mode,
                    size: 0,
                    data: EntryData::Dir,
                };
                if excluded {
                    held_back.insert(rel.clone(), entry);
                } else {
                    entries.push(entry);
                }
                stack.push(Frame {
                    dir: path,
                    rel,
                    state,
                    excluded,
                    lossy,
                });
            } else if excluded {
                // Was a directory when listed; no longer is.
            } else if kind.is_symlink() {
                let target = fs::read_link(&path)
                    .map_err(|source| ContextError::ReadLink { path, source })?;
                entries.push(ContextEntry {
                    path: rel,
                    mode,
                    size: 0,
                    data: EntryData::Symlink { target },
                });
            } else if kind.is_file() {
                entries.push(ContextEntry {
                    path: rel,
                    mode,
                    size: meta.len(),
                    data: EntryData::File { source: path },
                });
            } else {
                skipped.push(rel);
            }
        }
    }
    if !held_back.is_empty() {
        let mut revived = Vec::new();
        for entry in &entries {
            let mut parent = entry.path.as_str();
            while let Some(slash) = parent.rfind('/') {
                parent = &parent[..slash];
                if let Some(dir) = held_back.remove(parent) {
                    revived.push(dir);
                }
            }
        }
        entries.extend(revived);
    }
    skipped.sort_by(|a, b| compare_paths(a, b));
    Ok(Walked { entries, skipped })
}

/// Tar order: component by component, so a directory comes right before its contents.
fn compare_paths(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// A path below the root as a `/`-separated string.
fn rel_string(rel: &Path, full: &Path) -> Result<String, ContextError> {
    let mut parts = Vec::new();
    for component in rel.components() {
        if let Component::Normal(part) = component {
            parts.push(part.to_str().ok_or_else(|| ContextError::NonUtf8Path {
                path: full.to_path_buf(),
            })?);
        }
    }
    Ok(parts.join("/"))
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// What the Docker CLI sends from Windows: 0755, or 0555 for read-only files.
#[cfg(not(unix))]
fn mode_of(meta: &fs::Metadata) -> u32 {
    if !meta.is_dir() && meta.permissions().readonly() {
        0o555
    } else {
        0o755
    }
}

#[cfg(unix)]
fn link_bytes(target: &Path) -> Option<Cow<'_, [u8]>> {
    use std::os::unix::ffi::OsStrExt;
    Some(Cow::Borrowed(target.as_os_str().as_bytes()))
}

#[cfg(not(unix))]
fn link_bytes(target: &Path) -> Option<Cow<'_, [u8]>> {
    target
        .to_str()
        .map(|s| Cow::Owned(s.replace('\\', "/").into_bytes()))
}

fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

fn long_record_len(name_len: usize) -> u64 {
    if name_len >= NAME_FIELD {
        BLOCK + padded(name_len as u64 + 1)
    } else {
        0
    }
}

/// Writes the planned context as a tar to `out` and returns the number of bytes written.
///
/// Headers are deterministic: mtime [`DETERMINISTIC_MTIME`], uid and gid 0, no owner names,
/// permission bits kept; names of 100 bytes or more use GNU long-name records. Regular files
/// are read from disk in [`CHUNK_SIZE`] pieces; a file whose size no longer matches the plan
/// is an error rather than a corrupt tar.
pub fn write_tar(plan: &ContextPlan, out: impl Write) -> Result<u64, ContextError> {
    let mut out = Counting {
        inner: out,
        written: 0,
    };
    let mut buf = vec![0u8; CHUNK_SIZE];
    for entry in &plan.entries {
        let mut name = entry.path.clone().into_bytes();
        match &entry.data {
            EntryData::Dir => {
                name.push(b'/');
                write_header(
                    &mut out,
                    &name,
                    None,
                    tar::EntryType::Directory,
                    0,
                    entry.mode,
                )?;
            }
            EntryData::Symlink { target } => {
                let link = link_bytes(target).ok_or_else(|| ContextError::NonUtf8Path {
                    path: target.clone(),
                })?;
                write_header(
                    &mut out,
                    &name,
                    Some(&link),
                    tar::EntryType::Symlink,
                    0,
                    entry.mode,
                )?;
            }
            EntryData::Generated { bytes } => {
                let size = bytes.len() as u64;
                write_header(
                    &mut out,
                    &name,
                    None,
                    tar::EntryType::Regular,
                    size,
                    entry.mode,
                )?;
                out.write_all(bytes).map_err(write_error)?;
                pad(&mut out, size)?;
            }
            EntryData::File { source } => {
                let mut file = File::open(source).map_err(|e| read_error(source, e))?;
                write_header(
                    &mut out,
                    &name,
                    None,
                    tar::EntryType::Regular,
                    entry.size,
                    entry.mode,
                )?;
                copy_exact(&mut file, &mut out, entry.size, source, &mut buf)?;
                pad(&mut out, entry.size)?;
            }
        }
    }
    out.write_all(&[0u8; 2 * BLOCK as usize])
        .map_err(write_error)?;
    out.flush().map_err(write_error)?;
    Ok(out.written)
}

/// Copies exactly `size` bytes of `file`, failing if it is shorter or longer than planned.
fn copy_exact(
    file: &mut File,
    out: &mut impl Write,
    size: u64,
    path: &Path,
    buf: &mut [u8],
) -> Result<(), ContextError> {
    let changed = || ContextError::FileChanged {
        path: path.to_path_buf(),
        expected: size,
    };
    let mut remaining = size;
    while remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Err(changed()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(path, e)),
        };
        out.write_all(&buf[..n]).map_err(write_error)?;
        remaining -= n as u64;
    }
    let mut probe = [0u8; 1];
    loop {
        match file.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(changed()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(path, e)),
        }
    }
}

fn write_header(
    out: &mut impl Write,
    name: &[u8],
    link: Option<&[u8]>,
    kind: tar::EntryType,
    size: u64,
    mode: u32,
) -> Result<(), ContextError> {
    if name.len() >= NAME_FIELD {
        write_long_record(out, b'L', name)?;
    }
    if let Some(link) = link.filter(|l| l.len() >= NAME_FIELD) {
        write_long_record(out, b'K', link)?;
    }
    let mut header = tar::Header::new_gnu();
    {
        let fields = header.as_old_mut();
        let n = name.len().min(NAME_FIELD);
        fields.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let n = link.len().min(NAME_FIELD);
            fields.linkname[..n].copy_from_slice(&link[..n]);
        }
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(DETERMINISTIC_MTIME);
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(write_error)
}

/// A GNU `././@LongLink` record carrying a long name (`L`) or link target (`K`).
fn write_long_record(out: &mut impl Write, kind: u8, value: &[u8]) -> Result<(), ContextError> {
    let mut header = tar::Header::new_gnu();
    let marker = b"././@LongLink";
    header.as_old_mut().name[..marker.len()].copy_from_slice(marker);
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_size(value.len() as u64 + 1);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(write_error)?;
    out.write_all(value).map_err(write_error)?;
    out.write_all(&[0]).map_err(write_error)?;
    pad(out, value.len() as u64 + 1)
}

fn pad(out: &mut impl Write, len: u64) -> Result<(), ContextError> {
    let fill = (padded(len) - len) as usize;
    out.write_all(&[0u8; BLOCK as usize][..fill])
        .map_err(write_error)
}

fn write_error(source: io::Error) -> ContextError {
    ContextError::Write { source }
}

fn read_error(path: &Path, source: io::Error) -> ContextError {
    ContextError::ReadFile {
        path: path.to_path_buf(),
        source,
    }
}

struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the tar of `plan`: [`write_tar`] runs on a blocking thread and hands over
/// [`CHUNK_SIZE`] chunks through a channel of [`CHANNEL_DEPTH`], so at most about a megabyte
/// is buffered whatever the context's size. Must be called inside a tokio runtime.
///
/// If writing fails, the stream yields the error (so an upload is aborted rather than sent
/// truncated) and the handle returns it. Dropping the stream makes the writer stop with a
/// [`ContextError::Write`].
pub fn stream_tar(
    plan: ContextPlan,
) -> (
    impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin + 'static,
    JoinHandle<Result<u64, ContextError>>,
) {
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let writer = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK_SIZE),
        };
        let result = write_tar(&plan, &mut sink);
        drop(sink);
        if let Err(e) = &result {
            // Fails only if the consumer is gone, and then nobody needs to know.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
        result
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (stream, writer)
}

/// Collects writes into chunks and sends each full one down the channel, waiting while the
/// channel is full.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the build context's reader went away",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::{Duration, SystemTime};

    fn put(root: &Path, rel: &str, content: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }

    fn options(root: &Path, dockerfile: &Path) -> ContextOptions {
        ContextOptions {
            root: root.to_path_buf(),
            dockerfile: dockerfile.to_path_buf(),
        }
    }

    fn plan_of(root: &Path) -> ContextPlan {
        plan_context(&options(root, &root.join("Dockerfile"))).expect("plan")
    }

    fn paths(plan: &ContextPlan) -> Vec<&str> {
        plan.entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn tar_of(plan: &ContextPlan) -> Vec<u8> {
        let mut bytes = Vec::new();
        let n = write_tar(plan, &mut bytes).expect("write_tar");
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(n, plan.tar_len());
        bytes
    }

    struct Item {
        path: String,
        kind: tar::EntryType,
        mode: u32,
        link: Option<Vec<u8>>,
        content: Vec<u8>,
    }

    fn read_tar(bytes: &[u8]) -> Vec<Item> {
        let mut archive = tar::Archive::new(bytes);
        let mut items = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let header = entry.header();
            assert_eq!(header.mtime().expect("mtime"), DETERMINISTIC_MTIME);
            assert_eq!(header.uid().expect("uid"), 0);
            assert_eq!(header.gid().expect("gid"), 0);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            let kind = header.entry_type();
            let mode = header.mode().expect("mode");
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("content");
            items.push(Item {
                path,
                kind,
                mode,
                link,
                content,
            });
        }
        items
    }

    fn item<'a>(items: &'a [Item], path: &str) -> &'a Item {
        items
            .iter()
            .find(|i| i.path == path)
            .unwrap_or_else(|| panic!("{path} is not in the tar"))
    }

    #[test]
    fn ignore_rules_are_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(
            root,
            ".dockerignore",
            b"# deps\n*.log\n!keep.log\nnode_modules\ndocs\n!docs/keep.md\n",
        );
        put(root, "app.py", b"print(1)\n");
        put(root, "debug.log", b"noise");
        put(root, "keep.log", b"kept");
        put(root, "node_modules/x/y.js", b"dep");
        put(root, "docs/a.md", b"a");
        put(root, "docs/keep.md", b"keep");
        put(root, "src/main.rs", b"fn main() {}\n");
        put(root, "src/nested/deep.log", b"not top level, so kept");

        let plan = plan_of(root);
        assert_eq!(
            paths(&plan),
            [
                ".dockerignore",
                "Dockerfile",
                "app.py",
                "docs",
                "docs/keep.md",
                "keep.log",
                "src",
                "src/main.rs",
                "src/nested",
                "src/nested/deep.log",
            ]
        );
        assert_eq!(plan.dockerfile_name(), "Dockerfile");
        assert!(!plan.dockerfile_generated);
        assert_eq!(plan.ignore_file, Some(plan.root.join(".dockerignore")));
        assert_eq!(plan.files, 7);
        let sizes: u64 = [13, 55, 9, 4, 4, 13, 22].iter().sum();
        assert_eq!(plan.bytes, sizes);
        let docs = &plan.entries[3];
        assert_eq!(docs.kind(), EntryKind::Dir);

        let items = read_tar(&tar_of(&plan));
        assert_eq!(item(&items, "docs/").kind, tar::EntryType::Directory);
        assert_eq!(item(&items, "docs/keep.md").content, b"keep");
        assert_eq!(item(&items, "app.py").content, b"print(1)\n");
        assert!(items.iter().all(|i| !i.path.starts_with("node_modules")));
        assert!(items.iter().all(|i| i.path != "debug.log"));
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_excluded_directory_is_not_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, ".dockerignore", b"secret\nlocked\n!locked/x\n");
        put(root, "secret/key", b"k");
        put(root, "locked/key", b"k");
        for d in ["secret", "locked"] {
            fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o000)).expect("chmod");
        }
        let plan = plan_of(root);
        for d in ["secret", "locked"] {
            fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        assert_eq!(paths(&plan), [".dockerignore", "Dockerfile"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_stored_as_links_and_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        put(&outside, "secret.txt", b"TOPSECRET");
        let root = dir.path().join("ctx");
        put(&root, "Dockerfile", b"FROM scratch\n");
        std::os::unix::fs::symlink(&outside, root.join("dirlink")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("filelink"))
            .expect("symlink");
        std::os::unix::fs::symlink("Dockerfile", root.join("relative")).expect("symlink");

        let plan = plan_of(&root);
        assert_eq!(
            paths(&plan),
            ["Dockerfile", "dirlink", "filelink", "relative"]
        );
        assert!(
            plan.entries[1..]
                .iter()
                .all(|e| e.kind() == EntryKind::Symlink && e.size == 0)
        );
        let bytes = tar_of(&plan);
        assert!(
            !bytes.windows(9).any(|w| w == b"TOPSECRET"),
            "the outside file leaked into the tar"
        );
        let items = read_tar(&bytes);
        assert_eq!(items.len(), 4);
        let link = item(&items, "dirlink");
        assert_eq!(link.kind, tar::EntryType::Symlink);
        assert_eq!(
            link.link.as_deref(),
            Some(outside.as_os_str().as_encoded_bytes())
        );
        assert_eq!(
            item(&items, "relative").link.as_deref(),
            Some(&b"Dockerfile"[..])
        );
    }

    #[test]
    fn output_is_deterministic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, "a/b/c.txt", b"c");
        put(root, "a/d.txt", b"d");
        put(root, "z.txt", b"z");
        let first = tar_of(&plan_of(root));
        assert_eq!(first, tar_of(&plan_of(root)));

        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for rel in ["Dockerfile", "a/b/c.txt", "a/d.txt", "z.txt"] {
            let file = File::options()
                .write(true)
                .open(root.join(rel))
                .expect("open");
            file.set_modified(long_ago).expect("set mtime");
        }
        for rel in ["a", "a/b"] {
            if let Ok(d) = File::open(root.join(rel)) {
                let _ = d.set_modified(long_ago);
            }
        }
        assert_eq!(first, tar_of(&plan_of(root)));
        let items = read_tar(&first);
        let order: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            order,
            ["Dockerfile", "a/", "a/b/", "a/b/c.txt", "a/d.txt", "z.txt"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn permission_bits_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, "bin/run.sh", b"#!/bin/sh\n");
        put(root, "private", b"p");
        let set = |rel: &str, mode: u32| {
            fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).expect("chmod")
        };
        set("bin/run.sh", 0o750);
        set("private", 0o600);
        set("bin", 0o711);
        let items = read_tar(&tar_of(&plan_of(root)));
        assert_eq!(item(&items, "bin/run.sh").mode, 0o750);
        assert_eq!(item(&items, "private").mode, 0o600);
        assert_eq!(item(&items, "bin/").mode, 0o711);
    }

    #[test]
    fn long_names_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        let deep = format!("{}/{}/{}", "d".repeat(60), "e".repeat(70), "f".repeat(150));
        put(root, &deep, b"deep");
        let exactly_100 = "x".repeat(100);
        put(root, &exactly_100, b"100");
        #[cfg(unix)]
        let long_target = format!("../{}", "t".repeat(200));
        #[cfg(unix)]
        std::os::unix::fs::symlink(&long_target, root.join("longlink")).expect("symlink");

        let plan = plan_of(root);
        let items = read_tar(&tar_of(&plan));
        assert_eq!(item(&items, &deep).content, b"deep");
        assert_eq!(item(&items, &exactly_100).content, b"100");
        let dir_short = format!("{}/", "d".repeat(60));
        assert_eq!(item(&items, &dir_short).kind, tar::EntryType::Directory);
        assert_eq!(
            item(&items, &format!("{}/{}/", "d".repeat(60), "e".repeat(70))).kind,
            tar::EntryType::Directory
        );
        #[cfg(unix)]
        assert_eq!(
            item(&items, "longlink").link.as_deref(),
            Some(long_target.as_bytes())
        );
    }

    #[tokio::test]
    async fn a_large_file_streams_in_bounded_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        const SIZE: usize = 20 * 1024 * 1024;
        {
            let mut file = File::create(root.join("big.bin")).expect("create");
            let block: Vec<u8> = (0..=255u8).cycle().take(1024 * 1024).collect();
            for _ in 0..SIZE / block.len() {
                file.write_all(&block).expect("write");
            }
        }
        let plan = plan_of(root);
        assert_eq!(plan.bytes, SIZE as u64 + 13);
        let expected_len = plan.tar_len();

        let (mut stream, writer) = stream_tar(plan);
        let mut received = Vec::with_capacity(expected_len as usize);
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            assert!(chunk.len() <= CHUNK_SIZE);
            received.extend_from_slice(&chunk);
            chunks += 1;
        }
        let written = writer.await.expect("join").expect("write");
        assert_eq!(written, expected_len);
        assert_eq!(received.len() as u64, expected_len);
        assert!(chunks >= SIZE / CHUNK_SIZE);

        let items = read_tar(&received);
        let big = item(&items, "big.bin");
        assert_eq!(big.content.len(), SIZE);
        assert!(
            big.content
                .iter()
                .enumerate()
                .all(|(i, b)| *b == (i % 256) as u8)
        );
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_under_a_generated_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("ctx");
        put(&root, "app.py", b"x");
        put(
            dir.path(),
            "build/Dockerfile",
            b"FROM scratch\nCOPY . /app\n",
        );
        let dockerfile = dir.path().join("build/Dockerfile");

        let plan = plan_context(&options(&root, &dockerfile)).expect("plan");
        assert_eq!(plan.dockerfile_name(), GENERATED_DOCKERFILE);
        assert!(plan.dockerfile_generated);
        assert_eq!(
            paths(&plan),
            [".dockerignore", GENERATED_DOCKERFILE, "app.py"]
        );
        let items = read_tar(&tar_of(&plan));
        assert_eq!(
            item(&items, GENERATED_DOCKERFILE).content,
            b"FROM scratch\nCOPY . /app\n"
        );
        assert_eq!(
            item(&items, ".dockerignore").content,
            b".dockerignore\n.headroom-dockerfile\n"
        );

        // An existing .dockerignore gets the name appended; a taken name gets a suffix.
        put(&root, ".dockerignore", b"*.log\n");
        put(&root, GENERATED_DOCKERFILE, b"mine");
        let plan = plan_context(&options(&root, &dockerfile)).expect("plan");
        assert_eq!(plan.dockerfile_name(), ".headroom-dockerfile-1");
        let items = read_tar(&tar_of(&plan));
        assert_eq!(
            item(&items, ".dockerignore").content,
            b"*.log\n\n.headroom-dockerfile-1\n"
        );
        assert_eq!(item(&items, GENERATED_DOCKERFILE).content, b"mine");
    }

    #[test]
    fn a_dockerfile_specific_ignore_file_is_preferred() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "docker/app.Dockerfile", b"FROM scratch\n");
        put(root, "docker/app.Dockerfile.dockerignore", b"secret.txt\n");
        put(root, ".dockerignore", b"*.log\n");
        put(root, "secret.txt", b"s");
        put(root, "debug.log", b"d");
        let dockerfile = root.join("docker/app.Dockerfile");
        let plan = plan_context(&options(root, &dockerfile)).expect("plan");
        assert_eq!(
            plan.ignore_file.as_deref(),
            Some(root.join("docker/app.Dockerfile.dockerignore").as_path())
        );
        let got = paths(&plan);
        assert!(got.contains(&"debug.log"));
        assert!(!got.contains(&"secret.txt"));
        assert_eq!(plan.dockerfile_name(), "docker/app.Dockerfile");
    }

    #[test]
    fn an_excluded_dockerfile_and_dockerignore_are_still_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "docker/app.Dockerfile", b"FROM scratch\n");
        put(root, "docker/other", b"o");
        put(root, ".dockerignore", b".dockerignore\ndocker\n*.txt\n");
        put(root, "a.txt", b"a");
        put(root, "main.rs", b"m");
        let dockerfile = root.join("docker/app.Dockerfile");
        let plan = plan_context(&options(root, &dockerfile)).expect("plan");
        assert_eq!(
            paths(&plan),
            [
                ".dockerignore",
                "docker",
                "docker/app.Dockerfile",
                "main.rs"
            ]
        );
        assert_eq!(plan.dockerfile_name(), "docker/app.Dockerfile");

        // Everything excluded.
        put(root, ".dockerignore", b"*\n");
        put(root, "Dockerfile", b"FROM scratch\n");
        assert_eq!(paths(&plan_of(root)), [".dockerignore", "Dockerfile"]);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();

        let missing = root.join("nope");
        let err = plan_context(&options(&missing, &missing.join("Dockerfile")))
            .expect_err("missing context");
        assert!(matches!(err, ContextError::MissingContext { .. }));
        assert!(err.to_string().contains("nope"), "{err}");

        put(root, "file", b"f");
        let err = plan_context(&options(&root.join("file"), &root.join("file")))
            .expect_err("not a directory");
        assert!(matches!(err, ContextError::NotADirectory { .. }), "{err}");

        let err = plan_context(&options(root, &root.join("Dockerfile.missing")))
            .expect_err("missing Dockerfile");
        assert!(matches!(err, ContextError::MissingDockerfile { .. }));
        assert!(err.to_string().contains("Dockerfile.missing"), "{err}");

        let err = plan_context(&options(root, root)).expect_err("directory as Dockerfile");
        assert!(
            matches!(err, ContextError::DockerfileNotAFile { .. }),
            "{err}"
        );

        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, ".dockerignore", b"ok\n[broken\n");
        let err = plan_context(&options(root, &root.join("Dockerfile"))).expect_err("bad ignore");
        assert!(
            err.to_string()
                .contains(".dockerignore:2: invalid pattern `[broken`"),
            "{err}"
        );
    }

    #[test]
    fn files_that_change_after_planning_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, "grows", b"1234");
        put(root, "goes", b"1234");
        let plan = plan_of(root);

        put(root, "grows", b"12345");
        let err = write_tar(&plan, io::sink()).expect_err("grown file");
        assert!(
            matches!(err, ContextError::FileChanged { expected: 4, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("grows"), "{err}");

        put(root, "grows", b"123");
        let err = write_tar(&plan, io::sink()).expect_err("shrunk file");
        assert!(matches!(err, ContextError::FileChanged { .. }), "{err}");

        put(root, "grows", b"1234");
        fs::remove_file(root.join("goes")).expect("rm");
        let err = write_tar(&plan, io::sink()).expect_err("removed file");
        assert!(matches!(err, ContextError::ReadFile { .. }), "{err}");
        assert!(err.to_string().contains("goes"), "{err}");
    }

    #[tokio::test]
    async fn a_failing_writer_ends_the_stream_with_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, "vanishes", b"soon");
        let plan = plan_of(root);
        fs::remove_file(root.join("vanishes")).expect("rm");

        let (mut stream, writer) = stream_tar(plan);
        let mut saw_error = None;
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                saw_error = Some(e.to_string());
            }
        }
        let message = saw_error.expect("an error item");
        assert!(message.contains("vanishes"), "{message}");
        let err = writer.await.expect("join").expect_err("writer error");
        assert!(matches!(err, ContextError::ReadFile { .. }), "{err}");
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "Dockerfile", b"FROM scratch\n");
        put(root, "big", &vec![7u8; 4 * 1024 * 1024]);
        let (stream, writer) = stream_tar(plan_of(root));
        drop(stream);
        let err = writer.await.expect("join").expect_err("nobody reads");
        assert!(matches!(err, ContextError::Write { .. }), "{err}");
    }

    #[test]
    fn paths_sort_component_by_component() {
        let mut v = vec!["a.txt", "a/b", "a", "a-b", "b", "a/b/c", ".x"];
        v.sort_by(|a, b| compare_paths(a, b));
        assert_eq!(v, [".x", "a", "a/b", "a/b/c", "a-b", "a.txt", "b"]);
    }
}
