//! After drafting: a person edits a notice (a new version, which needs a
//! new approval) or records that it was sent (only an approved version can
//! be). Both are timeline events. The CLI and the daemon share these.

use crate::store::EventKind;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::store::{NewEvent, NoticeDraft, Store, StoreError, TimelineEvent};

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("no notice \"{key}\"; this incident has: {known}")]
    NoSuchNotice { key: String, known: String },
    #[error("{key} v{version} is not approved, so it cannot be sent; its approval step (or `quench approve`) must pass first")]
    NotApproved { key: String, version: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `AUDIENCE-JURISDICTION` (e.g. `customers-EU`), how people name a notice.
pub fn key_of(d: &NoticeDraft) -> String {
    format!(
        "{}-{}",
        d.audience,
        d.jurisdiction.as_deref().unwrap_or("all")
    )
}

/// The latest version of each (step, audience, jurisdiction).
pub fn latest(all: Vec<NoticeDraft>) -> Vec<NoticeDraft> {
    let mut by: BTreeMap<(String, String, String), NoticeDraft> = BTreeMap::new();
    for d in all {
        let k = (
            d.step.clone(),
            d.audience.clone(),
            d.jurisdiction.clone().unwrap_or_default(),
        );
        if by.get(&k).is_none_or(|old| old.version < d.version) {
            by.insert(k, d);
        }
    }
    by.into_values().collect()
}

fn pick(store: &Store, id: &str, key: &str) -> Result<NoticeDraft, NoticeError> {
    let drafts = latest(store.notices(id)?);
    drafts
        .iter()
        .find(|d| key_of(d) == key)
        .cloned()
        .ok_or_else(|| NoticeError::NoSuchNotice {
            key: key.to_string(),
            known: drafts.iter().map(key_of).collect::<Vec<_>>().join(", "),
        })
}

/// Stores `body` as the next version of notice `key`, unapproved.
/// Returns the new version and the one it replaces.
pub async fn edit(
    store: &Store,
    id: &str,
    key: &str,
    body: String,
    by: &str,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(NoticeDraft, u32, TimelineEvent), NoticeError> {
    store.incident(id)?;
    let d = pick(store, id, key)?;
    let mut new = d.clone();
    new.body = body;
    new.drafted_at = now;
    new.drafted_by = by.to_string();
    new.approved_by = None;
    new.approved_at = None;
    let ev = NewEvent::new(
        EventKind::NoticeEdited,
        by,
        format!("{key} edited by {by}: new version needs approval"),
    )
    .step(&d.step)
    .token(token);
    let (stored, te) = store.put_notice(new, ev).await?;
    Ok((stored, d.version, te))
}

/// Records that the latest version of `key` was sent; refused unless approved.
pub async fn mark_sent(
    store: &Store,
    id: &str,
    key: &str,
    by: &str,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TimelineEvent, NoticeError> {
    store.incident(id)?;
    let d = pick(store, id, key)?;
    let Some(approver) = &d.approved_by else {
        return Err(NoticeError::NotApproved {
            key: key.to_string(),
            version: d.version,
        });
    };
    let ev = NewEvent::new(
        EventKind::NoticeSent,
        by,
        format!("{key} v{} sent by {by} (approved by {approver})", d.version),
    )
    .step(&d.step)
    .data(serde_json::json!({"version": d.version, "audience": d.audience, "jurisdiction": d.jurisdiction}))
    .token(token);
    Ok(store.append(id, now, ev).await?)
}
