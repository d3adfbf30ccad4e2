//! `/quench ...`: the slash command. Replies are ephemeral (only the caller
//! sees them); what happens to the incident is posted in its thread.

use serde_json::{Map, Value as Json};
use slack_morphism::prelude::*;

use super::message::escape;
use super::Slack;
use crate::daemon::{Daemon, DeclareRequest};
use crate::engine::{Decision, Resolution};
use crate::timeline::notes::NoteFacts;

const USAGE: &str = "*quench* — incident runbooks\n\
`/quench declare RUNBOOK [sev1..sev4] [name=value ...]` declare an incident (updates go to this channel)\n\
`/quench drill RUNBOOK [name=value ...]` rehearse it on the built-in simulator\n\
`/quench plan RUNBOOK [simulated] [name=value ...]` what it would change on the live platforms, sending only reads\n\
`/quench status ID` steps, what waits on people, regulatory clocks\n\
`/quench incidents` open incidents\n\
`/quench approve ID STEP [note]` · `/quench reject ID STEP [note]` · `/quench done ID STEP [note]`\n\
`/quench note ID TEXT` add a note to the timeline";

pub(super) async fn handle(
    d: &Daemon,
    slack: &Slack,
    ev: SlackCommandEvent,
) -> SlackCommandEventResponse {
    let text = ev.text.clone().unwrap_or_default();
    let reply = match run(d, slack, &text, &ev).await {
        Ok(r) => r,
        Err(e) => format!(":warning: {}", escape(&e)),
    };
    let reply = super::message::fit(&reply, super::message::TEXT_MAX, None);
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(reply))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}

