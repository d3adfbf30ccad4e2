//! Per-integration rate limit: a token bucket plus a concurrency cap, with
//! the bucket's tokens dealt out in turns.
//!
//! One limiter per integration, shared by every incident and step, because
//! the vendor counts requests per account, not per runbook. Sharing it
//! raises two questions a plain bucket answers badly: ten incidents at
//! once must each make progress (with a first-come queue, the incident
//! declared last waits for the others' whole backlog), and a sev1 must go
//! ahead of a sev3. So waiting requests queue per caller (one flow per
//! incident) and flows take turns, deficit round robin: each turn a flow
//! may take as many tokens as its weight (see [`Caller::weight`]). A flow
//! of weight 8 gets 8 requests out for a weight-2 flow's 2, and every flow
//! with a waiting request gets one each round, so none starves.
//!
//! Hand-written because the crates that limit rates (governor, leaky-bucket)
//! queue first come first served, with no weighted turns between callers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::manifest::RateLimit;

/// On whose behalf a call goes out.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The incident, if any: drills keep a simulated tenant each, and the
    /// limiter gives each incident its own turn.
    pub incident: Option<&'a str>,
    /// Turns per round on a shared limit (at least 1).
    pub weight: u32,
}

impl Caller<'_> {
    /// A call on no incident's behalf (inventory, `integrations check`).
    pub const NOBODY: Caller<'static> = Caller {
        incident: None,
        weight: 1,
    };
}

#[derive(Debug)]
pub struct Limiter {
    rate: Option<f64>,
    burst: f64,
    state: Arc<Mutex<State>>,
    slots: Option<Arc<Semaphore>>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
    /// Flows with a request waiting, in turn order.
    turns: VecDeque<Box<str>>,
    flows: HashMap<Box<str>, Flow>,
    /// A task is dealing out tokens (there is a queue).
    dealing: bool,
}

#[derive(Debug)]
struct Flow {
    weight: u32,
    /// Tokens left in this flow's current turn.
    credit: u32,
    waiting: VecDeque<oneshot::Sender<()>>,
}

/// Held for the duration of one request.
pub struct Permit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl State {
    fn refill(&mut self, rate: f64, burst: f64) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
    }

    /// The next waiter by turns, skipping any that stopped waiting.
    fn next(&mut self) -> Option<oneshot::Sender<()>> {
        while let Some(key) = self.turns.front() {
            let flow = self.flows.get_mut(key).expect("a flow in turn has a queue");
            if flow.credit == 0 {
                flow.credit = flow.weight;
            }
            let waiter = flow.waiting.pop_front();
            flow.credit -= 1;
            if flow.waiting.is_empty() {
                let key = self.turns.pop_front().expect("front exists");
                self.flows.remove(&key);
            } else if flow.credit == 0 {
                self.turns.rotate_left(1);
            }
            match waiter {
                Some(w) if !w.is_closed() => return Some(w),
                _ => {}
            }
        }
        None
    }

    fn enqueue(&mut self, caller: Caller<'_>, tx: oneshot::Sender<()>) {
        let key = caller.incident.unwrap_or("");
        match self.flows.get_mut(key) {
            Some(f) => f.waiting.push_back(tx),
            None => {
                self.turns.push_back(key.into());
                self.flows.insert(
                    key.into(),
                    Flow {
                        weight: caller.weight.max(1),
                        credit: 0,
                        waiting: VecDeque::from([tx]),
                    },
                );
            }
        }
    }
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
            state: Arc::new(Mutex::new(State {
                tokens: burst,
                at: Instant::now(),
                turns: VecDeque::new(),
                flows: HashMap::new(),
                dealing: false,
            })),
            slots: cfg.concurrency.map(|n| Arc::new(Semaphore::new(n))),
        }
    }

    /// Waits for a concurrency slot, then for a token in `caller`'s turn.
    /// Cancel-safe: a waiter dropped before its turn costs no token.
    pub async fn acquire(&self, caller: Caller<'_>) -> Permit {
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
            let turn = {
                let mut s = self.state.lock().expect("limiter lock");
                s.refill(rate, self.burst);
                if s.turns.is_empty() && s.tokens >= 1.0 {
                    s.tokens -= 1.0;
                    None
                } else {
                    let (tx, rx) = oneshot::channel();
                    s.enqueue(caller, tx);
                    if !s.dealing {
                        s.dealing = true;
                        tokio::spawn(deal(self.state.clone(), rate, self.burst));
                    }
                    Some(rx)
                }
            };
            if let Some(rx) = turn {
                // An error means the dealer is gone (the runtime is
                // shutting down): nothing is left to wait for.
                let _ = rx.await;
            }
        }
        Permit { _slot: slot }
    }
}

