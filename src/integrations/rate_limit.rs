//! Per-integration rate limit: a token bucket plus a concurrency cap.
//!
//! One limiter per integration, shared by every incident and step, because
//! the vendor counts requests per account, not per runbook.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::manifest::RateLimit;

#[derive(Debug)]
pub struct Limiter {
    rate: Option<f64>,
    burst: f64,
    bucket: Mutex<Bucket>,
    slots: Option<Arc<Semaphore>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Held for the duration of one request.
pub struct Permit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    pub fn new(cfg: &RateLimit) -> Self {
        let burst = cfg
            .burst
            .map(f64::from)
            .or(cfg.per_second.map(|r| r.max(1.0)))
            .unwrap_or(1.0);
        Limiter {
            rate: cfg.per_second,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
            slots: cfg.concurrency.map(|n| Arc::new(Semaphore::new(n))),
        }
    }

    /// Waits for a concurrency slot, then for a token.
    pub async fn acquire(&self) -> Permit {
        let slot = match &self.slots {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .expect("limiter semaphore is never closed"),
            ),
            None => None,
        };
        if let Some(rate) = self.rate {
            loop {
                let wait = {
                    let mut b = self.bucket.lock().await;
                    let now = Instant::now();
                    let elapsed = now.duration_since(b.at).as_secs_f64();
                    b.tokens = (b.tokens + elapsed * rate).min(self.burst);
                    b.at = now;
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        None
                    } else {
                        Some(Duration::from_secs_f64((1.0 - b.tokens) / rate))
                    }
                };
                match wait {
                    None => break,
                    Some(d) => tokio::time::sleep(d).await,
                }
            }
        }
        Permit { _slot: slot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_requests_after_burst() {
        let l = Limiter::new(&RateLimit {
            per_second: Some(10.0),
            burst: Some(2),
            concurrency: None,
        });
        let t0 = Instant::now();
        for _ in 0..4 {
            let _p = l.acquire().await;
        }
        // 2 from the burst, then one every 100ms (virtual time).
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(250),
            "{took:?}"
        );
    }
}
