//! A mock marketing platform for the scenario bench: grants listed in
//! cursor pages and revoked one by one, answering the way rate-limited
//! vendors do.
//!
//! - every request waits `latency` before it is answered (to within tens of
//!   microseconds: `precise_sleep`);
//! - a token bucket (`per_second`, `burst`) answers 429 with an integer
//!   `Retry-After` (RFC 9110 delta-seconds, as Slack, HubSpot and Graph send
//!   it) once it is empty;
//! - a seeded share of the admitted requests answers 503 and changes nothing;
//! - a grant revoked twice is counted: with the same `Idempotency-Key` it
//!   is a replay (204, no effect), with another key a duplicate effect
//!   (404, what a vendor answers for a grant that is gone).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) latency: Duration,
    /// The bucket: requests per second and how many may come at once.
    pub(crate) limit: Option<(f64, f64)>,
    /// Share of admitted requests that answer 503.
    pub(crate) fail_share: f64,
    pub(crate) seed: u64,
    /// Grants `g0`..`g{grants-1}`.
    pub(crate) grants: usize,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) requests: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) lists: AtomicU64,
    /// Requests waiting out their latency now, and the sum of that count
    /// as each request arrived: their mean is how full the client kept
    /// the platform (of S's 200, quench keeps 186 to 188 and the asyncio
    /// script 187 to 191: each answer's turnaround to the next request is
    /// the rest of the gap to the floor).
    pub(crate) in_flight: AtomicU64,
    pub(crate) in_flight_seen: AtomicU64,
    /// Microseconds the requests actually waited for their latency, summed:
    /// what the floor's latency really was.
    pub(crate) waited_us: AtomicU64,
}

struct Grant {
    /// The key of the request that revoked it, once revoked.
    revoked_by: Option<Box<str>>,
    revoked_at: Option<SystemTime>,
}

struct Tenant {
    cfg: Config,
    stats: Stats,
    grants: Mutex<Vec<Grant>>,
    bucket: Mutex<(f64, Instant)>,
    draws: AtomicU64,
}

pub(crate) struct Platform {
    pub(crate) url: String,
    tenant: Arc<Tenant>,
}

impl Platform {
    pub(crate) async fn start(cfg: Config) -> Platform {
        let burst = cfg.limit.map(|(_, b)| b).unwrap_or(0.0);
        let tenant = Arc::new(Tenant {
            grants: Mutex::new(
                (0..cfg.grants)
                    .map(|_| Grant {
                        revoked_by: None,
                        revoked_at: None,
                    })
                    .collect(),
            ),
            cfg,
            stats: Stats::default(),
            bucket: Mutex::new((burst, Instant::now())),
            draws: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/grants", get(list))
            .route("/grants/{id}", delete(revoke))
            .with_state(tenant.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Platform { url, tenant }
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.tenant.stats
    }

    /// Grants still in place.
    pub(crate) fn remaining(&self) -> usize {
        let g = self.tenant.grants.lock().unwrap();
        g.iter().filter(|g| g.revoked_by.is_none()).count()
    }

    /// When each grant in `range` was revoked, in order of the range.
    pub(crate) fn revoked_at(&self, range: std::ops::Range<usize>) -> Vec<Option<SystemTime>> {
        let g = self.tenant.grants.lock().unwrap();
        g[range].iter().map(|g| g.revoked_at).collect()
    }
}

impl Tenant {
    /// The gate every request passes: latency, the bucket, seeded 503s.
    async fn admit(&self) -> Result<(), Response> {
        self.stats.requests.fetch_add(1, Relaxed);
        let now_in = self.stats.in_flight.fetch_add(1, Relaxed) + 1;
        self.stats.in_flight_seen.fetch_add(now_in, Relaxed);
        let arrived = Instant::now();
        crate::precise_sleep::sleep(self.cfg.latency).await;
        self.stats
            .waited_us
            .fetch_add(arrived.elapsed().as_micros() as u64, Relaxed);
        self.stats.in_flight.fetch_sub(1, Relaxed);
        if let Some((rate, burst)) = self.cfg.limit {
            let mut b = self.bucket.lock().unwrap();
            let now = Instant::now();
            b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rate).min(burst);
            b.1 = now;
            if b.0 < 1.0 {
                self.stats.throttled.fetch_add(1, Relaxed);
                let wait = ((1.0 - b.0) / rate).ceil().max(1.0) as u64;
                return Err((
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", wait.to_string())],
                    axum::Json(json!({"error": "rate_limited"})),
                )
                    .into_response());
            }
            b.0 -= 1.0;
        }
        if self.cfg.fail_share > 0.0 {
            let n = self.draws.fetch_add(1, Relaxed);
            if unit(self.cfg.seed ^ n) < self.cfg.fail_share {
                self.stats.failed.fetch_add(1, Relaxed);
                return Err((StatusCode::SERVICE_UNAVAILABLE, "try again").into_response());
            }
        }
        Ok(())
    }
}

/// splitmix64 as a uniform draw in [0, 1): the same seed fails the same
/// requests in every run.
fn unit(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(serde::Deserialize)]
struct Page {
    cursor: Option<usize>,
    limit: Option<usize>,
}

async fn list(State(t): State<Arc<Tenant>>, Query(p): Query<Page>) -> Response {
    if let Err(r) = t.admit().await {
        return r;
    }
    t.stats.lists.fetch_add(1, Relaxed);
    let from = p.cursor.unwrap_or(0);
    let to = (from + p.limit.unwrap_or(100).clamp(1, 1000)).min(t.cfg.grants);
    let data: Vec<_> = (from..to).map(|i| json!({"id": format!("g{i}")})).collect();
    // The last page leaves the cursor out, as Google's nextPageToken does.
    let mut body = json!({ "data": data });
    if to < t.cfg.grants {
        body["next_cursor"] = json!(to.to_string());
    }
    axum::Json(body).into_response()
}

async fn revoke(State(t): State<Arc<Tenant>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(r) = t.admit().await {
        return r;
    }
    let Some(i) = id.strip_prefix('g').and_then(|n| n.parse::<usize>().ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let key = h
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut g = t.grants.lock().unwrap();
    let Some(grant) = g.get_mut(i) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match &grant.revoked_by {
        None => {
            grant.revoked_by = Some(key.into());
            grant.revoked_at = Some(SystemTime::now());
            StatusCode::NO_CONTENT.into_response()
        }
        Some(k) if !key.is_empty() && **k == *key => {
            t.stats.replays.fetch_add(1, Relaxed);
            StatusCode::NO_CONTENT.into_response()
        }
        Some(_) => {
            t.stats.duplicates.fetch_add(1, Relaxed);
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
