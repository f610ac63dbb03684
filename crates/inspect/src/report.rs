//! What an analysis says: the [`Analysis`] of one image, its [`LayerReport`]s, the
//! [`WastedPath`]s and [`DiveFigures`] — serde types, as the JSON report writes them.

use serde::Serialize;

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
    /// The largest wasted copies, largest first, at most [`AnalyzeOptions::top_n`](crate::AnalyzeOptions::top_n).
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
