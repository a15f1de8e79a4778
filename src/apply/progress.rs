//! Progress: a bar per target on a terminal, periodic log lines otherwise
//! (cron, CI, log shippers).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::Target;

/// Counts of one target.
#[derive(Default)]
struct Counts {
    total: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

/// Shared by the scheduler (which reports each finished operation) and, when
/// not on a terminal, a ticker task that logs every few seconds. The ticker
/// ends when [`Progress::finish`] is called.
pub struct Progress {
    /// Per target, in `Target::ALL` order.
    counts: Arc<[Counts; 3]>,
    /// The bars, when stderr is a terminal and logging is not JSON.
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    /// The log ticker, aborted on finish.
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// `totals` are operations per target; `quiet` disables everything.
    pub fn start(totals: [u64; 3], quiet: bool, every: Duration) -> Progress {
        let counts: Arc<[Counts; 3]> = Arc::new(Default::default());
        for (c, t) in counts.iter().zip(totals) {
            c.total.store(t, Ordering::Relaxed);
        }
        let mut p = Progress {
            counts: counts.clone(),
            bars: None,
            ticker: None,
        };
        if quiet || totals.iter().all(|t| *t == 0) {
            return p;
        }
        if std::io::stderr().is_terminal() {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>20} [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bars = Target::ALL
                .iter()
                .map(|t| {
                    let b = mp.add(ProgressBar::new(totals[t.index()]));
                    b.set_style(style.clone());
                    b.set_prefix(t.label());
                    b
                })
                .collect();
            p.bars = Some((mp, bars));
        } else {
            let started = Instant::now();
            p.ticker = Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    for t in Target::ALL {
                        let c = &counts[t.index()];
                        let (total, done, failed) = (
                            c.total.load(Ordering::Relaxed),
                            c.done.load(Ordering::Relaxed),
                            c.failed.load(Ordering::Relaxed),
                        );
                        if total == 0 {
                            continue;
                        }
                        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
                        tracing::info!(target: "benefits_sync::progress", "{}: {done}/{total} operations done, {failed} failed, {rate:.1}/s", t.as_str());
                    }
                }
            }));
        }
        p
    }

    /// One operation of `t` has ended.
    pub fn record(&self, t: Target, ok: bool) {
        let c = &self.counts[t.index()];
        c.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some((_, bars)) = &self.bars {
            bars[t.index()].inc(1);
            if !ok {
                bars[t.index()].set_message(format!("{} failed", c.failed.load(Ordering::Relaxed)));
            }
        }
    }

    pub fn finish(mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some((_, bars)) = self.bars.take() {
            for b in bars {
                b.finish();
            }
        }
    }
}
