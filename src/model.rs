//! Validated domain types.
//!
//! Every value that crosses the edge (a CSV field) is parsed into one of these
//! newtypes exactly once, in `src/input`. The planner, the clients and the
//! reports take them as proof that the rule was checked and never re-check a
//! string. Each constructor returns a [`Violation`] naming the [`Rule`] it
//! broke, so a rejection can say which rule and why.

use arcstr::ArcStr;
use compact_str::CompactString;
use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A rule an input value can break. The code (`Rule::code`) is stable: tests,
/// the JSON report and users' scripts match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A required column is missing from the header.
    MissingColumn,
    /// A required field is empty.
    Required,
    /// Not a `YYYY-MM-DD` calendar date.
    Date,
    /// Date of birth not in the past or not after 1900-01-01.
    DateOfBirthRange,
    /// A start date not after 1900-01-01.
    DateRange,
    /// A leaving date before the start date.
    EndBeforeStart,
    /// Not an E.164 phone number.
    Phone,
    /// Not a plausible email address.
    Email,
    /// Not an ISO 3166 alpha-2 country code.
    Country,
    /// State or province missing for the United States or Canada.
    StateRequired,
    /// `sex_at_birth` other than male or female.
    SexAtBirth,
    /// `carrier_id` is not a UUID.
    Uuid,
    /// An EIN that is not nine digits.
    Ein,
    /// Metadata beyond Kota's limits (25 keys, 40-char keys, 500-char values).
    Metadata,
    /// Fields of one employer disagree between its rows.
    EmployerConflict,
    /// The same group or carrier appears twice with different details.
    GroupConflict,
    /// An `employee_ref` appears on more than one row.
    DuplicateKey,
    /// An employee whose employer is not in employers.csv.
    UnknownEmployer,
    /// An employee whose employer was rejected.
    EmployerRejected,
    /// A group the employee's employer does not have.
    UnknownGroup,
    /// A field longer than the tool accepts.
    TooLong,
    /// The row could not be read as CSV (ragged, bad quoting, bad encoding).
    Malformed,
    /// A column name reserved by benefits-sync.
    ReservedColumn,
    /// A value Kota cannot change by update (country, date of birth, sex at birth).
    Immutable,
}

impl Rule {
    /// The stable snake_case code of the rule.
    pub fn code(self) -> &'static str {
        match self {
            Rule::MissingColumn => "missing_column",
            Rule::Required => "required",
            Rule::Date => "date",
            Rule::DateOfBirthRange => "date_of_birth_range",
            Rule::DateRange => "date_range",
            Rule::EndBeforeStart => "end_before_start",
            Rule::Phone => "phone",
            Rule::Email => "email",
            Rule::Country => "country",
            Rule::StateRequired => "state_required",
            Rule::SexAtBirth => "sex_at_birth",
            Rule::Uuid => "uuid",
            Rule::Ein => "ein",
            Rule::Metadata => "metadata",
            Rule::EmployerConflict => "employer_conflict",
            Rule::GroupConflict => "group_conflict",
            Rule::DuplicateKey => "duplicate_key",
            Rule::UnknownEmployer => "unknown_employer",
            Rule::EmployerRejected => "employer_rejected",
            Rule::UnknownGroup => "unknown_group",
            Rule::TooLong => "too_long",
            Rule::Malformed => "malformed",
            Rule::ReservedColumn => "reserved_column",
            Rule::Immutable => "immutable",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a value was refused: the rule and a sentence for the user. The
/// sentence never repeats a secret value (a tax id is never echoed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub message: String,
}

impl Violation {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Violation {
            rule,
            message: message.into(),
        }
    }
}

/// Longest field accepted anywhere: far above any real value, low enough that
/// a 1 MB field is refused instead of sent to a vendor.
pub const MAX_FIELD_LEN: usize = 1_000;

/// `str::trim`, quick for the usual value: one that starts and ends with
/// a visible ASCII character comes back as it is, without decoding a char
/// from each end (trimming was a tenth of the checking threads' time).
#[inline]
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        // A byte under 0x80 is a whole char in UTF-8; a graphic one is not
        // whitespace.
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// A non-empty, trimmed text of at most [`MAX_FIELD_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(CompactString);

