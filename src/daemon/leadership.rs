//! One leader among the daemons that share a PostgreSQL store.
//!
//! A daemon starts as a standby. It serves reads from its copy of the
//! store, and follows the database to keep that copy current. When the
//! lease is free (its holder stopped cleanly, or stopped renewing for a
//! whole lease), it takes the lease, which raises the fencing epoch. It
//! then reads the old leader's last commits, records `leader.changed` in
//! every running incident, and resumes them as a restarted daemon would.
//! It keeps the lease with a heartbeat. It is deposed when the epoch moves
//! on, or when a whole lease passes without a renewal (the database is out
//! of reach). Then it stops acting at once, and the caller starts again as
//! a standby. Its writes were already fenced by the database.

use std::time::{Duration, Instant};

use crate::store::{EventKind, NewEvent};

use super::Daemon;

pub struct Lease {
    /// How this daemon is named to others: in 503s, /healthz, timelines.
    pub holder: String,
    pub ttl: Duration,
}

/// Runs until this daemon is deposed; says why.
pub async fn lead(daemon: Daemon, lease: Lease) -> String {
    let store = daemon.store().clone();
    let poll = (lease.ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    // The store's one connection does not come back once it is lost (the
    // database restarted, say), so a standby that hears nothing but
    // errors for a whole lease starts again, which connects afresh.
    let mut failing: Option<Instant> = None;
    let epoch = loop {
        let asked = match store.lead(&lease.holder, lease.ttl).await {
            Ok(Some(epoch)) => break epoch,
            Ok(None) => store.follow().await.map_err(|e| ("follow", e)),
            Err(e) => Err(("ask for its lease", e)),
        };
        match asked {
            Ok(_) => failing = None,
            Err((what, e)) => {
                let since = *failing.get_or_insert_with(Instant::now);
                if since.elapsed() >= lease.ttl {
                    return format!(
                        "a standby could not {what} the shared store for {:?}: {e}",
                        lease.ttl
                    );
                }
                tracing::warn!(error = %e, "a standby could not {what} the shared store");
            }
        }
        tokio::time::sleep(poll).await;
    };
    tracing::info!(holder = %lease.holder, epoch, "leading the shared store");
    let at = daemon.engine().now();
    match store.incidents() {
        Ok(list) => {
            for inc in list.iter().filter(|i| i.status.is_open()) {
                let ev = NewEvent::new(
                    EventKind::LeaderChanged,
                    "quench",
                    format!(
                        "{} leads now (epoch {epoch}) and takes the incident on",
                        lease.holder
                    ),
                )
                .data(serde_json::json!({"holder": lease.holder, "epoch": epoch}));
                if let Err(e) = store.append(&inc.id, at, ev).await {
                    return format!("could not record the takeover in {}: {e}", inc.id);
                }
            }
        }
        Err(e) => return format!("could not list the incidents to take on: {e}"),
    }
    match daemon.start() {
        Ok(resumed) => {
            for id in resumed {
                tracing::info!(incident = %id, "resuming an incident the last leader left running");
            }
        }
        Err(e) => return format!("could not resume the incidents: {e}"),
    }
    if let Err(e) = daemon.connect_channel().await {
        tracing::error!(error = %e, "could not connect to Slack");
    }
    let beat = lease.ttl / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(beat).await;
        // A database gone silent (no answer, not a refusal) must not hold
        // the heartbeat past the lease.
        let answer = tokio::time::timeout(beat, store.renew(lease.ttl))
            .await
            .unwrap_or_else(|_| {
                Err(crate::store::StoreError::Shared(
                    crate::store::shared::SharedError::Query {
                        place: store.path().to_string(),
                        why: format!("no answer within {beat:?}"),
                    },
                ))
            });
        match answer {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                store.resign();
                return format!(
                    "another daemon took the lease over (epoch {epoch} is no longer the store's)"
                );
            }
            Err(e) if renewed.elapsed() >= lease.ttl => {
                store.resign();
                return format!("could not renew the lease for {:?}: {e}", lease.ttl);
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the lease; trying again"),
        }
    }
}
