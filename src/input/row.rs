//! Checking one row: the shape checks every row needs (field count, quoting,
//! encoding, length), then field parsing through the model's newtypes.
//!
//! A row gets one rejection, for the first violated column in header order,
//! so every parse is attempted (no early return) and the problem with the
//! lowest column position wins. That makes the report deterministic whatever
//! order the checks are written in.

use super::record::Record;

use super::header::Header;
use super::reader::Located;
use crate::model::{
    trim, truncate, AddressFields, CountryCode, Metadata, Rule, Text, Violation, MAX_FIELD_LEN,
};

/// Columns whose values are not personal data, so a rejection may quote a
/// bad value back to help fix it. Every other column (names, emails,
/// phones, dates of birth, sex, tax ids, addresses, metadata) is described
/// without its value.
const QUOTABLE: &[&str] = &[
    "employer_ref",
    "employee_ref",
    "country_code",
    "nationality",
    "start_on",
    "end_on",
    "earliest_benefits_start_date",
    "group_name",
    "groups",
    "carrier_id",
];

/// A quoted field may legitimately span a couple of lines (an address typed
/// with line breaks); a record spanning more, or with the wrong field count,
/// is a quote that was never closed.
const MAX_LINES_IN_FIELD: u64 = 3;

/// Why a row is rejected, before it is tied to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Header position of the column (`usize::MAX` for an absent column or
    /// a whole-row problem): the order in which problems compete.
    pub pos: usize,
    pub column: Option<String>,
    pub rule: Rule,
    pub message: String,
}

impl Problem {
    /// A problem with the known column `id` of `header`.
    pub(crate) fn in_column(header: &Header, id: usize, rule: Rule, message: String) -> Problem {
        Problem {
            pos: header.pos(id).unwrap_or(usize::MAX),
            column: Some(header.name(id).to_owned()),
            rule,
            message,
        }
    }

    /// Report `p` instead of `best` if it is in an earlier column (of two
    /// in the same column, the first found stays).
    pub(crate) fn keep_earliest(best: &mut Option<Problem>, p: Problem) {
        if best.as_ref().is_none_or(|b| p.pos < b.pos) {
            *best = Some(p);
        }
    }
}

/// Whether a record at `loc` can be trusted to have its fields in their
/// columns: as many fields as the header, and not a quote left open over
/// many lines. Rows that fail this get nothing else checked
/// ([`Row::check_shape`]); the reader asks it before handing a row on.
pub(crate) fn fits_header(rec: &Record, header: &Header, loc: &Located) -> bool {
    rec.len() == header.len() && loc.end_line - loc.line < MAX_LINES_IN_FIELD
}

/// The columns of an address, as ids of the file's known columns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AddressCols {
    pub line1: usize,
    pub line2: usize,
    pub line3: usize,
    pub city: usize,
    pub state: usize,
    pub postal_code: usize,
    pub country: usize,
}

/// The address columns in the order both files list them (checked
/// against each file's `COLUMNS` by its tests).
#[cfg(test)]
pub(crate) const ADDRESS_COLUMNS: [&str; 7] = [
    "address_line1",
    "address_line2",
    "address_line3",
    "city",
    "state",
    "postal_code",
    "country_code",
];

impl AddressCols {
    /// The address whose columns are [`ADDRESS_COLUMNS`], in that order,
    /// starting at column id `first` (true of both files' `COLUMNS`).
    pub(crate) const fn starting_at(first: usize) -> AddressCols {
        AddressCols {
            line1: first,
            line2: first + 1,
            line3: first + 2,
            city: first + 3,
            state: first + 4,
            postal_code: first + 5,
            country: first + 6,
        }
    }
}

pub(crate) struct Row<'a> {
    rec: &'a Record,
    pub header: &'a Header,
    /// Known column ids whose values are secret: never quoted in a message.
    secret: Option<usize>,
    best: Option<Problem>,
    /// The whole record is ASCII, so every field is valid UTF-8 without
    /// checking each one again at each read (most payroll rows are).
    ascii: bool,
}

