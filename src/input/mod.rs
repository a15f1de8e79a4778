//! CSV reading and validation: the edge where strings become domain types.
//!
//! Two entry points, [`read_employers`] (small file, merged in memory) and
//! [`read_employees`] (streamed to a sink). Every bad row becomes one
//! [`Rejection`] (file, line, column, rule, reason) and the rest of the file
//! is still read; only problems with the whole file (missing, unreadable, no
//! usable header) are an [`InputError`].
//!
//! Layout: `reader` (bytes: hashing, BOM, exact line numbers), `header`
//! (column lookup), `row` (shape checks and field parsing shared by both
//! files), `employers`, `employees`, `parallel` (employee rows checked on
//! several threads, taken back in file order), `first_rows` (duplicates), `digest` (unchanged rows),
//! `rejection` (what is reported).

mod ahead;
mod digest;
mod employees;
mod employers;
mod first_rows;
mod header;
mod parallel;
mod reader;
mod record;
mod ref_index;
mod rejection;
mod row;

pub use digest::ROW_DIGEST_VERSION;
pub use employees::{
    read_employee_rows, read_employees, read_employees_as_of, EmployeeRecord, EmployeesSummary,
    Known, Streamed, Synced, SyncedRow,
};
pub use employers::{read_employers, Employers};
pub use rejection::{InputError, InputWarning, Rejection};

use record::Record;

use header::{Header, HeaderProblem};
use reader::{is_blank, CsvSource, Encoding};

/// Read the header row (the first non-blank record) and resolve it.
fn read_header(
    src: &mut CsvSource,
    columns: &'static [&'static str],
    required: &[usize],
) -> Result<(Header, Vec<InputWarning>), InputError> {
    let path = src.path.clone();
    if src.encoding() == Encoding::Utf16 {
        return Err(InputError::Header {
            path,
            message: "the file is UTF-16 (it starts with a UTF-16 byte-order mark); \
                      re-export it as UTF-8"
                .to_owned(),
        });
    }
    let mut rec = Record::new();
    let line = loop {
        match src.next_record(&mut rec)? {
            None => return Err(InputError::Empty { path }),
            Some(loc) if !is_blank(&rec) => break loc.line,
            Some(_) => continue,
        }
    };
    let mut notes = Vec::new();
    let header = Header::resolve(&rec, columns, required, &mut notes).map_err(|p| match p {
        HeaderProblem::Invalid(message) => InputError::Header {
            path: path.clone(),
            message,
        },
        HeaderProblem::Missing(columns) => InputError::MissingColumns {
            path: path.clone(),
            columns,
        },
    })?;
    let warnings = notes
        .into_iter()
        .map(|message| InputWarning {
            file: path.clone(),
            line: Some(line),
            message,
        })
        .collect();
    Ok((header, warnings))
}

fn no_data_rows(file: &str) -> InputWarning {
    InputWarning {
        file: file.to_owned(),
        line: None,
        message: "no data rows: the file has a header row only".to_owned(),
    }
}
