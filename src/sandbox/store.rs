//! Persistence of remote objects in a SQLite file.
//!
//! The in-memory world is the source of truth; every change is also sent,
//! in order, to one writer thread that batches rows into transactions (WAL,
//! `synchronous=NORMAL`), so request handling never waits for the disk and
//! thousands of writes per second are cheap. On shutdown the channel is
//! closed and the thread drains and commits everything before it exits.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OpenFlags};

use super::SandboxError;

/// Largest number of rows committed in one transaction; bounds the latency
/// of a flush without giving up batching.
const BATCH: usize = 5_000;

/// A stored row: kind (`kota.employers`...), id and JSON body.
pub type Row = (String, String, String);

enum Change {
    Put {
        kind: &'static str,
        id: String,
        body: String,
    },
    Delete {
        kind: &'static str,
        id: String,
    },
    Clear,
}

/// The sending side of the writer thread.
pub struct Store {
    /// Changes, in the order the world made them.
    tx: Option<mpsc::Sender<Change>>,
    /// The writer thread; it exits when `tx` is dropped, after committing
    /// what it holds. Joined by [`Store::close`].
    thread: Option<JoinHandle<()>>,
}

/// Opens (or creates) a data file and loads every row. A file that is not a
/// SQLite database, or one that is but was not made by the sandbox, is an
/// error and is left untouched.
pub fn open(path: &Path) -> Result<(Store, Vec<Row>), SandboxError> {
    let fail = |message: String| SandboxError::Store {
        path: path.to_path_buf(),
        message,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail(format!("cannot open: {e}")))?;
    // Read before writing anything: this is where a corrupt or foreign file
    // is detected, and it must not be modified.
    let tables = list_tables(&conn).map_err(|e| {
        fail(format!(
            "not a readable SQLite database ({e}); refusing to use or overwrite it"
        ))
    })?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "sandbox_objects") {
        return Err(fail(
            "is a SQLite database but not a sandbox data file; refusing to use it".into(),
        ));
    }
    prepare(&conn).map_err(|e| fail(format!("cannot prepare: {e}")))?;
    let rows = load(&conn).map_err(|e| fail(format!("cannot read objects: {e}")))?;
    let (tx, rx) = mpsc::channel();
    let file = path.to_path_buf();
    // The writer thread: owns the connection; ends when every sender is gone
    // (shutdown or the world dropped), committing the last batch first.
    let thread = std::thread::Builder::new()
        .name("sandbox-store".into())
        .spawn(move || write_loop(conn, rx, file))
        .map_err(|e| fail(format!("cannot start writer thread: {e}")))?;
    Ok((
        Store {
            tx: Some(tx),
            thread: Some(thread),
        },
        rows,
    ))
}

fn list_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = stmt.query_map([], |r| r.get(0))?;
    names.collect()
}

fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS sandbox_objects (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        ) WITHOUT ROWID;",
    )
}

fn load(conn: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare("SELECT kind, id, body FROM sandbox_objects")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

fn write_loop(mut conn: Connection, rx: mpsc::Receiver<Change>, file: PathBuf) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        if let Err(e) = commit(&mut conn, &batch) {
            tracing::error!(file = %file.display(), error = %e, "sandbox store write failed");
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Change]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO sandbox_objects (kind, id, body) VALUES (?1, ?2, ?3)",
        )?;
        for change in batch {
            match change {
                Change::Put { kind, id, body } => {
                    put.execute(params![kind, id, body])?;
                }
                Change::Delete { kind, id } => {
                    tx.execute(
                        "DELETE FROM sandbox_objects WHERE kind = ?1 AND id = ?2",
                        params![kind, id],
                    )?;
                }
                Change::Clear => {
                    tx.execute("DELETE FROM sandbox_objects", [])?;
                }
            }
        }
    }
    tx.commit()
}

impl Store {
    /// Queues an insert-or-replace.
    pub fn put(&self, kind: &'static str, id: &str, body: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Change::Put {
                kind,
                id: id.to_string(),
                body,
            });
        }
    }

    /// Queues the deletion of one row.
    pub fn delete(&self, kind: &'static str, id: &str) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Change::Delete {
                kind,
                id: id.to_string(),
            });
        }
    }

    /// Queues the deletion of every row.
    pub fn clear(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Change::Clear);
        }
    }

    /// Closes the channel and waits until everything queued is committed.
    /// Blocking: call it from `spawn_blocking`.
    pub fn close(mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("sandbox store writer thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rows_and_refuses_foreign_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("world.sqlite");
        let (store, rows) = open(&path).expect("open new");
        assert!(rows.is_empty());
        store.put("k", "a", "{}".into());
        store.put("k", "a", "{\"v\":1}".into());
        store.close();
        let (store, rows) = open(&path).expect("reopen");
        assert_eq!(rows, vec![("k".into(), "a".into(), "{\"v\":1}".into())]);
        store.delete("k", "a");
        store.close();
        let (store, rows) = open(&path).expect("reopen after delete");
        assert!(rows.is_empty());
        store.close();

        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"this is not sqlite, not at all, no no no").expect("write");
        let before = std::fs::read(&junk).expect("read");
        assert!(matches!(open(&junk), Err(SandboxError::Store { .. })));
        assert_eq!(std::fs::read(&junk).expect("read"), before);
    }
}
