//! A local Slack Web API with state: channels (name rules, `name_taken`),
//! topics, bookmarks, members, pins, and messages that chat.update edits in
//! place and conversations.history / replies return with their metadata.
//! Faults are scripted per method (429 with Retry-After, 500, a hang), and
//! a missing scope answers `missing_scope` as Slack does. Shapes follow
//! https://docs.slack.dev/reference/methods (and fit slack-morphism's
//! models, which reject a response missing a field they need).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

#[derive(Debug, Clone, Default)]
pub(crate) struct Channel {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub members: Vec<String>,
    pub bookmarks: Vec<(String, String)>,
    pub pins: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub broadcast: bool,
    pub text: String,
    pub blocks: Json,
    pub metadata: Json,
    /// When each chat.update of it arrived.
    pub edits: Vec<Instant>,
}

/// A scripted answer in place of the real one.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// HTTP status, JSON body, Retry-After seconds.
    Status(u16, Option<u64>),
    /// Never answer.
    Hang,
    /// Answer as usual (to let earlier calls through before a fault).
    Pass,
}

#[derive(Default)]
struct S {
    channels: Vec<Channel>,
    messages: Vec<Message>,
    faults: HashMap<String, VecDeque<Fault>>,
    missing_scopes: Vec<String>,
    unknown_users: Vec<String>,
    calls: Vec<(String, Json)>,
    auth: Vec<(String, String)>,
    replies: HashMap<String, Json>,
    responses: Vec<Json>,
    /// Views opened or updated, by id (as Slack echoes them in payloads).
    views: HashMap<String, Json>,
    next_ts: u64,
}

#[derive(Clone)]
pub(crate) struct SlackApi {
    pub url: String,
    s: Arc<Mutex<S>>,
    changed: Arc<tokio::sync::Notify>,
}

impl SlackApi {
    pub(crate) async fn start() -> SlackApi {
        let s = Arc::new(Mutex::new(S::default()));
        let changed = Arc::new(tokio::sync::Notify::new());
        let app = axum::Router::new()
            .route("/api/{method}", axum::routing::post(call).get(call))
            .route("/respond/{n}", axum::routing::post(respond))
            .with_state((s.clone(), changed.clone()));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        SlackApi { url, s, changed }
    }

    /// The next `n` calls of `method` answer `fault`.
    pub(crate) fn fail(&self, method: &str, n: usize, fault: Fault) {
        let mut s = self.s.lock().unwrap();
        let q = s.faults.entry(method.into()).or_default();
        q.extend(std::iter::repeat_n(fault, n));
    }

    /// `method` answers `body` (for methods this mock does not model).
    pub(crate) fn reply(&self, method: &str, body: Json) {
        self.s.lock().unwrap().replies.insert(method.into(), body);
    }

    /// The Authorization header of each call of `method`.
    pub(crate) fn auth_of(&self, method: &str) -> Vec<String> {
        let s = self.s.lock().unwrap();
        s.auth
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// The view `id` as last opened or updated.
    pub(crate) fn view(&self, id: &str) -> Option<Json> {
        self.s.lock().unwrap().views.get(id).cloned()
    }

    /// What was posted to response_url `/respond/N`, in order.
    pub(crate) fn responses(&self) -> Vec<Json> {
        self.s.lock().unwrap().responses.clone()
    }

    /// A user Slack does not know (deactivated, or a typo in `roles:`).
    pub(crate) fn unknown_user(&self, id: &str) {
        self.s.lock().unwrap().unknown_users.push(id.into());
    }

    /// The bot token lacks `scope`: the methods needing it answer missing_scope.
    pub(crate) fn without_scope(&self, scope: &str) {
        self.s.lock().unwrap().missing_scopes.push(scope.into());
    }

    /// A channel that exists already (so its name is taken).
    pub(crate) fn existing_channel(&self, name: &str) {
        let mut s = self.s.lock().unwrap();
        let id = format!("C0OLD{:04}", s.channels.len());
        s.channels.push(Channel {
            id,
            name: name.into(),
            ..Channel::default()
        });
    }

    pub(crate) fn channels(&self) -> Vec<Channel> {
        self.s.lock().unwrap().channels.clone()
    }

    pub(crate) fn channel_named(&self, name: &str) -> Option<Channel> {
        self.channels().into_iter().find(|c| c.name == name)
    }

    pub(crate) fn messages(&self) -> Vec<Message> {
        self.s.lock().unwrap().messages.clone()
    }

    /// Messages that are not thread replies.
    pub(crate) fn roots(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    /// Messages with buttons: the decisions asked of people, still open.
    pub(crate) fn asks(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.blocks
                    .as_array()
                    .is_some_and(|b| b.iter().any(|b| b["type"] == "actions"))
            })
            .collect()
    }

