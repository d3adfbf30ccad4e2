//! `/quench declare` with no runbook: a form. Picking a runbook shows its
//! inputs as fields typed by its declarations (a multi-select for inputs
//! with a fixed vocabulary, a number for integers, a date-time for
//! timestamps, yes/no for booleans, text otherwise; required ones not
//! optional); submitting checks them as the API does and answers the
//! errors beside their fields (`response_action: errors`).
//!
//! The view is written as Block Kit JSON (<https://docs.slack.dev/reference/block-kit>)
//! and read into slack-morphism's models, which refuse a block they would
//! not read back from Slack's payloads.

use serde_json::{json, Map, Value as Json};
use slack_morphism::prelude::*;

use super::api::Failure;
use super::Slack;
use crate::daemon::{Daemon, DeclareRequest};
use crate::runbook::{InputDecl, InputType, Runbook};

pub(super) const CALLBACK: &str = "quench_declare";
/// The runbook select: choosing one redraws the form with its inputs.
pub(super) const PICK: &str = "quench_pick_runbook";
/// Slack's limit on a select's options.
const MAX_OPTIONS: usize = 100;

fn text(s: &str) -> Json {
    json!({"type": "plain_text", "text": s})
}

fn option(value: &str) -> Json {
    json!({"text": text(value), "value": value})
}

/// One input's field: block `input:NAME`, action `value`.
fn field(decl: &InputDecl) -> Json {
    let default = decl.default.as_ref().filter(|d| !d.is_null());
    let element = match decl.ty {
        InputType::List => match decl.values.as_ref().map(|v| &v.values) {
            Some(known) => {
                let mut e = json!({
                    "type": "multi_static_select",
                    "action_id": "value",
                    "options": known.iter().take(MAX_OPTIONS).map(|v| option(v)).collect::<Vec<_>>(),
                });
                let initial: Vec<Json> = default
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .filter(|v| known.iter().any(|k| k == v))
                    .map(option)
                    .collect();
                if !initial.is_empty() {
                    e["initial_options"] = json!(initial);
                }
                e
            }
            None => {
                let mut e = json!({"type": "plain_text_input", "action_id": "value",
                                   "placeholder": text("a, b, c")});
                if let Some(d) = default.and_then(Json::as_array).filter(|a| !a.is_empty()) {
                    let joined: Vec<String> = d
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect();
                    e["initial_value"] = json!(joined.join(","));
                }
                e
            }
        },
        InputType::Integer => {
            let mut e =
                json!({"type": "number_input", "action_id": "value", "is_decimal_allowed": false});
            if let Some(d) = default {
                e["initial_value"] = json!(d.to_string());
            }
            e
        }
        InputType::Boolean => {
            let mut e = json!({"type": "static_select", "action_id": "value",
                               "options": [option("yes"), option("no")]});
            if let Some(d) = default.and_then(Json::as_bool) {
                e["initial_option"] = option(if d { "yes" } else { "no" });
            }
            e
        }
        InputType::Timestamp => {
            let mut e = json!({"type": "datetimepicker", "action_id": "value"});
            if let Some(t) = default
                .and_then(Json::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            {
                e["initial_date_time"] = json!(t.timestamp());
            }
            e
        }
        InputType::String => {
            let mut e = json!({"type": "plain_text_input", "action_id": "value"});
            if let Some(d) = default.and_then(Json::as_str).filter(|d| !d.is_empty()) {
                e["initial_value"] = json!(d);
            }
            e
        }
    };
    let mut block = json!({
        "type": "input",
        "block_id": format!("input:{}", decl.name),
        "label": text(&decl.name),
        "element": element,
        // A default fills an input left empty; only those without one are required.
        "optional": !(decl.required && default.is_none()),
    });
    if let Some(h) = &decl.description {
        let h: String = h.chars().take(150).collect();
        block["hint"] = text(&h);
    }
    block
}

/// The form: runbook and severity, then the chosen runbook's inputs.
fn view(d: &Daemon, rb: Option<&Runbook>, channel: Option<&str>) -> Result<SlackView, Failure> {
    let names = d.engine().library().runbook_names();
    let mut pick = json!({
        "type": "static_select",
        "action_id": PICK,
        "placeholder": text("Pick a runbook"),
        "options": names.iter().take(MAX_OPTIONS).map(|n| option(n)).collect::<Vec<_>>(),
    });
    if let Some(rb) = rb {
        pick["initial_option"] = option(&rb.name);
    }
    let mut blocks = vec![
        json!({"type": "input", "block_id": "runbook", "dispatch_action": true,
               "label": text("Runbook"), "element": pick}),
        json!({"type": "input", "block_id": "severity", "label": text("Severity"),
               "element": {"type": "static_select", "action_id": "value",
                           "options": crate::store::Severity::NAMES.map(option),
                           "initial_option": option("sev2")}}),
    ];
    if let Some(rb) = rb {
        blocks.extend(rb.inputs.iter().map(field));
    }
    let v = json!({
        "type": "modal",
        "callback_id": CALLBACK,
        "title": text("Declare an incident"),
        "submit": text("Declare"),
        "close": text("Cancel"),
        "private_metadata": json!({"channel": channel}).to_string(),
        "blocks": blocks,
    });
    serde_json::from_value(v).map_err(|e| {
        Failure::local(
            format!("the declare form does not fit Block Kit: {e}"),
            false,
        )
    })
}

/// Opens the form in answer to `/quench declare` (within 3 s of the
/// trigger, which is why it is sent before anything slow).
pub(super) async fn open(
    slack: &Slack,
    d: &Daemon,
    trigger: &str,
    channel: &str,
) -> Result<(), Failure> {
    let v = view(d, None, Some(channel))?;
    slack.open_view(trigger, v).await
}

/// A runbook was picked: the form again, with its inputs.
pub(super) async fn picked(
    slack: &Slack,
    d: &Daemon,
    view_id: &str,
    metadata: &str,
    runbook: &str,
) -> Result<(), Failure> {
    let channel = serde_json::from_str::<Json>(metadata)
        .ok()
        .and_then(|m| m["channel"].as_str().map(str::to_string));
    let rb = d
        .engine()
        .library()
        .named_runbook(runbook)
        .map_err(|e| Failure::local(e.to_string(), false))?
        .runbook;
    let v = view(d, Some(&rb), channel.as_deref())?;
    slack.update_view(view_id, v).await
}

/// What one field holds, as the API would take it (absent when empty).
fn value_of(v: &SlackViewStateValue) -> Option<Json> {
    if let Some(opts) = &v.selected_options {
        return Some(Json::Array(opts.iter().map(|o| json!(o.value)).collect()));
    }
    if let Some(o) = &v.selected_option {
        return Some(json!(o.value));
    }
    if let Some(t) = &v.selected_date_time {
        let secs = t.0.as_second();
        return chrono::DateTime::from_timestamp(secs, 0).map(|t| json!(t.to_rfc3339()));
    }
    v.value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| json!(s))
}

