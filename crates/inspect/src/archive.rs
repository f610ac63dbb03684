//! The outer tar: one pass over the archive, keeping the JSON documents and the file lists of
//! the layer blobs, keyed by their paths in the archive.

use std::collections::{HashMap, HashSet};
use std::io::{self, Cursor, Read};

use sha2::{Digest, Sha256};
use tar::EntryType;

use super::error::{InspectError, truncated};
use super::layer::{self, LayerData};
use super::report::Compression;
use super::text::{hex, normalize, short};

/// The largest JSON document kept in memory.
pub(super) const JSON_LIMIT: u64 = 64 << 20;
/// The most JSON kept in memory in all.
const JSON_TOTAL_LIMIT: u64 = 256 << 20;
/// Top-level documents that are JSON whatever they start with.
const KNOWN_JSON: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];
/// How many links are followed from one path.
const MAX_LINK_HOPS: usize = 32;

/// What one pass over the archive kept.
#[derive(Debug, Default)]
pub(super) struct Collected {
    /// JSON documents by path.
    pub(super) json: HashMap<String, Vec<u8>>,
    /// Layer blobs by path: their file lists, or why they could not be read.
    pub(super) layers: HashMap<String, Result<LayerData, String>>,
    /// Symbolic and hard links of the archive (repeated legacy layers): path → target path.
    pub(super) links: HashMap<String, String>,
    /// Other regular files (neither JSON nor a layer).
    pub(super) other: HashSet<String>,
}

impl Collected {
    /// Follow the archive's links from `path` to the entry that holds the content.
    pub(super) fn resolve<'a>(&'a self, path: &'a str) -> &'a str {
        let mut at = path;
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(at) {
                Some(target) => at = target,
                None => break,
            }
        }
        at
    }

    /// A JSON document by path (links followed).
    pub(super) fn json(&self, path: &str) -> Option<&[u8]> {
        self.json.get(self.resolve(path)).map(Vec::as_slice)
    }

    /// The layer at `path` (links followed), or why it cannot be used.
    pub(super) fn layer<'a>(
        &'a self,
        path: &'a str,
        referrer: &str,
    ) -> Result<(&'a str, &'a LayerData), InspectError> {
        let at = self.resolve(path);
        let fail = |message: &str| InspectError::Layer {
            blob: path.to_string(),
            message: message.to_string(),
        };
        match self.layers.get(at) {
            Some(Ok(data)) => Ok((path, data)),
            Some(Err(message)) => Err(fail(message)),
            None if self.json.contains_key(at) => {
                Err(fail("not a layer: it holds a JSON document"))
            }
            None if self.other.contains(at) => Err(fail("not a tar, gzip or zstd stream")),
            None if self.links.contains_key(at) => Err(fail("a cycle of links")),
            None => Err(InspectError::Missing {
                referrer: referrer.to_string(),
                path: path.to_string(),
            }),
        }
    }

    /// Forget whatever an earlier entry at `path` held (a later entry replaces it).
    fn forget(&mut self, path: &str) {
        self.json.remove(path);
        self.layers.remove(path);
        self.links.remove(path);
        self.other.remove(path);
    }
}

/// The input, counted, with the first error it gave kept (to tell a failing reader from a
/// damaged archive).
struct Source<R> {
    inner: R,
    count: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count = self.count.saturating_add(n as u64);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// The content of one outer entry, hashed and counted as it is read.
pub(super) struct Raw<R> {
    pub(super) inner: R,
    pub(super) hasher: Option<Sha256>,
    pub(super) count: u64,
}

impl<R: Read> Read for Raw<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}

/// Where the walk has got to: the last entry and where its data ends.
#[derive(Debug, Default)]
struct Progress {
    last: Option<(String, u64)>,
    json_total: u64,
}

impl Progress {
    /// Whether a JSON document of `size` bytes may be kept; too large for a document the
    /// image needs is an error, for another the document is not kept.
    fn json_fits(&self, name: &str, size: u64) -> Result<bool, InspectError> {
        let total = self.json_total.saturating_add(size);
        if size <= JSON_LIMIT && total <= JSON_TOTAL_LIMIT {
            return Ok(true);
        }
        if KNOWN_JSON.contains(&name) {
            return Err(InspectError::TooLarge {
                name: name.to_string(),
                size,
                limit: JSON_LIMIT.min(JSON_TOTAL_LIMIT.saturating_sub(self.json_total)),
            });
        }
        Ok(false)
    }

