//! One layer blob: decompress it as it streams past, walk its tar, and keep its file list.

use std::error::Error as _;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::error::truncated;
use super::report::Compression;
use super::text::{hex, normalize};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const BUFFER: usize = 64 * 1024;

/// What a layer blob holds.
#[derive(Debug, Clone)]
pub(super) struct LayerData {
    pub(super) compression: Compression,
    /// Bytes of the blob as stored (set by the caller).
    pub(super) blob_bytes: u64,
    /// Bytes of the uncompressed tar.
    pub(super) tar_bytes: u64,
    /// `sha256:` of the uncompressed tar; `None` for a plain tar, whose digest is the blob's
    /// (set by the caller).
    pub(super) diff_id: Option<String>,
    /// The entries, in tar order.
    pub(super) records: Vec<Record>,
}

/// One entry of a layer.
#[derive(Debug, Clone)]
pub(super) struct Record {
    /// The canonical path; for a whiteout, the path it deletes; for an opaque whiteout, the
    /// directory it empties.
    pub(super) path: String,
    pub(super) kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular file: its size and a 128-bit hash of its content (XXH3: duplicate
    /// detection needs no cryptographic strength, and it runs at memory speed).
    File {
        size: u64,
        content: u128,
    },
    /// A hard link to `target` (canonical path).
    HardLink {
        target: String,
    },
    Symlink,
    Dir,
    /// A device, a FIFO, or an entry type the analysis does not know.
    Other,
    /// `.wh.<name>`: deletes `path` and everything under it from the lower layers.
    Whiteout,
    /// `.wh..wh..opq`: hides every lower child of the directory `path`.
    Opaque,
}

/// The decompressor for a blob.
enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(Box<GzMembers<R>>),
    Zstd(Box<ZstdFrames<R>>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// The uncompressed stream, counted and (when compressed) hashed, with the first error the
/// decompressor gave kept.
struct Tracked<R> {
    inner: R,
    hasher: Option<Sha256>,
    count: u64,
    failure: Option<io::Error>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&buf[..n]);
                }
                self.count = self.count.saturating_add(n as u64);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.failure.is_none() {
                    let kind = if is_eof(&e) {
                        io::ErrorKind::UnexpectedEof
                    } else {
                        e.kind()
                    };
                    self.failure = Some(io::Error::new(kind, e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Whether an error is, or was caused by, the input ending too soon.
fn is_eof(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return true;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Read one layer blob (its bytes from the start) stored with `compression`; `verify`: also
/// hash the uncompressed stream (the layer's diff id) when it is compressed.
pub(super) fn read_layer(
    input: impl Read,
    compression: Compression,
    verify: bool,
) -> Result<LayerData, String> {
    let buffered = BufReader::with_capacity(BUFFER, input);
    let decoder = match compression {
        Compression::None => Decoder::Plain(buffered),
        Compression::Gzip => Decoder::Gzip(Box::new(GzMembers::new(buffered))),
        Compression::Zstd => Decoder::Zstd(Box::new(ZstdFrames::new(buffered))),
    };
    let mut archive = tar::Archive::new(Tracked {
        inner: decoder,
        hasher: (verify && compression != Compression::None).then(Sha256::new),
        count: 0,
        failure: None,
    });
    let mut records = Vec::new();
    let walked = archive
        .entries()
        .map_err(|e| format!("corrupt tar: {e}"))
        .and_then(|entries| walk(entries, &mut records, None));
    let mut tracked = archive.into_inner();
    // Read what follows the tar's end (its zero blocks, padding) so that the whole stream is
    // hashed and a compressed stream's trailer is checked.
    let drained = walked.and_then(|()| {
        io::copy(&mut tracked, &mut io::sink())
            .map(drop)
            .map_err(|e| e.to_string())
    });
    if let Some(failure) = tracked.failure.take() {
        let format = match compression {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        };
        return Err(if failure.kind() == io::ErrorKind::UnexpectedEof {
            format!("truncated {format} stream")
        } else {
            format!("corrupt {format} stream: {failure}")
        });
    }
    drained?;
    Ok(LayerData {
        compression,
        blob_bytes: 0,
        tar_bytes: tracked.count,
        diff_id: tracked
            .hasher
            .map(|h| format!("sha256:{}", hex(&h.finalize()))),
        records,
    })
}

/// A regular file whose content the walk skipped: where it lies in the layer blob.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    /// Index into [`LayerData::records`].
    pub(super) record: usize,
    /// Offset of its content from the start of the blob.
    pub(super) offset: u64,
    pub(super) size: u64,
}

/// Index a plain layer tar that can be seeked: headers only, the content of regular files
/// skipped and listed in the returned [`Pending`]s (their `content` is 0 until hashed).
/// `len`: the blob's length, to tell a truncated entry.
pub(super) fn index_layer<R: Read + io::Seek>(
    input: R,
    len: u64,
) -> Result<(LayerData, Vec<Pending>), String> {
    let mut archive = tar::Archive::new(input);
    let mut records = Vec::new();
    let mut pending = Vec::new();
    archive
        .entries_with_seek()
        .map_err(|e| format!("corrupt tar: {e}"))
        .and_then(|entries| walk(entries, &mut records, Some(&mut pending)))?;
    if let Some(last) = pending.last() {
        let held = len.saturating_sub(last.offset);
        if held < last.size {
            let path = records.get(last.record).map_or("", |r| r.path.as_str());
            return Err(format!(
                "entry {path}: {}",
                truncated(last.size, "layer", held)
            ));
        }
    }
    Ok((
        LayerData {
            compression: Compression::None,
            blob_bytes: len,
            tar_bytes: len,
            diff_id: None,
            records,
        },
        pending,
    ))
}

/// Walk a layer's entries into `records`; with `pending`, regular files are not read (their
/// places are listed there instead), else their content is hashed as it streams past.
fn walk<R: Read>(
    entries: tar::Entries<'_, R>,
    records: &mut Vec<Record>,
    mut pending: Option<&mut Vec<Pending>>,
) -> Result<(), String> {
    let mut buf = vec![0u8; if pending.is_some() { 0 } else { BUFFER }];
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| match &last {
            Some(path) => format!("corrupt tar after entry {path}: {e}"),
            None => format!("corrupt tar: {e}"),
        })?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw.split('/').any(|part| part == "..") {
            // Docker refuses to apply such a layer; folding it onto a path would make up
            // figures for a layer no engine would extract.
            return Err(format!(
                "entry {raw:?} has a `..` component: Docker refuses layers with such entries"
            ));
        }
        let path = normalize(&raw);
        let kind = entry.header().entry_type();
        last = Some(path.clone());
        if path.is_empty() {
            continue;
        }
        let (parent, base) = match path.rsplit_once('/') {
            Some((parent, base)) => (parent, base),
            None => ("", path.as_str()),
        };
        // AUFS bookkeeping (`.wh..wh.plnk/…`, `.wh..wh.aufs`) is not content.
        if path
            .split('/')
            .any(|part| part.starts_with(".wh..wh.") && part != OPAQUE)
        {
            continue;
        }
        if base == OPAQUE {
            records.push(Record {
                path: parent.to_string(),
                kind: Kind::Opaque,
            });
            continue;
        }
        if let Some(name) = base.strip_prefix(WHITEOUT) {
            if !name.is_empty()
                && !path
                    .split('/')
                    .rev()
                    .skip(1)
                    .any(|p| p.starts_with(WHITEOUT))
            {
                let target = if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}/{name}")
                };
                records.push(Record {
                    path: target,
                    kind: Kind::Whiteout,
                });
            }
            continue;
        }
        let kind = match kind {
            EntryType::Regular | EntryType::Continuous if pending.is_some() => {
                let size = entry.size();
                if let Some(list) = pending.as_mut() {
                    list.push(Pending {
                        record: records.len(),
                        offset: entry.raw_file_position(),
                        size,
                    });
                }
                Kind::File { size, content: 0 }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                if buf.is_empty() {
                    buf.resize(BUFFER, 0);
                }
                let declared = entry.size();
                let mut hasher = xxhash_rust::xxh3::Xxh3::new();
                let mut read = 0u64;
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(format!("entry {path}: {e}")),
                    };
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    read = read.saturating_add(n as u64);
                }
                if read != declared && kind != EntryType::GNUSparse {
                    return Err(format!(
                        "entry {path}: {}",
                        truncated(declared, "layer", read)
                    ));
                }
                Kind::File {
                    size: read,
                    content: hasher.digest128(),
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| normalize(&String::from_utf8_lossy(&t)))
                    .unwrap_or_default();
                Kind::HardLink { target }
            }
            EntryType::Symlink => Kind::Symlink,
            EntryType::Directory => Kind::Dir,
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            _ => Kind::Other,
        };
        records.push(Record { path, kind });
    }
    Ok(())
}

