//! Column lookup: the header row is resolved once into indices, so reading a
//! row is indexing, never searching by name.

use super::record::Record;

use crate::model::Metadata;

pub(crate) const METADATA_PREFIX: &str = "metadata.";

/// The columns of one file as its header lays them out.
#[derive(Debug)]
pub(crate) struct Header {
    /// Column names as written (trimmed), by position.
    names: Vec<String>,
    /// The file's known columns (canonical names), in id order.
    columns: &'static [&'static str],
    /// Position of each known column, by id.
    known: Vec<Option<usize>>,
    /// `(key, position)` of each `metadata.KEY` column, in header order.
    pub metadata: Vec<(String, usize)>,
    /// Positions whose values are read (known and metadata), ascending.
    pub used: Vec<usize>,
}

/// Why a header cannot be used. Turned into an `InputError` by the caller,
/// which knows the path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Invalid(String),
    Missing(Vec<String>),
}

impl Header {
    /// The column names as written (trimmed), in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Resolve a header row. `warnings` receives one sentence per ignored
    /// column.
    pub(crate) fn resolve(
        rec: &Record,
        columns: &'static [&'static str],
        required: &[usize],
        warnings: &mut Vec<String>,
    ) -> Result<Header, HeaderProblem> {
        let mut names = Vec::with_capacity(rec.len());
        for (pos, raw) in rec.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| {
                HeaderProblem::Invalid(format!(
                    "column {} of the header row is not valid UTF-8; re-export the file as UTF-8",
                    pos + 1
                ))
            })?;
            if name.contains('\0') {
                // UTF-16 without a byte-order mark decodes as "valid" UTF-8
                // with a NUL after every ASCII letter.
                return Err(HeaderProblem::Invalid(
                    "the header row contains NUL bytes: the file looks like UTF-16; \
                     re-export it as UTF-8"
                        .to_owned(),
                ));
            }
            names.push(name.trim().to_owned());
        }
        let mut known = vec![None; columns.len()];
        let mut metadata: Vec<(String, usize)> = Vec::new();
        let mut used = Vec::new();
        for (pos, name) in names.iter().enumerate() {
            if name.is_empty() {
                warnings.push(format!(
                    "column {} has no name in the header row; its values are ignored",
                    pos + 1
                ));
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if let Some(key) = strip_prefix_ignore_case(name, METADATA_PREFIX) {
                let key = key.trim();
                if key.is_empty() {
                    return Err(HeaderProblem::Invalid(format!(
                        "column '{name}' has no metadata key after 'metadata.'"
                    )));
                }
                if key.eq_ignore_ascii_case(Metadata::RESERVED_KEY) {
                    return Err(HeaderProblem::Invalid(format!(
                        "column '{name}' is reserved: benefits-sync stores the payroll ref in \
                         metadata key 'id' to find its objects again; rename the column \
                         (e.g. 'metadata.payroll_id')"
                    )));
                }
                if let Some((_, other)) = metadata.iter().find(|(k, _)| k == key) {
                    return Err(duplicate(name, *other, pos));
                }
                metadata.push((key.to_owned(), pos));
                used.push(pos);
            } else if let Some(id) = columns.iter().position(|c| *c == lower) {
                if let Some(other) = known[id] {
                    return Err(duplicate(name, other, pos));
                }
                known[id] = Some(pos);
                used.push(pos);
            } else {
                warnings.push(format!(
                    "unknown column '{}' is ignored (known columns: {}, metadata.KEY)",
                    crate::model::truncate(name, 60),
                    columns.join(", ")
                ));
            }
        }
        let missing: Vec<String> = required
            .iter()
            .filter(|&&id| known[id].is_none())
            .map(|&id| columns[id].to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(HeaderProblem::Missing(missing));
        }
        Ok(Header {
            names,
            columns,
            known,
            metadata,
            used,
        })
    }

    /// Number of columns in the header row.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Position of a known column, if the file has it.
    pub(crate) fn pos(&self, id: usize) -> Option<usize> {
        self.known[id]
    }

    /// The name to show for a known column: as the file spells it, or the
    /// canonical name when the (optional) column is absent.
    pub(crate) fn name(&self, id: usize) -> &str {
        match self.known[id] {
            Some(pos) => &self.names[pos],
            None => self.columns[id],
        }
    }

    /// The name of the column at a position.
    pub(crate) fn name_at(&self, pos: usize) -> &str {
        self.names.get(pos).map(String::as_str).unwrap_or("")
    }
}

