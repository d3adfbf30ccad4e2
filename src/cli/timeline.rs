//! `quench incidents`, `quench status ID`, `quench timeline ID`.

use std::process::ExitCode;

use super::Env;
use crate::store::Store;
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

pub fn kpis(
    env: &Env,
    since: Option<chrono::DateTime<chrono::Utc>>,
    format: KpiFormat,
) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => l,
        Err(d) => return Ok(super::report_diagnostics(&d)),
    };
    let store = Store::open(&env.data_dir)?;
    let rows = render::kpis::rows(&store, &lib.known(), since, chrono::Utc::now())?;
    let k = render::kpis::summarize(&rows, since);
    match if env.json { KpiFormat::Json } else { format } {
        KpiFormat::Text => print!("{}", render::kpis::render_text(&k)),
        KpiFormat::Markdown => print!("{}", render::kpis::render_markdown(&k)),
        KpiFormat::Json => println!("{k}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit_verify(env: &Env, id: &str) -> anyhow::Result<ExitCode> {
    let store = Store::open(&env.data_dir)?;
    let report = store.audit(id)?;
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

pub fn incidents(env: &Env) -> anyhow::Result<ExitCode> {
    let store = Store::open(&env.data_dir)?;
    let list = store.incidents()?;
    if env.json {
        let items: Vec<_> = list
            .iter()
            .map(|i| serde_json::json!({"id": i.id, "runbook": i.runbook, "status": i.status.name(), "declared_at": i.declared_at.to_rfc3339(), "declared_by": i.declared_by, "severity": i.severity, "drill": i.drill}))
            .collect();
        println!("{}", serde_json::json!({"incidents": items}));
    } else if list.is_empty() {
        println!("no incidents in {}", env.data_dir.display());
    } else {
        for i in list {
            println!(
                "{:<20} {:<10} {:<5} {:<24} {}{}",
                i.id,
                i.status.name(),
                i.severity,
                i.runbook,
                i.declared_at.to_rfc3339(),
                if i.drill { " (drill)" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(env: &Env, id: &str) -> anyhow::Result<ExitCode> {
    let store = Store::open(&env.data_dir)?;
    let snap = store.snapshot(id)?;
    if env.json {
        let events = store.events(id)?;
        println!(
            "{}",
            render::incident_json(&snap, &events, chrono::Utc::now())
        );
    } else {
        let i = &snap.incident;
        println!(
            "{} · {} · {} · {}",
            i.id,
            i.runbook,
            i.severity,
            i.status.name()
        );
        for (s, r) in &snap.steps {
            let extra = r
                .error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default();
            println!(
                "  {:<28} {:<9} attempts {}{}",
                s,
                render::step_symbol(r.status),
                r.attempts,
                extra
            );
        }
        let clocks = render::clocks::clocks_json(i, &store.events(id)?, chrono::Utc::now());
        if !clocks.is_empty() {
            println!("Regulatory clocks:");
            print!("{}", render::clocks::render_text(&clocks));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn timeline(env: &Env, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let store = Store::open(&env.data_dir)?;
    let inc = store.incident(id)?;
    let events = store.events(id)?;
    let format = if env.json { Format::Json } else { format };
    match format {
        Format::Text => print!("{}", render::render_text(&inc, &events)),
        Format::Markdown => print!("{}", render::render_markdown(&inc, &events)),
        Format::Html => print!("{}", render::render_html(&inc, &events)),
        Format::Json => println!("{}", render::events_json(&inc, &events)),
    }
    Ok(ExitCode::SUCCESS)
}
