//! Slack request signatures: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`
//! with the signing secret, timestamp within five minutes (replays), via
//! slack-morphism's constant-time verifier.

use axum::body::Bytes;
use axum::http::HeaderMap;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

pub(super) fn check(
    verifier: &SlackEventSignatureVerifier,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), String> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("missing {name} header"))
    };
    let sig = get(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)?;
    let ts = get(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)?;
    let body = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    // The error text carries only a prefix of the received signature.
    verifier.verify(sig, body, ts).map_err(|e| e.to_string())
}
