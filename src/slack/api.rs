//! The Slack Web API calls quench makes, each returning what went wrong in
//! a form the outbox can act on: retry later (rate limit with its
//! Retry-After, a 5xx, a broken connection) or give up on this call (an API
//! error such as `name_taken` or `missing_scope`, which retrying cannot
//! fix). Every call is counted; the bot token stays inside the client.

use std::time::Duration;

use serde_json::json;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::Slack;

/// Why a call failed.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    /// Slack's error code (`name_taken`, `missing_scope`, ...), for API errors.
    pub code: Option<String>,
    /// Slack asked to wait this long (429 Retry-After).
    pub retry_after: Option<Duration>,
    /// Worth trying again: a rate limit, a server error, a lost connection.
    pub transient: bool,
    pub message: String,
}

impl Failure {
    /// A failure on quench's side (the store, a form that does not fit
    /// Block Kit), not Slack's answer; `transient` when trying again helps.
    pub(super) fn local(message: impl Into<String>, transient: bool) -> Failure {
        Failure {
            code: None,
            retry_after: None,
            transient,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SlackClientError> for Failure {
    fn from(e: SlackClientError) -> Self {
        let message = e.to_string();
        match e {
            SlackClientError::ApiError(a) => Failure {
                // Slack's own "try later" answers arrive as API errors too.
                transient: matches!(
                    a.code.as_str(),
                    "ratelimited"
                        | "internal_error"
                        | "fatal_error"
                        | "service_unavailable"
                        | "request_timeout"
                ),
                code: Some(a.code),
                retry_after: None,
                message,
            },
            SlackClientError::RateLimitError(r) => Failure {
                code: Some("ratelimited".into()),
                retry_after: r.retry_after,
                transient: true,
                message,
            },
            _ => Failure {
                code: None,
                retry_after: None,
                transient: true,
                message,
            },
        }
    }
}

pub(super) fn no_token() -> Failure {
    Failure {
        code: Some("not_authed".into()),
        retry_after: None,
        transient: false,
        message: "no Slack bot token configured (slack.bot_token_env)".into(),
    }
}

pub(super) type Result<T> = std::result::Result<T, Failure>;

/// A message quench writes: text, optional blocks, and the metadata that
/// lets a restarted daemon find it again instead of posting it twice.
pub(super) struct Outgoing {
    pub text: String,
    pub blocks: Option<Vec<SlackBlock>>,
    pub metadata: Option<(String, Vec<(String, String)>)>,
    /// Where the whole of a text cut to fit Slack can be read.
    pub link: Option<String>,
}

impl Outgoing {
    pub(super) fn text(text: String) -> Self {
        Outgoing {
            text,
            blocks: None,
            metadata: None,
            link: None,
        }
    }

    pub(super) fn linked(mut self, link: Option<String>) -> Self {
        self.link = link;
        self
    }

    fn content(self) -> SlackMessageContent {
        let text = super::message::fit(&self.text, super::message::TEXT_MAX, self.link.as_deref());
        let mut c = SlackMessageContent::new().with_text(text);
        if let Some(b) = self.blocks {
            c = c.with_blocks(b);
        }
        if let Some((kind, payload)) = self.metadata {
            c = c.with_metadata(
                SlackMessageMetadata::new(kind).with_event_payload(payload.into_iter().collect()),
            );
        }
        c
    }
}

impl Slack {
    /// Counts a Web API call's outcome and times it from `since`.
    pub(super) fn counted<T>(
        &self,
        method: &str,
        since: std::time::Instant,
        r: std::result::Result<T, SlackClientError>,
    ) -> Result<T> {
        let outcome = if r.is_ok() { "ok" } else { "error" };
        crate::telemetry::global().slack_post(method, outcome, since.elapsed());
        match r {
            Ok(v) => {
                self.count("ok");
                Ok(v)
            }
            Err(e) => {
                self.count("error");
                let f = Failure::from(e);
                tracing::warn!(method, error = %f, "Slack call failed");
                Err(f)
            }
        }
    }

    /// chat.postMessage; the new message's ts.
    pub(super) async fn send(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        broadcast: bool,
        msg: Outgoing,
    ) -> Result<String> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let mut req = SlackApiChatPostMessageRequest::new(channel.into(), msg.content());
        if let Some(ts) = thread_ts {
            req = req.with_thread_ts(ts.into());
            if broadcast {
                req = req.with_reply_broadcast(true);
            }
        }
        let since = std::time::Instant::now();
        let r = session.chat_post_message(&req).await;
        self.counted("chat.postMessage", since, r)
            .map(|r| r.ts.to_string())
    }

    /// chat.update: rewrites a message quench posted.
    pub(super) async fn edit(&self, channel: &str, ts: &str, msg: Outgoing) -> Result<()> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let req = SlackApiChatUpdateRequest::new(channel.into(), msg.content(), ts.into());
        let since = std::time::Instant::now();
        let r = session.chat_update(&req).await;
        self.counted("chat.update", since, r).map(|_| ())
    }

    /// conversations.create (public); the new channel's id.
    pub(super) async fn create_channel(&self, name: &str) -> Result<String> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let req = SlackApiConversationsCreateRequest::new(name.into());
        let since = std::time::Instant::now();
        let r = session.conversations_create(&req).await;
        self.counted("conversations.create", since, r)
            .map(|r| r.channel.id.to_string())
    }