fn duplicate(name: &str, first: usize, second: usize) -> HeaderProblem {
    HeaderProblem::Invalid(format!(
        "column '{name}' appears twice (columns {} and {}); keep one",
        first + 1,
        second + 1
    ))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[&str] = &["employee_ref", "email", "state"];

    fn resolve(fields: &[&str]) -> (Result<Header, HeaderProblem>, Vec<String>) {
        let rec = Record::from(fields.to_vec());
        let mut w = Vec::new();
        (Header::resolve(&rec, COLS, &[0, 1], &mut w), w)
    }

    #[test]
    fn any_order_any_case_trimmed() {
        let (h, w) = resolve(&[" Email ", "EMPLOYEE_REF", "metadata.Dept"]);
        let h = h.unwrap();
        assert!(w.is_empty());
        assert_eq!(h.pos(0), Some(1));
        assert_eq!(h.pos(1), Some(0));
        assert_eq!(h.pos(2), None);
        assert_eq!(h.name(1), "Email");
        assert_eq!(h.name(2), "state");
        assert_eq!(h.metadata, vec![("Dept".to_owned(), 2)]);
        assert_eq!(h.used, vec![0, 1, 2]);
    }

    #[test]
    fn unknown_and_unnamed_columns_warn_once() {
        let (h, w) = resolve(&["employee_ref", "email", "shoe_size", ""]);
        assert!(h.is_ok());
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("shoe_size"));
        assert!(w[1].contains("column 4 has no name"));
    }

    #[test]
    fn every_missing_column_in_one_error() {
        let (h, _) = resolve(&["state"]);
        assert_eq!(
            h.unwrap_err(),
            HeaderProblem::Missing(vec!["employee_ref".into(), "email".into()])
        );
    }

    #[test]
    fn duplicates_and_reserved_metadata_refused() {
        let (h, _) = resolve(&["employee_ref", "email", "EMAIL"]);
        assert!(matches!(h.unwrap_err(), HeaderProblem::Invalid(m) if m.contains("appears twice")));
        let (h, _) = resolve(&["employee_ref", "email", "metadata.x", "metadata.x"]);
        assert!(matches!(h.unwrap_err(), HeaderProblem::Invalid(m) if m.contains("appears twice")));
        let (h, _) = resolve(&["employee_ref", "email", "metadata.ID"]);
        assert!(matches!(h.unwrap_err(), HeaderProblem::Invalid(m) if m.contains("reserved")));
        let (h, _) = resolve(&["employee_ref", "email", "metadata."]);
        assert!(
            matches!(h.unwrap_err(), HeaderProblem::Invalid(m) if m.contains("no metadata key"))
        );
    }

    #[test]
    fn utf16_without_bom_refused() {
        let rec = Record::from(vec!["e\0m\0a\0i\0l\0"]);
        let mut w = Vec::new();
        assert!(matches!(
            Header::resolve(&rec, COLS, &[0], &mut w).unwrap_err(),
            HeaderProblem::Invalid(m) if m.contains("UTF-16")
        ));
    }

    #[test]
    fn non_utf8_header_refused() {
        let rec = Record::from(vec![&b"employee_ref"[..], b"e\xe9mail"]);
        let mut w = Vec::new();
        assert!(matches!(
            Header::resolve(&rec, COLS, &[0], &mut w).unwrap_err(),
            HeaderProblem::Invalid(m) if m.contains("column 2") && m.contains("UTF-8")
        ));
    }
}
