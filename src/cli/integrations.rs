//! `quench integrations`: what is installed and which secrets are set.

use std::process::ExitCode;

use super::{report_diagnostics, Env};
use crate::integrations::Secrets;

pub fn list(env: &Env) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => l,
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let file = env
        .config
        .file_secrets()
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut rows = Vec::new();
    for m in lib.catalog.manifests() {
        let secrets = Secrets::resolve(&m.secrets, &file);
        let missing: Vec<&String> = m.secrets.iter().filter(|s| !secrets.has(s)).collect();
        let actions: Vec<serde_json::Value> = m
            .actions
            .values()
            .map(|a| serde_json::json!({"name": a.name, "method": a.method.as_str(), "path": a.path, "manual": a.manual.is_some()}))
            .collect();
        rows.push(serde_json::json!({
            "name": m.name, "title": m.title, "origin": lib.catalog.origins.get(&m.name),
            "secrets": m.secrets, "missing_secrets": missing, "actions": actions,
        }));
        if !env.json {
            let state = if missing.is_empty() {
                "secrets set".to_string()
            } else {
                format!(
                    "missing {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            println!("{:<18} {:<40} {}", m.name, m.title, state);
            for a in m.actions.values() {
                match &a.manual {
                    Some(ui) => println!("    {:<32} manual: {ui}", a.name),
                    None => println!("    {:<32} {} {}", a.name, a.method, a.path),
                }
            }
        }
    }
    if env.json {
        println!("{}", serde_json::json!({"integrations": rows}));
    }
    Ok(ExitCode::SUCCESS)
}