    pub(crate) fn messages_in(&self, channel: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect()
    }

    pub(crate) fn calls(&self, method: &str) -> Vec<Json> {
        self.s
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Waits until `pred` holds of the API's state (each change is awaited;
    /// the timeout only guards against a hang).
    pub(crate) async fn until(&self, what: &str, pred: impl Fn(&SlackApi) -> bool) {
        let r = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let notified = self.changed.notified();
                if pred(self) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(
            r.is_ok(),
            "Slack never got to: {what}\nmessages: {:#?}",
            self.messages()
        );
    }
}

fn scope_of(method: &str) -> Option<&'static str> {
    Some(match method {
        "conversations.create" | "conversations.setTopic" | "conversations.invite" => {
            "channels:manage"
        }
        "chat.postMessage" | "chat.update" => "chat:write",
        "pins.add" => "pins:write",
        "bookmarks.add" => "bookmarks:write",
        "conversations.history" | "conversations.replies" => "channels:history",
        _ => return None,
    })
}

fn ok(body: Json) -> Response {
    let mut b = body;
    b["ok"] = json!(true);
    axum::Json(b).into_response()
}

fn err(code: &str) -> Response {
    axum::Json(json!({"ok": false, "error": code})).into_response()
}

/// slack-morphism sends JSON; Slack also takes forms.
fn parse(headers: &HeaderMap, body: &[u8]) -> Json {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        Json::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Json::String(v)))
                .collect(),
        )
    } else {
        serde_json::from_slice(body).unwrap_or(Json::Null)
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 80
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn history(m: &Message) -> Json {
    json!({"type": "message", "ts": m.ts, "text": m.text, "thread_ts": m.thread_ts,
           "metadata": if m.metadata.is_null() { Json::Null } else { m.metadata.clone() }})
}

async fn call(
    State((s, changed)): State<(Arc<Mutex<S>>, Arc<tokio::sync::Notify>)>,
    Path(method): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Reads (history, replies) are GETs with a query string.
    let b = match query {
        Some(q) if body.is_empty() => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap_or_default();
            Json::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Json::String(v)))
                    .collect(),
            )
        }
        _ => parse(&headers, &body),
    };
    let fault = {
        let mut st = s.lock().unwrap();
        st.calls.push((method.clone(), b.clone()));
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        st.auth.push((method.clone(), auth));
        st.faults.get_mut(&method).and_then(|q| q.pop_front())
    };
    changed.notify_waiters();
    match fault {
        Some(Fault::Hang) => return std::future::pending().await,
        Some(Fault::Pass) => {}
        Some(Fault::Status(code, retry)) => {
            let mut r = (
                StatusCode::from_u16(code).unwrap(),
                axum::Json(json!({"ok": false, "error": if code == 429 { "ratelimited" } else { "internal_error" }})),
            )
                .into_response();
            if let Some(secs) = retry {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            return r;
        }
        None => {}
    }
    if headers.get("authorization").is_none() {
        return err("not_authed");
    }
    let response = {
        let mut st = s.lock().unwrap();
        if let Some(scope) = scope_of(&method) {
            if st.missing_scopes.iter().any(|m| m == scope) {
                return axum::Json(json!({"ok": false, "error": "missing_scope", "needed": scope}))
                    .into_response();
            }
        }
        let str_of = |k: &str| b[k].as_str().unwrap_or_default().to_string();
        if let Some(r) = st.replies.get(&method) {
            return axum::Json(r.clone()).into_response();
        }
        match method.as_str() {
            "conversations.create" => {
                let name = str_of("name");
                if !valid_name(&name) {
                    err("invalid_name_specials")
                } else if st.channels.iter().any(|c| c.name == name) {
                    err("name_taken")
                } else {
                    let id = format!("C0INC{:04}", st.channels.len());
                    st.channels.push(Channel {
                        id: id.clone(),
                        name: name.clone(),
                        members: vec!["B0QUENCH".into()],
                        ..Channel::default()
                    });
                    ok(
                        json!({"channel": {"id": id, "name": name, "created": 1764406800, "is_channel": true}}),
                    )
                }
            }
            "conversations.setTopic" | "conversations.invite" | "pins.add" | "bookmarks.add" => {
                let key = if method == "bookmarks.add" {
                    "channel_id"
                } else {
                    "channel"
                };
                let unknown = st.unknown_users.clone();
                let cid = str_of(key);
                let Some(c) = st.channels.iter_mut().find(|c| c.id == cid) else {
                    return err("channel_not_found");
                };
                match method.as_str() {
                    "conversations.setTopic" => {
                        c.topic = str_of("topic");
                        ok(json!({"topic": c.topic}))
                    }
                    "conversations.invite" => {
                        let users: Vec<String> = match &b["users"] {
                            Json::String(s) => s.split(',').map(str::to_string).collect(),
                            Json::Array(a) => a
                                .iter()
                                .filter_map(|u| u.as_str().map(str::to_string))
                                .collect(),
                            _ => vec![],
                        };
                        // One unknown user fails the whole call, as in Slack.
                        if users.iter().any(|u| unknown.contains(u)) {
                            return err("user_not_found");
                        }
                        c.members.extend(users);
                        ok(json!({"channel": {"id": c.id, "created": 1764406800}}))
                    }
                    "pins.add" => {
                        c.pins.push(str_of("timestamp"));
                        ok(json!({}))
                    }
                    _ => {
                        c.bookmarks.push((str_of("title"), str_of("link")));
                        ok(
                            json!({"bookmark": {"id": "Bk0001", "title": str_of("title"), "link": str_of("link")}}),
                        )
                    }
                }
            }
            "chat.postMessage" => {
                st.next_ts += 1;
                let ts = format!("1764406800.{:06}", st.next_ts);
                let channel = str_of("channel");
                st.messages.push(Message {
                    channel: channel.clone(),
                    ts: ts.clone(),
                    thread_ts: b["thread_ts"].as_str().map(str::to_string),
                    broadcast: b["reply_broadcast"] == true,
                    text: str_of("text"),
                    blocks: b["blocks"].clone(),
                    metadata: b["metadata"].clone(),
                    edits: vec![],
                });
                ok(
                    json!({"channel": channel, "ts": ts, "message": {"ts": ts, "text": str_of("text")}}),
                )
            }
            "chat.update" => {
                let (channel, ts) = (str_of("channel"), str_of("ts"));
                match st
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && m.ts == ts)
                {
                    None => err("message_not_found"),
                    Some(m) => {
                        m.text = str_of("text");
                        // Slack keeps the blocks unless new ones are given.
                        if !b["blocks"].is_null() {
                            m.blocks = b["blocks"].clone();
                        }
                        m.edits.push(Instant::now());
                        ok(
                            json!({"channel": channel, "ts": ts, "text": m.text, "message": {"text": m.text}}),
                        )
                    }
                }
            }
            "conversations.history" => {
                let channel = str_of("channel");
                let msgs: Vec<Json> = st
                    .messages
                    .iter()
                    .rev()
                    .filter(|m| m.channel == channel && (m.thread_ts.is_none() || m.broadcast))
                    .map(history)
                    .collect();
                ok(json!({"messages": msgs, "has_more": false}))
            }
            "conversations.replies" => {
                let (channel, ts) = (str_of("channel"), str_of("ts"));
                let msgs: Vec<Json> = st
                    .messages
                    .iter()
                    .filter(|m| {
                        m.channel == channel
                            && (m.ts == ts || m.thread_ts.as_deref() == Some(ts.as_str()))
                    })
                    .map(history)
                    .collect();
                ok(json!({"messages": msgs, "has_more": false}))
            }
            "views.open" | "views.update" => {
                let id = b["view_id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("V0FORM{}", st.views.len() + 1));
                if method == "views.open" && str_of("trigger_id").is_empty() {
                    return err("invalid_trigger_id");
                }
                let mut v = b["view"].clone();
                v["id"] = json!(id);
                v["team_id"] = json!("T0ACME");
                v["hash"] = json!(format!("h{}", st.calls.len()));
                st.views.insert(id, v.clone());
                ok(json!({"view": v}))
            }
            _ => err("unknown_method"),
        }
    };
    changed.notify_waiters();
    response
}

async fn respond(
    State((s, changed)): State<(Arc<Mutex<S>>, Arc<tokio::sync::Notify>)>,
    body: Bytes,
) -> Response {
    let b: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    s.lock().unwrap().responses.push(b);
    changed.notify_waiters();
    axum::Json(json!({"ok": true})).into_response()
}
