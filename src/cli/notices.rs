//! `quench notices ID [--export DIR] [--format markdown|text|html|eml]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Env;
use crate::store::{NoticeDraft, Store};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NoticeFormat {
    Markdown,
    Text,
    Html,
    Eml,
}

/// The latest version of each (step, audience, jurisdiction).
fn latest(all: Vec<NoticeDraft>) -> Vec<NoticeDraft> {
    let mut by: BTreeMap<(String, String, String), NoticeDraft> = BTreeMap::new();
    for d in all {
        let k = (
            d.step.clone(),
            d.audience.clone(),
            d.jurisdiction.clone().unwrap_or_default(),
        );
        if by.get(&k).is_none_or(|old| old.version < d.version) {
            by.insert(k, d);
        }
    }
    by.into_values().collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(d: &NoticeDraft, f: NoticeFormat) -> (String, String) {
    let base = format!(
        "{}-{}-v{}",
        d.audience,
        d.jurisdiction.as_deref().unwrap_or("all"),
        d.version
    );
    match f {
        NoticeFormat::Text => (format!("{base}.txt"), d.body.clone()),
        NoticeFormat::Markdown => (format!("{base}.md"), d.body.clone()),
        NoticeFormat::Html => (
            format!("{base}.html"),
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body><pre style=\"white-space:pre-wrap;font-family:inherit\">{}</pre></body></html>\n",
                html_escape(&base),
                html_escape(&d.body)
            ),
        ),
        NoticeFormat::Eml => {
            let (subject, body) = match d.body.strip_prefix("Subject: ") {
                Some(rest) => {
                    let (s, b) = rest.split_once('\n').unwrap_or((rest, ""));
                    (s.trim().to_string(), b.trim_start().to_string())
                }
                None => (format!("Notice: {} ({})", d.audience, d.jurisdiction.as_deref().unwrap_or("all")), d.body.clone()),
            };
            (
                format!("{base}.eml"),
                format!(
                    "MIME-Version: 1.0\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-Quench-Incident: {}\r\n\r\n{}",
                    d.incident,
                    body.replace('\n', "\r\n")
                ),
            )
        }
    }
}

pub fn run(
    env: &Env,
    id: &str,
    export: Option<PathBuf>,
    format: NoticeFormat,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(&env.data_dir)?;
    store.incident(id)?;
    let drafts = latest(store.notices(id)?);
    if let Some(dir) = &export {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for d in &drafts {
            let (name, content) = render(d, format);
            let path = dir.join(name);
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if env.json {
        let list: Vec<_> = drafts
            .iter()
            .map(|d| serde_json::json!({"step": d.step, "audience": d.audience, "jurisdiction": d.jurisdiction, "template": d.template, "version": d.version,
                "ready": d.approved_by.is_some(), "approved_by": d.approved_by, "approved_at": d.approved_at.map(|t| t.to_rfc3339()), "drafted_at": d.drafted_at.to_rfc3339()}))
            .collect();
        println!("{}", serde_json::json!({"incident": id, "notices": list}));
    } else if export.is_none() {
        if drafts.is_empty() {
            println!("{id}: no notices drafted");
        }
        for d in &drafts {
            let state = match (&d.approved_by, d.approved_at) {
                (Some(by), Some(at)) => format!("ready (approved by {by} at {})", at.to_rfc3339()),
                _ => "draft (not approved)".to_string(),
            };
            println!(
                "{:<10} {:<6} v{:<3} {:<22} {state}",
                d.audience,
                d.jurisdiction.as_deref().unwrap_or("-"),
                d.version,
                d.template
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