/// Splits on whitespace, keeping "quoted words" together; Slack may turn
/// straight quotes into curly ones.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in text.chars() {
        match ch {
            '"' | '\u{201c}' | '\u{201d}' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The text after the first `n` words, as typed (notes keep their spacing).
fn rest_after(text: &str, n: usize) -> String {
    let mut rest = text.trim_start();
    for _ in 0..n {
        rest = rest
            .find(char::is_whitespace)
            .map(|i| rest[i..].trim_start())
            .unwrap_or("");
    }
    rest.trim().to_string()
}

async fn run(
    d: &Daemon,
    slack: &Slack,
    text: &str,
    ev: &SlackCommandEvent,
) -> Result<String, String> {
    let w = words(text);
    let by = ev.user_id.to_string();
    let arg = |i: usize, what: &str| {
        w.get(i)
            .cloned()
            .ok_or_else(|| format!("missing {what}; try `/quench help`"))
    };
    match w.first().map(String::as_str) {
        None | Some("help") => Ok(format!(
            "{USAGE}\n*Runbooks:* {}",
            d.engine()
                .library()
                .runbook_names()
                .iter()
                .map(|n| format!("`{}`", escape(n)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(verb @ ("declare" | "drill" | "plan")) => {
            // Declaring starts revocations on every platform, and a plan
            // reads every platform with admin credentials: when a
            // responder role is configured, only its members may.
            if let Some(members) = d.engine().settings().roles.get("responder") {
                if !members.contains(&by) {
                    tracing::warn!(user = %by, "Slack declaration refused: not a responder");
                    return Err(format!(
                        "only members of the responder role may {verb} incidents; ask one, or add your Slack user id ({by}) under roles.responder in quench.yaml"
                    ));
                }
            }
            // No runbook: the form, which types each input for the person.
            if verb == "declare" && w.len() == 1 {
                super::modal::open(slack, d, ev.trigger_id.as_ref(), ev.channel_id.as_ref())
                    .await
                    .map_err(|e| format!("cannot open the declare form ({e}); type `/quench declare RUNBOOK k=v ...` instead"))?;
                return Ok("Opening the declare form…".into());
            }
            let runbook = arg(1, "RUNBOOK")?;
            let mut inputs = Map::new();
            let mut severity = None;
            let mut simulated = false;
            for word in &w[2..] {
                match word.split_once('=') {
                    Some((k, v)) => {
                        inputs.insert(k.to_string(), Json::String(v.to_string()));
                    }
                    None if verb == "plan" && word == "simulated" => simulated = true,
                    None if word.starts_with("sev") && verb != "plan" => {
                        severity = Some(word.clone())
                    }
                    None => {
                        return Err(format!(
                            "\"{word}\" is neither name=value nor a severity (sev1..sev4)"
                        ))
                    }
                }
            }
            if verb == "plan" {
                let id = d
                    .plan(crate::daemon::PlanRequest {
                        runbook,
                        inputs: Json::Object(inputs),
                        by,
                        simulated,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(format!(
                    "Plan *{}* started: reads only, nothing is changed.{}",
                    escape(&id),
                    slack
                        .plan_link(&id)
                        .map(|l| format!(" <{l}|The report> fills in when it is done."))
                        .unwrap_or_else(|| format!(
                            " `GET /api/v1/plans/{id}` has the report when it is done."
                        ))
                ));
            }
            let drill = verb == "drill";
            let id = d
                .declare(DeclareRequest {
                    runbook,
                    inputs: Json::Object(inputs),
                    severity,
                    by,
                    token: Some(crate::slack::CREDENTIAL.into()),
                    drill,
                    channel: Some(ev.channel_id.to_string()),
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "{} *{}* declared; its updates follow in a thread in this channel.{}",
                if drill {
                    "Drill"
                } else {
                    ":rotating_light: Incident"
                },
                escape(&id),
                slack
                    .page_link(&id)
                    .map(|l| format!(" <{l}|Timeline>"))
                    .unwrap_or_default()
            ))
        }
        Some("status") => {
            let id = arg(1, "incident ID")?;
            slack.status_of(d, &id).map_err(|e| e.to_string())
        }
        Some("incidents") => {
            let list = d.store().incidents().map_err(|e| e.to_string())?;
            let open: Vec<String> = list
                .iter()
                .filter(|i| i.status.is_open())
                .map(|i| {
                    format!(
                        "• *{}* {} · {} · {}{}",
                        escape(&i.id),
                        escape(&i.title),
                        i.severity.name(),
                        i.status.name(),
                        if i.drill { " (drill)" } else { "" }
                    )
                })
                .collect();
            Ok(if open.is_empty() {
                "No open incidents.".into()
            } else {
                open.join("\n")
            })
        }
        Some(verb @ ("approve" | "reject" | "done")) => {
            let id = arg(1, "incident ID")?;
            let step = arg(2, "STEP")?;
            let note = Some(rest_after(text, 3)).filter(|n| !n.is_empty());
            let decision = match verb {
                "approve" => Decision::Approve,
                "reject" => Decision::Reject,
                _ => Decision::Done,
            };
            d.resolve(
                &id,
                Resolution {
                    step: step.clone(),
                    decision,
                    by: by.clone(),
                    via: None,
                    token: Some(crate::slack::CREDENTIAL.into()),
                    note,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(format!(
                "Recorded: {verb} `{}` on *{}*.",
                escape(&step),
                escape(&id)
            ))
        }
        Some("note") => {
            let id = arg(1, "incident ID")?;
            let note = rest_after(text, 2);
            let ev = d
                .note(
                    &id,
                    &note,
                    &by,
                    Some(crate::slack::CREDENTIAL),
                    &NoteFacts::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("Note #{} added to *{}*.", ev.seq, escape(&id)))
        }
        Some(other) => Err(format!("unknown subcommand \"{other}\"\n{USAGE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quoted_text_together() {
        assert_eq!(
            words("declare shadow-ai-exposure tool=\u{201c}Chat GPT\u{201d} sev1"),
            ["declare", "shadow-ai-exposure", "tool=Chat GPT", "sev1"]
        );
        assert_eq!(words("  a   \"\"  b "), ["a", "", "b"]);
    }

    #[test]
    fn rest_keeps_the_note_as_typed() {
        assert_eq!(
            rest_after("note INC-1  Legal  says: go", 2),
            "Legal  says: go"
        );
        assert_eq!(rest_after("approve INC-1 step", 3), "");
    }
}
