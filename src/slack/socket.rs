//! Socket Mode: Slack delivers slash commands and button presses over a
//! WebSocket the daemon opens with the app-level token (`xapp-...`), for
//! hosts Slack cannot reach over HTTP. The same handlers answer as for the
//! HTTP endpoints (a form's errors ride on the acknowledgement); the socket itself is authenticated, so there is no
//! request signature to check. slack-morphism reconnects on its own.

use std::sync::Arc;

use slack_morphism::prelude::*;

use super::Slack;
use crate::daemon::Daemon;

/// What the callbacks (plain `fn`s in slack-morphism) reach through its
/// user-state map.
#[derive(Clone)]
struct Handlers {
    daemon: Daemon,
    slack: Slack,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn handlers(states: &SlackClientEventsUserState) -> Result<Handlers, Error> {
    states
        .read()
        .await
        .get_user_state::<Handlers>()
        .cloned()
        .ok_or_else(|| "socket mode state missing".into())
}

async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> Result<SlackCommandEventResponse, Error> {
    let h = handlers(&states).await?;
    h.daemon.metrics().inc(
        crate::daemon::metrics::Count::SlackRequests,
        &[("endpoint", "socket.commands"), ("outcome", "accepted")],
    );
    Ok(super::commands::handle(&h.daemon, &h.slack, ev).await)
}

async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> Result<SlackInteractionResponse, Error> {
    let h = handlers(&states).await?;
    h.daemon.metrics().inc(
        crate::daemon::metrics::Count::SlackRequests,
        &[("endpoint", "socket.interactions"), ("outcome", "accepted")],
    );
    // The answer over HTTP is the socket's acknowledgement payload: a
    // form's field errors keep it open, beside the fields.
    let body = super::interactions::handle(&h.daemon, &h.slack, ev).await;
    let errors = body
        .as_ref()
        .and_then(|b| b.get("errors"))
        .and_then(|e| e.as_object());
    Ok(match errors {
        Some(errors) => {
            SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(
                errors
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
            ))
            .into()
        }
        None => SlackInteractionResponse::Empty,
    })
}

async fn on_push(
    _ev: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    _states: SlackClientEventsUserState,
) -> Result<(), Error> {
    Ok(())
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    _states: SlackClientEventsUserState,
) -> HttpStatusCode {
    tracing::warn!(error = %err, "Slack socket mode event failed");
    HttpStatusCode::OK
}

pub(super) struct SocketMode {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
}

impl SocketMode {
    /// Opens the socket (`apps.connections.open` with the app token).
    pub(super) async fn connect(
        slack: &Slack,
        daemon: Daemon,
        app_token: &str,
    ) -> Result<SocketMode, String> {
        let env = Arc::new(
            SlackClientEventsListenerEnvironment::new(slack.inner.client.clone())
                .with_error_handler(on_error)
                .with_user_state(Handlers {
                    daemon,
                    slack: slack.clone(),
                }),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_command_events(on_command)
            .with_interaction_events(on_interaction)
            .with_push_events(on_push);
        let listener = SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new().with_max_connections_count(1),
            env,
            callbacks,
        );
        listener
            .listen_for(&SlackApiToken::new(app_token.to_string().into()))
            .await
            .map_err(|e| format!("Slack Socket Mode: apps.connections.open failed: {e} (is the app token an xapp- token with connections:write?)"))?;
        listener.start().await;
        Ok(SocketMode { listener })
    }

    pub(super) async fn shutdown(&self) {
        self.listener.shutdown().await;
    }
}
