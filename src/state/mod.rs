//! The state database: what benefits-sync remembers having synced.
//!
//! One thread owns the SQLite connection (the *store thread*); everything
//! else talks to it through a [`Store`] handle. Writes that arrive together
//! are committed in one transaction (group commit), so journaling every
//! operation twice costs a few commits per batch, not two fsyncs per call.

pub mod bench_seed;
pub mod db;
pub mod effect;
pub mod schema;
pub mod snapshot;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction};

use tokio::sync::oneshot;

pub use db::Summarised;
pub use effect::{Effect, JournalStatus};
pub use snapshot::{
    ConnectionSnap, Connections, EmployeeSnap, EmployeeTable, EmployerSnap, Groups, Ineligibility,
    MembershipState, Sections, Snapshot,
};

/// What can go wrong with the state database. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {0} is a directory; --state takes a file path")]
    NotAFile(String),
    #[error("cannot create state database {0}: {1} (check the directory exists and is writable)")]
    Io(String, #[source] std::io::Error),
    #[error("cannot open state database {0}: {1}")]
    Open(String, #[source] rusqlite::Error),
    #[error("state database {0} is not usable: {1}. It was left untouched; restore it from a backup or point --state at another file")]
    Corrupt(String, String),
    /// SQLite writes the journal beside the database (`FILE-wal`,
    /// `FILE-shm`), so a writable file in a read-only directory is no better
    /// than a read-only file: the message names the directory.
    #[error("cannot write state database {path}: it or its directory {dir} is read-only for this user ({why}). benefits-sync records every operation there, including its write-ahead journal {path}-wal; make {dir} and the file writable for the user running it, or point --state at a writable directory")]
    ReadOnly {
        /// The database file.
        path: String,
        /// The directory that must be writable.
        dir: String,
        /// What the OS or SQLite said.
        why: String,
    },
    #[error("state database {0} has schema version {1}, newer than this build's {2}: it was written by a newer benefits-sync and was left untouched; upgrade benefits-sync (or point --state at another file)")]
    TooNew(String, u32, u32),
    #[error("state database {0}: {1}")]
    Sql(String, #[source] rusqlite::Error),
    #[error("the store thread has stopped")]
    Stopped,
}

type ExecFn = Box<dyn FnOnce(&mut Connection) + Send>;
type WriteFn = Box<dyn FnOnce(&Transaction) -> rusqlite::Result<()> + Send>;

/// A request to the store thread.
enum Command {
    /// Runs alone, with the connection to itself.
    Exec(ExecFn),
    /// Joins whatever other writes are queued in one transaction; `ack`
    /// hears once that transaction is committed (or has failed).
    Write {
        apply: WriteFn,
        ack: oneshot::Sender<Result<(), String>>,
    },
}

/// Handle to the store thread. Cheap to clone; the thread ends once every
/// handle is dropped and the queued commands are done, and [`Store::close`]
/// waits for that.
#[derive(Clone)]
pub struct Store {
    /// The only way to the connection. Dropping the last sender is the
    /// thread's shutdown signal.
    tx: mpsc::Sender<Command>,
    /// The thread, joined by `close` so the last commit is on disk before the
    /// process exits.
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// The file, for messages.
    path: Arc<PathBuf>,
    /// Whether the integrity check was put off until the snapshot
    /// ([`Store::open_for_planning`]).
    check_deferred: bool,
}

/// The verdict of the state's integrity check ([`Store::open_for_planning`]
/// defers it), possibly still being reached.
#[must_use = "a snapshot must not be used before the state's integrity check has passed"]
pub struct Verdict(Option<std::thread::JoinHandle<Result<(), StateError>>>);

impl Verdict {
    /// Start checking the database at `path`, if any, on a thread of its
    /// own (read-only, so it may run beside the store's reads). The thread
    /// ends with the check; nothing stops it sooner, and the process does
    /// not wait for it if the verdict is dropped unheard.
    fn start(path: Option<std::path::PathBuf>) -> Verdict {
        Verdict(path.map(|path| {
            std::thread::Builder::new()
                .name("state-check".into())
                .spawn(move || db::quick_check(&path))
                .expect("a thread for the state's integrity check")
        }))
    }

    /// Wait for the check: its error, if the state is damaged.
    pub fn wait(self) -> Result<(), StateError> {
        match self.0 {
            None => Ok(()),
            Some(check) => match check.join() {
                Ok(verdict) => verdict,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        }
    }
}

/// How many queued writes may share one transaction.
const MAX_BATCH: usize = 1024;

impl Store {
    /// Open (create, migrate) the database at `path` on a new store thread.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        Store::open_with(path, db::Check::AtOpen)
    }

    /// Open for a command that reads the state and writes nothing of its
    /// own (`plan`): the integrity check runs beside the loading of
    /// [`Store::snapshot_beside`] and the planning after it, and the
    /// caller waits for its [`Verdict`] before using the plan.
    pub fn open_for_planning(path: &Path) -> Result<Store, StateError> {
        Store::open_with(path, db::Check::Deferred)
    }

    fn open_with(path: &Path, check: db::Check) -> Result<Store, StateError> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let owned = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || match db::open_with(&owned, check) {
                Ok((conn, deferred)) => {
                    let _ = ready_tx.send(Ok(deferred));
                    run(conn, rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StateError::Io(path.display().to_string(), e))?;
        let check_deferred = ready_rx.recv().map_err(|_| StateError::Stopped)??;
        Ok(Store {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
            path: Arc::new(path.to_path_buf()),
            check_deferred,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, StateError>> {
        let (ack, rx) = oneshot::channel();
        let path = self.path.display().to_string();
        let cmd = Command::Exec(Box::new(move |conn| {
            let _ = ack.send(f(conn).map_err(|e| StateError::Sql(path, e)));
        }));
        // A send error drops `ack`, which the receiver sees as Stopped.
        let _ = self.tx.send(cmd);
        rx
    }

    /// Run `f` on the store thread and wait (from synchronous code).
    pub fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StateError> {
        self.submit(f)
            .blocking_recv()
            .map_err(|_| StateError::Stopped)?
    }

    /// Run `f` on the store thread and wait (from async code).
    pub async fn call_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StateError> {
        self.submit(f).await.map_err(|_| StateError::Stopped)?
    }

    /// Queue a write to be committed with whatever else is queued; resolves
    /// once it is durable in the WAL.
    pub async fn write(
        &self,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<()> + Send + 'static,
    ) -> Result<(), StateError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Command::Write {
                apply: Box::new(f),
                ack,
            })
            .map_err(|_| StateError::Stopped)?;
        let path = self.path.display().to_string();
        rx.await
            .map_err(|_| StateError::Stopped)?
            .map_err(|e| StateError::Corrupt(path, e))
    }

    /// The whole state, remote ids included, as apply needs it.
    pub fn snapshot(&self) -> Result<Snapshot, StateError> {
        let (snap, (), verdict) = self.snapshot_beside(db::Detail::Whole, || ());
        verdict.wait().and(snap)
    }

    /// The state with as much of each employee as `detail` says, with
    /// `first` (reading employers.csv) run beside the load, and then the
    /// deferred integrity check, if any, started on a thread of its own:
    /// `first` has the other core while the load has one, and the check
    /// then runs beside the load's end and the planning that follows.
    /// Its [`Verdict`] must be waited for before the snapshot, or anything
    /// made from it, is used; if the load fails, the verdict is waited for
    /// here and a failed check wins over the load's error.
    ///
    /// With [`db::Detail::Planning`] (plan) or [`db::Detail::Nightly`]
    /// (apply), employees with a row digest come as summaries; planning
    /// against them needs [`Store::fetch_employees_later`]. A planning
    /// snapshot leaves the read transaction it was loaded in open, so that
    /// the fetches read the same state whatever another process commits
    /// meanwhile; apply holds the run lock, so no one else writes.
    pub fn snapshot_beside<T: Send>(
        &self,
        detail: db::Detail,
        first: impl FnOnce() -> T + Send,
    ) -> (Result<Snapshot, StateError>, T, Verdict) {
        let path = self.path.as_path();
        let check = self.check_deferred;
        let (snap, first, verdict) = std::thread::scope(|scope| {
            let beside = std::thread::Builder::new()
                .name("beside-load".into())
                .spawn_scoped(scope, move || {
                    let first = first();
                    (first, Verdict::start(check.then(|| path.to_path_buf())))
                })
                .expect("a thread beside the state load");
            // One read transaction: every table as of one moment. A
            // planning snapshot leaves it open for later fetches
            // (`fetch_employees`); it ends when the store closes.
            let snap = self.call(move |c| {
                if !c.is_autocommit() {
                    // An earlier planning snapshot's transaction.
                    c.execute_batch("ROLLBACK")?;
                }
                c.execute_batch("BEGIN")?;
                let started = std::time::Instant::now();
                let snap = db::load_snapshot(c, detail);
                tracing::debug!("state read in {:.2?}", started.elapsed());
                if detail != db::Detail::Planning || snap.is_err() {
                    c.execute_batch("ROLLBACK")?;
                }
                snap
            });
            let (first, verdict) = match beside.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (snap, first, verdict)
        });
        match snap {
            Ok(snap) => (Ok(snap), first, verdict),
            Err(e) => (verdict.wait().and(Err(e)), first, Verdict(None)),
        }
    }

    /// The whole rows of summarised employees of the snapshot, in the
    /// order of `wanted` (an error if the state lacks one, or has it under
    /// another employer: it cannot, in the snapshot's transaction or under
    /// the run lock), queued now on the store thread and waited for when
    /// the returned function is called: a reader asks for a batch's rows as
    /// it sends the batch, and the planner collects them when it gets to
    /// it, so the lookups overlap the reading.
    pub fn fetch_employees_later(
        &self,
        wanted: Vec<db::Summarised>,
    ) -> impl FnOnce() -> Result<Vec<EmployeeSnap>, StateError> + Send + 'static {
        let path = self.path.display().to_string();
        let pending = self.submit(move |c| {
            let rows = db::fetch_employees(c, &wanted)?;
            Ok((wanted, rows))
        });
        move || {
            let (wanted, rows) = pending.blocking_recv().map_err(|_| StateError::Stopped)??;
            rows.into_iter()
                .zip(wanted)
                .map(|(row, w)| {
                    row.ok_or_else(|| {
                        StateError::Corrupt(
                            path.clone(),
                            format!(
                                "employee {} left employer {} in the state while it was being planned against",
                                w.employee, w.employer
                            ),
                        )
                    })
                })
                .collect()
        }
    }

    pub async fn uncertain_ops(&self) -> Result<HashSet<String>, StateError> {
        self.call_async(|c| db::uncertain_ops(c)).await
    }

    /// Wait for the store thread to finish everything queued. Other clones
    /// must be dropped first, or this waits for them.
    pub fn close(self) {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self.tx);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The store thread's loop: one command at a time, consecutive writes
/// batched into one transaction.
fn run(mut conn: Connection, rx: mpsc::Receiver<Command>) {
    let mut next = rx.recv().ok();
    while let Some(cmd) = next.take() {
        match cmd {
            Command::Exec(f) => f(&mut conn),
            Command::Write { apply, ack } => {
                let mut batch = vec![(apply, ack)];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Command::Write { apply, ack }) => batch.push((apply, ack)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let mut acks = Vec::with_capacity(batch.len());
                let result = (|| {
                    let tx = conn.transaction()?;
                    for (apply, ack) in batch {
                        acks.push(ack);
                        apply(&tx)?;
                    }
                    tx.commit()
                })();
                let result = result.map_err(|e| e.to_string());
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
    // Fold the WAL back so the file is whole for backups and readers.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EmployeeRef, EmployerRef, GroupName};

    fn now() -> String {
        "2026-01-01T00:00:00Z".into()
    }

    #[tokio::test]
    async fn journal_and_effect_commit_together_and_bump_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let v0 = store.call_async(|c| db::version(c)).await.unwrap();
        store
            .write(|tx| db::journal_begin(tx, "k1", "employee.create", "idem", "fp", 1, &now()))
            .await
            .unwrap();
        assert!(store.uncertain_ops().await.unwrap().contains("k1"));
        let effect = Effect::Employee {
            employee_ref: EmployeeRef::parse("E1").unwrap(),
            employer_ref: EmployerRef::parse("ER1").unwrap(),
            kota_id: "ee_1".into(),
            fp: Sections(vec![1, 2, 3].into()),
        };
        store
            .write(move |tx| {
                db::journal_finish(
                    tx,
                    "k1",
                    "employee.create",
                    JournalStatus::Done,
                    Some(&effect),
                    None,
                    1,
                    &now(),
                )
            })
            .await
            .unwrap();
        let m = Effect::Membership {
            employee_ref: EmployeeRef::parse("E1").unwrap(),
            group: GroupName::parse("Health").unwrap(),
            ineligible: None,
        };
        store
            .write(move |tx| {
                db::journal_finish(
                    tx,
                    "k2",
                    "membership.add",
                    JournalStatus::Done,
                    Some(&m),
                    None,
                    1,
                    &now(),
                )
            })
            .await
            .unwrap();
        let snap = tokio::task::spawn_blocking({
            let s = store.clone();
            move || s.snapshot()
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(snap.version, v0 + 2);
        let e = &snap.employees[&EmployeeRef::parse("E1").unwrap()];
        assert_eq!(&*e.kota_id, "ee_1");
        assert_eq!(e.fp, Sections(vec![1, 2, 3].into()));
        assert_eq!(
            e.membership(&GroupName::parse("Health").unwrap()),
            Some(&MembershipState::Added)
        );
        assert!(store.uncertain_ops().await.unwrap().is_empty());
        store.close();
    }

    #[test]
    fn lock_names_its_holder_and_can_be_broken() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let first = store
            .call(|c| db::acquire_lock(c, "apply", 111, "hostA", "t0"))
            .unwrap();
        assert!(first.is_ok());
        let second = store
            .call(|c| db::acquire_lock(c, "apply", 222, "hostB", "t1"))
            .unwrap();
        let holder = second.unwrap_err();
        assert_eq!((holder.pid, holder.host.as_str()), (111, "hostA"));
        let broken = store.call(|c| db::break_lock(c, "t2")).unwrap().unwrap();
        assert_eq!(broken.pid, 111);
        assert!(store
            .call(|c| db::acquire_lock(c, "apply", 333, "h", "t3"))
            .unwrap()
            .is_ok());
        store.close();
    }

    #[test]
    fn non_sqlite_file_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.db");
        let junk = b"this is not a database, it is a shopping list\n".repeat(200);
        std::fs::write(&p, &junk).unwrap();
        let err = Store::open(&p).err().expect("must refuse");
        assert!(matches!(err, StateError::Corrupt(..)), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), junk);
    }

    #[test]
    fn v2_copies_request_figures_out_of_any_v1_summary_it_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(schema::MIGRATIONS[0]).unwrap();
            c.execute_batch(
                r#"INSERT INTO runs(id, command, started, pid, host, summary) VALUES
                   (1, 'apply', 't', 1, 'h', '{"totals":{"done":2},"requests":{"kota":{"requests":9,"writes":4,"retries":2,"throttled":1,"server_errors":1,"network_errors":0},"noyo":{"requests":3}}}'),
                   (2, 'apply', 't', 1, 'h', 'not json at all'),
                   (3, 'apply', 't', 1, 'h', '{"requests":5}'),
                   (4, 'apply', 't', 1, 'h', NULL);
                   PRAGMA user_version = 1;"#,
            )
            .unwrap();
        }
        let store = Store::open(&p).unwrap();
        let runs = store.call(|c| db::recent_runs(c, 10)).unwrap();
        store.close();
        let run = |id: i64| runs.iter().find(|r| r.id == id).unwrap();
        let kota = run(1).requests["kota"];
        assert_eq!(
            (kota.requests, kota.writes, kota.retries, kota.throttled),
            (9, 4, 2, 1)
        );
        // Fields a summary lacks count as zero.
        assert_eq!(run(1).requests["noyo"].requests, 3);
        assert_eq!(run(1).requests["noyo"].writes, 0);
        assert_eq!(
            run(1).summary.as_ref().unwrap(),
            &serde_json::json!({"totals": {"done": 2}})
        );
        // What it cannot read it leaves as it was.
        for id in [2, 3, 4] {
            assert!(run(id).requests.is_empty(), "run {id}");
        }
        assert_eq!(run(3).summary, Some(serde_json::json!({"requests": 5})));
    }

    #[cfg(unix)]
    #[test]
    fn new_state_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        Store::open(&p).unwrap().close();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
