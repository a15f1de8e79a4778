//! Checking rows on several threads and taking them back in file order.
//!
//! Validating an employee row costs ten times reading it, so one thread
//! reads raw records into batches and checking threads validate whole
//! batches; the reading thread takes the batches back in the order it sent
//! them, so whatever depends on file order (duplicate refs, the order rows
//! reach the planner) is decided on one thread, as if nothing ran beside it.
//!
//! The record buffers travel with their batch and come back with it: after
//! the first few batches, reading allocates nothing per row.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

use super::record::Record;

/// Rows per batch: enough that handing one over costs little beside its
/// rows, few enough that the checking threads start early.
const ROWS: usize = 512;
/// Batches sent and not yet taken back, per checking thread: each can
/// finish a batch while the reader takes back another's.
const AHEAD_PER_THREAD: usize = 4;

/// How a checking thread turns a row into its result: the raw record,
/// what the reader noted of it, and the record [`LOOK_AHEAD`] rows on in
/// the batch, if there is one, whose lookups the check may start fetching
/// now, so that their cache misses overlap this row's work.
pub(crate) type Check<'c, P, T> = &'c (dyn Fn(&Record, &P, Option<&Record>) -> T + Sync);

/// How far ahead in its batch a check is shown a record (see [`Check`]).
pub(crate) const LOOK_AHEAD: usize = 8;

/// Rows on their way to a checking thread and back.
struct Batch<P, T> {
    /// The raw records; only the first `notes.len()` are rows of this
    /// batch. Kept from batch to batch, with their buffers.
    records: Vec<Record>,
    /// What the reader noted of each row (its line, what the state knows).
    notes: Vec<P>,
    /// Each row's result, filled by the checking thread.
    out: Vec<T>,
}

impl<P, T> Batch<P, T> {
    fn new() -> Batch<P, T> {
        Batch {
            records: Vec::with_capacity(ROWS),
            notes: Vec::with_capacity(ROWS),
            out: Vec::with_capacity(ROWS),
        }
    }

    fn check(&mut self, check: Check<'_, P, T>) {
        let rows = &self.records[..self.notes.len()];
        let ahead = |i: usize| rows.get(i + LOOK_AHEAD);
        let checked = rows.iter().zip(&self.notes).enumerate();
        self.out
            .extend(checked.map(|(i, (rec, note))| check(rec, note, ahead(i))));
    }
}

/// A batch to check, and where to send it back.
type Job<P, T> = (Batch<P, T>, SyncSender<Batch<P, T>>);

/// The reading side of [`check_in_order`]: the reader reads each record
/// into [`Feed::slot`], then either keeps it ([`Feed::push`]) or reads the
/// next one over it. Results come back through the `settle` function given
/// to `push` and `finish`, in the order the rows were pushed.
pub(crate) struct Feed<'c, P, T> {
    /// The batch being filled.
    current: Batch<P, T>,
    /// Batches to the checking threads. `None` when there are none: the
    /// reading thread checks each batch itself. Dropped with the feed,
    /// which is what stops the checking threads.
    work: Option<SyncSender<Job<P, T>>>,
    /// Where the batches sent come back, oldest first.
    pending: VecDeque<Receiver<Batch<P, T>>>,
    /// Batches taken back and emptied, reused with their record buffers.
    spare: Vec<Batch<P, T>>,
    /// Batches sent before the oldest is waited for.
    ahead: usize,
    check: Check<'c, P, T>,
}

impl<P: Send, T: Send> Feed<'_, P, T> {
    /// The record to read the next row into (its buffers reused).
    pub(crate) fn slot(&mut self) -> &mut Record {
        let at = self.current.notes.len();
        if self.current.records.len() == at {
            self.current.records.push(Record::new());
        }
        &mut self.current.records[at]
    }

    /// Keep the row just read into [`Feed::slot`], noted with `note`.
    /// Rows pushed earlier may be settled meanwhile.
    pub(crate) fn push(&mut self, note: P, settle: &mut dyn FnMut(P, T)) {
        self.current.notes.push(note);
        if self.current.notes.len() == ROWS {
            self.send(settle);
        }
    }

    /// Settle every row pushed.
    pub(crate) fn finish(&mut self, settle: &mut dyn FnMut(P, T)) {
        if !self.current.notes.is_empty() {
            self.send(settle);
        }
        while !self.pending.is_empty() {
            self.take_back(settle);
        }
    }

    fn send(&mut self, settle: &mut dyn FnMut(P, T)) {
        let next = self.spare.pop().unwrap_or_else(Batch::new);
        let mut full = std::mem::replace(&mut self.current, next);
        let Some(work) = &self.work else {
            full.check(self.check);
            return self.settle(full, settle);
        };
        let (back, rx) = mpsc::sync_channel(1);
        // The checking threads only stop once `work` is dropped, or by
        // panicking; then the batch is lost, and `take_back` says so.
        let _ = work.send((full, back));
        self.pending.push_back(rx);
        while self.pending.len() > self.ahead {
            self.take_back(settle);
        }
    }

    fn take_back(&mut self, settle: &mut dyn FnMut(P, T)) {
        let Some(rx) = self.pending.pop_front() else {
            return;
        };
        match rx.recv() {
            Ok(batch) => self.settle(batch, settle),
            // The thread's own panic is re-raised when the scope ends.
            Err(_) => panic!("a row-checking thread stopped before returning its rows"),
        }
    }

    fn settle(&mut self, mut batch: Batch<P, T>, settle: &mut dyn FnMut(P, T)) {
        for (note, out) in batch.notes.drain(..).zip(batch.out.drain(..)) {
            settle(note, out);
        }
        self.spare.push(batch);
    }
}

