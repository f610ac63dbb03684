//! `headroom-inspect`: image analysis from a saved image — where an image's bytes go and how
//! many of them the final image cannot see. No engine, no async runtime: it reads archives
//! and streams.
//!
//! [`analyze`] reads the tar stream that `docker save` (or the engine's `/images/{name}/get`)
//! writes, in either layout — the legacy one (`manifest.json` and `<id>/layer.tar`) or the OCI
//! one (`oci-layout`, `index.json`, `blobs/sha256/…`) — from any [`std::io::Read`]. The stream
//! is read once, front to back: the small JSON documents (manifests, indexes, configs) are kept,
//! every layer blob is decompressed (plain tar, gzip or zstd, told apart by their magic bytes)
//! and walked as it streams past, and only its file list (path, kind, size, content hash) is
//! kept. The order of the layers is resolved from the manifest at the end, so the order of the
//! entries in the archive does not matter and nothing is spilled to disk.
//!
//! The figures:
//! - **headroom's waste**: every regular file stored in a layer is a *copy*; a copy is visible
//!   when some path of the final image still shows it (its own path, or a hard link made in the
//!   same layer). Wasted bytes are the bytes of the copies that are not visible — overwritten,
//!   deleted by a whiteout, hidden by an opaque whiteout or by a directory replaced with a file.
//!   `total = visible + wasted` and `efficiency = visible / total` (1.0 for an empty image).
//! - **dive's figures**, computed by dive's own definition (see [`DiveFigures`]) so that the two
//!   can be compared side by side.
//! - **duplicate content**: visible files at different paths with the same size and content
//!   (XXH3-128), reported on its own, not added to the waste.
//!
//! [`analyze_file`] gives the same analysis of an archive in a file, faster: its headers are
//! walked first and its layer blobs then read in parallel by positional reads; a plain layer
//! is walked by its tar headers alone, and only the files whose size another file shares are
//! read afterwards (a file of a unique size cannot be a duplicate).
//!
//! Integrity is checked on the way: entries must hold the bytes their headers declare and the
//! archive must end with its end-of-archive marker; with [`AnalyzeOptions::verify`], blobs
//! named by a digest must match it and layers must match the config's `rootfs.diff_ids`. A corrupt or truncated archive is an error,
//! never a panic and never a silently different answer. The analyser is synchronous and never
//! prints.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod account;
mod archive;
mod file;
mod layer;
mod layout;
#[cfg(test)]
mod tests;

use std::io::Read;

use serde::Serialize;

/// What [`analyze`] should look at and how much it should report.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// How many wasted copies to list in [`Analysis::top_wasted`], largest first.
    pub top_n: usize,
    /// Which image of a multi-image archive to analyse, by one of its names (`RepoTags` in
    /// `manifest.json`, the `io.containerd.image.name` or `org.opencontainers.image.ref.name`
    /// annotation in `index.json`). `None`: the first image.
    pub image: Option<String>,
    /// Check every blob named by a digest against it and every layer against the config's diff
    /// ids: a SHA-256 of every byte of the archive (and of every uncompressed layer). Off, the
    /// digests a report shows are the ones the archive names (and the config lists), and a
    /// corrupt blob is caught only where its tar or compression is damaged.
    pub verify: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            top_n: 10,
            image: None,
            verify: false,
        }
    }
}

/// Which layout the archive was read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `manifest.json` (written by every engine; engines ≥ 25 also write an OCI layout).
    Docker,
    /// `index.json` of an OCI image layout, used when there is no `manifest.json`.
    Oci,
}

/// How a layer blob was stored in the archive (sniffed from its first bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`), possibly several members.
    Gzip,
    /// zstd (`28 b5 2f fd`), possibly several frames.
    Zstd,
}

/// The analysis of one image.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The image's first name (`RepoTags[0]`, or the name annotation of an OCI index).
    pub image: Option<String>,
    /// Which layout was read.
    pub layout: Layout,
    /// The layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// Bytes of regular files stored across all layers (the sum of `layers[].size_bytes`).
    pub total_bytes: u64,
    /// Bytes of the stored copies that the final image shows (hard links counted once).
    pub visible_bytes: u64,
    /// `total_bytes - visible_bytes`: bytes stored in layers that the final image cannot see.
    pub wasted_bytes: u64,
    /// `visible_bytes / total_bytes`; 1.0 when nothing is stored.
    pub efficiency: f64,
    /// The largest wasted copies, largest first, at most [`AnalyzeOptions::top_n`].
    pub top_wasted: Vec<WastedPath>,
    /// Bytes of visible files whose content (size and XXH3-128) is also visible at another path: for
    /// each content seen at `k` paths, `(k - 1) × size`. Hard links are one file, not
    /// duplicates. Not part of `wasted_bytes`.
    pub duplicate_bytes: u64,
    /// The same image scored by dive's definitions.
    pub dive: DiveFigures,
}