/// The form was submitted: declare, or say what is wrong beside the field.
/// The answer is the body of the HTTP response to Slack.
pub(super) async fn submitted(d: &Daemon, ev: &SlackInteractionViewSubmissionEvent) -> Json {
    let errors = |e: Map<String, Json>| json!({"response_action": "errors", "errors": e});
    let one = |block: &str, msg: String| {
        let mut m = Map::new();
        m.insert(block.into(), json!(msg));
        errors(m)
    };
    let by = ev.user.id.to_string();
    // As for `/quench declare`: only responders, when the role is set.
    if let Some(members) = d.engine().settings().roles.get("responder") {
        if !members.contains(&by) {
            return one(
                "runbook",
                format!("only members of the responder role may declare incidents; ask one, or add your Slack user id ({by}) under roles.responder in quench.yaml"),
            );
        }
    }
    let SlackView::Modal(modal) = &ev.view.view else {
        return json!({});
    };
    let channel = modal
        .private_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Json>(m).ok())
        .and_then(|m| m["channel"].as_str().map(str::to_string));
    let mut fields: Map<String, Json> = Map::new();
    let mut runbook = None;
    let mut severity = None;
    if let Some(state) = &ev.view.state_params.state {
        for (block, actions) in &state.values {
            for v in actions.values() {
                let Some(value) = value_of(v) else { continue };
                match block.to_string().as_str() {
                    "runbook" => runbook = value.as_str().map(str::to_string),
                    "severity" => severity = value.as_str().map(str::to_string),
                    b => {
                        if let Some(name) = b.strip_prefix("input:") {
                            let value = match value.as_str() {
                                Some("yes") => json!(true),
                                Some("no") => json!(false),
                                _ => value,
                            };
                            fields.insert(name.to_string(), value);
                        }
                    }
                }
            }
        }
    }
    let Some(runbook) = runbook else {
        return one("runbook", "pick a runbook".into());
    };
    let rb = match d.engine().library().named_runbook(&runbook) {
        Ok(l) => l.runbook,
        Err(e) => return one("runbook", e.to_string()),
    };
    // Each problem beside its field; one about the whole beside the runbook.
    if let Err(problems) =
        crate::runbook::inputs::from_json_fields(&rb, &Json::Object(fields.clone()))
    {
        let mut e = Map::new();
        for (input, msg) in problems {
            let block = input
                .filter(|i| rb.input(i).is_some())
                .map(|i| format!("input:{i}"))
                .unwrap_or_else(|| "runbook".into());
            let entry = e.entry(block).or_insert_with(|| json!(""));
            let joined = match entry.as_str() {
                Some("") | None => msg,
                Some(prev) => format!("{prev}; {msg}"),
            };
            *entry = json!(joined);
        }
        return errors(e);
    }
    let req = DeclareRequest {
        runbook,
        inputs: Json::Object(fields),
        severity,
        by,
        token: Some(crate::slack::CREDENTIAL.into()),
        drill: false,
        channel,
    };
    match d.declare(req).await {
        // An empty answer closes the form; the incident's room announces it.
        Ok(_) => json!({}),
        Err(e) => one("runbook", e.to_string()),
    }
}

impl Slack {
    async fn open_view(&self, trigger: &str, view: SlackView) -> Result<(), Failure> {
        let token = self.inner.token.as_ref().ok_or_else(super::api::no_token)?;
        let session = self.inner.client.open_session(token);
        let since = std::time::Instant::now();
        let r = session
            .views_open(&SlackApiViewsOpenRequest::new(trigger.into(), view))
            .await;
        self.counted("views.open", since, r).map(|_| ())
    }

    async fn update_view(&self, view_id: &str, view: SlackView) -> Result<(), Failure> {
        let token = self.inner.token.as_ref().ok_or_else(super::api::no_token)?;
        let session = self.inner.client.open_session(token);
        let since = std::time::Instant::now();
        let r = session
            .views_update(&SlackApiViewsUpdateRequest::new(view).with_view_id(view_id.into()))
            .await;
        self.counted("views.update", since, r).map(|_| ())
    }
}