    /// The walk ended after `read` bytes of input: an error unless they reach past the last
    /// entry's data and hold the end-of-archive marker. (The tar crate stops quietly at the
    /// end of the input when it falls between two entries; an archive written whole ends with
    /// a block of zeros, which the crate reads.)
    fn check_end(&self, read: u64) -> Result<(), InspectError> {
        let data_end = self.last.as_ref().map_or(0, |(_, end)| *end);
        if read >= data_end.saturating_add(512) {
            return Ok(());
        }
        Err(match &self.last {
            None if read == 0 => InspectError::NotATar("the input is empty".to_string()),
            None => InspectError::NotATar("no tar entries".to_string()),
            Some((name, _)) => InspectError::Archive {
                context: format!("after entry {}", short(name)),
                message: "the input ends without the end-of-archive marker: truncated".to_string(),
            },
        })
    }

    fn context(&self) -> String {
        match &self.last {
            Some((name, _)) => format!("after entry {}", short(name)),
            None => "at its first entry".to_string(),
        }
    }
}

/// Read the archive once, keeping what the analysis needs; `verify`: check every blob named by
/// a digest against it (SHA-256 of all the bytes).
pub(super) fn collect(reader: impl Read, verify: bool) -> Result<Collected, InspectError> {
    let mut archive = tar::Archive::new(Source {
        inner: reader,
        count: 0,
        error: None,
    });
    let mut out = Collected::default();
    let mut progress = Progress::default();
    let walked = archive
        .entries()
        .map_err(|e| InspectError::NotATar(e.to_string()))
        .and_then(|entries| walk(entries, &mut out, &mut progress, Mode::Stream { verify }));
    let source = archive.into_inner();
    if let Some(source_error) = source.error {
        return Err(InspectError::Read {
            offset: source.count,
            source: source_error,
        });
    }
    walked?;
    progress.check_end(source.count)?;
    Ok(out)
}

/// What the walk does with a regular file of the archive.
enum Mode<'a> {
    /// Read it as it streams past: JSON kept, layers analysed, everything hashed if `verify`.
    Stream { verify: bool },
    /// Read its first block (and all of a JSON document) and list where a layer blob lies,
    /// for [`index`]'s caller to read later.
    Index {
        blobs: &'a mut Vec<Blob>,
        verify: bool,
    },
}

/// A layer blob found by [`index`]: where its bytes lie in the archive.
#[derive(Debug, Clone)]
pub(super) struct Blob {
    pub(super) name: String,
    pub(super) offset: u64,
    pub(super) size: u64,
    pub(super) compression: Compression,
}