impl Text {
    /// The trimmed value if it is a valid text, without copying it:
    /// the reader checks every row, and only apply needs owned values.
    pub fn check(s: &str) -> Result<&str, Violation> {
        let s = trim(s);
        if s.is_empty() {
            return Err(Violation::new(Rule::Required, "must not be empty"));
        }
        if s.len() > MAX_FIELD_LEN {
            return Err(Violation::new(
                Rule::TooLong,
                format!("is {} bytes; at most {MAX_FIELD_LEN} are accepted", s.len()),
            ));
        }
        Ok(s)
    }
    pub fn parse(s: &str) -> Result<Self, Violation> {
        Self::check(s).map(|s| Text(CompactString::from(s)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The payroll system's employer id: the natural key of an employer. Not
/// personal data, so it may appear in the state database and in reports.
///
/// Keys and group names are shared (`ArcStr`: one pointer, its length and
/// count beside the text): a million-row plan names the same employer,
/// employee and group in several operations, and a clone must be neither a
/// new allocation nor a fat 16-byte pointer each time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmployerRef(ArcStr);

/// The payroll system's employee id: the natural key of an employee. Not
/// personal data (it is an opaque payroll id), so it is the key of the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmployeeRef(ArcStr);

macro_rules! natural_key {
    ($t:ident) => {
        impl $t {
            /// At most 200 bytes of printable characters without `;`, so a
            /// key can be part of an operation key and an idempotency key.
            pub fn parse(s: &str) -> Result<Self, Violation> {
                Self::check(s).map(|s| $t(ArcStr::from(s)))
            }
            /// The trimmed ref if it is a valid one, without making one.
            pub fn check(s: &str) -> Result<&str, Violation> {
                let s = trim(s);
                if s.is_empty() {
                    return Err(Violation::new(Rule::Required, "must not be empty"));
                }
                if s.len() > 200 {
                    return Err(Violation::new(
                        Rule::TooLong,
                        "is longer than 200 bytes; payroll ids are short",
                    ));
                }
                if s.chars().any(|c| c.is_control() || c == '|') {
                    return Err(Violation::new(
                        Rule::Malformed,
                        "contains a control character or '|'",
                    ));
                }
                Ok(s)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Keep this string for the rest of the process, so that its
            /// clones and drops (here and in every clone already made) no
            /// longer count references. See [`GroupName::pin`].
            pub fn pin(&self) {
                self.0.leak();
            }
            /// The same text in an allocation of its own, pinned: copies
            /// made one after another lie together in a few pages, where
            /// the refs read from a file lie scattered among their rows'
            /// other fields, a cache miss for each use of one. For tables
            /// of refs read once per employee row.
            pub fn pinned_copy(&self) -> Self {
                let copy = $t(ArcStr::from(self.as_str()));
                copy.pin();
                copy
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        /// Maps keyed by refs can be searched with a `&str` read straight
        /// from a CSV field or a SQLite row, without building a key first.
        /// (`Hash` and `Ord` are those of the string, so this is sound.)
        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}
natural_key!(EmployerRef);
natural_key!(EmployeeRef);

/// A group name as the payroll system spells it; unique per employer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(ArcStr);

/// A group's entry can be found by a name read straight from a row.
/// (`Hash` and `Ord` are those of the string, so this is sound.)
impl std::borrow::Borrow<str> for GroupName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl GroupName {
    pub fn parse(s: &str) -> Result<Self, Violation> {
        // Checked as a text, not made one: the name is copied once, below.
        let t = Text::check(s)?;
        if t.len() > 200 {
            return Err(Violation::new(
                Rule::TooLong,
                "group names are at most 200 bytes",
            ));
        }
        if t.contains(';') || t.contains('|') {
            return Err(Violation::new(
                Rule::Malformed,
                "a group name cannot contain ';' (the separator of the groups column) or '|'",
            ));
        }
        Ok(GroupName(ArcStr::from(t)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Keep this string for the rest of the process, so that its clones
    /// and drops (here and in every clone already made) no longer count
    /// references. The employers' refs and group names are cloned into
    /// every employee and operation by two threads at once, and the atomic
    /// counts on a few shared strings bounced one cache line between the
    /// cores: a fifth of a million-row plan. Only for strings a run keeps
    /// anyway (a few kilobytes per thousand employers).
    pub fn pin(&self) {
        self.0.leak();
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: one `@`, a non-empty local part, a dotted domain, no
/// spaces. Deliberately permissive beyond that, as vendors normalise it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(CompactString);

impl Email {
    /// The trimmed value if it is a valid email, without copying it:
    /// the reader checks every row, and only apply needs owned values.
    pub fn check(s: &str) -> Result<&str, Violation> {
        let s = trim(s);
        if s.is_empty() {
            return Err(Violation::new(Rule::Required, "must not be empty"));
        }
        if s.len() > 254 {
            return Err(Violation::new(Rule::Email, "is longer than 254 characters"));
        }
        let bad = || Violation::new(Rule::Email, "is not an email address like name@example.com");
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>')
        {
            return Err(bad());
        }
        Ok(s)
    }
    pub fn parse(s: &str) -> Result<Self, Violation> {
        Self::check(s).map(|s| Email(CompactString::from(s)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// A phone number in E.164: `+`, a non-zero digit, 7 to 15 digits in all.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct E164Phone(String);

impl E164Phone {
    /// The trimmed value if it is a valid phone number, without copying it:
    /// the reader checks every row, and only apply needs owned values.
    pub fn check(s: &str) -> Result<&str, Violation> {
        let s = trim(s);
        if s.is_empty() {
            return Err(Violation::new(Rule::Required, "must not be empty"));
        }
        let digits = s.strip_prefix('+');
        let ok = match digits {
            Some(d) => {
                (7..=15).contains(&d.len())
                    && d.bytes().all(|b| b.is_ascii_digit())
                    && !d.starts_with('0')
            }
            None => false,
        };
        if !ok {
            return Err(Violation::new(
                Rule::Phone,
                "is not in E.164 form: '+', country code and number, digits only (e.g. +447700900999)",
            ));
        }
        Ok(s)
    }
    pub fn parse(s: &str) -> Result<Self, Violation> {
        Self::check(s).map(|s| E164Phone(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for E164Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E164Phone(<redacted>)")
    }
}

/// ISO 3166-1 alpha-2 codes that Kota accepts (its `CountryCode` enum), in
/// lower case, sorted.
const COUNTRIES: [&str; 250] = [
    "ad", "ae", "af", "ag", "ai", "al", "am", "ao", "aq", "ar", "as", "at", "au", "aw", "ax", "az",
    "ba", "bb", "bd", "be", "bf", "bg", "bh", "bi", "bj", "bl", "bm", "bn", "bo", "bq", "br", "bs",
    "bt", "bv", "bw", "by", "bz", "ca", "cc", "cd", "cf", "cg", "ch", "ci", "ck", "cl", "cm", "cn",
    "co", "cr", "cu", "cv", "cw", "cx", "cy", "cz", "de", "dj", "dk", "dm", "do", "dz", "ec", "ee",
    "eg", "eh", "er", "es", "et", "fi", "fj", "fk", "fm", "fo", "fr", "ga", "gb", "gd", "ge", "gf",
    "gg", "gh", "gi", "gl", "gm", "gn", "gp", "gq", "gr", "gs", "gt", "gu", "gw", "gy", "hk", "hm",
    "hn", "hr", "ht", "hu", "id", "ie", "il", "im", "in", "io", "iq", "ir", "is", "it", "je", "jm",
    "jo", "jp", "ke", "kg", "kh", "ki", "km", "kn", "kp", "kr", "kw", "ky", "kz", "la", "lb", "lc",
    "li", "lk", "lr", "ls", "lt", "lu", "lv", "ly", "ma", "mc", "md", "me", "mf", "mg", "mh", "mk",
    "ml", "mm", "mn", "mo", "mp", "mq", "mr", "ms", "mt", "mu", "mv", "mw", "mx", "my", "mz", "na",
    "nc", "ne", "nf", "ng", "ni", "nl", "no", "np", "nr", "nu", "nz", "om", "pa", "pe", "pf", "pg",
    "ph", "pk", "pl", "pm", "pn", "pr", "ps", "pt", "pw", "py", "qa", "re", "ro", "rs", "ru", "rw",
    "sa", "sb", "sc", "sd", "se", "sg", "sh", "si", "sj", "sk", "sl", "sm", "sn", "so", "sr", "ss",
    "st", "sv", "sx", "sy", "sz", "tc", "td", "tf", "tg", "th", "tj", "tk", "tl", "tm", "tn", "to",
    "tr", "tt", "tv", "tw", "tz", "ua", "ug", "um", "us", "uy", "uz", "va", "vc", "ve", "vg", "vi",
    "vn", "vu", "wf", "ws", "xk", "ye", "yt", "za", "zm", "zw",
];

/// [`COUNTRIES`] as one bit per code: bit `b` of `KNOWN_COUNTRIES[a]` for
/// the code of letters `a` and `b` (0 for `a`). Every employer and employee
/// row has a country or two; a lookup is then one load, not a binary search
/// of string compares.
const KNOWN_COUNTRIES: [u32; 26] = {
    let mut known = [0u32; 26];
    let mut i = 0;
    while i < COUNTRIES.len() {
        let code = COUNTRIES[i].as_bytes();
        known[(code[0] - b'a') as usize] |= 1 << (code[1] - b'a');
        i += 1;
    }
    known
};

/// An ISO 3166 alpha-2 country code, any case in, lower case out.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, Violation> {
        let s = trim(s);
        if s.is_empty() {
            return Err(Violation::new(Rule::Required, "must not be empty"));
        }
        let b = s.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            let code = [b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase()];
            if KNOWN_COUNTRIES[(code[0] - b'a') as usize] >> (code[1] - b'a') & 1 == 1 {
                return Ok(CountryCode(code));
            }
        }
        Err(Violation::new(
            Rule::Country,
            format!(
                "'{}' is not an ISO 3166 alpha-2 country code (e.g. gb, us, ie)",
                truncate(s, 20)
            ),
        ))
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("country codes are ascii")
    }
    /// Countries whose addresses need a state or province.
    pub fn needs_state(&self) -> bool {
        matches!(&self.0, b"us" | b"ca")
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CountryCode::parse(&s).map_err(|v| serde::de::Error::custom(v.message))
    }
}

/// Parse a `YYYY-MM-DD` calendar date.
pub fn parse_date(s: &str) -> Result<NaiveDate, Violation> {
    let s = trim(s);
    if s.is_empty() {
        return Err(Violation::new(Rule::Required, "must not be empty"));
    }
    let shape_ok = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if shape_ok {
        // The shape is checked, so the numbers are plain digits; chrono's
        // format-string parser cost more than the rest of the row's dates.
        let num = |r: std::ops::Range<usize>| {
            s.as_bytes()[r]
                .iter()
                .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
        };
        let year = i32::try_from(num(0..4)).unwrap_or(0);
        if let Some(d) = NaiveDate::from_ymd_opt(year, num(5..7), num(8..10)) {
            return Ok(d);
        }
    }
    Err(Violation::new(
        Rule::Date,
        // No value here: a date of birth is personal data, and the input
        // layer quotes values only of columns where that is safe.
        "is not a calendar date in YYYY-MM-DD form",
    ))
}

/// The earliest date Kota accepts for births and starts (exclusive).
pub fn epoch_1900() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date")
}

/// Sex assigned at birth, as Kota's `SexAtBirth` enum has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SexAtBirth {
    Male,
    Female,
}

impl SexAtBirth {
    pub fn parse(s: &str) -> Result<Self, Violation> {
        match trim(s).to_ascii_lowercase().as_str() {
            "male" => Ok(SexAtBirth::Male),
            "female" => Ok(SexAtBirth::Female),
            "" => Err(Violation::new(Rule::Required, "must not be empty")),
            _ => Err(Violation::new(
                Rule::SexAtBirth,
                "must be 'male' or 'female'",
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SexAtBirth::Male => "male",
            SexAtBirth::Female => "female",
        }
    }
}

/// A national tax id. Never printed: `Debug` and `Display` redact it, and it
/// has no `Serialize`, so it cannot reach a report or the state by accident.
/// Only the Kota client reads it, through [`TaxId::expose`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TaxId(String);

impl TaxId {
    /// The trimmed value if it is a valid taxid, without copying it:
    /// the reader checks every row, and only apply needs owned values.
    pub fn check(s: &str) -> Result<&str, Violation> {
        let s = trim(s);
        if s.is_empty() {
            return Err(Violation::new(Rule::Required, "must not be empty"));
        }
        if s.len() > 64 {
            return Err(Violation::new(
                Rule::TooLong,
                "is longer than 64 characters",
            ));
        }
        Ok(s)
    }
    pub fn parse(s: &str) -> Result<Self, Violation> {
        Self::check(s).map(|s| TaxId(s.to_owned()))
    }
    /// The clear value, for the one request body that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaxId(<redacted>)")
    }
}

/// A carrier's UUID in Noyo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CarrierId(uuid::Uuid);

impl CarrierId {
    pub fn parse(s: &str) -> Result<Self, Violation> {
        let s = trim(s);
        if s.is_empty() {
            return Err(Violation::new(Rule::Required, "must not be empty"));
        }
        // Only the hyphenated 36-character form: Noyo's `format: uuid`.
        if s.len() == 36 {
            if let Ok(u) = uuid::Uuid::parse_str(s) {
                return Ok(CarrierId(u));
            }
        }
        Err(Violation::new(
            Rule::Uuid,
            format!(
                "'{}' is not a UUID like 8fac0992-933a-4743-8dab-0d606ef2569e",
                truncate(s, 40)
            ),
        ))
    }
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for CarrierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

/// A US Employer Identification Number: nine digits (`12-3456789` accepted,
/// hyphen removed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ein(CompactString);

impl Ein {
    pub fn parse(s: &str) -> Result<Self, Violation> {
        let s = trim(s);
        let b = s.as_bytes();
        let digits: Option<CompactString> = if b.len() == 9 && b.iter().all(u8::is_ascii_digit) {
            Some(CompactString::from(s))
        } else if b.len() == 10
            && b[2] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 2 || c.is_ascii_digit())
        {
            let mut digits = CompactString::from(&s[..2]);
            digits.push_str(&s[3..]);
            Some(digits)
        } else {
            None
        };
        digits.map(Ein).ok_or_else(|| {
            Violation::new(Rule::Ein, "is not a 9-digit EIN (123456789 or 12-3456789)")
        })
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Kota metadata: at most 25 keys, keys at most 40 characters, values at most
/// 500. Ordered, so its fingerprint and its JSON are stable.
///
/// The key [`Metadata::RESERVED_KEY`] (`id`) belongs to benefits-sync: it
/// carries the payroll ref so that an object whose create response was lost
/// can be found again (Kota's `GET /employees?metadata_id=`). Users therefore
/// get 24 keys, and a `metadata.id` column is refused at the header.
///
/// Held as a sorted list of pairs, not a map: rows carry a key or two, and
/// a map's first node is half a kilobyte, for every employer and every
/// employee row read. It serializes as a JSON object all the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata(Box<[(Box<str>, Box<str>)]>);

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Metadata(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        ))
    }
}

impl Metadata {
    /// Kota's limit is 25; one key is ours.
    pub const MAX_KEYS: usize = 24;
    pub const RESERVED_KEY: &'static str = "id";
    pub const MAX_KEY_LEN: usize = 40;
    pub const MAX_VALUE_LEN: usize = 500;

    /// Build from `(key, value)` pairs, skipping empty values (an empty cell
    /// means "no such metadata" for that row).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Violation> {
        Self::check_pairs(pairs).map(|m| Self::from_checked(&m))
    }

    /// [`Metadata::from_pairs`] without copying: the pairs as they will be
    /// held, sorted by key, borrowed from the input.
    pub fn check_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<(&'a str, &'a str)>, Violation> {
        let mut map: Vec<(&str, &str)> = Vec::new();
        for (k, v) in pairs {
            let v = trim(v);
            if v.is_empty() {
                continue;
            }
            if k.chars().count() > Self::MAX_KEY_LEN {
                return Err(Violation::new(
                    Rule::Metadata,
                    format!(
                        "metadata key '{}' is longer than {} characters",
                        truncate(k, 50),
                        Self::MAX_KEY_LEN
                    ),
                ));
            }
            if v.chars().count() > Self::MAX_VALUE_LEN {
                return Err(Violation::new(
                    Rule::Metadata,
                    format!(
                        "metadata value of '{k}' is longer than {} characters",
                        Self::MAX_VALUE_LEN
                    ),
                ));
            }
            map.push((k, v));
        }
        // Sorted by key; a repeated key keeps its last value.
        map.sort_by(|a, b| a.0.cmp(b.0));
        map.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        if map.len() > Self::MAX_KEYS {
            return Err(Violation::new(
                Rule::Metadata,
                format!(
                        "{} metadata keys; at most {} (Kota allows 25 and benefits-sync uses one, 'id')",
                        map.len(),
                        Self::MAX_KEYS
                    ),
            ));
        }
        Ok(map)
    }

    /// Own pairs that [`Metadata::check_pairs`] returned.
    pub fn from_checked(pairs: &[(&str, &str)]) -> Metadata {
        Metadata(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        )
    }
    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A postal address as Kota's `AddressModel` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub line1: Text,
    pub line2: Option<Text>,
    pub line3: Option<Text>,
    pub city: Text,
    /// Required for the United States and Canada (checked at the edge).
    pub state: Option<Text>,
    pub postal_code: Text,
    pub country: CountryCode,
}

/// An [`Address`]'s validated values, borrowed (from a CSV record being
/// read, or from an `Address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressFields<'a> {
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub line3: Option<&'a str>,
    pub city: &'a str,
    pub state: Option<&'a str>,
    pub postal_code: &'a str,
    pub country: CountryCode,
}

impl AddressFields<'_> {
    /// The owned address (the values were checked when the fields were made).
    pub fn to_address(&self) -> Address {
        let text = |s: &str| Text(CompactString::from(s));
        Address {
            line1: text(self.line1),
            line2: self.line2.map(text),
            line3: self.line3.map(text),
            city: text(self.city),
            state: self.state.map(text),
            postal_code: text(self.postal_code),
            country: self.country,
        }
    }
}

impl Address {
    pub fn fields(&self) -> AddressFields<'_> {
        AddressFields {
            line1: self.line1.as_str(),
            line2: self.line2.as_ref().map(Text::as_str),
            line3: self.line3.as_ref().map(Text::as_str),
            city: self.city.as_str(),
            state: self.state.as_ref().map(Text::as_str),
            postal_code: self.postal_code.as_str(),
            country: self.country,
        }
    }
}

/// The person Kota contacts at an employer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Contact {
    pub name: Text,
    pub email: Email,
}

/// One benefit group of an employer: a Kota group and an Invisible Collector
/// group of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupSpec {
    pub name: GroupName,
    pub description: Option<Text>,
}

/// One carrier connection of an employer in Noyo.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionSpec {
    pub carrier_id: CarrierId,
    /// The group's id in the carrier's own system.
    pub carrier_group_id: Text,
    pub federal_ein: Option<Ein>,
    pub broker_federal_ein: Option<Ein>,
    pub broker_tin: Option<Text>,
}

/// An employer as the exports describe it, merged from all its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employer {
    pub employer_ref: EmployerRef,
    pub legal_name: Text,
    pub registration_number: Option<Text>,
    pub address: Address,
    pub contact: Contact,
    pub earliest_benefits_start_date: Option<NaiveDate>,
    pub metadata: Metadata,
    /// Sorted by name, unique.
    pub groups: Vec<GroupSpec>,
    /// Sorted by carrier id, unique.
    pub connections: Vec<ConnectionSpec>,
    /// First line of the employer in employers.csv, for reports.
    pub line: u64,
}

impl Employer {
    pub fn group(&self, name: &GroupName) -> Option<&GroupSpec> {
        self.group_named(name.as_str())
    }
    /// The group spelt exactly `name`, if the employer declares it.
    pub fn group_named(&self, name: &str) -> Option<&GroupSpec> {
        self.group_position(name).map(|i| &self.groups[i])
    }
    /// Where the group spelt exactly `name` is in `groups`.
    pub fn group_position(&self, name: &str) -> Option<usize> {
        self.groups
            .binary_search_by(|g| g.name.as_str().cmp(name))
            .ok()
    }
}

/// Some of an employer's groups, by position in [`Employer::groups`]
/// (sorted by name, so ascending positions are names in order). One word
/// for the first 64 groups: an employee row carried a vector of names,
/// allocated on the thread that checked it and freed on the planner's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSet {
    /// Positions below 64, as bits.
    low: u64,
    /// Positions from 64 on, sorted, unique (rarely any).
    high: Vec<u32>,
}

impl GroupSet {
    pub fn insert(&mut self, position: usize) {
        if position < 64 {
            self.low |= 1 << position;
            return;
        }
        let p = u32::try_from(position).expect("fewer than 2^32 groups");
        if let Err(at) = self.high.binary_search(&p) {
            self.high.insert(at, p);
        }
    }
    pub fn contains(&self, position: usize) -> bool {
        match position {
            0..64 => self.low & (1 << position) != 0,
            _ => u32::try_from(position).is_ok_and(|p| self.high.binary_search(&p).is_ok()),
        }
    }
    /// The positions, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let mut low = self.low;
        let bits = std::iter::from_fn(move || {
            let at = (low != 0).then(|| low.trailing_zeros() as usize)?;
            low &= low - 1;
            Some(at)
        });
        bits.chain(self.high.iter().map(|&p| p as usize))
    }
    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_empty()
    }
}

/// An employee as the export describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    pub employee_ref: EmployeeRef,
    pub employer_ref: EmployerRef,
    pub first_name: Text,
    pub last_name: Text,
    pub email: Email,
    pub phone: E164Phone,
    pub date_of_birth: NaiveDate,
    pub start_on: NaiveDate,
    pub sex_at_birth: SexAtBirth,
    pub national_tax_id: TaxId,
    pub home_address: Address,
    pub nationality: Option<CountryCode>,
    /// A leaving date: the employee is offboarded on it.
    pub end_on: Option<NaiveDate>,
    /// Groups of the employee's employer, sorted, unique.
    pub groups: Vec<GroupName>,
    pub metadata: Metadata,
    /// Line in employees.csv, for reports.
    pub line: u64,
}

/// An employee's validated values that its fingerprint covers, borrowed:
/// from a CSV record while it is read (no copies for rows that only need
/// planning) or from an [`Employee`]. No `Debug`: it holds the tax id, an
/// email and a phone in clear.
#[derive(Clone, Copy)]
pub struct EmployeeFields<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub date_of_birth: NaiveDate,
    pub start_on: NaiveDate,
    pub sex_at_birth: SexAtBirth,
    pub national_tax_id: &'a str,
    pub home_address: AddressFields<'a>,
    pub nationality: Option<CountryCode>,
    pub metadata: MetadataFields<'a>,
}

/// Metadata pairs, sorted by key: held by a [`Metadata`], or as
/// [`Metadata::check_pairs`] returned them.
#[derive(Debug, Clone, Copy)]
pub enum MetadataFields<'a> {
    Owned(&'a Metadata),
    Checked(&'a [(&'a str, &'a str)]),
}

impl<'a> MetadataFields<'a> {
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let (owned, checked) = match self {
            MetadataFields::Owned(m) => (Some(m.iter()), None),
            MetadataFields::Checked(c) => (None, Some(c.iter().copied())),
        };
        owned
            .into_iter()
            .flatten()
            .chain(checked.into_iter().flatten())
    }
}

impl Employee {
    pub fn fields(&self) -> EmployeeFields<'_> {
        EmployeeFields {
            first_name: self.first_name.as_str(),
            last_name: self.last_name.as_str(),
            email: self.email.as_str(),
            phone: self.phone.as_str(),
            date_of_birth: self.date_of_birth,
            start_on: self.start_on,
            sex_at_birth: self.sex_at_birth,
            national_tax_id: self.national_tax_id.expose(),
            home_address: self.home_address.fields(),
            nationality: self.nationality,
            metadata: MetadataFields::Owned(&self.metadata),
        }
    }
}

