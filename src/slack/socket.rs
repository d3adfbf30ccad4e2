//! Socket Mode: Slack delivers slash commands and button presses over a
//! WebSocket the daemon opens with the app-level token (`xapp-...`), for
//! hosts Slack cannot reach over HTTP. The same handlers answer as for the
//! HTTP endpoints; the socket itself is authenticated, so there is no
//! request signature to check. slack-morphism reconnects on its own.

use std::sync::Arc;

use slack_morphism::prelude::*;

use super::Slack;
use crate::server::Daemon;

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
        "quench_slack_requests_total",
        &[("endpoint", "socket.commands"), ("outcome", "accepted")],
    );
    Ok(super::commands::handle(&h.daemon, &h.slack, ev).await)
}

async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> Result<(), Error> {
    let h = handlers(&states).await?;
    h.daemon.metrics().inc(
        "quench_slack_requests_total",
        &[("endpoint", "socket.interactions"), ("outcome", "accepted")],
    );
    // slack-morphism acknowledges Socket Mode interactions without a
    // payload, so a form's field errors cannot be shown this way.
    let _ = super::interactions::handle(&h.daemon, &h.slack, ev).await;
    Ok(())
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

pub struct SocketMode {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
}

impl SocketMode {
    /// Opens the socket (`apps.connections.open` with the app token).
    pub async fn connect(
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

    pub async fn shutdown(&self) {
        self.listener.shutdown().await;
    }
}