/// A gzip stream of one or more members, as `gzip -d` reads it, and zero bytes after the
/// last member taken as padding (as dive and Docker, which stop at the tar's end, accept
/// them); anything else after a member must be another member.
struct GzMembers<R: BufRead> {
    member: Option<GzDecoder<R>>,
    /// The source between members.
    idle: Option<R>,
    members: u64,
}

impl<R: BufRead> GzMembers<R> {
    fn new(source: R) -> Self {
        GzMembers {
            member: None,
            idle: Some(source),
            members: 0,
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(member) = self.member.as_mut() {
                let n = member.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.idle = self.member.take().map(GzDecoder::into_inner);
                continue;
            }
            let Some(source) = self.idle.as_mut() else {
                return Ok(0);
            };
            let next = source.fill_buf()?.first().copied();
            match next {
                None if self.members == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "no gzip member",
                    ));
                }
                None => return Ok(0),
                Some(0) if self.members > 0 => {
                    zero_padding(source, "gzip")?;
                    return Ok(0);
                }
                Some(_) => {
                    self.members += 1;
                    self.member = self.idle.take().map(GzDecoder::new);
                }
            }
        }
    }
}

/// Read the rest of `source`, which must be zero bytes (padding after a compressed stream).
fn zero_padding<R: BufRead>(source: &mut R, format: &str) -> io::Result<()> {
    loop {
        let buf = source.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if buf.iter().any(|&b| b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bytes other than zero padding after the {format} stream"),
            ));
        }
        let n = buf.len();
        source.consume(n);
    }
}

