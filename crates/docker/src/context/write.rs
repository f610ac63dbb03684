//! The bytes of a build context: a deterministic tar written from a [`ContextPlan`], and
//! streamed to the engine through a small bounded channel.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::plan::{ContextError, ContextPlan, EntryData, EntryKind};

/// The modification time written for every entry (the one `tar::HeaderMode::Deterministic`
/// uses: 2006-07-23), so that touching a file does not change the tar.
pub const DETERMINISTIC_MTIME: u64 = 1_153_704_088;

/// Size of the chunks [`stream_tar`] sends.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// How many chunks [`stream_tar`] lets wait for the consumer.
pub const CHANNEL_DEPTH: usize = 16;

const BLOCK: u64 = 512;
/// Names this long or longer get a GNU long-name record, as GNU tar does.
const NAME_FIELD: usize = 100;

impl ContextPlan {
    /// The exact size of the tar [`write_tar`] will write, if no file changes meanwhile.
    pub fn tar_len(&self) -> u64 {
        let mut total = 2 * BLOCK;
        for entry in &self.entries {
            let name_len = entry.path.len() + usize::from(entry.kind() == EntryKind::Dir);
            total += BLOCK + long_record_len(name_len) + padded(entry.size);
            if let EntryData::Symlink { target } = &entry.data {
                total += long_record_len(link_bytes(target).map(|b| b.len()).unwrap_or(0));
            }
        }
        total
    }
}

#[cfg(unix)]
fn link_bytes(target: &Path) -> Option<Cow<'_, [u8]>> {
    use std::os::unix::ffi::OsStrExt;
    Some(Cow::Borrowed(target.as_os_str().as_bytes()))
}

#[cfg(not(unix))]
fn link_bytes(target: &Path) -> Option<Cow<'_, [u8]>> {
    target
        .to_str()
        .map(|s| Cow::Owned(s.replace('\\', "/").into_bytes()))
}

fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

fn long_record_len(name_len: usize) -> u64 {
    if name_len >= NAME_FIELD {
        BLOCK + padded(name_len as u64 + 1)
    } else {
        0
    }
}

/// Writes the planned context as a tar to `out` and returns the number of bytes written.
///
/// Headers are deterministic: mtime [`DETERMINISTIC_MTIME`], uid and gid 0, no owner names,
/// permission bits kept; names of 100 bytes or more use GNU long-name records. Regular files
/// are read from disk in [`CHUNK_SIZE`] pieces; a file whose size no longer matches the plan
/// is an error rather than a corrupt tar.
pub fn write_tar(plan: &ContextPlan, out: impl Write) -> Result<u64, ContextError> {
    let mut out = Counting {
        inner: out,
        written: 0,
    };
    let mut buf = vec![0u8; CHUNK_SIZE];
    for entry in &plan.entries {
        let mut name = entry.path.clone().into_bytes();
        match &entry.data {
            EntryData::Dir => {
                name.push(b'/');
                write_header(
                    &mut out,
                    &name,
                    None,
                    tar::EntryType::Directory,
                    0,
                    entry.mode,
                )?;
            }
            EntryData::Symlink { target } => {
                let link = link_bytes(target).ok_or_else(|| ContextError::NonUtf8Path {
                    path: target.clone(),
                })?;
                write_header(
                    &mut out,
                    &name,
                    Some(&link),
                    tar::EntryType::Symlink,
                    0,
                    entry.mode,
                )?;
            }
            EntryData::Generated { bytes } => {
                let size = bytes.len() as u64;
                write_header(
                    &mut out,
                    &name,
                    None,
                    tar::EntryType::Regular,
                    size,
                    entry.mode,
                )?;
                out.write_all(bytes).map_err(write_error)?;
                pad(&mut out, size)?;
            }
            EntryData::File { source } => {
                let mut file = File::open(source).map_err(|e| read_error(source, e))?;
                write_header(
                    &mut out,
                    &name,
                    None,
                    tar::EntryType::Regular,
                    entry.size,
                    entry.mode,
                )?;
                copy_exact(&mut file, &mut out, entry.size, source, &mut buf)?;
                pad(&mut out, entry.size)?;
            }
        }
    }
    out.write_all(&[0u8; 2 * BLOCK as usize])
        .map_err(write_error)?;
    out.flush().map_err(write_error)?;
    Ok(out.written)
}

