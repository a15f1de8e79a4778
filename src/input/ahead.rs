//! Reading the second part of employees.csv ahead, on a thread of its own.
//!
//! On a nightly run nearly every row is one the state vouches for
//! (`input::digest`): reading it is parsing it, finding its employee and
//! hashing it, and that one thread's work was the whole of a warm plan
//! once the state was loaded, with the other core nearly idle. So a helper
//! parses the rows from a line start near the middle of the file (the
//! seam) and looks them up, while the reader reads up to the seam; the
//! reader then takes the helper's rows in file order, doing what depends
//! on the rows before them (duplicates, the order of rejections) itself.
//!
//! The seam is a guess: a line start may lie inside a quoted field that
//! spans lines. The reader only takes the helper's rows if its own parse
//! ends a record exactly at the seam, where both parsers then stand at the
//! start of a record over the same bytes; otherwise it drops them (the
//! helper stops at its next send) and reads on alone. Either way, the
//! result is the one reading alone gives.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use super::record::Record;

use super::reader::{CsvSource, Located, RawRecord};
use super::InputError;

/// Rows the helper sends at once, and the most of them it keeps whole
/// (rows the reader must check) per batch: with `IN_FLIGHT` batches that
/// bounds what it holds while the reader has not reached the seam (8,192
/// whole rows, a few MB: against a state without digests, where every row
/// is whole, 256 per batch held 30 MB more at the peak).
const ROWS: usize = 4096;
const WHOLE_ROWS: usize = 32;
const IN_FLIGHT: usize = 256;

/// Files smaller than this are read on one thread: a helper costs more
/// than it saves.
pub(crate) const MIN_LEN: u64 = 8 << 20;

/// A row read ahead, with its lines counted from the seam. (32 bytes: on
/// a nightly run, half a million of these may wait for the reader.)
pub(crate) enum Ahead<N> {
    /// A row whose bytes match the digest recorded for the synced employee
    /// at `at`: unchanged if it is that employee's first row. `offset` (in
    /// the file) is where to read it again if it is not.
    Matching { at: u32, loc: Located, offset: u64 },
    /// Any other row, whole, for the reader to check, with what `look`
    /// noted of it.
    Row(Box<(Record, Located, N)>),
}

/// What the helper sends: a batch of rows in file order, or the error that
/// stopped it.
pub(crate) type Batch<N> = Result<Vec<Ahead<N>>, InputError>;

/// Where the helper starts: the parser offset (bytes after a byte-order
/// mark) just after a `\n` near `fraction` of the file, or `None` if there
/// is none past the header.
pub(crate) fn seam(src: &CsvSource, path: &Path, fraction: (u64, u64)) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let guess = (src.len / fraction.1 * fraction.0).max(src.skipped() + src.offset());
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(guess)).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = guess;
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return Some(at + i as u64 + 1 - src.skipped());
        }
        at += n as u64;
    }
}

/// The helper: read the rows from file offset `from`, find what the state
/// says of each (`look`, given the raw record and, for a quoted one, its
/// fields: its note, and the position of the synced employee whose
/// recorded digest it matches), and send them in batches until the end of
/// the file or until the reader hangs up. A row without quotes is split
/// into fields only if it does not match.
pub(crate) fn read_ahead<N>(
    path: &Path,
    from: u64,
    mut look: impl FnMut(RawRecord<'_>, Option<&Record>) -> (N, Option<u32>),
    tx: SyncSender<Batch<N>>,
) {
    let send = |batch: Batch<N>| tx.send(batch).is_ok();
    let mut src = match CsvSource::open_at(path, from) {
        Ok(src) => src,
        Err(e) => {
            send(Err(e));
            return;
        }
    };
    let mut batch = Vec::with_capacity(ROWS);
    let mut whole = 0;
    let mut rec = Record::new();
    loop {
        let offset = from + src.offset();
        let loc = match src.next_raw() {
            Ok(Some(loc)) => loc,
            Ok(None) => break,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        match src.look_then_split(&mut rec, &mut look, |l| l.1.is_some()) {
            None => continue,
            Some((_, Some(at))) => batch.push(Ahead::Matching { at, loc, offset }),
            Some((note, None)) => {
                let rec = std::mem::take(&mut rec);
                batch.push(Ahead::Row(Box::new((rec, loc, note))));
                whole += 1;
            }
        }
        if batch.len() == ROWS || whole == WHOLE_ROWS {
            whole = 0;
            if !send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(ROWS)))) {
                return;
            }
        }
    }
    if !batch.is_empty() {
        send(Ok(batch));
    }
}

/// The channel from the helper to the reader.
pub(crate) fn channel<N>() -> (SyncSender<Batch<N>>, Receiver<Batch<N>>) {
    std::sync::mpsc::sync_channel(IN_FLIGHT)
}

/// The record at file offset `offset`, read again into `rec` (a row read
/// ahead that the reader must check after all), and the hash of its raw
/// bytes (`RawRecord::hash`).
pub(crate) fn read_again(path: &Path, offset: u64, rec: &mut Record) -> Result<u64, InputError> {
    let mut src = CsvSource::open_at(path, offset)?;
    match src.next_raw()? {
        Some(_) => {
            src.fields_into(rec);
            Ok(src.raw().hash())
        }
        None => Err(InputError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other("the file changed while it was being read"),
        }),
    }
}

#[cfg(test)]
mod tests {
    /// What waits for the reader stays small (see [`super::Ahead`]).
    #[test]
    fn a_row_read_ahead_is_32_bytes() {
        assert_eq!(std::mem::size_of::<super::Ahead<(Option<u32>, u128)>>(), 32);
    }
}