impl<'a> Row<'a> {
    pub(crate) fn new(rec: &'a Record, header: &'a Header, secret: Option<usize>) -> Self {
        Row {
            rec,
            header,
            secret,
            best: None,
            ascii: rec.is_ascii(),
        }
    }

    /// Whole-row shape checks. An `Err` means the fields cannot be trusted
    /// to be in their columns, so nothing else is checked. Column-level
    /// problems (encoding, length) are recorded and compete by position.
    pub(crate) fn check_shape(&mut self, loc: &Located) -> Result<(), Problem> {
        let n = self.rec.len();
        let want = self.header.len();
        let spans = loc.end_line - loc.line;
        // Not fitting is a quote left open when the record spans lines, a
        // wrong field count otherwise.
        let fits = fits_header(self.rec, self.header, loc);
        if !fits && spans > 0 {
            let opened = self
                .rec
                .iter()
                .position(|f| f.contains(&b'\n'))
                .unwrap_or(0);
            let column = (opened < want).then(|| self.header.name_at(opened).to_owned());
            // A quote left open at the end of the file swallows the file's
            // final newline too; that newline ends no further line.
            let last_line = if self.rec.last_byte() == Some(b'\n') {
                (loc.end_line - 1).max(loc.line)
            } else {
                loc.end_line
            };
            let in_column = column
                .as_ref()
                .map(|c| format!(" in column '{c}'"))
                .unwrap_or_default();
            return Err(Problem {
                pos: opened,
                column,
                rule: Rule::Malformed,
                message: format!(
                    "a quote opened on line {}{in_column} is not closed where the field ends, \
                     so lines {} to {} were read as one row of {n} fields (the header has {want}); \
                     close the quote, or write a quote inside a field as \"\"",
                    loc.line, loc.line, last_line
                ),
            });
        }
        if !fits {
            return Err(Problem {
                pos: usize::MAX,
                column: None,
                rule: Rule::Malformed,
                message: format!(
                    "row has {n} field{}; the header has {want}",
                    if n == 1 { "" } else { "s" }
                ),
            });
        }
        if self.ascii && self.rec.byte_len() <= MAX_FIELD_LEN {
            // Valid UTF-8, and no field can be longer than the record.
            return Ok(());
        }
        let header = self.header;
        for &pos in &header.used {
            let raw = self.rec.get(pos).unwrap_or_default();
            if self.ascii {
                // Valid UTF-8; only the length is left to check.
                let len = trim(ascii_str(raw)).len();
                if len > MAX_FIELD_LEN {
                    let name = header.name_at(pos).to_owned();
                    let message =
                        format!("is {len} bytes long; at most {MAX_FIELD_LEN} are accepted");
                    self.note(pos, Some(name), Rule::TooLong, message);
                }
                continue;
            }
            let problem = match std::str::from_utf8(raw) {
                Err(e) => Some((
                    Rule::Malformed,
                    format!(
                        "is not valid UTF-8 (byte 0x{:02X} at byte {} of the field); \
                         re-export the file as UTF-8",
                        raw.get(e.valid_up_to()).copied().unwrap_or_default(),
                        e.valid_up_to() + 1
                    ),
                )),
                Ok(s) if trim(s).len() > MAX_FIELD_LEN => Some((
                    Rule::TooLong,
                    format!(
                        "is {} bytes long; at most {MAX_FIELD_LEN} are accepted",
                        trim(s).len()
                    ),
                )),
                Ok(_) => None,
            };
            if let Some((rule, message)) = problem {
                let name = header.name_at(pos).to_owned();
                self.note(pos, Some(name), rule, message);
            }
        }
        Ok(())
    }

    fn note(&mut self, pos: usize, column: Option<String>, rule: Rule, message: String) {
        let p = Problem {
            pos,
            column,
            rule,
            message,
        };
        Problem::keep_earliest(&mut self.best, p);
    }

    fn precedes_best(&self, pos: usize) -> bool {
        match &self.best {
            Some(b) => pos < b.pos,
            None => true,
        }
    }