fn walk<R: Read>(
    entries: tar::Entries<'_, R>,
    out: &mut Collected,
    progress: &mut Progress,
    mut mode: Mode<'_>,
) -> Result<(), InspectError> {
    for entry in entries {
        let mut entry = entry.map_err(|e| match progress.last {
            None => InspectError::NotATar(format!("not a tar stream ({e})")),
            Some(_) => InspectError::Archive {
                context: progress.context(),
                message: e.to_string(),
            },
        })?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let size = entry.size();
        let on_disk = match entry.header().entry_size() {
            Ok(0) | Err(_) => size,
            Ok(n) => n,
        };
        let end = entry
            .raw_file_position()
            .saturating_add(on_disk.div_ceil(512).saturating_mul(512));
        progress.last = Some((name.clone(), end));
        if name.is_empty() {
            continue;
        }
        match entry.header().entry_type() {
            kind @ (EntryType::Symlink | EntryType::Link) => {
                out.forget(&name);
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let target = if kind == EntryType::Link || target.starts_with('/') {
                    normalize(&target)
                } else {
                    let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                    normalize(&format!("{parent}/{target}"))
                };
                if target != name {
                    out.links.insert(name, target);
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                out.forget(&name);
                match &mut mode {
                    Mode::Stream { verify } => {
                        file(&mut entry, &name, size, out, progress, *verify)?;
                    }
                    Mode::Index { blobs, verify } => {
                        blobs.retain(|b| b.name != name);
                        let offset = entry.raw_file_position();
                        let found =
                            indexed(&mut entry, &name, size, offset, out, progress, *verify)?;
                        if let Some(blob) = found {
                            blobs.push(blob);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a regular file of the archive holds, judged by its name and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Json,
    Layer(Compression),
    Other,
}

fn classify(name: &str, head: &[u8]) -> Class {
    if KNOWN_JSON.contains(&name) || name.ends_with(".json") {
        return Class::Json;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Class::Layer(Compression::Gzip);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Class::Layer(Compression::Zstd);
    }
    // An empty blob is an empty layer (Docker writes them; dive reads them as such).
    if head.is_empty()
        || (head.len() == 512 && (head.iter().all(|b| *b == 0) || is_tar_header(head)))
    {
        return Class::Layer(Compression::None);
    }
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Class::Json,
        _ => Class::Other,
    }
}

/// Whether a 512-byte block is a tar header: its checksum field matches its bytes.
pub(super) fn is_tar_header(block: &[u8]) -> bool {
    let Some(field) = block.get(148..156) else {
        return false;
    };
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Some(declared) = digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    }) else {
        return false;
    };
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(*b as i8)
            }
        })
        .sum();
    declared == unsigned || i64::try_from(declared).is_ok_and(|d| d == signed)
}

/// One regular file of the archive.
fn file<R: Read>(
    entry: &mut R,
    name: &str,
    size: u64,
    out: &mut Collected,
    progress: &mut Progress,
    verify: bool,
) -> Result<(), InspectError> {
    let read_error = |e: io::Error| InspectError::Archive {
        context: format!("entry {}", short(name)),
        message: e.to_string(),
    };
    let mut raw = Raw {
        inner: entry,
        hasher: verify.then(Sha256::new),
        count: 0,
    };
    let mut head = Vec::with_capacity(512);
    (&mut raw)
        .take(512)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    let class = classify(name, &head);
    let mut kept: Option<Result<LayerData, String>> = None;
    match class {
        Class::Json => {
            if !progress.json_fits(name, size)? {
                drain(&mut raw).map_err(read_error)?;
                out.other.insert(name.to_string());
            } else {
                let mut doc = head;
                raw.read_to_end(&mut doc).map_err(read_error)?;
                progress.json_total = progress.json_total.saturating_add(doc.len() as u64);
                out.json.insert(name.to_string(), doc);
            }
        }
        Class::Layer(compression) => {
            let read = layer::read_layer(Cursor::new(head).chain(&mut raw), compression, verify);
            drain(&mut raw).map_err(read_error)?;
            kept = Some(read);
        }
        Class::Other => {
            drain(&mut raw).map_err(read_error)?;
            out.other.insert(name.to_string());
        }
    }
    if raw.count != size {
        out.forget(name);
        return Err(InspectError::Archive {
            context: format!("entry {}", short(name)),
            message: truncated(size, "input", raw.count),
        });
    }
    let digest = raw.hasher.map(|h| hex(&h.finalize()));
    if let Some(read) = kept {
        let read = settle(name, read, raw.count, digest.as_deref())?;
        out.layers.insert(name.to_string(), read);
    } else {
        check_digest(name, digest.as_deref())?;
    }
    Ok(())
}

/// A blob's digest (`None`: not computed) against the digest its name gives.
fn check_digest(name: &str, digest: Option<&str>) -> Result<(), InspectError> {
    if let (Some(named), Some(digest)) = (content_address(name), digest) {
        if !named.eq_ignore_ascii_case(digest) {
            return Err(InspectError::Digest {
                path: name.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    Ok(())
}

/// A layer blob read whole: its digest checked, its size and (for a plain tar, whose digest is
/// the layer's diff id) diff id filled in. Without a computed digest, a plain tar's diff id is
/// the digest its name gives, if any (unverified).
pub(super) fn settle(
    name: &str,
    read: Result<LayerData, String>,
    blob_bytes: u64,
    digest: Option<&str>,
) -> Result<Result<LayerData, String>, InspectError> {
    check_digest(name, digest)?;
    Ok(read.map(|mut data| {
        data.blob_bytes = blob_bytes;
        if data.compression == Compression::None {
            data.diff_id = digest
                .or_else(|| content_address(name))
                .map(|d| format!("sha256:{}", d.to_ascii_lowercase()));
        }
        data
    }))
}

/// One regular file of the archive, for [`index`]: its first block read to tell what it is,
/// a JSON document read whole, a layer blob listed (returned) and skipped.
fn indexed<R: Read>(
    entry: &mut R,
    name: &str,
    size: u64,
    offset: u64,
    out: &mut Collected,
    progress: &mut Progress,
    verify: bool,
) -> Result<Option<Blob>, InspectError> {
    let read_error = |e: io::Error| InspectError::Archive {
        context: format!("entry {}", short(name)),
        message: e.to_string(),
    };
    let mut head = Vec::with_capacity(512);
    entry.take(512).read_to_end(&mut head).map_err(read_error)?;
    let short_by = |held: u64| InspectError::Archive {
        context: format!("entry {}", short(name)),
        message: truncated(size, "input", held),
    };
    match classify(name, &head) {
        Class::Json => {
            if !progress.json_fits(name, size)? {
                out.other.insert(name.to_string());
                return Ok(None);
            }
            let mut doc = head;
            entry.read_to_end(&mut doc).map_err(read_error)?;
            if doc.len() as u64 != size {
                return Err(short_by(doc.len() as u64));
            }
            if verify {
                check_digest(name, Some(&hex(&Sha256::digest(&doc))))?;
            }
            progress.json_total = progress.json_total.saturating_add(doc.len() as u64);
            out.json.insert(name.to_string(), doc);
            Ok(None)
        }
        Class::Layer(compression) => {
            if (head.len() as u64) < size.min(512) {
                return Err(short_by(head.len() as u64));
            }
            Ok(Some(Blob {
                name: name.to_string(),
                offset,
                size,
                compression,
            }))
        }
        Class::Other => {
            if verify && content_address(name).is_some() {
                let mut hasher = Sha256::new();
                hasher.update(&head);
                let mut sink = Raw {
                    inner: entry,
                    hasher: Some(hasher),
                    count: head.len() as u64,
                };
                drain(&mut sink).map_err(read_error)?;
                if sink.count != size {
                    return Err(short_by(sink.count));
                }
                let digest = sink.hasher.map(|h| hex(&h.finalize()));
                check_digest(name, digest.as_deref())?;
            }
            out.other.insert(name.to_string());
            Ok(None)
        }
    }
}

/// Index a seekable archive: one walk over its headers that keeps the JSON documents and the
/// links and lists the layer blobs, whose bytes it skips. `len`: the archive's length.
pub(super) fn index<R: Read + io::Seek>(
    reader: R,
    len: u64,
    verify: bool,
) -> Result<(Collected, Vec<Blob>), InspectError> {
    let mut archive = tar::Archive::new(reader);
    let mut out = Collected::default();
    let mut progress = Progress::default();
    let mut blobs = Vec::new();
    archive
        .entries_with_seek()
        .map_err(|e| InspectError::NotATar(e.to_string()))
        .and_then(|entries| {
            walk(
                entries,
                &mut out,
                &mut progress,
                Mode::Index {
                    blobs: &mut blobs,
                    verify,
                },
            )
        })?;
    // A blob whose bytes run past the end of the input.
    for blob in &blobs {
        let held = len.saturating_sub(blob.offset);
        if held < blob.size {
            return Err(InspectError::Archive {
                context: format!("entry {}", short(&blob.name)),
                message: truncated(blob.size, "input", held),
            });
        }
    }
    progress.check_end(len)?;
    Ok((out, blobs))
}

/// Read to the end, discarding.
pub(super) fn drain(reader: &mut impl Read) -> io::Result<u64> {
    io::copy(reader, &mut io::sink())
}

/// The SHA-256 a path names its content by: `blobs/sha256/<hex>`, or a legacy config
/// `<hex>.json` at the top.
fn content_address(name: &str) -> Option<&str> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = name.strip_prefix("blobs/sha256/") {
        return hex64(rest).then_some(rest);
    }
    let stem = name.strip_suffix(".json")?;
    hex64(stem).then_some(stem)
}