/// A zstd stream of one or more frames (skippable frames skipped), checksums checked.
struct ZstdFrames<R: BufRead> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
    frames: u64,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
            frames: 0,
        }
    }

    /// Start the next frame; `false` at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                if self.frames == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "no zstd frame",
                    ));
                }
                return Ok(false);
            }
            if self.frames > 0 && self.source.fill_buf()?.first() == Some(&0) {
                // No frame starts with a zero byte: padding after the stream.
                zero_padding(&mut self.source, "zstd")?;
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => {
                    self.frames += 1;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "skippable frame cut short",
                        ));
                    }
                }
                Err(e) => return Err(zstd_error(e)),
            }
        }
    }
}

fn zstd_error(e: FrameDecoderError) -> io::Error {
    let mut eof = false;
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
        {
            eof = true;
        }
        source = s.source();
    }
    let kind = if eof {
        io::ErrorKind::UnexpectedEof
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, e.to_string())
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(zstd_error)?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_finished() && self.decoder.can_collect() == 0 {
                if let (Some(stored), Some(computed)) = (
                    self.decoder.get_checksum_from_data(),
                    self.decoder.get_calculated_checksum(),
                ) {
                    if stored != computed {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "zstd frame checksum mismatch",
                        ));
                    }
                }
                self.in_frame = false;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "zstd decoder made no progress",
                ));
            }
        }
    }
}

/// The zstd reader on its own, for the tests.
#[cfg(test)]
pub(super) fn zstd_reader<R: BufRead>(source: R) -> impl Read {
    ZstdFrames::new(source)
}