/// Copies exactly `size` bytes of `file`, failing if it is shorter or longer than planned.
fn copy_exact(
    file: &mut File,
    out: &mut impl Write,
    size: u64,
    path: &Path,
    buf: &mut [u8],
) -> Result<(), ContextError> {
    let changed = || ContextError::FileChanged {
        path: path.to_path_buf(),
        expected: size,
    };
    let mut remaining = size;
    while remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Err(changed()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(path, e)),
        };
        out.write_all(&buf[..n]).map_err(write_error)?;
        remaining -= n as u64;
    }
    let mut probe = [0u8; 1];
    loop {
        match file.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(changed()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(path, e)),
        }
    }
}

fn write_header(
    out: &mut impl Write,
    name: &[u8],
    link: Option<&[u8]>,
    kind: tar::EntryType,
    size: u64,
    mode: u32,
) -> Result<(), ContextError> {
    if name.len() >= NAME_FIELD {
        write_long_record(out, b'L', name)?;
    }
    if let Some(link) = link.filter(|l| l.len() >= NAME_FIELD) {
        write_long_record(out, b'K', link)?;
    }
    let mut header = tar::Header::new_gnu();
    {
        let fields = header.as_old_mut();
        let n = name.len().min(NAME_FIELD);
        fields.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let n = link.len().min(NAME_FIELD);
            fields.linkname[..n].copy_from_slice(&link[..n]);
        }
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(DETERMINISTIC_MTIME);
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(write_error)
}

/// A GNU `././@LongLink` record carrying a long name (`L`) or link target (`K`).
fn write_long_record(out: &mut impl Write, kind: u8, value: &[u8]) -> Result<(), ContextError> {
    let mut header = tar::Header::new_gnu();
    let marker = b"././@LongLink";
    header.as_old_mut().name[..marker.len()].copy_from_slice(marker);
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_size(value.len() as u64 + 1);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(write_error)?;
    out.write_all(value).map_err(write_error)?;
    out.write_all(&[0]).map_err(write_error)?;
    pad(out, value.len() as u64 + 1)
}

fn pad(out: &mut impl Write, len: u64) -> Result<(), ContextError> {
    let fill = (padded(len) - len) as usize;
    out.write_all(&[0u8; BLOCK as usize][..fill])
        .map_err(write_error)
}

fn write_error(source: io::Error) -> ContextError {
    ContextError::Write { source }
}

fn read_error(path: &Path, source: io::Error) -> ContextError {
    ContextError::ReadFile {
        path: path.to_path_buf(),
        source,
    }
}

struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the tar of `plan`: [`write_tar`] runs on a blocking thread and hands over
/// [`CHUNK_SIZE`] chunks through a channel of [`CHANNEL_DEPTH`], so at most about a megabyte
/// is buffered whatever the context's size. Must be called inside a tokio runtime.
///
/// If writing fails, the stream yields the error (so an upload is aborted rather than sent
/// truncated) and the handle returns it. Dropping the stream makes the writer stop with a
/// [`ContextError::Write`].
pub fn stream_tar(
    plan: ContextPlan,
) -> (
    impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin + 'static,
    JoinHandle<Result<u64, ContextError>>,
) {
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let writer = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK_SIZE),
        };
        let result = write_tar(&plan, &mut sink);
        drop(sink);
        if let Err(e) = &result {
            // Fails only if the consumer is gone, and then nobody needs to know.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
        result
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (stream, writer)
}

/// Collects writes into chunks and sends each full one down the channel, waiting while the
/// channel is full.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the build context's reader went away",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
