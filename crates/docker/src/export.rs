//! An image's archive straight from the engine (`GET /images/{name}/get`), as a synchronous
//! `Read` for analysers that run on a blocking thread: the stream is handed over in chunks
//! through a bounded channel, so a multi-GB image is never held in memory or on disk.

use std::io::Read;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::engine::Engine;

/// The reading end: yields the archive's bytes in order, or the engine's error.
#[derive(Debug)]
pub struct ExportReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    failed: Option<String>,
}

impl Read for ExportReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(e) = &self.failed {
                return Err(std::io::Error::other(e.clone()));
            }
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => self.failed = Some(e),
                None => return Ok(0), // the stream ended
            }
        }
    }
}

/// Start exporting `image`; read the archive from the returned reader (on a blocking
/// thread, not the async runtime's).
pub fn export(engine: &Engine, image: &str) -> ExportReader {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let docker = engine.docker.clone();
    let image = image.to_string();
    tokio::spawn(async move {
        let mut stream = docker.export_image(&image);
        while let Some(item) = stream.next().await {
            let item = item.map_err(|e| format!("exporting {image} from the engine: {e}"));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    ExportReader {
        rx,
        current: Bytes::new(),
        failed: None,
    }
}
