//! The fast path for a saved image in a file: its outer headers walked first (seeking over the
//! layer blobs), then its layer blobs read in parallel by positional reads, one thread per
//! core. Without `verify`, a plain layer is indexed by its headers alone and only the files
//! whose size another file shares are read afterwards, to compare their content.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::archive::{self, Blob, Collected, Raw};
use super::error::InspectError;
use super::layer::{self, Kind, LayerData, Pending};
use super::report::Compression;
use super::text::hex;

/// The buffer of a reader that walks headers: big enough to hold the headers of a run of
/// small files, small enough that a header read after a seek reads little else.
const HEADER_BUFFER: usize = 16 * 1024;
/// The buffer each thread hashes file content through.
const HASH_BUFFER: usize = 256 * 1024;

/// A region of a file read by position (`read_at`), so that threads share the file without
/// sharing a cursor. Positions are relative to the region's start. With a buffer, seeks within
/// it cost nothing.
struct At<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    /// The region's position of `buf[0]`, and how many bytes of `buf` hold data.
    buf_pos: u64,
    buf_len: usize,
}

impl<'a> At<'a> {
    fn new(file: &'a File, start: u64, len: u64, buffer: usize) -> Self {
        At {
            file,
            start,
            len,
            pos: 0,
            buf: vec![0; buffer],
            buf_pos: 0,
            buf_len: 0,
        }
    }

