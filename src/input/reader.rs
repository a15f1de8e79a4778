//! Reading CSV: opens the file, hashes every raw byte on the way through
//! (the saved plan names inputs by content hash, and a second pass over a
//! 1M-row file would double the I/O), drops a UTF-8 byte-order mark, finds
//! the records (their raw bytes, and their fields when asked for), and
//! keeps exact line numbers.
//!
//! The source notes the offset of every `\n` it hands out, and
//! [`CsvSource::next_raw`] works out from those and the blank lines it
//! skipped where each record really starts. (The csv crate, which did the
//! parsing here before, stamps a record with the position *before* the
//! blank lines it skips, so every row after a blank line would be reported
//! a few lines too early.)

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::record::Record;
use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

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
///
/// It keeps its own buffer rather than a `csv::Reader` so that a record's
/// raw bytes can be looked at before, or instead of, splitting it into
/// fields: on a nightly run nearly every row is one the state vouches for
/// by a digest of those bytes (`input::digest`), and parsing it was most of
/// reading it. A record on a line of its own with no quote (nearly every
/// row of a payroll export) is split at its commas; any other goes through
/// `csv_core` with the settings the `csv` crate would use, so the fields
/// are the same either way (a test compares the two on random bytes).
pub(crate) struct CsvSource {
    pub path: String,
    src: HashingReader<File>,
    /// Bytes read from `src`; `buf[pos..end]` not yet taken.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Parser offset (bytes after a byte-order mark) of `buf[0]`.
    base: u64,
    /// `src` has no more bytes.
    eof: bool,
    /// The current record's raw bytes, `buf[raw.0..raw.1]` (its terminator
    /// left out), if it holds no quote.
    raw: (usize, usize),
    /// Whether the current record holds a quote: its fields are then the
    /// ones `core` unquoted into `parsed`, and of its raw bytes, which are
    /// not kept (an unclosed quote can make a record of the rest of the
    /// file), only their hash, `quoted_hash`.
    quoted: bool,
    quoted_hash: u64,
    core: csv_core::Reader,
    /// A quoted record's fields, until [`CsvSource::fields_into`] takes
    /// them (swapping in the caller's record, whose bytes the next parse
    /// writes into).
    parsed: std::cell::RefCell<Record>,
    out: Vec<u8>,
    ends: Vec<usize>,
    hasher: Xxh3Default,
    /// Newlines before the current parse position (so line = this + 1).
    lines_before: u64,
    /// Parser offset just after the previous record.
    prev_end: u64,
    /// The file's size when opened: a hint for sizing what the rows fill.
    pub len: u64,
}

/// A record as the file holds it: its bytes (its terminator left out), if
/// it holds no quote, and their hash either way.
#[derive(Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    /// Empty for a quoted record.
    pub bytes: &'a [u8],
    /// Whether it holds a quote (then only a parse says what its fields are).
    pub quoted: bool,
    /// The hash of a quoted record's bytes.
    quoted_hash: u64,
}

impl<'a> RawRecord<'a> {
    /// The xxh3 of the record's bytes, its terminator left out (for a row
    /// digest, `input::digest`).
    pub(crate) fn hash(&self) -> u64 {
        match self.quoted {
            true => self.quoted_hash,
            false => xxh3_64(self.bytes),
        }
    }

    /// Field `i` of a record without quotes (its bytes up to the `i`th
    /// comma); `None` for a quoted record or one with fewer fields.
    pub(crate) fn field(&self, i: usize) -> Option<&'a [u8]> {
        if self.quoted {
            return None;
        }
        let mut start = 0;
        let mut commas = memchr::memchr_iter(b',', self.bytes);
        for _ in 0..i {
            start = commas.next()? + 1;
        }
        let end = commas.next().unwrap_or(self.bytes.len());
        Some(&self.bytes[start..end])
    }
}