/// Shorten a value quoted back in a message, so a 1 MB field does not make a
/// 1 MB error line.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick path changes nothing: Unicode whitespace at either end is
    /// still trimmed.
    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "x",
            "ab",
            " x",
            "x ",
            "\tx\n",
            "\u{a0}x",
            "x\u{a0}",
            "\u{2003}é\u{3000}",
            "é",
            "xé",
            "éx",
            "a b",
            "\u{1680}",
            "x\u{85}",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn a_group_set_lists_its_positions_in_order() {
        let mut g = GroupSet::default();
        assert!(g.is_empty() && g.iter().next().is_none());
        for p in [70, 3, 63, 0, 3, 200, 70] {
            g.insert(p);
        }
        assert_eq!(g.iter().collect::<Vec<_>>(), [0, 3, 63, 70, 200]);
        assert!(g.contains(63) && g.contains(200) && !g.contains(1) && !g.contains(64));
    }

    /// The bit table accepts the listed codes, in any case, and nothing
    /// else of two letters.
    #[test]
    fn known_countries_are_the_listed_codes() {
        let mut accepted = Vec::new();
        for a in b'a'..=b'z' {
            for b in b'a'..=b'z' {
                let code = String::from_utf8(vec![a, b]).unwrap();
                let ok = CountryCode::parse(&code).is_ok();
                assert_eq!(CountryCode::parse(&code.to_uppercase()).is_ok(), ok);
                if ok {
                    accepted.push(code);
                }
            }
        }
        assert_eq!(accepted, COUNTRIES);
    }

    #[test]
    fn metadata_is_sorted_unique_and_a_json_object() {
        let m = Metadata::from_pairs([("b", " 2 "), ("a", "1"), ("c", ""), ("b", "3")]).unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "3")]);
        assert_eq!(m.get("b"), Some("3"));
        assert_eq!(m.get("c"), None);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"a":"1","b":"3"}"#);
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), m);
    }

    #[test]
    fn country_any_case_in_lower_out() {
        assert_eq!(CountryCode::parse(" GB ").unwrap().as_str(), "gb");
        assert_eq!(CountryCode::parse("Us").unwrap().as_str(), "us");
        assert_eq!(CountryCode::parse("uk").unwrap_err().rule, Rule::Country);
        assert_eq!(CountryCode::parse("gbr").unwrap_err().rule, Rule::Country);
        assert_eq!(CountryCode::parse("").unwrap_err().rule, Rule::Required);
        assert!(CountryCode::parse("us").unwrap().needs_state());
        assert!(CountryCode::parse("CA").unwrap().needs_state());
        assert!(!CountryCode::parse("ie").unwrap().needs_state());
    }

    #[test]
    fn phone_is_e164() {
        assert!(E164Phone::parse("+447700900999").is_ok());
        assert!(E164Phone::parse("+15551234567").is_ok());
        for bad in [
            "447700900999",
            "+44 7700 900999",
            "+0447700900",
            "+12345",
            "+1234567890123456",
            "+44770090099a",
        ] {
            assert_eq!(
                E164Phone::parse(bad).unwrap_err().rule,
                Rule::Phone,
                "{bad}"
            );
        }
    }

    #[test]
    fn email_shape() {
        assert!(Email::parse("jane.doe@acme.co.uk").is_ok());
        for bad in [
            "jane",
            "jane@",
            "@acme.com",
            "jane@acme",
            "ja ne@acme.com",
            "a@b@c.com",
            "jane@acme..com",
            "jane@.acme.com",
        ] {
            assert_eq!(Email::parse(bad).unwrap_err().rule, Rule::Email, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2024-02-29").unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        for bad in [
            "2023-02-29",
            "2024-2-01",
            "01/02/2024",
            "2024-13-01",
            "20240101",
            "2024-01-01T00:00",
            "2024-00-10",
            "2024-04-31",
            "2024-01-00",
        ] {
            assert_eq!(parse_date(bad).unwrap_err().rule, Rule::Date, "{bad}");
        }
    }

    /// The hand-written parser accepts exactly what chrono's `%Y-%m-%d`
    /// accepts on well-shaped input.
    #[test]
    fn dates_agree_with_chrono() {
        for y in [0, 1, 1899, 1900, 1999, 2000, 2023, 2024, 2100, 9999] {
            for m in 0..=13 {
                for d in 0..=32 {
                    let s = format!("{y:04}-{m:02}-{d:02}");
                    let chrono = NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
                    assert_eq!(parse_date(&s).ok(), chrono, "{s}");
                }
            }
        }
    }

    #[test]
    fn ein_nine_digits_hyphen_removed() {
        assert_eq!(Ein::parse("12-3456789").unwrap().as_str(), "123456789");
        assert_eq!(Ein::parse("123456789").unwrap().as_str(), "123456789");
        for bad in [
            "12345678",
            "1234567890",
            "123-456789",
            "12-345678a",
            "abcdefghi",
        ] {
            assert_eq!(Ein::parse(bad).unwrap_err().rule, Rule::Ein, "{bad}");
        }
    }

    #[test]
    fn carrier_id_is_hyphenated_uuid() {
        assert!(CarrierId::parse("8fac0992-933a-4743-8dab-0d606ef2569e").is_ok());
        assert_eq!(
            CarrierId::parse("8fac0992933a47438dab0d606ef2569e")
                .unwrap_err()
                .rule,
            Rule::Uuid
        );
        assert_eq!(CarrierId::parse("carrier-1").unwrap_err().rule, Rule::Uuid);
    }

    #[test]
    fn metadata_limits() {
        let long_key = "k".repeat(41);
        assert_eq!(
            Metadata::from_pairs([(long_key.as_str(), "v")])
                .unwrap_err()
                .rule,
            Rule::Metadata
        );
        let long_val = "v".repeat(501);
        assert_eq!(
            Metadata::from_pairs([("k", long_val.as_str())])
                .unwrap_err()
                .rule,
            Rule::Metadata
        );
        let keys: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
        assert_eq!(
            Metadata::from_pairs(keys.iter().map(|k| (k.as_str(), "v")))
                .unwrap_err()
                .rule,
            Rule::Metadata
        );
        let m = Metadata::from_pairs(keys.iter().take(24).map(|k| (k.as_str(), "v"))).unwrap();
        assert_eq!(m.len(), 24);
        assert!(Metadata::from_pairs([("k", "  ")]).unwrap().is_empty());
    }

    #[test]
    fn sex_at_birth() {
        assert_eq!(SexAtBirth::parse("Female").unwrap(), SexAtBirth::Female);
        assert_eq!(SexAtBirth::parse("x").unwrap_err().rule, Rule::SexAtBirth);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let t = TaxId::parse("AB123456C").unwrap();
        assert!(!format!("{t:?}").contains("AB123456C"));
        let e = Email::parse("jane@acme.com").unwrap();
        assert!(!format!("{e:?}").contains("jane"));
    }
}