    fn pos(&self, id: usize) -> usize {
        self.header.pos(id).unwrap_or(usize::MAX)
    }

    /// Record a problem with a known column, unless an earlier column
    /// already has one.
    pub(crate) fn fail(&mut self, id: usize, rule: Rule, message: String) {
        let pos = self.pos(id);
        if self.precedes_best(pos) {
            let name = self.header.name(id).to_owned();
            self.note(pos, Some(name), rule, message);
        }
    }

    /// The trimmed value at header position `pos`; empty if absent or
    /// unreadable (unreadable values were already reported by
    /// `check_shape`). An all-ASCII record is not validated again.
    fn str_at(&self, pos: usize) -> &'a str {
        let Some(b) = self.rec.get(pos) else {
            return "";
        };
        if self.ascii {
            trim(ascii_str(b))
        } else {
            std::str::from_utf8(b).map_or("", trim)
        }
    }

    /// The trimmed value of a known column; empty if absent or unreadable.
    pub(crate) fn raw(&self, id: usize) -> &'a str {
        self.header.pos(id).map_or("", |pos| self.str_at(pos))
    }

    /// Parse a required value; the model's parsers report an empty one.
    pub(crate) fn required<T>(
        &mut self,
        id: usize,
        parse: impl FnOnce(&'a str) -> Result<T, Violation>,
    ) -> Option<T> {
        let value = self.raw(id);
        match parse(value) {
            Ok(v) => Some(v),
            Err(v) => {
                let message = self.describe(id, value, &v);
                self.fail(id, v.rule, message);
                None
            }
        }
    }

    /// Parse an optional value: `Some(None)` when empty, `None` when invalid.
    pub(crate) fn optional<T>(
        &mut self,
        id: usize,
        parse: impl FnOnce(&'a str) -> Result<T, Violation>,
    ) -> Option<Option<T>> {
        if self.raw(id).is_empty() {
            return Some(None);
        }
        self.required(id, parse).map(Some)
    }

    /// The message for a violation: the model's sentence, with the value
    /// quoted in front when that helps and is safe: only in columns that
    /// hold no personal data (rejections reach stderr and reports, which get
    /// shared), so a bad email, phone or date of birth is named by file,
    /// line and column alone.
    pub(crate) fn describe(&self, id: usize, value: &str, v: &Violation) -> String {
        let quiet = matches!(v.rule, Rule::Required | Rule::TooLong | Rule::Malformed)
            || self.secret == Some(id)
            || !QUOTABLE.contains(&self.header.name(id))
            || v.message.starts_with('\'');
        if quiet {
            v.message.clone()
        } else {
            format!("'{}' {}", truncate(value, 40), v.message)
        }
    }

    /// All `metadata.KEY` columns, within Kota's limits, as borrowed
    /// pairs sorted by key ([`Metadata::from_checked`] owns them).
    pub(crate) fn metadata_pairs(&mut self) -> Option<Vec<(&'a str, &'a str)>> {
        let header = self.header;
        let cols = &header.metadata;
        let pairs = cols.iter().map(|(k, pos)| (k.as_str(), self.str_at(*pos)));
        let err = match Metadata::check_pairs(pairs) {
            Ok(m) => return Some(m),
            Err(e) => e,
        };
        // Name the column: the one whose own key or value breaks a limit,
        // else (too many keys) the first value past the limit.
        let single = cols.iter().find_map(|(k, pos)| {
            Metadata::check_pairs([(k.as_str(), self.str_at(*pos))])
                .err()
                .map(|e| (*pos, e))
        });
        let (pos, v) = single.unwrap_or_else(|| {
            let past = cols
                .iter()
                .filter(|(_, pos)| !self.str_at(*pos).is_empty())
                .nth(Metadata::MAX_KEYS)
                .map(|(_, pos)| *pos)
                .unwrap_or(usize::MAX);
            (past, err)
        });
        let name = self.header.name_at(pos).to_owned();
        self.note(pos, Some(name), v.rule, v.message);
        None
    }

    /// An address, borrowed ([`AddressFields::to_address`] owns it);
    /// state is required where the country needs one.
    pub(crate) fn address_fields(&mut self, c: &AddressCols) -> Option<AddressFields<'a>> {
        let line1 = self.required(c.line1, Text::check);
        let line2 = self.optional(c.line2, Text::check);
        let line3 = self.optional(c.line3, Text::check);
        let city = self.required(c.city, Text::check);
        let state = self.optional(c.state, Text::check);
        let postal_code = self.required(c.postal_code, Text::check);
        let country = self.required(c.country, CountryCode::parse);
        if let (Some(country), Some(None)) = (country, &state) {
            if country.needs_state() {
                self.fail(
                    c.state,
                    Rule::StateRequired,
                    format!(
                        "is required for an address in {} (state or province code, e.g. {})",
                        country.as_str(),
                        if country.as_str() == "us" { "NY" } else { "ON" }
                    ),
                );
                return None;
            }
        }
        Some(AddressFields {
            line1: line1?,
            line2: line2?,
            line3: line3?,
            city: city?,
            state: state?,
            postal_code: postal_code?,
            country: country?,
        })
    }

    /// The row's problem, if any: the one in the earliest column.
    pub(crate) fn finish(self) -> Option<Problem> {
        self.best
    }

    pub(crate) fn has_problem(&self) -> bool {
        self.best.is_some()
    }
}

