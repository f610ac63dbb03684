use std::path::PathBuf;

/// Everything that can go wrong in this crate, with the file, flag or name involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid size {input:?}: {reason} (examples: 30G, 30GB, 500MiB, 1073741824)")]
    Size { input: String, reason: String },
    #[error("unknown item {name:?} in {origin}; known items: {known}")]
    UnknownItem {
        name: String,
        origin: String,
        known: String,
    },
    #[error("{origin}: {message}")]
    Config { origin: String, message: String },
    /// A `protect` entry of the configuration's `[free]` table that cannot be honoured
    /// (entry `index`, from 0). It does not name the file: the caller that read it does.
    #[error("free.protect[{index}] {entry:?}: {message}")]
    Protect {
        index: usize,
        entry: String,
        message: String,
    },
    #[error("{what} {}: does not exist", path.display())]
    Missing { what: &'static str, path: PathBuf },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
