//! Time, injectable: the engine asks a `Clock` for "now" and for sleeps
//! (backoff, `wait` steps), so tests run a whole runbook on fake time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, d: Duration) -> Sleep;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the wall clock is read (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Fake time: a sleep returns at once, advances "now" by its length and is
/// recorded, so a test can assert exactly which delays were asked for.
#[derive(Debug, Clone)]
pub struct FakeClock {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug)]
struct FakeState {
    now: DateTime<Utc>,
    sleeps: Vec<Duration>,
}

impl FakeClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        FakeClock {
            inner: Arc::new(Mutex::new(FakeState {
                now: start,
                sleeps: vec![],
            })),
        }
    }
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.lock().expect("fake clock").sleeps.clone()
    }
    pub fn advance(&self, d: Duration) {
        let mut s = self.inner.lock().expect("fake clock");
        s.now += chrono::Duration::from_std(d).unwrap_or_default();
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.lock().expect("fake clock").now
    }
    fn sleep(&self, d: Duration) -> Sleep {
        {
            let mut s = self.inner.lock().expect("fake clock");
            s.now += chrono::Duration::from_std(d).unwrap_or_default();
            s.sleeps.push(d);
        }
        Box::pin(tokio::task::yield_now())
    }
}
