//! What reading can report: a rejected row, a warning about the file, or a
//! whole-file error.

use std::fmt;
use std::io;

use crate::model::Rule;

/// One rejected row: where it is, which column and rule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The path as the user gave it.
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub rule: Rule,
    /// A sentence for the user. Never holds a tax id, nor a whole huge field.
    pub message: String,
    /// The row's employer_ref (employers.csv) or employee_ref (employees.csv)
    /// when it could be read: opaque payroll ids, not personal data.
    pub key: Option<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, "column '{c}': ")?;
        }
        write!(f, "{} [{}]", self.message, self.rule.code())
    }
}

/// Sort as the contract promises: by file, line, then column.
pub(crate) fn sort(rejections: &mut [Rejection]) {
    rejections.sort_by(|a, b| (&a.file, a.line, &a.column).cmp(&(&b.file, b.line, &b.column)));
}

/// Something about a file worth telling the user that rejects nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputWarning {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for InputWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A problem with a whole file: nothing in it can be read.
#[derive(thiserror::Error, Debug)]
pub enum InputError {
    #[error("{path}: no such file; check the path")]
    NotFound { path: String },
    #[error("{path}: is a directory; give the path of the CSV file inside it")]
    IsDirectory { path: String },
    #[error("{path}: cannot be read: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: the file is empty; expected a header row naming the columns")]
    Empty { path: String },
    #[error("{path}: header row: {message}")]
    Header { path: String, message: String },
    #[error(
        "{path}: missing required column{}: {}; add {} to the header row (any order)",
        if columns.len() == 1 { "" } else { "s" },
        columns.join(", "),
        if columns.len() == 1 { "it" } else { "them" }
    )]
    MissingColumns { path: String, columns: Vec<String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_column_and_rule() {
        let r = Rejection {
            file: "employees.csv".into(),
            line: 12,
            column: Some("email".into()),
            rule: Rule::Email,
            message: "'x' is not an email address like name@example.com".into(),
            key: Some("E1".into()),
        };
        assert_eq!(
            r.to_string(),
            "employees.csv:12: column 'email': 'x' is not an email address like name@example.com [email]"
        );
    }

    #[test]
    fn missing_columns_lists_all() {
        let e = InputError::MissingColumns {
            path: "e.csv".into(),
            columns: vec!["email".into(), "city".into()],
        };
        assert_eq!(
            e.to_string(),
            "e.csv: missing required columns: email, city; add them to the header row (any order)"
        );
    }
}
