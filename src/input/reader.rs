//! The byte source under the CSV parser: opens the file, hashes every raw
//! byte on the way through (the saved plan names inputs by content hash, and
//! a second pass over a 1M-row file would double the I/O), drops a UTF-8
//! byte-order mark, and keeps exact line numbers.
//!
//! Line numbers are kept here rather than taken from `csv::Position` because
//! the csv crate stamps a record with the position *before* it skips blank
//! lines, so every row after a blank line would be reported a few lines too
//! early. Instead the source notes the offset of every `\n` it hands out, and
//! [`CsvSource::next_record`] works out where each record really starts.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use csv::ByteRecord;

use super::InputError;

const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What the first bytes of the file said about its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16,
}

/// A `Read` that hashes what it reads and records where the newlines are.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    /// Bytes read ahead to sniff a byte-order mark, not yet handed out.
    prefix: [u8; 3],
    prefix_pos: usize,
    prefix_len: usize,
    /// Bytes handed to the parser so far (BOM excluded): the parser's offsets.
    served: u64,
    /// Offsets (in served bytes) of `\n` bytes not yet attributed to a line.
    newlines: VecDeque<u64>,
    encoding: Encoding,
    /// Off for a source that starts partway into the file
    /// ([`CsvSource::open_at`]): the file's hash is the whole file's.
    hashing: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(mut inner: R) -> io::Result<Self> {
        let mut prefix = [0u8; 3];
        let mut len = 0;
        while len < prefix.len() {
            match inner.read(&mut prefix[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&prefix[..len]);
        let (encoding, skip) = if len == 3 && prefix == UTF8_BOM {
            (Encoding::Utf8Bom, 3)
        } else if len >= 2 && (prefix[..2] == [0xFF, 0xFE] || prefix[..2] == [0xFE, 0xFF]) {
            (Encoding::Utf16, 0)
        } else {
            (Encoding::Utf8, 0)
        };
        Ok(HashingReader {
            inner,
            hasher,
            prefix,
            prefix_pos: skip,
            prefix_len: len,
            served: 0,
            newlines: VecDeque::new(),
            encoding,
            hashing: true,
        })
    }

    /// A source from where `inner` stands, partway into a file: no
    /// byte-order mark to look for, nothing to hash.
    fn partway(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: blake3::Hasher::new(),
            prefix: [0; 3],
            prefix_pos: 0,
            prefix_len: 0,
            served: 0,
            newlines: VecDeque::new(),
            encoding: Encoding::Utf8,
            hashing: false,
        }
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Hash of every byte read so far; the whole file once the parser is done.
    pub(crate) fn hex_digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    fn note(&mut self, out: &[u8]) {
        // A byte at a time, this was as long as parsing the rows.
        let served = self.served;
        self.newlines
            .extend(memchr::memchr_iter(b'\n', out).map(|i| served + i as u64));
        self.served += out.len() as u64;
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.prefix_pos < self.prefix_len {
            let n = (self.prefix_len - self.prefix_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[self.prefix_pos..self.prefix_pos + n]);
            self.prefix_pos += n;
            self.note(&buf[..n]);
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if self.hashing {
            self.hasher.update(&buf[..n]);
        }
        self.note(&buf[..n]);
        Ok(n)
    }
}

/// A record as read: the fields and where it sits in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    /// Line on which the record starts (1-based).
    pub line: u64,
    /// Line on which it ends: more than `line` only if a quoted field spans
    /// lines (legitimately, or because a quote was never closed).
    pub end_line: u64,
}

impl Located {
    /// This location, counted from line `base + 1` rather than line 1 (a
    /// source opened partway, [`CsvSource::open_at`]).
    pub(crate) fn after(self, base: u64) -> Located {
        Located {
            line: self.line + base,
            end_line: self.end_line + base,
        }
    }
}

/// The CSV parser over a hashing, line-counting source.
pub(crate) struct CsvSource {
    pub path: String,
    rdr: csv::Reader<HashingReader<File>>,
    /// Newlines before the current parse position (so line = this + 1).
    lines_before: u64,
    /// Parser offset just after the previous record.
    prev_end: u64,
    /// The file's size when opened: a hint for sizing what the rows fill.
    pub len: u64,
}

impl CsvSource {
    pub(crate) fn open(path: &Path) -> Result<Self, InputError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| classify(&shown, e))?;
        if meta.is_dir() {
            return Err(InputError::IsDirectory { path: shown });
        }
        let file = File::open(path).map_err(|e| classify(&shown, e))?;
        let src = HashingReader::new(file).map_err(|e| InputError::Io {
            path: shown.clone(),
            source: e,
        })?;
        Ok(CsvSource::over(shown, src, meta.len()))
    }

    /// The parser every source uses, over `src`.
    fn over(path: String, src: HashingReader<File>, len: u64) -> CsvSource {
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            // Ragged rows are reported per row, not as a whole-file error.
            .flexible(true)
            // `\n` only: a CR is then trailing whitespace, trimmed with the
            // field, and each record ends on a byte we can count lines by.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(64 * 1024)
            .from_reader(src);
        CsvSource {
            path,
            rdr,
            lines_before: 0,
            prev_end: 0,
            len,
        }
    }

    /// A source starting `offset` bytes into the file (file offset, a
    /// byte-order mark included), for reading part of it on another
    /// thread: offsets and lines count from there, and nothing is hashed.
    pub(crate) fn open_at(path: &Path, offset: u64) -> Result<Self, InputError> {
        use std::io::{Seek, SeekFrom};
        let shown = path.display().to_string();
        let mut file = File::open(path).map_err(|e| classify(&shown, e))?;
        let len = file
            .seek(SeekFrom::End(0))
            .and_then(|len| file.seek(SeekFrom::Start(offset)).map(|_| len))
            .map_err(|e| classify(&shown, e))?;
        Ok(CsvSource::over(shown, HashingReader::partway(file), len))
    }

    /// Bytes before the parsed ones: a byte-order mark's, dropped.
    pub(crate) fn skipped(&self) -> u64 {
        match self.encoding() {
            Encoding::Utf8Bom => UTF8_BOM.len() as u64,
            _ => 0,
        }
    }

    /// The parser's offset just after the last record read (the end of
    /// the header, before any row).
    pub(crate) fn offset(&self) -> u64 {
        self.prev_end
    }

    /// The lines that end before parser offset `at`, which is no further
    /// than the bytes read so far: the line at `at` is the next one.
    pub(crate) fn lines_before(&self, at: u64) -> u64 {
        let src = self.rdr.get_ref();
        self.lines_before + src.newlines.iter().take_while(|&&off| off < at).count() as u64
    }

    /// Hash the rest of the file, unparsed: the rows after the parser's
    /// position were read by another source ([`CsvSource::open_at`]).
    pub(crate) fn hash_rest(&mut self) -> Result<(), InputError> {
        let src = self.rdr.get_mut();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match src.inner.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    src.hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(InputError::Io {
                        path: self.path.clone(),
                        source: e,
                    })
                }
            }
        }
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.rdr.get_ref().encoding()
    }

    /// Read the next record into `rec`; `None` at the end of the file.
    pub(crate) fn next_record(
        &mut self,
        rec: &mut ByteRecord,
    ) -> Result<Option<Located>, InputError> {
        let more = self.rdr.read_byte_record(rec).map_err(|e| InputError::Io {
            path: self.path.clone(),
            source: match e.into_kind() {
                csv::ErrorKind::Io(io) => io,
                other => io::Error::other(format!("{other:?}")),
            },
        })?;
        if !more {
            return Ok(None);
        }
        // The parser silently skips empty lines before a record: those are
        // the newlines sitting exactly at the previous end, end+1, ...
        let src = self.rdr.get_mut();
        let mut start = self.prev_end;
        while let Some(&off) = src.newlines.front() {
            if off < start {
                self.lines_before += 1;
                src.newlines.pop_front();
            } else if off == start {
                self.lines_before += 1;
                src.newlines.pop_front();
                start += 1;
            } else {
                break;
            }
        }
        self.prev_end = self.rdr.position().byte();
        let line = self.lines_before + 1;
        // A record holds a newline only inside a quoted field, which is
        // rare: one memchr says there is none. (Counting with a byte filter
        // was most of this function, 55 ms a million records; memchr's
        // own count still took 23 ms, this 8 ms.)
        let bytes = rec.as_slice();
        let inner = memchr::memchr(b'\n', bytes).map_or(0, |first| {
            1 + memchr::memchr_iter(b'\n', &bytes[first + 1..]).count() as u64
        });
        Ok(Some(Located {
            line,
            end_line: line + inner,
        }))
    }

    pub(crate) fn hex_digest(&self) -> String {
        self.rdr.get_ref().hex_digest()
    }
}

