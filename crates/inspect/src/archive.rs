//! The outer tar: one pass over the archive, keeping the JSON documents and the file lists of
//! the layer blobs, keyed by their paths in the archive.

use std::collections::{HashMap, HashSet};
use std::io::{self, Cursor, Read};

use sha2::{Digest, Sha256};
use tar::EntryType;

use super::layer::{self, LayerData};
use super::{Compression, InspectError, hex, normalize, short};

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
struct Raw<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Raw<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
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
    fn context(&self) -> String {
        match &self.last {
            Some((name, _)) => format!("after entry {}", short(name)),
            None => "at its first entry".to_string(),
        }
    }
}

/// Read the archive once, keeping what the analysis needs.
pub(super) fn collect(reader: impl Read) -> Result<Collected, InspectError> {
    let mut archive = tar::Archive::new(Source {
        inner: reader,
        count: 0,
        error: None,
    });
    let mut out = Collected::default();
    let mut progress = Progress::default();
    let walked = walk(&mut archive, &mut out, &mut progress);
    let source = archive.into_inner();
    if let Some(source_error) = source.error {
        return Err(InspectError::Read {
            offset: source.count,
            source: source_error,
        });
    }
    walked?;
    // The tar crate stops quietly at the end of the input when it falls between two entries;
    // an archive written whole ends with a block of zeros, which the crate reads.
    let data_end = progress.last.as_ref().map_or(0, |(_, end)| *end);
    if source.count < data_end.saturating_add(512) {
        return Err(match &progress.last {
            None if source.count == 0 => InspectError::NotATar("the input is empty".to_string()),
            None => InspectError::NotATar("no tar entries".to_string()),
            Some((name, _)) => InspectError::Archive {
                context: format!("after entry {}", short(name)),
                message: "the input ends without the end-of-archive marker: truncated".to_string(),
            },
        });
    }
    Ok(out)
}

fn walk<R: Read>(
    archive: &mut tar::Archive<Source<R>>,
    out: &mut Collected,
    progress: &mut Progress,
) -> Result<(), InspectError> {
    let entries = archive
        .entries()
        .map_err(|e| InspectError::NotATar(e.to_string()))?;
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
                file(&mut entry, &name, size, out, progress)?;
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
) -> Result<(), InspectError> {
    let read_error = |e: io::Error| InspectError::Archive {
        context: format!("entry {}", short(name)),
        message: e.to_string(),
    };
    let mut raw = Raw {
        inner: entry,
        hasher: Sha256::new(),
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
            let known = KNOWN_JSON.contains(&name);
            let total = progress.json_total.saturating_add(size);
            if size > JSON_LIMIT || total > JSON_TOTAL_LIMIT {
                if known {
                    return Err(InspectError::TooLarge {
                        name: name.to_string(),
                        size,
                        limit: JSON_LIMIT.min(JSON_TOTAL_LIMIT.saturating_sub(progress.json_total)),
                    });
                }
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
            let read = layer::read_layer(Cursor::new(head).chain(&mut raw), compression);
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
            message: format!(
                "truncated: its header declares {size} bytes, the input holds {}",
                raw.count
            ),
        });
    }
    let digest = hex(&raw.hasher.finalize());
    if let Some(named) = content_address(name) {
        if !named.eq_ignore_ascii_case(&digest) {
            return Err(InspectError::Digest {
                path: name.to_string(),
                actual: digest,
            });
        }
    }
    if let Some(read) = kept {
        let read = read.map(|mut data| {
            data.blob_bytes = raw.count;
            if data.diff_id.is_none() {
                // A plain tar: the blob is the uncompressed layer.
                data.diff_id = Some(format!("sha256:{digest}"));
            }
            data
        });
        out.layers.insert(name.to_string(), read);
    }
    Ok(())
}

/// Read to the end, discarding.
fn drain(reader: &mut impl Read) -> io::Result<u64> {
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