    fn read_at(&self, out: &mut [u8], pos: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(out, self.start.saturating_add(pos)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl Read for At<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
        if want == 0 {
            return Ok(0);
        }
        let buffered =
            self.pos >= self.buf_pos && self.pos < self.buf_pos.saturating_add(self.buf_len as u64);
        if !buffered {
            if want >= self.buf.len() {
                let n = self.read_at(&mut out[..want], self.pos)?;
                self.pos = self.pos.saturating_add(n as u64);
                return Ok(n);
            }
            let fill = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let mut buf = std::mem::take(&mut self.buf);
            let got = self.read_at(&mut buf[..fill], self.pos);
            self.buf = buf;
            self.buf_pos = self.pos;
            self.buf_len = got?;
            if self.buf_len == 0 {
                return Ok(0);
            }
        }
        let skip = usize::try_from(self.pos - self.buf_pos).unwrap_or(0);
        let n = want.min(self.buf_len - skip);
        out[..n].copy_from_slice(&self.buf[skip..skip + n]);
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

impl Seek for At<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// One layer blob read: its data (or why not), the files whose content it skipped, and the
/// SHA-256 of its bytes when computed.
type Read1 = (Result<LayerData, String>, Vec<Pending>, Option<String>, u64);

/// Read the archive in `file` as [`archive::collect`] reads a stream, to the same result.
pub(super) fn collect(file: &File, verify: bool) -> Result<Collected, InspectError> {
    let len = file
        .metadata()
        .map_err(|source| InspectError::Read { offset: 0, source })?
        .len();
    let (mut collected, blobs) = archive::index(At::new(file, 0, len, HEADER_BUFFER), len, verify)?;

    // A plain blob verified has its SHA-256 computed as a job of its own, beside the walk of
    // its headers. The largest jobs first, so that the last one to finish is a small one.
    let digest_plain = |b: &Blob| verify && b.compression == Compression::None;
    let mut jobs: Vec<(usize, bool)> = (0..blobs.len()).map(|i| (i, false)).collect();
    jobs.extend(
        blobs
            .iter()
            .enumerate()
            .filter(|(_, b)| digest_plain(b))
            .map(|(i, _)| (i, true)),
    );
    jobs.sort_by_key(|&(i, _)| std::cmp::Reverse(blobs.get(i).map_or(0, |b| b.size)));
    enum Done {
        Read(Result<Read1, InspectError>),
        Digest(Result<String, InspectError>),
    }
    let done = parallel(jobs.len(), |job| {
        let (i, digest) = jobs[job];
        let blob = &blobs[i];
        let out = if digest {
            Done::Digest(sha256(file, blob))
        } else {
            Done::Read(read_blob(file, blob, verify))
        };
        (i, out)
    });
    let mut reads: Vec<(usize, Result<Read1, InspectError>)> = Vec::new();
    let mut digests: std::collections::HashMap<usize, Result<String, InspectError>> =
        std::collections::HashMap::new();
    for (i, out) in done {
        match out {
            Done::Read(r) => reads.push((i, r)),
            Done::Digest(d) => {
                digests.insert(i, d);
            }
        }
    }
    reads.sort_by_key(|(i, _)| *i);
    for (i, read) in &mut reads {
        if let (Ok(read), Some(digest)) = (read.as_mut(), digests.remove(i)) {
            read.2 = Some(digest?);
        }
    }

    // Which skipped files need their content: a size that some other file (skipped or read)
    // also has.
    let mut sizes: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    for (_, read) in &reads {
        if let Ok((Ok(data), ..)) = read {
            for record in &data.records {
                if let Kind::File { size, .. } = record.kind {
                    if size > 0 {
                        let n = sizes.entry(size).or_insert(0);
                        *n = n.saturating_add(1);
                    }
                }
            }
        }
    }
    let mut wanted: Vec<(usize, Pending)> = Vec::new();
    for (i, read) in &reads {
        if let Ok((Ok(_), pending, ..)) = read {
            wanted.extend(
                pending
                    .iter()
                    .filter(|p| p.size > 0 && sizes.get(&p.size).is_some_and(|n| *n > 1))
                    .map(|p| (*i, *p)),
            );
        }
    }
    let hashes = parallel_with(
        wanted.len(),
        || vec![0u8; HASH_BUFFER],
        |buf, job| {
            let (i, p) = wanted[job];
            let blob = &blobs[i];
            let at = At::new(file, blob.offset.saturating_add(p.offset), p.size, 0);
            (job, content(at, buf))
        },
    );
    for (job, hash) in hashes {
        let (i, p) = wanted[job];
        let Some((_, Ok((Ok(data), ..)))) = reads.get_mut(i) else {
            continue;
        };
        let Some(record) = data.records.get_mut(p.record) else {
            continue;
        };
        match hash {
            Ok(h) => {
                if let Kind::File { content, .. } = &mut record.kind {
                    *content = h;
                }
            }
            Err(e) => {
                return Err(InspectError::Read {
                    offset: blobs[i].offset.saturating_add(p.offset),
                    source: e,
                });
            }
        }
    }

    for (i, read) in reads {
        let blob = &blobs[i];
        let (data, _, digest, count) = read?;
        let settled = archive::settle(&blob.name, data, count, digest.as_deref())?;
        collected.layers.insert(blob.name.clone(), settled);
    }
    Ok(collected)
}

/// Read one layer blob: a plain one indexed by its headers (its SHA-256, when verified, is a
/// job of its own), a compressed one streamed, decompressed and, with `verify`, hashed.
fn read_blob(file: &File, blob: &Blob, verify: bool) -> Result<Read1, InspectError> {
    if blob.compression == Compression::None {
        let at = At::new(file, blob.offset, blob.size, HEADER_BUFFER);
        return Ok(match layer::index_layer(at, blob.size) {
            Ok((data, pending)) => (Ok(data), pending, None, blob.size),
            Err(message) => (Err(message), Vec::new(), None, blob.size),
        });
    }
    let mut raw = Raw {
        inner: At::new(file, blob.offset, blob.size, 0),
        hasher: verify.then(Sha256::new),
        count: 0,
    };
    let data = layer::read_layer(&mut raw, blob.compression, verify);
    archive::drain(&mut raw).map_err(|source| InspectError::Read {
        offset: blob.offset.saturating_add(raw.count),
        source,
    })?;
    let digest = raw.hasher.map(|h| hex(&h.finalize()));
    Ok((data, Vec::new(), digest, raw.count))
}

/// The SHA-256 of a blob's bytes.
fn sha256(file: &File, blob: &Blob) -> Result<String, InspectError> {
    let mut raw = Raw {
        inner: At::new(file, blob.offset, blob.size, 0),
        hasher: Some(Sha256::new()),
        count: 0,
    };
    archive::drain(&mut raw).map_err(|source| InspectError::Read {
        offset: blob.offset.saturating_add(raw.count),
        source,
    })?;
    Ok(raw.hasher.map(|h| hex(&h.finalize())).unwrap_or_default())
}

/// The content hash of one file, as the streaming walk computes it.
fn content(mut at: At<'_>, buf: &mut [u8]) -> io::Result<u128> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    loop {
        let n = at.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if at.pos != at.len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ended while it was read",
        ));
    }
    Ok(hasher.digest128())
}

/// Run `jobs` jobs on one thread per core, each taking the next job number; their results,
/// in no particular order.
fn parallel<T: Send>(jobs: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    parallel_with(jobs, || (), |(), job| work(job))
}

/// [`parallel`], each thread with its own state made by `init`.
fn parallel_with<S, T: Send>(
    jobs: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs);
    if threads <= 1 {
        let mut state = init();
        return (0..jobs).map(|job| work(&mut state, job)).collect();
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut out = Vec::new();
                    loop {
                        let job = next.fetch_add(1, Ordering::Relaxed);
                        if job >= jobs {
                            break out;
                        }
                        out.push(work(&mut state, job));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
