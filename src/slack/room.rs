//! Where an incident lives in Slack. By default its own channel, named
//! from `slack.channel_name`, with a topic, a bookmark to the timeline
//! page, the declarer and the people of the runbook's roles invited, and
//! an announcement where it was declared. With `slack.incident_channels:
//! false`, or when the channel cannot be made (a missing scope, Slack's
//! name rules), a thread in the declaring channel; the fallback says why.

use std::future::Future;

use super::api::{Failure, Outgoing};
use super::message::{escape, is_user_id};
use super::outbox::{declared, RoomState};
use super::Slack;
use crate::daemon::Daemon;

/// Slack's limit on channel names.
const NAME_MAX: usize = 80;
/// Names tried with a numeric suffix before giving up on a channel.
const SUFFIXES: u32 = 20;

/// A channel name Slack accepts: lower case, letters, digits, `-` and `_`,
/// at most 80 characters, no leading or doubled separators.
pub(super) fn channel_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out.chars().take(NAME_MAX).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `base` with suffix `-n`, within the limit.
fn with_suffix(base: &str, n: u32) -> String {
    let suffix = format!("-{n}");
    let keep = NAME_MAX - suffix.len();
    let base: String = base.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// Decides the room and creates the channel; None when there is nowhere
/// to post. Transient failures come back to be retried.
pub(super) async fn open(
    slack: &Slack,
    d: &Daemon,
    id: &str,
) -> Result<Option<RoomState>, Failure> {
    let store = d.store();
    let inc = store
        .incident(id)
        .map_err(|e| Failure::local(e.to_string(), true))?;
    let events = store.events(id).unwrap_or_default();
    let from = declared(&events)["channel"]
        .as_str()
        .map(str::to_string)
        .or_else(|| slack.inner.channel.clone());
    let thread = |channel: String, fallback: Option<String>| RoomState {
        mode: "thread".into(),
        channel,
        fallback,
        ..RoomState::default()
    };
    if !slack.inner.incident_channels {
        return Ok(from.map(|c| thread(c, None)));
    }
    let ctx = serde_json::json!({"id": inc.id, "runbook": inc.runbook, "severity": inc.severity});
    let base = crate::template::render_str(&slack.inner.channel_name, &ctx)
        .map(|s| channel_name(&s))
        .unwrap_or_default();
    if base.is_empty() {
        let why = format!(
            "`slack.channel_name` \"{}\" gives no usable channel name",
            slack.inner.channel_name
        );
        return Ok(from.map(|c| thread(c, Some(why))));
    }
    let mut name = base.clone();
    for n in 1..=SUFFIXES + 1 {
        match slack.create_channel(&name).await {
            Ok(channel) => {
                return Ok(Some(RoomState {
                    mode: "channel".into(),
                    channel,
                    ..RoomState::default()
                }))
            }
            Err(f) if f.code.as_deref() == Some("name_taken") && n <= SUFFIXES => {
                name = with_suffix(&base, n + 1);
            }
            Err(f) if f.transient => return Err(f),
            Err(f) => {
                let why = match f.code.as_deref() {
                    Some("missing_scope") => "the Slack app lacks the `channels:manage` scope (add it and reinstall the app)".to_string(),
                    Some("name_taken") => format!("every name from `{base}` to `{name}` is taken"),
                    Some("invalid_name" | "invalid_name_specials" | "invalid_name_maxlength" | "invalid_name_required") => {
                        format!("Slack refused the name `{name}` ({})", f.code.unwrap_or_default())
                    }
                    _ => format!("conversations.create failed: {}", f.message),
                };
                return Ok(from.map(|c| thread(c, Some(why))));
            }
        }
    }
    unreachable!("the loop returns on its last try")
}

/// The people to invite: the declarer and the members of every role the
/// runbook's steps name, as Slack user ids.
fn invitees(d: &Daemon, id: &str) -> Vec<String> {
    let Ok(inc) = d.store().incident(id) else {
        return vec![];
    };
    let mut who = vec![inc.declared_by.clone()];
    let known = d.engine().library().known();
    if let Ok(rb) = crate::runbook::load(&inc.runbook_file, &inc.runbook_source, &known) {
        let roles = &d.engine().settings().roles;
        for s in &rb.steps {
            let named: Vec<&String> = match &s.kind {
                crate::runbook::StepKind::Approval { approvers, .. } => approvers.iter().collect(),
                crate::runbook::StepKind::Manual {
                    assignee: Some(a), ..
                } => vec![a],
                _ => vec![],
            };
            for role in named {
                who.extend(roles.get(role).into_iter().flatten().cloned());
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    who.into_iter()
        .filter(|u| is_user_id(u))
        .filter(|u| seen.insert(u.clone()))
        .collect()
}

/// Invites everyone; when Slack refuses the list for one person (a
/// deactivated or unknown user), invites the rest one by one and names
/// those it could not.
async fn invite(slack: &Slack, channel: &str, who: &[String]) -> Result<(), Failure> {
    if who.is_empty() {
        return Ok(());
    }
    match slack.invite(channel, who).await {
        Ok(()) => Ok(()),
        Err(f) if f.transient || who.len() == 1 => Err(f),
        Err(_) => {
            let mut missed = Vec::new();
            for u in who {
                match slack.invite(channel, std::slice::from_ref(u)).await {
                    Ok(()) => {}
                    // Already there is what we wanted.
                    Err(f) if f.code.as_deref() == Some("already_in_channel") => {}
                    Err(f) if f.transient => return Err(f),
                    Err(f) => missed.push(format!("{u} ({})", f.code.unwrap_or(f.message))),
                }
            }
            if missed.is_empty() {
                Ok(())
            } else {
                Err(Failure {
                    code: Some("invite_partial".into()),
                    retry_after: None,
                    transient: false,
                    message: format!("not invited: {}", missed.join(", ")),
                })
            }
        }
    }
}

/// The channel's setup after the status message is up, each part once
/// (recorded in `st.setup` as it is done). A part Slack refuses for good
/// is reported in the room and not tried again.
pub(super) async fn setup<F, Fut>(
    slack: &Slack,
    d: &Daemon,
    id: &str,
    st: &mut RoomState,
    save: F,
) -> Result<(), Failure>
where
    F: Fn(RoomState) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let parts: &[&str] = if st.mode == "channel" {
        &["topic", "bookmark", "invite", "pin", "announce"]
    } else if st.fallback.is_some() {
        &["fallback"]
    } else {
        &[]
    };
    let Ok(inc) = d.store().incident(id) else {
        return Ok(());
    };
    let link = slack.page_link(id);
    for part in parts {
        if st.setup.iter().any(|p| p == part) {
            continue;
        }
        let result = match *part {
            "topic" => {
                let mut topic = format!(
                    "{} · {} · {} · {}",
                    inc.id,
                    inc.severity,
                    inc.status.name(),
                    inc.title
                );
                if let Some(l) = &link {
                    topic.push_str(&format!(" · {l}"));
                }
                slack.set_topic(&st.channel, &topic).await
            }
            "bookmark" => match &link {
                Some(l) => slack.bookmark(&st.channel, "Timeline", l).await,
                None => Ok(()),
            },
            "invite" => invite(slack, &st.channel, &invitees(d, id)).await,
            "pin" => match &st.status_ts {
                Some(ts) => slack.pin(&st.channel, ts).await,
                None => Ok(()),
            },
            "announce" => {
                let from = declared(&d.store().events(id).unwrap_or_default())["channel"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| slack.inner.channel.clone());
                match from {
                    Some(c) if c != st.channel => {
                        let text = format!(
                            ":rotating_light: *{}* {} ({}) is followed in <#{}>",
                            escape(&inc.id),
                            escape(&inc.title),
                            inc.severity.name(),
                            st.channel
                        );
                        slack
                            .send(&c, None, false, Outgoing::text(text))
                            .await
                            .map(|_| ())
                    }
                    _ => Ok(()),
                }
            }
            "fallback" => {
                let why = st.fallback.clone().unwrap_or_default();
                let text = format!(
                    ":warning: No channel of its own for *{}*: {}. Following it in this thread instead.",
                    escape(&inc.id),
                    escape(&why)
                );
                slack
                    .send(
                        &st.channel,
                        st.status_ts.as_deref(),
                        false,
                        Outgoing::text(text),
                    )
                    .await
                    .map(|_| ())
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => {}
            Err(f) if f.transient => return Err(f),
            Err(f) => {
                // Say so in the room; the incident goes on.
                let text = format!(
                    ":warning: Could not {} in this channel: {}",
                    match *part {
                        "topic" => "set the topic",
                        "bookmark" => "add the timeline bookmark",
                        "invite" => "invite the responders",
                        "pin" => "pin the status",
                        _ => "announce the incident",
                    },
                    escape(&f.message)
                );
                let _ = slack
                    .send(&st.channel, st.thread_ts(), false, Outgoing::text(text))
                    .await;
            }
        }
        st.setup.push(part.to_string());
        save(st.clone()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_slacks_rules() {
        assert_eq!(
            channel_name("inc-INC-20261201-0001-shadow-ai-exposure"),
            "inc-inc-20261201-0001-shadow-ai-exposure"
        );
        assert_eq!(channel_name("Inc: ChatGPT  leak!"), "inc-chatgpt-leak");
        let long = channel_name(&"a".repeat(100));
        assert_eq!(long.len(), 80);
        let s = with_suffix(&long, 12);
        assert_eq!(s.len(), 80);
        assert!(s.ends_with("-12"), "{s}");
        assert_eq!(channel_name("!!!"), "");
    }
}
