//! `quench integrations`: what is installed and which secrets are set.

use std::process::ExitCode;

use super::{report_diagnostics, Env};
use crate::integrations::Secrets;

pub(super) fn list(env: &Env) -> anyhow::Result<ExitCode> {
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

/// `quench integrations check`: one harmless read per configured integration.
pub(super) async fn check(env: &Env, simulated: bool) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => l,
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let (exec, _sim) = super::wiring::executor(env, &lib, !simulated, None).await?;
    let mut rows = Vec::new();
    let mut failed = false;
    for m in lib.catalog.manifests() {
        let missing = exec.missing_secrets(&m.name);
        let probe = m.check.clone().or_else(|| {
            m.actions
                .values()
                .find(|a| {
                    a.method == reqwest::Method::GET
                        && a.manual.is_none()
                        && !a.path.contains("{{")
                        && a.query.values().all(|v| !v.contains("{{with"))
                })
                .map(|a| a.name.clone())
        });
        let (state, detail) = if !missing.is_empty() {
            ("not configured", format!("missing {}", missing.join(", ")))
        } else if let Some(action) = &probe {
            match exec
                .call(
                    &m.name,
                    action,
                    &serde_json::json!({}),
                    "check",
                    Some(std::time::Duration::from_secs(15)),
                )
                .await
            {
                Ok(ok) => ("ok", format!("{action}: HTTP {}", ok.status)),
                Err(e) => {
                    failed = true;
                    let state = match e.status() {
                        Some(401) | Some(403) => "auth failed",
                        None => "unreachable",
                        _ => "error",
                    };
                    (state, e.to_string())
                }
            }
        } else {
            (
                "no check",
                "the manifest has no harmless read action; set `check:`".to_string(),
            )
        };
        if !env.json {
            println!("{:<18} {:<15} {detail}", m.name, state);
        }
        rows.push(serde_json::json!({"integration": m.name, "state": state, "detail": detail}));
    }
    if env.json {
        println!("{}", serde_json::json!({"integrations": rows}));
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `quench inventory`: apps, grants and keys found, against the registry.
pub(super) async fn inventory(env: &Env, simulated: bool) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => l,
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let path = env
        .config
        .approved_tools
        .clone()
        .unwrap_or_else(|| "approved-tools.yaml".into());
    let registry = match crate::registry::Registry::load(&path) {
        Ok(r) => r,
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    if registry.tools.is_empty() {
        eprintln!("note: no approved-tools registry at {} (config key approved_tools); everything is unknown", path.display());
    }
    let (exec, _sim) = super::wiring::executor(env, &lib, !simulated, None).await?;
    let scan = crate::integrations::inventory::scan(&exec, &lib.catalog, &registry).await;
    if env.json {
        println!("{}", serde_json::to_string(&scan)?);
    } else {
        for f in &scan.items {
            println!(
                "{:<10} {:<18} {:<14} {:<32} {:<28} {}",
                format!("{:?}", f.verdict).to_lowercase(),
                f.platform,
                f.kind,
                f.name,
                f.user.as_deref().unwrap_or("-"),
                f.reason
            );
        }
        for (p, missing) in &scan.skipped {
            println!("skipped    {p:<18} missing {}", missing.join(", "));
        }
        for (p, e) in &scan.errors {
            println!("error      {p:<18} {e}");
        }
    }
    Ok(if scan.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
