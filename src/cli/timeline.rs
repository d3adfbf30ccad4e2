//! `quench incidents`, `quench status ID`, `quench timeline ID`.

use std::process::ExitCode;

use serde_json::{json, Value as Json};

use super::remote::Access;
use super::Env;
use crate::store::AuditReport;
use crate::timeline as render;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KpiFormat {
    Text,
    Markdown,
    Json,
}

pub(super) async fn kpis(
    env: &Env,
    since: Option<chrono::DateTime<chrono::Utc>>,
    format: KpiFormat,
) -> anyhow::Result<ExitCode> {
    let k = match env.access()? {
        Access::Local(store) => {
            let lib = match env.library() {
                Ok(l) => l,
                Err(d) => return Ok(super::report_diagnostics(&d)),
            };
            let rows = render::kpis::rows(&store, &lib.known(), since, chrono::Utc::now())?;
            render::kpis::summarize(&rows, since)
        }
        Access::Daemon(r) => {
            let q = since
                .map(|s| format!("?since={}", s.format("%Y-%m-%dT%H:%M:%SZ")))
                .unwrap_or_default();
            r.get(&format!("/api/v1/kpis{q}")).await?
        }
    };
    match if env.json { KpiFormat::Json } else { format } {
        KpiFormat::Text => print!("{}", render::kpis::render_text(&k)),
        KpiFormat::Markdown => print!("{}", render::kpis::render_markdown(&k)),
        KpiFormat::Json => println!("{k}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn audit_verify(env: &Env, id: &str) -> anyhow::Result<ExitCode> {
    let report: AuditReport = match env.access()? {
        Access::Local(store) => store.audit(id)?,
        Access::Daemon(r) => {
            let j = r.get(&format!("/api/v1/incidents/{id}/audit")).await?;
            serde_json::from_value(j["report"].clone())?
        }
    };
    if env.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.intact() {
        println!(
            "{id}: intact · {} events chained · {} notice versions match what was drafted · head sha256:{}",
            report.events, report.notices, report.head
        );
    } else {
        println!(
            "{id}: NOT intact · {} problem{}:",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        );
        for p in &report.problems {
            println!("  - {p}");
        }
        println!("recorded head sha256:{}", report.head);
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) async fn incidents(env: &Env) -> anyhow::Result<ExitCode> {
    let list: Vec<Json> = match env.access()? {
        Access::Local(store) => store
            .incidents()?
            .iter()
            .map(|i| json!({"id": i.id, "runbook": i.runbook, "status": i.status.name(), "declared_at": i.declared_at.to_rfc3339(), "declared_by": i.declared_by, "severity": i.severity, "drill": i.drill}))
            .collect(),
        Access::Daemon(r) => r.get("/api/v1/incidents").await?["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    if env.json {
        println!("{}", json!({"incidents": list}));
    } else if list.is_empty() {
        println!("no incidents in {}", env.data_dir.display());
    } else {
        for i in list {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            println!(
                "{:<20} {:<10} {:<5} {:<24} {}{}",
                s("id"),
                s("status"),
                s("severity"),
                s("runbook"),
                s("declared_at"),
                if i["drill"] == true { " (drill)" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn status(env: &Env, id: &str) -> anyhow::Result<ExitCode> {
    let inc = match env.access()? {
        Access::Local(store) => {
            let snap = store.snapshot(id)?;
            let events = store.events(id)?;
            render::incident_json(&snap, &events, chrono::Utc::now())
        }
        Access::Daemon(r) => r.get(&format!("/api/v1/incidents/{id}")).await?,
    };
    if env.json {
        println!("{inc}");
        return Ok(ExitCode::SUCCESS);
    }
    let s = |v: &Json| v.as_str().unwrap_or_default().to_string();
    println!(
        "{} · {} · {} · {}",
        s(&inc["id"]),
        s(&inc["runbook"]),
        s(&inc["severity"]),
        s(&inc["status"])
    );
    for st in inc["steps"].as_array().into_iter().flatten() {
        let extra = st["error"]
            .as_str()
            .map(|e| format!("  {}", render::display::terminal(e)))
            .unwrap_or_default();
        let word = match st["status"].as_str().unwrap_or_default() {
            "succeeded" => "ok".to_string(),
            "failed" => "FAILED".to_string(),
            other => other.to_string(),
        };
        println!(
            "  {:<28} {:<9} attempts {}{}",
            s(&st["id"]),
            word,
            st["attempts"],
            extra
        );
    }
    let clocks = inc["clocks"].as_array().cloned().unwrap_or_default();
    if !clocks.is_empty() {
        println!("Regulatory clocks:");
        print!("{}", render::clocks::render_text(&clocks));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn timeline(env: &Env, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let format = if env.json { Format::Json } else { format };
    let store = match env.access()? {
        Access::Local(store) => store,
        Access::Daemon(r) => {
            let name = match format {
                Format::Text => "text",
                Format::Markdown => "markdown",
                Format::Json => "json",
                Format::Html => "html",
            };
            let body = r
                .get_text(&format!("/api/v1/incidents/{id}/timeline?format={name}"))
                .await?;
            print!("{body}");
            if !body.ends_with('\n') {
                println!();
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let inc = store.incident(id)?;
    let events = store.events(id)?;
    match format {
        Format::Text => print!("{}", render::render_text(&inc, &events)),
        Format::Json => println!("{}", render::events_json(&inc, &events)),
        Format::Markdown | Format::Html => {
            let lib = match env.library() {
                Ok(l) => l,
                Err(d) => return Ok(super::report_diagnostics(&d)),
            };
            // The postmortem's appendix is the whole log; the page keeps
            // its cap (the rest is in the postmortem and the JSON).
            let cap = match format {
                Format::Markdown => usize::MAX,
                _ => render::review::EVENTS_SHOWN,
            };
            let review = render::review::read(
                &store,
                id,
                &lib,
                &env.config.roles,
                chrono::Utc::now(),
                env.config.zone(),
                cap,
            )?;
            let out = match format {
                Format::Markdown => render::postmortem::render(&review)?,
                _ => render::page::incident(&review, render::page::PageMode::STANDALONE)?,
            };
            print!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
