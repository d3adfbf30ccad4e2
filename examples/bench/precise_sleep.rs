//! A sleep that keeps the latency a mock platform states.
//!
//! tokio's timer fires on 1 ms ticks and rounds each deadline up to the next
//! one, and its driver parks in `epoll_wait`, whose timeout is whole
//! milliseconds too: a 10 ms `tokio::time::sleep` waited 11.0 to 11.2 ms on
//! this machine. Against a floor of 10 ms per round that slack alone is a
//! tenth of it, for quench and the asyncio script alike. Here one thread
//! holds every deadline and waits on a futex with a nanosecond timeout
//! (`recv_timeout`), so a request waits its latency plus the kernel's timer
//! slack (50 us by default) and one wake-up. No crate does this for tokio
//! without spinning a core, which the client needs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

struct Wake {
    at: Instant,
    /// Ties in `at` are woken in the order they came.
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Wake {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Wake {}
impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Wake {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Waits `d` from now, to within tens of microseconds.
pub(crate) async fn sleep(d: Duration) {
    let (tx, rx) = oneshot::channel();
    let at = Instant::now() + d;
    // The timer thread lives as long as the process; a send fails only if it
    // panicked, and then the tokio timer is the fallback rather than a hang.
    if timer().send((at, tx)).is_err() {
        tokio::time::sleep_until(at.into()).await;
        return;
    }
    let _ = rx.await;
}

fn timer() -> mpsc::Sender<(Instant, oneshot::Sender<()>)> {
    static TIMER: OnceLock<mpsc::Sender<(Instant, oneshot::Sender<()>)>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("mock-latency".into())
                .spawn(move || run(rx))
                .expect("the mock's timer thread starts");
            tx
        })
        .clone()
}

fn run(rx: mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut due: BinaryHeap<Reverse<Wake>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while due.peek().is_some_and(|w| w.0.at <= now) {
            // A request whose client went away dropped its receiver: nothing
            // to wake.
            let _ = due.pop().expect("peeked").0.tx.send(());
        }
        let next = match due.peek() {
            Some(w) => rx.recv_timeout(w.0.at - now),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, tx)) => {
                seq += 1;
                due.push(Reverse(Wake { at, seq, tx }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