/// Hands out tokens as the bucket refills, by turns, until no one waits.
async fn deal(state: Arc<Mutex<State>>, rate: f64, burst: f64) {
    loop {
        let wait = {
            let mut s = state.lock().expect("limiter lock");
            s.refill(rate, burst);
            while s.tokens >= 1.0 {
                match s.next() {
                    Some(w) => {
                        if w.send(()).is_ok() {
                            s.tokens -= 1.0;
                        }
                    }
                    None => break,
                }
            }
            if s.turns.is_empty() {
                s.dealing = false;
                return;
            }
            Duration::from_secs_f64((1.0 - s.tokens).max(0.0) / rate)
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> Arc<Limiter> {
        Arc::new(Limiter::new(&RateLimit {
            per_second: Some(per_second),
            burst: Some(burst),
            concurrency: None,
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_requests_after_burst() {
        let l = limiter(10.0, 2);
        let t0 = Instant::now();
        for _ in 0..4 {
            let _p = l.acquire(Caller::NOBODY).await;
        }
        // 2 from the burst, then one every 100ms (virtual time).
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(250),
            "{took:?}"
        );
    }

    /// Queues `n` requests per incident (in that order, all before the
    /// first token comes) and returns the incidents in the order served.
    async fn served(
        l: &Arc<Limiter>,
        incidents: &[(&'static str, u32)],
        n: usize,
    ) -> Vec<&'static str> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut set = tokio::task::JoinSet::new();
        for &(inc, weight) in incidents {
            for _ in 0..n {
                let (l, tx) = (l.clone(), tx.clone());
                set.spawn(async move {
                    let caller = Caller {
                        incident: Some(inc),
                        weight,
                    };
                    let _p = l.acquire(caller).await;
                    tx.send(inc).unwrap();
                });
                // Each waiter is queued before the next one is spawned.
                tokio::task::yield_now().await;
            }
        }
        drop(tx);
        set.join_all().await;
        let mut order = Vec::new();
        while let Some(i) = rx.recv().await {
            order.push(i);
        }
        order
    }

    #[tokio::test(start_paused = true)]
    async fn every_incident_gets_a_turn_before_any_gets_a_second() {
        let l = limiter(10.0, 1);
        // The bucket's one token goes at once; then the queue.
        let _first = l.acquire(Caller::NOBODY).await;
        let incs: Vec<(&str, u32)> = ["a", "b", "c", "d", "e"].iter().map(|i| (*i, 1)).collect();
        let order = served(&l, &incs, 4).await;
        assert_eq!(order.len(), 20);
        // First come first served would be a a a a b b b b ...
        assert_eq!(&order[..5], &["a", "b", "c", "d", "e"]);
        assert_eq!(&order[5..10], &["a", "b", "c", "d", "e"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_heavier_incident_goes_ahead_without_starving_the_rest() {
        let l = limiter(10.0, 1);
        let _first = l.acquire(Caller::NOBODY).await;
        // The sev3s queued first; the sev1 (weight 8) last.
        let order = served(&l, &[("sev3-a", 2), ("sev3-b", 2), ("sev1", 8)], 8).await;
        assert_eq!(
            &order[..12],
            &[
                "sev3-a", "sev3-a", "sev3-b", "sev3-b", "sev1", "sev1", "sev1", "sev1", "sev1",
                "sev1", "sev1", "sev1"
            ]
        );
        let done = |inc| order.iter().rposition(|i| *i == inc).unwrap();
        assert!(
            done("sev1") < done("sev3-a") && done("sev1") < done("sev3-b"),
            "{order:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_costs_no_token() {
        let l = limiter(10.0, 1);
        let _first = l.acquire(Caller::NOBODY).await;
        let gone = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire(Caller::NOBODY).await })
        };
        tokio::task::yield_now().await;
        gone.abort();
        let t0 = Instant::now();
        let _p = l.acquire(Caller::NOBODY).await;
        // The next token (100 ms on) goes to the one still waiting.
        assert!(
            t0.elapsed() <= Duration::from_millis(101),
            "{:?}",
            t0.elapsed()
        );
    }
}
