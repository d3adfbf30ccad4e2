//! `quench token new USER [--can ...]`: a fresh random token, shown once,
//! and the `access:` line that lets it in (the line holds its SHA-256, so
//! the config can be shared and reviewed without handing out the token).

use std::process::ExitCode;

use ring::rand::SecureRandom;
use serde_json::json;

use super::Env;
use crate::daemon::access::{hex, sha256, Scope};

/// YAML-safe in a flow mapping: plain when it is, else double-quoted.
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

pub(super) fn new(
    env: &Env,
    user: &str,
    can: &[String],
    name: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if user.trim().is_empty() || user.trim() != user {
        eprintln!("error: USER must be a user id or name without surrounding spaces");
        return Ok(ExitCode::from(2));
    }
    let mut scopes = Vec::new();
    for c in can {
        match Scope::parse(c.trim()) {
            Ok(s) if !scopes.contains(&s) => scopes.push(s),
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: --can: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    scopes.sort();
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    let token = format!("qnch_{}", hex(&bytes));
    let digest = hex(&sha256(&token));
    let can_text = scopes
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ");
    let name_part = name
        .map(|n| format!(" name: {},", yaml_scalar(n)))
        .unwrap_or_default();
    let line = format!(
        "  - {{ user: {},{name_part} token_sha256: \"{digest}\", can: [{can_text}] }}",
        yaml_scalar(user)
    );
    if env.json {
        println!(
            "{}",
            json!({"user": user, "token": token, "token_sha256": digest, "can": scopes.iter().map(|s| s.name()).collect::<Vec<_>>(), "access_line": line})
        );
    } else {
        println!("Token for {user} (shown once: give it to them, keep no copy):\n{token}\n");
        println!("Add this line under `access:` in quench.yaml and restart the daemon:\n{line}");
    }
    Ok(ExitCode::SUCCESS)
}
