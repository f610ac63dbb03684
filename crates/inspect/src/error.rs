//! [`InspectError`]: why an archive could not be analysed.

use super::text::short;

/// Why an archive could not be analysed. Messages name the entry, blob or document involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The reader itself failed.
    #[error("reading the archive at byte {offset}: {source}")]
    Read {
        /// Bytes read before the failure.
        offset: u64,
        /// What the reader said.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a tar stream at all (empty, or garbage from the first header).
    #[error("not an image archive: {0}")]
    NotATar(String),
    /// The outer tar is damaged or cut short.
    #[error("archive {context}: {message}")]
    Archive {
        /// Which entry (`entry manifest.json`, `after entry blobs/sha256/ab12…`).
        context: String,
        /// What is wrong.
        message: String,
    },
    /// Neither layout's top document is in the archive.
    #[error("not an image archive: no manifest.json or index.json")]
    NotAnImage,
    /// A JSON document is malformed or not shaped as expected.
    #[error("{name}: {message}")]
    Json {
        /// The document (`manifest.json`, `index.json`, `blobs/sha256/ab12…`).
        name: String,
        /// What is wrong, with serde's line and column when it failed to parse.
        message: String,
    },
    /// A JSON document is larger than the analyser keeps in memory.
    #[error("{name}: {size} bytes is too large for a JSON document (limit {limit})")]
    TooLarge {
        /// The document.
        name: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A document refers to a blob or layer that the archive does not hold.
    #[error("{referrer} refers to {}, which is not in the archive", short(.path))]
    Missing {
        /// The referring document.
        referrer: String,
        /// The missing path.
        path: String,
    },
    /// A blob named by its digest does not hold that content.
    #[error("{}: its content is sha256:{} — not the digest it is named by", short(.path), short(.actual))]
    Digest {
        /// The blob.
        path: String,
        /// The SHA-256 of what it holds.
        actual: String,
    },
    /// A layer blob could not be read (`truncated gzip stream`, `corrupt tar: …`), is not a
    /// layer, or does not match the diff id of the config.
    #[error("layer {}: {message}", short(.blob))]
    Layer {
        /// The blob's path in the archive.
        blob: String,
        /// What is wrong.
        message: String,
    },
    /// [`AnalyzeOptions::image`](crate::AnalyzeOptions::image) names no image of the archive.
    #[error("no image named {0} in the archive")]
    NoSuchImage(String),
}

/// Why an entry is short: `held` of the `declared` bytes, in the `input` or the `layer`.
pub(crate) fn truncated(declared: u64, place: &str, held: u64) -> String {
    format!("truncated: its header declares {declared} bytes, the {place} holds {held}")
}