fn classify(path: &str, e: io::Error) -> InputError {
    match e.kind() {
        io::ErrorKind::NotFound => InputError::NotFound {
            path: path.to_owned(),
        },
        io::ErrorKind::IsADirectory => InputError::IsDirectory {
            path: path.to_owned(),
        },
        _ => InputError::Io {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// True if a record holds nothing but whitespace: a blank line with a CR or
/// spaces (which the parser does not skip), or a spreadsheet's `,,,,` row.
pub(crate) fn is_blank(rec: &ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(bytes: &[u8]) -> Vec<(u64, u64, Vec<String>)> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let mut src = CsvSource::open(f.path()).unwrap();
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while let Some(loc) = src.next_record(&mut rec).unwrap() {
            let fields = rec
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((loc.line, loc.end_line, fields));
        }
        out
    }

    #[test]
    fn lines_survive_blank_lines_crlf_and_multiline_fields() {
        let got = lines_of(b"a,b\n\n\n1,2\r\n\r\n3,\"x\ny\"\n\n4,5");
        let lines: Vec<(u64, u64)> = got.iter().map(|(l, e, _)| (*l, *e)).collect();
        assert_eq!(lines, vec![(1, 1), (4, 4), (5, 5), (6, 7), (9, 9)]);
        assert_eq!(got[3].2, vec!["3", "x\ny"]);
    }

    #[test]
    fn bom_is_dropped_but_hashed() {
        let body = b"a,b\n1,2\n";
        let mut with_bom = UTF8_BOM.to_vec();
        with_bom.extend_from_slice(body);
        let got = lines_of(&with_bom);
        assert_eq!(got[0].2, vec!["a", "b"]);

        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&with_bom).unwrap();
        let mut src = CsvSource::open(f.path()).unwrap();
        assert_eq!(src.encoding(), Encoding::Utf8Bom);
        let mut rec = ByteRecord::new();
        while src.next_record(&mut rec).unwrap().is_some() {}
        assert_eq!(
            src.hex_digest(),
            blake3::hash(&with_bom).to_hex().to_string()
        );
    }

    #[test]
    fn tiny_files_hash_correctly() {
        for bytes in [&b""[..], b"a", b"ab", b"abc", b"\xEF\xBB"] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(bytes).unwrap();
            let mut src = CsvSource::open(f.path()).unwrap();
            let mut rec = ByteRecord::new();
            while src.next_record(&mut rec).unwrap().is_some() {}
            assert_eq!(src.hex_digest(), blake3::hash(bytes).to_hex().to_string());
        }
    }
}
