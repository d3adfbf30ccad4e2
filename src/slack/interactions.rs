//! Buttons: Approve / Reject on an approval, Mark done on a manual task.
//! Whoever presses is the decider (their Slack user id must be in the
//! step's role); the answer replaces the buttons, a refusal is shown only
//! to them and recorded in the timeline.

use slack_morphism::prelude::*;

use super::message::{escape, APPROVE, DONE, REJECT};
use super::Slack;
use crate::engine::{Decision, Resolution};
use crate::server::Daemon;

pub async fn handle(d: &Daemon, slack: &Slack, ev: SlackInteractionEvent) {
    let SlackInteractionEvent::BlockActions(a) = ev else {
        return;
    };
    let Some(by) = a.user.as_ref().map(|u| u.id.to_string()) else {
        return;
    };
    for act in a.actions.clone().unwrap_or_default() {
        let (decision, word) = match act.action_id.to_string().as_str() {
            APPROVE => (Decision::Approve, ":white_check_mark: Approved"),
            REJECT => (Decision::Reject, ":x: Rejected"),
            DONE => (Decision::Done, ":white_check_mark: Done"),
            _ => continue,
        };
        let Some((id, step)) = act.value.as_deref().and_then(|v| v.split_once(' ')) else {
            continue;
        };
        let outcome = d
            .resolve(
                id,
                Resolution {
                    step: step.to_string(),
                    decision,
                    by: by.clone(),
                    note: None,
                },
            )
            .await;
        let (text, replace) = match outcome {
            Ok(()) => (
                format!("{word} by <@{by}>: `{}` on *{}*", escape(step), escape(id)),
                true,
            ),
            Err(e) => (format!(":no_entry: {}", escape(&e.to_string())), false),
        };
        if let Some(url) = a.response_url.clone() {
            let slack = slack.clone();
            // Reply off the request path: Slack wants its ack within 3 s.
            tokio::spawn(async move {
                let req = SlackApiPostWebhookMessageRequest::new(
                    SlackMessageContent::new().with_text(text),
                )
                .with_replace_original(replace);
                slack.respond(&url, &req).await;
            });
        }
    }
}
