//! Buttons: Approve / Reject on an approval, Mark done on a manual task.
//! Whoever presses is the decider (their Slack user id must be in the
//! step's role). A button counts only on the message quench posted for that
//! request (its ts is in the stored room state), so a payload naming
//! another incident or step, or an action quench never offered, is refused:
//! shown only to the presser and recorded in the incident's timeline.

use crate::store::EventKind;
use slack_morphism::prelude::*;

use super::message::{escape, APPROVE, DONE, REJECT};
use super::{modal, outbox, Slack};
use crate::daemon::Daemon;
use crate::engine::{Decision, Resolution};
use crate::store::NewEvent;
use serde_json::Value as Json;

/// Handles one interaction; Some(body) when Slack expects an answer in the
/// HTTP response (a form's field errors).
pub(super) async fn handle(d: &Daemon, slack: &Slack, ev: SlackInteractionEvent) -> Option<Json> {
    let a = match ev {
        SlackInteractionEvent::BlockActions(a) => a,
        SlackInteractionEvent::ViewSubmission(v) => {
            let callback = match &v.view.view {
                SlackView::Modal(m) => m.callback_id.as_ref().map(|c| c.to_string()),
                _ => None,
            };
            return match callback.as_deref() {
                Some(modal::CALLBACK) => Some(modal::submitted(d, &v).await),
                _ => None,
            };
        }
        _ => return None,
    };
    let by = a.user.as_ref().map(|u| u.id.to_string())?;
    // The declare form: a runbook was picked, so show its inputs.
    if let SlackInteractionActionContainer::View(container) = &a.container {
        let picked = a
            .actions
            .iter()
            .flatten()
            .find(|x| x.action_id.to_string() == modal::PICK);
        if let Some(runbook) = picked
            .and_then(|x| x.selected_option.as_ref())
            .map(|o| o.value.clone())
        {
            let metadata = match &a.view {
                Some(SlackView::Modal(m)) => m.private_metadata.clone().unwrap_or_default(),
                _ => String::new(),
            };
            let view_id = container.view_id.to_string();
            if let Err(e) = modal::picked(slack, d, &view_id, &metadata, &runbook).await {
                tracing::warn!(error = %e, "cannot show the runbook's inputs in the declare form");
            }
        }
        return None;
    }
    let from = match &a.container {
        SlackInteractionActionContainer::Message(m) => Some(m.message_ts.to_string()),
        _ => None,
    };
    for act in a.actions.clone().unwrap_or_default() {
        let action = act.action_id.to_string();
        let target = act.value.as_deref().and_then(|v| v.split_once(' '));
        let decision = match action.as_str() {
            APPROVE => Some((Decision::Approve, ":white_check_mark: Approved")),
            REJECT => Some((Decision::Reject, ":x: Rejected")),
            DONE => Some((Decision::Done, ":white_check_mark: Done")),
            _ => None,
        };
        let (text, replace) = match (decision, target) {
            (None, _) => (
                refuse(
                    d,
                    target.map(|t| t.0),
                    &by,
                    &format!("unknown action `{action}`"),
                )
                .await,
                false,
            ),
            (Some(_), None) => (
                refuse(d, None, &by, "a button that names no incident and step").await,
                false,
            ),
            (Some((decision, word)), Some((id, step))) => {
                let bound = outbox::load_state(d, id)
                    .and_then(|st| st.asks.get(step).cloned())
                    .is_some_and(|ask| from.as_deref().is_some_and(|ts| ask.posted_as(ts)));
                if !bound {
                    let why = format!(
                        "a button for {id} `{step}` pressed on a message that is not that request"
                    );
                    (refuse(d, Some(id), &by, &why).await, false)
                } else {
                    let outcome = d
                        .resolve(
                            id,
                            Resolution {
                                step: step.to_string(),
                                decision,
                                by: by.clone(),
                                via: None,
                                token: Some(crate::slack::CREDENTIAL.into()),
                                note: None,
                            },
                        )
                        .await;
                    match outcome {
                        Ok(()) => (
                            format!("{word} by <@{by}>: `{}` on *{}*", escape(step), escape(id)),
                            true,
                        ),
                        Err(e) => (format!(":no_entry: {}", escape(&e.to_string())), false),
                    }
                }
            }
        };
        if let Some(url) = a.response_url.clone() {
            if !slack.may_respond(url.0.as_str()) {
                slack.count("response_url_refused");
                tracing::warn!(
                    "an interaction's response_url is not on Slack's hooks host; not answered there"
                );
                continue;
            }
            let slack = slack.clone();
            // Reply off the request path: Slack wants its ack within 3 s.
            tokio::spawn(async move {
                let req = SlackApiPostWebhookMessageRequest::new(
                    SlackMessageContent::new().with_text(super::message::fit(
                        &text,
                        super::message::TEXT_MAX,
                        None,
                    )),
                )
                .with_replace_original(replace);
                slack.respond(&url, &req).await;
            });
        }
    }
    None
}

/// Records a refused button in the incident it names (when it exists) and
/// returns what the presser is told.
async fn refuse(d: &Daemon, incident: Option<&str>, by: &str, why: &str) -> String {
    tracing::warn!(incident, by, why, "Slack button refused");
    if let Some(id) = incident.filter(|id| d.store().incident(id).is_ok()) {
        let ev = NewEvent::new(
            EventKind::SlackRefused,
            by,
            format!("Slack button from {by} refused: {why}"),
        );
        if let Err(e) = d.engine().record(id, ev).await {
            tracing::warn!(incident = id, error = %e, "cannot record the refused button");
        }
    }
    format!(":no_entry: Refused: {}", escape(why))
}