/// Bytes read from the file at a time.
const CHUNK: usize = 128 * 1024;

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
        let core = csv_core::ReaderBuilder::new()
            // `\n` only: a CR is then trailing whitespace, trimmed with the
            // field, and each record ends on a byte we can count lines by.
            // (Otherwise the `csv` crate's defaults; ragged rows are
            // reported per row, so the field count is never checked here.)
            .terminator(csv_core::Terminator::Any(b'\n'))
            .build();
        CsvSource {
            path,
            src,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            raw: (0, 0),
            quoted: false,
            quoted_hash: 0,
            core,
            parsed: Default::default(),
            out: vec![0; 1024],
            ends: vec![0; 32],
            hasher: Xxh3Default::new(),
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
        self.lines_before
            + self
                .src
                .newlines
                .iter()
                .take_while(|&&off| off < at)
                .count() as u64
    }

    /// Hash the rest of the file, unparsed: the rows after the parser's
    /// position were read by another source ([`CsvSource::open_at`]).
    pub(crate) fn hash_rest(&mut self) -> Result<(), InputError> {
        let src = &mut self.src;
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
        self.src.encoding()
    }

    /// Read the next record into `rec`; `None` at the end of the file.
    pub(crate) fn next_record(&mut self, rec: &mut Record) -> Result<Option<Located>, InputError> {
        let loc = self.next_raw()?;
        if loc.is_some() {
            self.fields_into(rec);
        }
        Ok(loc)
    }

    /// Move to the next record, its raw bytes then at [`CsvSource::raw`]
    /// and its fields at [`CsvSource::fields_into`]; `None` at the end of
    /// the file.
    pub(crate) fn next_raw(&mut self) -> Result<Option<Located>, InputError> {
        let more = self.advance().map_err(|e| InputError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        if !more {
            return Ok(None);
        }
        // Empty lines before a record are skipped: those are the newlines
        // sitting exactly at the previous end, end+1, ...
        let mut start = self.prev_end;
        let newlines = &mut self.src.newlines;
        while let Some(&off) = newlines.front() {
            if off < start {
                self.lines_before += 1;
                newlines.pop_front();
            } else if off == start {
                self.lines_before += 1;
                newlines.pop_front();
                start += 1;
            } else {
                break;
            }
        }
        self.prev_end = self.base + self.pos as u64;
        let line = self.lines_before + 1;
        // Only a quoted field holds a newline (and keeps it).
        let inner = match self.quoted {
            false => 0,
            true => self
                .parsed
                .get_mut()
                .iter()
                .map(|f| memchr::memchr_iter(b'\n', f).count() as u64)
                .sum(),
        };
        Ok(Some(Located {
            line,
            end_line: line + inner,
        }))
    }

    /// The current record as the file holds it.
    pub(crate) fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            bytes: &self.buf[self.raw.0..self.raw.1],
            quoted: self.quoted,
            quoted_hash: self.quoted_hash,
        }
    }

    /// The current record's fields, into `rec`: once per record (a quoted
    /// record's are handed over, not copied).
    pub(crate) fn fields_into(&self, rec: &mut Record) {
        if self.quoted {
            std::mem::swap(rec, &mut self.parsed.borrow_mut());
        } else {
            rec.set_line(&self.buf[self.raw.0..self.raw.1]);
        }
    }

    /// Look the current record up with `look` (given its raw form and, for
    /// a quoted record, its fields), splitting it into `rec` unless
    /// `look`'s answer on the raw form alone is `enough`: a row the state
    /// vouches for that holds no quote is never split. `None` for a blank
    /// record; otherwise the answer, and `rec` holds the record's fields
    /// whenever the answer is not `enough`.
    pub(crate) fn look_then_split<L>(
        &self,
        rec: &mut Record,
        mut look: impl FnMut(RawRecord<'_>, Option<&Record>) -> L,
        enough: impl Fn(&L) -> bool,
    ) -> Option<L> {
        let raw = self.raw();
        let early = (!raw.quoted).then(|| look(raw, None));
        if early.as_ref().is_some_and(&enough) {
            return early;
        }
        self.fields_into(rec);
        if is_blank(rec) {
            return None;
        }
        Some(early.unwrap_or_else(|| look(raw, Some(rec))))
    }

    /// Find the next record; false at the end of the file.
    fn advance(&mut self) -> io::Result<bool> {
        loop {
            let nl = memchr::memchr(b'\n', &self.buf[self.pos..self.end]);
            if nl.is_none() && !self.eof {
                self.refill()?;
                continue;
            }
            if self.pos == self.end {
                return Ok(false);
            }
            let line_end = nl.map_or(self.end, |i| self.pos + i);
            if line_end == self.pos {
                // An empty line: no record, as the `csv` crate has it.
                self.pos += 1;
                continue;
            }
            if memchr::memchr(b'"', &self.buf[self.pos..line_end]).is_none() {
                self.raw = (self.pos, line_end);
                self.quoted = false;
                self.pos = (line_end + 1).min(self.end);
                return Ok(true);
            }
            return self.quoted_record();
        }
    }

    /// The record at `pos`, which holds a quote, parsed by `csv_core`
    /// (it may span lines, and chunks of the file), its raw bytes hashed as
    /// they are parsed: false if none is left.
    fn quoted_record(&mut self) -> io::Result<bool> {
        use csv_core::ReadRecordResult as R;
        self.core.reset();
        self.hasher.reset();
        let (mut nout, mut fields) = (0, 0);
        // The last byte parsed, hashed only once it is known not to be the
        // record's terminator.
        let mut held: Option<u8> = None;
        loop {
            if self.pos == self.end && !self.eof {
                self.refill()?;
                continue;
            }
            // Empty input is the end of the file to `csv_core`.
            let at_eof = self.pos == self.end;
            let (res, nin, n, nend) = self.core.read_record(
                &self.buf[self.pos..self.end],
                &mut self.out[nout..],
                &mut self.ends[fields..],
            );
            if nin > 0 {
                let taken = &self.buf[self.pos..self.pos + nin];
                if let Some(b) = held {
                    self.hasher.update(&[b]);
                }
                self.hasher.update(&taken[..nin - 1]);
                held = Some(taken[nin - 1]);
            }
            self.pos += nin;
            nout += n;
            fields += nend;
            match res {
                R::InputEmpty => {}
                R::OutputFull => self.out.resize(self.out.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record => {
                    // A record ended by its terminator leaves it out; one
                    // ended by the end of the file inside a quote keeps a
                    // final newline, which is the field's.
                    match held {
                        Some(b'\n') if !at_eof => {}
                        Some(b) => self.hasher.update(&[b]),
                        None => {}
                    }
                    self.quoted_hash = self.hasher.digest();
                    self.quoted = true;
                    self.raw = (self.pos, self.pos);
                    let out = std::mem::take(&mut self.out);
                    let parsed = self.parsed.get_mut();
                    let mut old = parsed.set_unquoted(out, &self.ends[..fields]);
                    old.resize(old.capacity().max(1024), 0);
                    self.out = old;
                    return Ok(true);
                }
                R::End => return Ok(false),
            }
        }
    }

    /// Read more of the file after the bytes not yet taken (moved to the
    /// front; the buffer doubled if they fill it).
    fn refill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn hex_digest(&self) -> String {
        self.src.hex_digest()
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
pub(crate) fn is_blank(rec: &Record) -> bool {
    rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A source over `bytes`, in a file kept while the source is.
    fn source_of(bytes: &[u8]) -> (tempfile::NamedTempFile, CsvSource) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let src = CsvSource::open(f.path()).unwrap();
        (f, src)
    }

    fn lines_of(bytes: &[u8]) -> Vec<(u64, u64, Vec<String>)> {
        let (_f, mut src) = source_of(bytes);
        let mut rec = Record::new();
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

    /// The records and offsets the `csv` crate reads from `bytes`, with the
    /// settings this source had when it used that crate.
    fn csv_crate_reads(bytes: &[u8]) -> Vec<(Vec<Vec<u8>>, u64)> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(bytes);
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while rdr.read_byte_record(&mut rec).unwrap() {
            out.push((
                rec.iter().map(<[u8]>::to_vec).collect(),
                rdr.position().byte(),
            ));
        }
        out
    }

    fn source_reads(bytes: &[u8]) -> Vec<(Vec<Vec<u8>>, u64)> {
        let (_f, mut src) = source_of(bytes);
        let mut rec = Record::new();
        let mut out = Vec::new();
        while let Some(loc) = src.next_record(&mut rec).unwrap() {
            // A record spans as many lines as its fields hold newlines
            // (the row checks allow for a final one swallowed by an
            // unclosed quote).
            let newlines: usize = rec
                .iter()
                .map(|f| f.iter().filter(|&&b| b == b'\n').count())
                .sum();
            assert_eq!(loc.end_line - loc.line, newlines as u64, "{rec:?}");
            out.push((rec.iter().map(<[u8]>::to_vec).collect(), src.offset()));
        }
        out
    }

    proptest::proptest! {
        /// Split at commas or parsed by `csv_core`, a record's fields and
        /// where it ends are the ones the `csv` crate gives: quotes, doubled
        /// quotes, unclosed quotes, CRs, blank lines, no final newline.
        #[test]
        fn records_are_the_csv_crates(bytes in proptest::collection::vec(
            proptest::sample::select(b"a,\"\n\r ".to_vec()), 0..200)
        ) {
            proptest::prop_assert_eq!(source_reads(&bytes), csv_crate_reads(&bytes));
        }
    }

    /// Records longer than the buffer, quoted or not, and a quoted field
    /// across a refill: read whole, and a quoted one's raw bytes hashed
    /// across the chunks as they are in the file.
    #[test]
    fn long_records_are_read_whole() {
        let long = "x".repeat(3 * CHUNK);
        let records = [
            format!("a,{long}"),
            format!("\"{long}\n{long}\",b"),
            format!("{}\"q\",c", "y".repeat(CHUNK - 5)),
            "last".to_owned(),
        ];
        let text = records.join("\n");
        assert_eq!(
            source_reads(text.as_bytes()),
            csv_crate_reads(text.as_bytes())
        );
        let (_f, mut src) = source_of(text.as_bytes());
        for (i, want) in records.iter().enumerate() {
            src.next_raw().unwrap().unwrap();
            let raw = src.raw();
            assert_eq!(raw.quoted, i == 1 || i == 2);
            assert_eq!(raw.hash(), xxh3_64(want.as_bytes()), "record {i}");
        }
        assert!(src.next_raw().unwrap().is_none());
    }

    /// A quote left open at the end of the file: the final newline is the
    /// field's, and part of the raw bytes.
    #[test]
    fn an_unclosed_quote_keeps_the_final_newline() {
        let (_f, mut src) = source_of(b"a,b\n\"c,d\ne\n");
        src.next_raw().unwrap().unwrap();
        let loc = src.next_raw().unwrap().unwrap();
        assert_eq!((loc.line, loc.end_line), (2, 4));
        assert_eq!(src.raw().hash(), xxh3_64(b"\"c,d\ne\n"));
        let mut rec = Record::new();
        src.fields_into(&mut rec);
        assert_eq!(rec, Record::from(vec!["c,d\ne\n"]));
    }

    #[test]
    fn a_raw_record_keeps_its_bytes_and_splits_without_quotes() {
        let (_f, mut src) = source_of(b"a,,b c\r\n\n\"x,y\",z\nlast");
        src.next_raw().unwrap().unwrap();
        let raw = src.raw();
        assert_eq!((raw.bytes, raw.quoted), (&b"a,,b c\r"[..], false));
        assert_eq!(raw.hash(), xxh3_64(b"a,,b c\r"));
        let fields: Vec<_> = (0..4).map(|i| raw.field(i)).collect();
        assert_eq!(fields, [Some(&b"a"[..]), Some(b""), Some(b"b c\r"), None]);
        assert_eq!(src.next_raw().unwrap().unwrap().line, 3);
        let raw = src.raw();
        assert!(raw.quoted);
        assert_eq!(raw.hash(), xxh3_64(b"\"x,y\",z"));
        assert_eq!(raw.field(0), None);
        src.next_raw().unwrap().unwrap();
        assert_eq!(src.raw().bytes, b"last");
        assert!(src.next_raw().unwrap().is_none());
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

        let (_f, mut src) = source_of(&with_bom);
        assert_eq!(src.encoding(), Encoding::Utf8Bom);
        let mut rec = Record::new();
        while src.next_record(&mut rec).unwrap().is_some() {}
        assert_eq!(
            src.hex_digest(),
            blake3::hash(&with_bom).to_hex().to_string()
        );
    }

    #[test]
    fn tiny_files_hash_correctly() {
        for bytes in [&b""[..], b"a", b"ab", b"abc", b"\xEF\xBB"] {
            let (_f, mut src) = source_of(bytes);
            let mut rec = Record::new();
            while src.next_record(&mut rec).unwrap().is_some() {}
            assert_eq!(src.hex_digest(), blake3::hash(bytes).to_hex().to_string());
        }
    }
}