/// One layer of the image.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Position in the image, 0 = the bottom layer.
    pub index: usize,
    /// `sha256:` digest of the uncompressed layer tar (its diff id).
    pub digest: String,
    /// Where the layer blob sits in the archive (`<id>/layer.tar` or `blobs/sha256/<hex>`).
    pub blob: String,
    /// How the blob was stored.
    pub compression: Compression,
    /// Bytes of the blob as stored in the archive.
    pub blob_bytes: u64,
    /// Sum of the sizes of the regular files in the layer (hard links, symlinks, directories
    /// and whiteouts count 0) — the layer size dive shows.
    pub size_bytes: u64,
    /// Bytes of the uncompressed layer tar (headers and padding included).
    pub tar_bytes: u64,
    /// The `created_by` of the config's history entry for this layer (entries with
    /// `empty_layer: true` are skipped when pairing them).
    pub created_by: Option<String>,
    /// True when the layer holds nothing but directories.
    pub empty: bool,
    /// Non-directory entries at paths that did not exist below.
    pub files_added: u64,
    /// Non-directory entries at paths that existed below (or were whited out by this layer).
    pub files_modified: u64,
    /// Non-directory paths of lower layers that this layer removed and did not write again:
    /// whiteouts, opaque whiteouts, and directories replaced by a file.
    pub files_removed: u64,
    /// Bytes of the files counted in `files_removed` (a hard-linked file once).
    pub bytes_removed: u64,
    /// `.wh.<name>` entries.
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries.
    pub opaque_whiteouts: u64,
    /// Hard-link entries.
    pub hard_links: u64,
    /// Symbolic-link entries.
    pub symlinks: u64,
    /// Bytes this layer stored that the final image cannot see.
    pub wasted_bytes: u64,
}

/// A copy of a file that a layer stored and the final image cannot see.
#[derive(Debug, Clone, Serialize)]
pub struct WastedPath {
    /// The path the copy was written at (no leading `/`).
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// The layer that wrote it.
    pub written_in: usize,
    /// The layer that deleted, hid or overwrote it.
    pub removed_in: Option<usize>,
}

/// dive's figures (dive 0.13.1), by dive's definitions:
/// - for every path seen as a leaf of a layer's tree: its cumulative size over the layers and
///   the smallest size seen; a whiteout of a directory counts the size of the files it hides,
///   a whiteout of a file counts 0, opaque whiteouts are ignored;
/// - a whiteout of a path no lower layer has is dive's defect, followed: the path counts with
///   a smallest size of -1 and the rest of that layer's leaves (in dive's order: depth first,
///   children by name) are not visited;
/// - `efficiency = Σ smallest / Σ cumulative` (1.0 when both are 0);
/// - `wasted_bytes = Σ cumulative` of every path seen in two or more layers (the kept copy
///   included);
/// - `user_wasted_percent = wasted_bytes / (sum of layer sizes except layer 0)`, a fraction
///   despite its name, divided as dive divides: `+Inf` when bytes are wasted but the layers
///   above the first hold none (dive's gate fails it), `NaN` when neither (dive's gate passes
///   it); JSON has no such numbers, so they are written as `null`.
#[derive(Debug, Clone, Serialize)]
pub struct DiveFigures {
    /// `Σ smallest / Σ cumulative`.
    pub efficiency: f64,
    /// Σ cumulative size of the paths seen in two or more layers.
    pub wasted_bytes: u64,
    /// `wasted_bytes / user_size_bytes`.
    pub user_wasted_percent: f64,
    /// Sum of the layer sizes except layer 0.
    pub user_size_bytes: u64,
    /// Why these differ from headroom's figures, in one line.
    pub explanation: String,
}

/// Why dive's figures differ from ours (shown next to them).
pub const DIVE_EXPLANATION: &str = "dive adds up every copy of a path seen in two or more layers, \
     the copy the image keeps included, and ignores opaque whiteouts; headroom counts only the \
     bytes stored in layers that the final image cannot see";

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
    /// [`AnalyzeOptions::image`] names no image of the archive.
    #[error("no image named {0} in the archive")]
    NoSuchImage(String),
}

