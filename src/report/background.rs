//! A writer whose writes happen on another thread.
//!
//! A million-row report is hundreds of megabytes of text. Formatting it and
//! copying it into the kernel took about the same time each, one after the
//! other, on one thread; with the copying on a second thread the two
//! overlap, and the planning threads are idle by then.

use std::io::{self, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Bytes gathered before they are handed to the writing thread.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: the formatter runs ahead by this much at most, so the
/// memory held stays a few megabytes however large the report.
const IN_FLIGHT: usize = 2;

/// Buffers writes and hands each full buffer to a thread that writes it to
/// the destination. [`BackgroundWriter::finish`] waits for the last byte
/// and reports the first error; dropping it without `finish` still waits
/// for the thread but loses the error.
pub struct BackgroundWriter {
    /// Bytes not yet handed over; handed over at [`CHUNK`] bytes, on
    /// `flush`, and on `finish`.
    buf: Vec<u8>,
    /// Full buffers to the writing thread. Dropping it (on `finish` or
    /// drop) closes the channel: the thread writes what is queued, flushes
    /// and exits.
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    /// Emptied buffers back from the thread, reused instead of allocated.
    spare: mpsc::Receiver<Vec<u8>>,
    /// The writing thread. It stops at its first error and returns it; a
    /// closed channel on our side then means "ask the thread why".
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BackgroundWriter {
    /// Start the writing thread over `out`.
    pub fn new<W: Write + Send + 'static>(mut out: W) -> io::Result<BackgroundWriter> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (back, spare) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("write-report".into())
            .spawn(move || {
                for mut chunk in rx {
                    out.write_all(&chunk)?;
                    chunk.clear();
                    // The writer may be gone already (finishing): fine.
                    let _ = back.send(chunk);
                }
                out.flush()
            })?;
        Ok(BackgroundWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            spare,
            thread: Some(thread),
        })
    }

    /// Hand the buffered bytes to the thread.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok());
        match sent {
            Some(true) => Ok(()),
            // The thread stopped: it failed, and says why when joined.
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the report writer stopped without an error"))),
        }
    }

    /// Close the channel and wait for the thread; its first error, if any.
    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }

    /// Write out everything and wait until the destination has it (as far
    /// as its own `flush` goes).
    pub fn finish(mut self) -> io::Result<()> {
        self.hand_over()?;
        self.join()
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(data.len())
    }

    /// Hands the buffered bytes over without waiting for them to be
    /// written: [`BackgroundWriter::finish`] is what waits.
    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.hand_over();
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A destination that records what it got, failing after `limit` bytes.
    #[derive(Clone)]
    struct Sink {
        got: Arc<Mutex<Vec<u8>>>,
        limit: usize,
    }

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let mut got = self.got.lock().unwrap();
            if got.len() + data.len() > self.limit {
                return Err(io::Error::other("disk full"));
            }
            got.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink(limit: usize) -> Sink {
        Sink {
            got: Arc::default(),
            limit,
        }
    }

    #[test]
    fn every_byte_arrives_in_order() {
        let s = sink(usize::MAX);
        let mut w = BackgroundWriter::new(s.clone()).unwrap();
        let mut expected = Vec::new();
        for i in 0..400_000u32 {
            let line = format!("line {i}\n");
            w.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        w.finish().unwrap();
        assert!(expected.len() > 3 * CHUNK);
        assert_eq!(*s.got.lock().unwrap(), expected);
    }

    #[test]
    fn a_failed_write_is_reported() {
        let s = sink(CHUNK + 10);
        let mut w = BackgroundWriter::new(s).unwrap();
        let line = [b'x'; 1000];
        // Writes succeed while the thread is behind; the failure shows at
        // the latest on finish.
        let mut failed = None;
        for _ in 0..(5 * CHUNK / line.len()) {
            if let Err(e) = w.write_all(&line) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn dropping_without_finish_still_writes() {
        let s = sink(usize::MAX);
        {
            let mut w = BackgroundWriter::new(s.clone()).unwrap();
            w.write_all(b"kept").unwrap();
        }
        assert_eq!(*s.got.lock().unwrap(), b"kept");
    }
}