/// Run `read` on this thread with a [`Feed`] whose rows `check` validates
/// on `threads` threads (on this one if 0 or if none can be started).
/// Every row pushed is settled before this returns, unless `read` fails:
/// then the rows still in flight are dropped.
pub(crate) fn check_in_order<P: Send, T: Send, R>(
    threads: usize,
    check: Check<'_, P, T>,
    read: impl FnOnce(&mut Feed<'_, P, T>) -> R,
) -> R {
    let (work, jobs) = mpsc::sync_channel::<Job<P, T>>(threads.max(1));
    let jobs = Mutex::new(jobs);
    std::thread::scope(|scope| {
        let mut started = 0;
        for i in 0..threads {
            let jobs = &jobs;
            let spawned = std::thread::Builder::new()
                .name(format!("check-rows-{i}"))
                .spawn_scoped(scope, move || loop {
                    // The lock is held only while waiting for the next
                    // batch; a panicked holder leaves the channel intact.
                    let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((mut batch, back)) = job else {
                        return;
                    };
                    batch.check(check);
                    let _ = back.send(batch);
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        let mut feed = Feed {
            current: Batch::new(),
            work: (started > 0).then_some(work),
            pending: VecDeque::new(),
            spare: Vec::new(),
            ahead: AHEAD_PER_THREAD * started,
            check,
        };
        // Dropping the feed (at the end of `read` or when it fails) closes
        // the channel: the checking threads finish and the scope joins them.
        read(&mut feed)
    })
}

/// Checking threads worth starting on this machine: none on one core (the
/// reader checks its own batches), else one per core.
pub(crate) fn threads() -> usize {
    match std::thread::available_parallelism().map_or(1, usize::from) {
        1 => 0,
        n => n.min(8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows come back in the order pushed, whatever thread checked them,
    /// with the slots that were read over (skipped rows) left out.
    fn run(threads: usize, rows: usize) {
        let check = |rec: &Record, note: &usize, ahead: Option<&Record>| -> (usize, Vec<u8>) {
            // The record shown ahead is a later row of the batch, rows read
            // over not counted.
            if let Some(a) = ahead {
                let n: usize = std::str::from_utf8(a.get(0).unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(n > *note && n <= note + 2 * LOOK_AHEAD, "{note} -> {n}");
            }
            // Uneven work, so that batches finish out of order.
            let spin = (note * 7919) % 2000;
            let mut x = 0u64;
            for i in 0..spin {
                x = x.wrapping_add(i as u64);
            }
            std::hint::black_box(x);
            (*note, rec.get(0).unwrap_or_default().to_vec())
        };
        let mut got = Vec::new();
        check_in_order(threads, &check, |feed| {
            let mut settle = |note: usize, (n, field): (usize, Vec<u8>)| {
                assert_eq!(note, n);
                assert_eq!(field, note.to_string().into_bytes());
                got.push(note);
            };
            for i in 0..rows {
                let rec = feed.slot();
                rec.clear();
                rec.push_field(i.to_string().as_bytes());
                if i % 10 == 3 {
                    // Read over: not pushed.
                    continue;
                }
                feed.push(i, &mut settle);
            }
            feed.finish(&mut settle);
        });
        let want: Vec<usize> = (0..rows).filter(|i| i % 10 != 3).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rows_come_back_in_file_order() {
        for threads in [0, 1, 3] {
            for rows in [0, 1, ROWS - 1, ROWS, ROWS + 1, 20 * ROWS + 17] {
                run(threads, rows);
            }
        }
    }

    #[test]
    fn a_failed_read_drops_what_is_in_flight() {
        let check = |_: &Record, n: &usize, _: Option<&Record>| *n;
        let mut settled = 0;
        let r: Result<(), &str> = check_in_order(2, &check, |feed| {
            for i in 0..10 * ROWS {
                feed.slot().clear();
                feed.push(i, &mut |_, _| settled += 1);
            }
            Err("disk gone")
        });
        assert_eq!(r, Err("disk gone"));
        assert!(settled < 10 * ROWS);
    }
}
