//! The plan of a build context: read the ignore rules, walk the tree without following a
//! symlink, and decide every entry of the tar, in tar order, before a byte is written.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use crate::ignore::{DockerIgnore, IgnoreError, MatchState};

/// Name under which a Dockerfile from outside the context is added to it (a `-N` suffix is
/// appended if the context already has an entry of that name).
pub const GENERATED_DOCKERFILE: &str = ".headroom-dockerfile";

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
pub(super) fn compare_paths(a: &str, b: &str) -> Ordering {
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