    pub(super) async fn set_topic(&self, channel: &str, topic: &str) -> Result<()> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let req = SlackApiConversationsSetTopicRequest::new(channel.into(), topic.into());
        let since = std::time::Instant::now();
        let r = session.conversations_set_topic(&req).await;
        self.counted("conversations.setTopic", since, r).map(|_| ())
    }

    pub(super) async fn invite(&self, channel: &str, users: &[String]) -> Result<()> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let req = SlackApiConversationsInviteRequest::new(
            channel.into(),
            users.iter().map(|u| u.as_str().into()).collect(),
        );
        let since = std::time::Instant::now();
        let r = session.conversations_invite(&req).await;
        self.counted("conversations.invite", since, r).map(|_| ())
    }

    pub(super) async fn pin(&self, channel: &str, ts: &str) -> Result<()> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let req = SlackApiPinsAddRequest::new(channel.into(), ts.into());
        let since = std::time::Instant::now();
        let r = session.pins_add(&req).await;
        self.counted("pins.add", since, r).map(|_| ())
    }

    /// bookmarks.add (a link in the channel header). slack-morphism has no
    /// model for it, so it goes through the client's generic POST with the
    /// body of https://docs.slack.dev/reference/methods/bookmarks.add.
    pub(super) async fn bookmark(&self, channel: &str, title: &str, link: &str) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Added {}
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let body = json!({"channel_id": channel, "title": title, "type": "link", "link": link});
        let since = std::time::Instant::now();
        let r: std::result::Result<Added, _> = session
            .http_session_api
            .http_post("bookmarks.add", &body, None)
            .await;
        self.counted("bookmarks.add", since, r).map(|_| ())
    }

    /// The ts of a message quench posted in `channel` (in `thread_ts`'s
    /// thread when given) whose metadata payload has `incident` and `seq`:
    /// how a restart learns that a post it was making did reach Slack.
    pub(super) async fn find_posted(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        incident: &str,
        seq: u64,
    ) -> Result<Option<String>> {
        let token = self.inner.token.as_ref().ok_or_else(no_token)?;
        let session = self.inner.client.open_session(token);
        let seq = seq.to_string();
        let matches = |m: Option<&SlackMessageMetadata>| {
            m.and_then(|m| m.event_payload.as_ref()).is_some_and(|p| {
                p.get("incident").map(String::as_str) == Some(incident)
                    && p.get("seq") == Some(&seq)
            })
        };
        // Only the latest page: the post in doubt is the newest one quench made.
        let messages = match thread_ts {
            Some(ts) => {
                // slack-morphism's request has no `include_all_metadata`
                // (https://docs.slack.dev/reference/methods/conversations.replies),
                // so the call is made with the parameters it needs.
                let params = vec![
                    ("channel", Some(channel.to_string())),
                    ("ts", Some(ts.to_string())),
                    ("limit", Some("200".to_string())),
                    ("include_all_metadata", Some("true".to_string())),
                ];
                let since = std::time::Instant::now();
                let r: std::result::Result<SlackApiConversationsRepliesResponse, _> = session
                    .http_session_api
                    .http_get("conversations.replies", &params, None)
                    .await;
                self.counted("conversations.replies", since, r)?.messages
            }
            None => {
                let req = SlackApiConversationsHistoryRequest::new()
                    .with_channel(channel.into())
                    .with_limit(100)
                    .with_include_all_metadata(true);
                let since = std::time::Instant::now();
                let r = session.conversations_history(&req).await;
                self.counted("conversations.history", since, r)?.messages
            }
        };
        Ok(messages
            .into_iter()
            .find(|m| matches(m.content.metadata.as_ref()))
            .map(|m| m.origin.ts.to_string()))
    }

    /// Answers an interaction through its response_url.
    pub(super) async fn respond(
        &self,
        url: &SlackResponseUrl,
        req: &SlackApiPostWebhookMessageRequest,
    ) {
        // response_url carries its own authority: no token is sent.
        let since = std::time::Instant::now();
        let r = self.inner.client.respond_to_event(url, req).await;
        let _ = self.counted("response_url", since, r);
    }

    pub(super) fn count(&self, outcome: &str) {
        if let Some(m) = &*self.inner.metrics.lock().expect("slack metrics") {
            m.inc(
                crate::daemon::metrics::Count::SlackMessages,
                &[("outcome", outcome)],
            );
        }
    }
}

/// The metadata of the post of timeline event `seq` of `incident`.
pub(super) fn event_metadata(incident: &str, seq: u64) -> (String, Vec<(String, String)>) {
    (
        "quench_event".into(),
        vec![
            ("incident".into(), incident.into()),
            ("seq".into(), seq.to_string()),
        ],
    )
}