/// A value parsed again from text its parser accepted when the row was
/// read (making the owned value of a borrowed, checked one).
pub(crate) fn checked<T>(parsed: Result<T, Violation>) -> T {
    parsed.expect("the value was checked when the row was read")
}

/// A field of an all-ASCII record as text, without validating it again.
fn ascii_str(field: &[u8]) -> &str {
    debug_assert!(field.is_ascii());
    // SAFETY: the caller checked that the whole record is ASCII, and every
    // field is a slice of it; ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(field) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[&str] = &["a", "b", "tax"];

    fn header(names: &[&str]) -> Header {
        let mut w = Vec::new();
        Header::resolve(&Record::from(names.to_vec()), COLS, &[], &mut w).unwrap()
    }

    fn loc(line: u64, end_line: u64) -> Located {
        Located { line, end_line }
    }

    #[test]
    fn earliest_column_in_header_order_wins() {
        let h = header(&["b", "a"]);
        let rec = Record::from(vec!["x", "y"]);
        let mut row = Row::new(&rec, &h, None);
        row.fail(0, Rule::Email, "a is bad".into());
        row.fail(1, Rule::Phone, "b is bad".into());
        row.fail(0, Rule::Date, "a again".into());
        let p = row.finish().unwrap();
        assert_eq!((p.column.as_deref(), p.rule), (Some("b"), Rule::Phone));
    }

    #[test]
    fn ragged_row_is_malformed() {
        let h = header(&["a", "b"]);
        let rec = Record::from(vec!["x"]);
        let p = Row::new(&rec, &h, None)
            .check_shape(&loc(2, 2))
            .unwrap_err();
        assert_eq!(p.rule, Rule::Malformed);
        assert_eq!(p.column, None);
        assert_eq!(p.message, "row has 1 field; the header has 2");
    }

    #[test]
    fn unclosed_quote_names_opening_line_and_column() {
        let h = header(&["a", "b"]);
        // Swallowed lines give the wrong field count...
        let rec = Record::from(vec!["x\nz,w"]);
        let p = Row::new(&rec, &h, None)
            .check_shape(&loc(4, 5))
            .unwrap_err();
        assert_eq!((p.column.as_deref(), p.rule), (Some("a"), Rule::Malformed));
        assert!(p.message.contains("opened on line 4"), "{}", p.message);
        assert!(p.message.contains("lines 4 to 5"), "{}", p.message);
        // ...or, by chance the right one, span many lines.
        let rec = Record::from(vec!["x", "y\nz,w\nq\nr"]);
        let p = Row::new(&rec, &h, None)
            .check_shape(&loc(4, 7))
            .unwrap_err();
        assert_eq!(p.column.as_deref(), Some("b"));
        assert!(p.message.contains("lines 4 to 7"), "{}", p.message);
    }

    #[test]
    fn short_multiline_field_with_right_count_is_accepted() {
        let h = header(&["a", "b"]);
        let rec = Record::from(vec!["x", "flat 2\nthe street"]);
        let mut row = Row::new(&rec, &h, None);
        row.check_shape(&loc(4, 5)).unwrap();
        assert!(!row.has_problem());
    }

    #[test]
    fn bad_utf8_and_long_fields_name_their_column() {
        let h = header(&["a", "b"]);
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        let rec = Record::from(vec![&b"caf\xe9"[..], long.as_bytes()]);
        let mut row = Row::new(&rec, &h, None);
        row.check_shape(&loc(2, 2)).unwrap();
        let p = row.finish().unwrap();
        assert_eq!((p.column.as_deref(), p.rule), (Some("a"), Rule::Malformed));
        assert!(p.message.contains("0xE9"));

        let rec = Record::from(vec!["ok", long.as_str()]);
        let mut row = Row::new(&rec, &h, None);
        row.check_shape(&loc(2, 2)).unwrap();
        let p = row.finish().unwrap();
        assert_eq!((p.column.as_deref(), p.rule), (Some("b"), Rule::TooLong));
        assert!(p.message.len() < 100);
    }

    #[test]
    fn secret_values_are_never_quoted() {
        let h = header(&["a", "tax"]);
        let rec = Record::from(vec!["x", "AB123"]);
        let row = Row::new(&rec, &h, Some(2));
        let v = Violation::new(Rule::Malformed, "is odd");
        assert!(!row.describe(2, "AB123", &v).contains("AB123"));
        let v = Violation::new(Rule::Email, "is odd");
        assert!(!row.describe(2, "AB123", &v).contains("AB123"));
    }

    #[test]
    fn only_values_of_columns_without_personal_data_are_quoted() {
        const NAMED: &[&str] = &["email", "date_of_birth", "country_code", "employee_ref"];
        let mut w = Vec::new();
        let h = Header::resolve(&Record::from(NAMED.to_vec()), NAMED, &[], &mut w).unwrap();
        let rec = Record::from(vec!["jane@", "1985-13-01", "xx", "E 1"]);
        let row = Row::new(&rec, &h, None);
        let v = Violation::new(Rule::Email, "is not an email address");
        assert!(!row.describe(0, "jane@", &v).contains("jane"));
        let v = Violation::new(Rule::Date, "is not a calendar date");
        assert!(!row.describe(1, "1985-13-01", &v).contains("1985"));
        let v = Violation::new(Rule::Country, "is not a country code");
        assert!(row.describe(2, "xx", &v).contains("'xx'"));
        assert!(row.describe(3, "E 1", &v).contains("'E 1'"));
    }

    #[test]
    fn metadata_problem_names_the_column() {
        let h = {
            let mut w = Vec::new();
            let mut names: Vec<String> = vec!["a".into()];
            names.extend((0..26).map(|i| format!("metadata.k{i}")));
            Header::resolve(&Record::from(names), COLS, &[], &mut w).unwrap()
        };
        let mut fields: Vec<String> = vec!["x".into()];
        fields.extend((0..26).map(|_| "v".to_owned()));
        let rec = Record::from(fields.clone());
        let mut row = Row::new(&rec, &h, None);
        assert!(row.metadata_pairs().is_none());
        let p = row.finish().unwrap();
        assert_eq!(
            (p.column.as_deref(), p.rule),
            (Some("metadata.k24"), Rule::Metadata)
        );

        fields[3] = "v".repeat(501);
        let rec = Record::from(fields);
        let mut row = Row::new(&rec, &h, None);
        assert!(row.metadata_pairs().is_none());
        let p = row.finish().unwrap();
        assert_eq!(p.column.as_deref(), Some("metadata.k2"));
    }
}
