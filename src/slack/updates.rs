//! Incident updates in Slack: the declaration opens a thread in the
//! incident's channel (where it was declared, else `slack.channel`), and
//! what matters to responders follows in that thread: decisions asked for
//! (with buttons, also shown in the channel), failures, decisions made,
//! clock facts, and each time the incident parks or ends, its status with
//! the regulatory clocks' time left. The thread is remembered in the store
//! so a restarted daemon keeps posting to it.

use serde_json::{json, Value as Json};
use slack_morphism::prelude::*;
use tokio::sync::broadcast::error::RecvError;

use super::message::{decision_blocks, escape, status_text};
use super::Slack;
use crate::server::Daemon;
use crate::store::TimelineEvent;

pub fn spawn(slack: Slack, d: Daemon) {
    if slack.inner.token.is_none() {
        tracing::info!("no Slack bot token: slash commands work, channel updates are off");
        return;
    }
    let mut rx = d.engine().subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok((id, ev)) => {
                    if worth_posting(&ev.kind) {
                        post_event(&slack, &d, &id, &ev).await;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "Slack updates fell behind; the timeline has every event"
                    );
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

fn worth_posting(kind: &str) -> bool {
    matches!(
        kind,
        "incident.declared"
            | "incident.waiting"
            | "incident.completed"
            | "incident.failed"
            | "incident.resumed"
            | "approval.requested"
            | "manual.requested"
            | "approval.granted"
            | "approval.rejected"
            | "approval.refused"
            | "manual.done"
            | "step.failed"
            | "notice.approved"
            | "notice.edited"
            | "notice.sent"
            | "moment.recorded"
            | "clock.paused"
            | "clock.resumed"
            | "exception.applied"
            | "note"
    )
}

fn thread_key(id: &str) -> String {
    format!("slack-thread/{id}")
}

async fn post_event(slack: &Slack, d: &Daemon, id: &str, ev: &TimelineEvent) {
    let store = d.store();
    let thread = store.meta(&thread_key(id)).ok().flatten();
    let status = || -> Option<String> {
        let snap = store.snapshot(id).ok()?;
        let events = store.events(id).ok()?;
        Some(status_text(
            &snap,
            &events,
            d.engine().now(),
            slack.page_link(id).as_deref(),
        ))
    };
    let Some(thread) = thread else {
        // The first post opens the thread: where it was declared from,
        // else the configured channel.
        let channel = ev.data["channel"]
            .as_str()
            .map(str::to_string)
            .or_else(|| slack.inner.channel.clone());
        let Some(channel) = channel else {
            return;
        };
        let text = status().unwrap_or_else(|| escape(&ev.message));
        let head = format!(":rotating_light: {}\n{text}", escape(&ev.message));
        if let Some(ts) = slack.post(&channel, None, head, None, false).await {
            let rec = json!({"channel": channel, "ts": ts});
            if let Err(e) = store.put_meta(&thread_key(id), &rec).await {
                tracing::warn!(incident = id, error = %e, "cannot remember the Slack thread");
            }
            if ev.kind != "incident.declared" {
                // Opened late (e.g. Slack configured mid-incident): still say what happened.
                post_in_thread(slack, d, &rec, id, ev, status).await;
            }
        }
        return;
    };
    post_in_thread(slack, d, &thread, id, ev, status).await;
}

async fn post_in_thread(
    slack: &Slack,
    d: &Daemon,
    thread: &Json,
    id: &str,
    ev: &TimelineEvent,
    status: impl Fn() -> Option<String>,
) {
    let (Some(channel), Some(ts)) = (thread["channel"].as_str(), thread["ts"].as_str()) else {
        return;
    };
    let actor = if ev.actor.starts_with('U') || ev.actor.starts_with('W') {
        format!("<@{}>", ev.actor)
    } else {
        escape(&ev.actor)
    };
    let (text, blocks, broadcast) = match ev.kind.as_str() {
        kind @ ("approval.requested" | "manual.requested") => {
            let step = ev.step.clone().unwrap_or_default();
            let text = format!(
                ":raised_hand: *{}* `{}`: {}",
                escape(id),
                escape(&step),
                escape(&ev.message)
            );
            let blocks = decision_blocks(id, &step, kind == "approval.requested", &text);
            (text, Some(blocks), true)
        }
        "incident.waiting" | "incident.completed" | "incident.failed" => {
            let head = escape(&ev.message);
            let mut text = match status() {
                Some(s) => format!("{head}\n{s}"),
                None => head,
            };
            if ev.kind != "incident.waiting" {
                // A copy of the chain head outside the store: `quench audit
                // verify` can be checked against it later.
                if let Ok(h) = d.store().audit_head(id) {
                    text.push_str(&format!("\nAudit chain head: `sha256:{h}`"));
                }
            }
            (text, None, ev.kind != "incident.waiting")
        }
        "step.failed" | "approval.refused" => {
            (format!(":warning: {}", escape(&ev.message)), None, false)
        }
        _ => (format!("{actor}: {}", escape(&ev.message)), None, false),
    };
    slack.post(channel, Some(ts), text, blocks, broadcast).await;
}

impl Slack {
    /// Posts a message; returns its ts. Failures are logged and counted,
    /// never fatal: the timeline is the record, Slack a view of it.
    pub(super) async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: String,
        blocks: Option<Vec<SlackBlock>>,
        broadcast: bool,
    ) -> Option<String> {
        let token = self.inner.token.as_ref()?;
        let session = self.inner.client.open_session(token);
        let mut content = SlackMessageContent::new().with_text(text);
        if let Some(b) = blocks {
            content = content.with_blocks(b);
        }
        let mut req = SlackApiChatPostMessageRequest::new(channel.into(), content);
        if let Some(ts) = thread_ts {
            req = req.with_thread_ts(ts.into());
            if broadcast {
                req = req.with_reply_broadcast(true);
            }
        }
        match session.chat_post_message(&req).await {
            Ok(r) => {
                self.count("ok");
                Some(r.ts.to_string())
            }
            Err(e) => {
                self.count("error");
                tracing::warn!(channel, error = %e, "Slack chat.postMessage failed");
                None
            }
        }
    }

    /// Answers an interaction through its response_url.
    pub(super) async fn respond(
        &self,
        url: &SlackResponseUrl,
        req: &SlackApiPostWebhookMessageRequest,
    ) {
        // response_url carries its own authority: no token is sent.
        match self.inner.client.respond_to_event(url, req).await {
            Ok(_) => self.count("ok"),
            Err(e) => {
                self.count("error");
                tracing::warn!(error = %e, "Slack response_url post failed");
            }
        }
    }

    fn count(&self, outcome: &str) {
        if let Some(m) = &*self.inner.metrics.lock().expect("slack metrics") {
            m.inc("quench_slack_messages_total", &[("outcome", outcome)]);
        }
    }
}
