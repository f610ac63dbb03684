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
//!
//! Code map, from the entry points down: [`analyze`] and [`analyze_file`] (here) read the
//! archive through `archive` (one pass over a stream) or `file` (headers first, then the
//! layers in parallel); `layer` decompresses and walks one layer blob; `layout` picks the
//! image and its layers from `manifest.json` or `index.json`; `account` applies the layers in
//! order and counts what the final image shows; `report` holds the public figures, `error`
//! [`InspectError`], `text` the path and digest helpers that all of them share.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod account;
mod archive;
mod error;
mod file;
mod layer;
mod layout;
mod report;
#[cfg(test)]
mod tests;
mod text;

use std::io::Read;

pub use error::InspectError;
pub use report::{
    Analysis, Compression, DIVE_EXPLANATION, DiveFigures, LayerReport, Layout, WastedPath,
};

use text::short;

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

fn finish(
    collected: &archive::Collected,
    options: &AnalyzeOptions,
) -> Result<Analysis, InspectError> {
    let plan = layout::resolve(collected, options.image.as_deref())?;

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
