//! The audit chain. Every timeline event is linked to the one before it by
//! SHA-256 over (previous hash, the event's stored bytes), written in the
//! same transaction as the event; each notice draft's body hash is in its
//! `notice.drafted` (or `notice.edited`) event. `verify` recomputes all of it, so an event
//! edited, removed or reordered in the store, or a notice body changed
//! after drafting, is reported. Someone able to rewrite the whole store can
//! rewrite the chain too: compare the head hash with a copy kept elsewhere
//! (it is printed by `quench audit verify` and posted when an incident
//! ends) to catch that.

use crate::store::EventKind;
use serde::{Deserialize, Serialize};

use super::{dec, key, prefix, NoticeDraft, Result, Store, TimelineEvent};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of one step's item records, in index order: SHA-256 over
/// each record's index (8 digits), a newline, its stored JSON and a
/// newline. A fan-out does not record an event per item that succeeds (a
/// 200,000-item step would bury its timeline); its `items.summary` event
/// carries this digest instead, so the records stay covered by the chain.
pub struct ItemsDigest {
    ctx: ring::digest::Context,
}

impl Default for ItemsDigest {
    fn default() -> Self {
        ItemsDigest {
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }
}

impl ItemsDigest {
    /// Records must be added in index order.
    pub fn add(&mut self, index: u32, record: &[u8]) {
        self.ctx.update(format!("{index:08}\n").as_bytes());
        self.ctx.update(record);
        self.ctx.update(b"\n");
    }

    /// A record whose output is kept apart (`store::apart`): the output's
    /// bytes follow the record's, on a line of their own after `output`, so
    /// the digest covers what the item returned as it does inline.
    pub fn add_apart(&mut self, index: u32, record: &[u8], output: &[u8]) {
        self.add(index, record);
        self.ctx.update(b"output\n");
        self.ctx.update(output);
        self.ctx.update(b"\n");
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex(self.ctx.finish().as_ref()))
    }
}

/// The chain link after `prev` (empty for the first event).
pub fn link(prev: &str, event_bytes: &[u8]) -> String {
    let mut buf = Vec::with_capacity(prev.len() + 1 + event_bytes.len());
    buf.extend_from_slice(prev.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(event_bytes);
    sha256_hex(&buf)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReport {
    pub incident: String,
    pub events: usize,
    pub notices: usize,
    /// The recorded head of the chain.
    pub head: String,
    /// Empty when everything checks out.
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// The current head of the incident's chain (empty before any event).
    pub fn audit_head(&self, incident: &str) -> Result<String> {
        Ok(self
            .meta
            .get(key(&["audit-head", incident]))?
            .map(|h| String::from_utf8_lossy(&h).into_owned())
            .unwrap_or_default())
    }

    /// Recomputes the incident's audit chain and notice hashes.
    pub fn audit(&self, incident: &str) -> Result<AuditReport> {
        self.incident(incident)?;
        let mut problems = Vec::new();
        let mut prev = String::new();
        let mut expected_seq = 1u64;
        let mut events: Vec<TimelineEvent> = Vec::new();
        for r in self.events.scan_prefix(prefix(&[incident])) {
            let (k, v) = r?;
            let ev: TimelineEvent = match dec(&k, &v) {
                Ok(ev) => ev,
                Err(e) => {
                    problems.push(format!("an event record no longer parses: {e}"));
                    continue;
                }
            };
            if ev.seq != expected_seq {
                problems.push(format!(
                    "event #{expected_seq} is missing (the next recorded is #{})",
                    ev.seq
                ));
            }
            expected_seq = ev.seq + 1;
            let hash = link(&prev, &v);
            let stored = self
                .meta
                .get(key(&["audit", incident, &format!("{:012}", ev.seq)]))?
                .map(|h| String::from_utf8_lossy(&h).into_owned());
            match &stored {
                Some(h) if *h == hash => {}
                Some(_) => problems.push(format!(
                    "event #{} ({}) does not match its recorded hash: it was changed, or one before it was",
                    ev.seq, ev.kind
                )),
                None => problems.push(format!("event #{} ({}) has no recorded hash", ev.seq, ev.kind)),
            }
            // Carry the recorded hash on, so one bad event is reported
            // once rather than poisoning every event after it.
            prev = stored.unwrap_or(hash);
            events.push(ev);
        }
        let head = self.audit_head(incident)?;
        if head != prev {
            problems.push(
                "the chain's head does not match the last event: events were removed from the end"
                    .into(),
            );
        }
        let notices: Vec<NoticeDraft> = self.notices(incident)?;
        for n in &notices {
            let drafted = events.iter().find(|e| {
                matches!(
                    EventKind::parse(&e.kind),
                    Some(EventKind::NoticeDrafted | EventKind::NoticeEdited)
                ) && e.step.as_deref() == Some(n.step.as_str())
                    && e.data["version"] == n.version
                    && e.data["audience"] == n.audience.as_str()
                    && e.data["jurisdiction"] == serde_json::json!(n.jurisdiction)
            });
            let label = format!(
                "{} notice{} v{}",
                n.audience,
                n.jurisdiction
                    .as_deref()
                    .map(|j| format!(" for {j}"))
                    .unwrap_or_default(),
                n.version
            );
            match drafted.and_then(|e| e.data["sha256"].as_str()) {
                Some(h) if h == sha256_hex(n.body.as_bytes()) => {}
                Some(_) => problems.push(format!(
                    "the {label} text differs from what was drafted and approved"
                )),
                None => problems.push(format!("the {label} has no recorded hash")),
            }
        }
        // Each fan-out's item records, against the digest its last summary
        // recorded (a resumed step may have summarised more than once).
        let mut summarised: std::collections::BTreeMap<&str, &str> = Default::default();
        for e in &events {
            if let (Some(step), Some(d)) = (
                e.step
                    .as_deref()
                    .filter(|_| e.kind == EventKind::ItemsSummary),
                e.data["items_digest"].as_str(),
            ) {
                summarised.insert(step, d);
            }
        }
        for (step, recorded) in summarised {
            if self.items_digest(incident, step)? != recorded {
                problems.push(format!(
                    "step {step}'s item records differ from what its items.summary recorded: one was changed, added or removed"
                ));
            }
        }
        Ok(AuditReport {
            incident: incident.to_string(),
            events: events.len(),
            notices: notices.len(),
            head,
            problems,
        })
    }
}