/// Analyse the saved image (`docker save` output, either layout) read from `reader`.
///
/// The reader is read once, front to back, and not necessarily to its end (bytes after the
/// tar's end-of-archive marker are not read). Memory holds the JSON documents and the file
/// lists of the layers, never the content of a layer.
pub fn analyze(reader: impl Read, options: &AnalyzeOptions) -> Result<Analysis, InspectError> {
    let collected = archive::collect(reader, options.verify)?;
    finish(&collected, options)
}

/// Analyse the saved image in `file`, as [`analyze`] does, with the same figures, faster: its
/// headers are read first and its layers then read in parallel (positional reads, one thread
/// per core); without [`AnalyzeOptions::verify`], plain layers are indexed by their headers
/// and only the files whose size another file shares are read, to compare their content.
pub fn analyze_file(
    file: &std::fs::File,
    options: &AnalyzeOptions,
) -> Result<Analysis, InspectError> {
    let collected = file::collect(file, options.verify)?;
    finish(&collected, options)
}

/// Why an entry is short: `held` of the `declared` bytes, in the `input` or the `layer`.
fn truncated(declared: u64, place: &str, held: u64) -> String {
    format!("truncated: its header declares {declared} bytes, the {place} holds {held}")
}

fn finish(
    collected: &archive::Collected,
    options: &AnalyzeOptions,
) -> Result<Analysis, InspectError> {
    let plan = layout::resolve(collected, options)?;

    let mut layers = Vec::with_capacity(plan.layers.len());
    for (index, path) in plan.layers.iter().enumerate() {
        let (blob, data) = collected.layer(path, &plan.referrer).map_err(|e| match e {
            InspectError::Layer { blob, message } => InspectError::Layer {
                blob,
                message: format!("{message} (layer {index} of the image, from the bottom)"),
            },
            other => other,
        })?;
        let expected = plan
            .config
            .diff_ids
            .as_ref()
            .filter(|ids| ids.len() == plan.layers.len())
            .and_then(|ids| ids.get(index));
        // Not computed (no `verify`): the config's word for it.
        let digest = match (&data.diff_id, expected) {
            (Some(d), _) => d.clone(),
            (None, Some(e)) => e.to_ascii_lowercase(),
            (None, None) => String::new(),
        };
        if let Some(expected) = expected.filter(|_| data.diff_id.is_some()) {
            if !expected.eq_ignore_ascii_case(&digest) {
                return Err(InspectError::Layer {
                    blob: blob.to_string(),
                    message: format!(
                        "its content is {}, but the image config lists diff id {} for layer {index}",
                        short(&digest),
                        short(expected)
                    ),
                });
            }
        }
        layers.push((blob.to_string(), digest, data));
    }

    let datas: Vec<&layer::LayerData> = layers.iter().map(|(_, _, d)| *d).collect();
    let acct = account::account(&datas, options.top_n);

    let reports = layers
        .iter()
        .zip(acct.layers.iter())
        .enumerate()
        .map(|(index, ((blob, digest, data), stats))| LayerReport {
            index,
            digest: digest.clone(),
            blob: blob.clone(),
            compression: data.compression,
            blob_bytes: data.blob_bytes,
            size_bytes: stats.size_bytes,
            tar_bytes: data.tar_bytes,
            created_by: plan.config.created_by.get(index).cloned().flatten(),
            empty: stats.empty,
            files_added: stats.files_added,
            files_modified: stats.files_modified,
            files_removed: stats.files_removed,
            bytes_removed: stats.bytes_removed,
            whiteouts: stats.whiteouts,
            opaque_whiteouts: stats.opaque_whiteouts,
            hard_links: stats.hard_links,
            symlinks: stats.symlinks,
            wasted_bytes: stats.wasted_bytes,
        })
        .collect();

    Ok(Analysis {
        image: plan.image,
        layout: plan.layout,
        layers: reports,
        total_bytes: acct.total_bytes,
        visible_bytes: acct.visible_bytes,
        wasted_bytes: acct.wasted_bytes,
        efficiency: acct.efficiency,
        top_wasted: acct.top_wasted,
        duplicate_bytes: acct.duplicate_bytes,
        dive: acct.dive,
    })
}

/// A path or digest for a message: runs of 64 hex digits are cut to 12 and `…`.
fn short(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let at_boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if run == 64 && at_boundary {
            out.push_str(&text[i..i + 12]);
            out.push('…');
            i += 64;
        } else if run > 0 {
            out.push_str(&text[i..i + run]);
            i += run;
        } else {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

/// A path inside a tar, made canonical: no leading `/` or `./`, no empty or `.` components,
/// `..` resolved lexically (never above the root), no trailing `/`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}
