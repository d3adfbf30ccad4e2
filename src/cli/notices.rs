//! `quench notices ID [--export DIR] [--format markdown|text|html|eml]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::remote::Access;
use super::Env;
use crate::notices::lifecycle;
use crate::store::NoticeDraft;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NoticeFormat {
    Markdown,
    Text,
    Html,
    Eml,
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
        NoticeFormat::Text => (format!("{base}.txt"), crate::template::markdown_to_text(&d.body)),
        NoticeFormat::Markdown => (format!("{base}.md"), d.body.clone()),
        NoticeFormat::Html => (
            format!("{base}.html"),
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body><pre style=\"white-space:pre-wrap;font-family:inherit\">{}</pre></body></html>\n",
                html_escape(&base),
                html_escape(&crate::template::markdown_to_text(&d.body))
            ),
        ),
        NoticeFormat::Eml => {
            let text = crate::template::markdown_to_text(&d.body);
            let (subject, body) = match text.strip_prefix("Subject: ") {
                Some(rest) => {
                    let (s, b) = rest.split_once('\n').unwrap_or((rest, ""));
                    (s.trim().to_string(), b.trim_start().to_string())
                }
                None => (format!("Notice: {} ({})", d.audience, d.jurisdiction.as_deref().unwrap_or("all")), text.clone()),
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

/// Editing and sending, each recorded on the timeline.
#[derive(Debug, Default, clap::Args)]
pub struct NoticeChange {
    /// Replace a notice's text with FILE as a new version (which needs a new
    /// approval): AUDIENCE-JURISDICTION=FILE, e.g. customers-EU=edited.md.
    #[arg(long, value_name = "NOTICE=FILE")]
    pub edit: Option<String>,
    /// Record that a notice was sent (only an approved version can be):
    /// AUDIENCE-JURISDICTION, e.g. regulator-EU.
    #[arg(long, value_name = "NOTICE")]
    pub sent: Option<String>,
    /// Who edits or sends; default $USER.
    #[arg(long)]
    pub by: Option<String>,
}

/// The edit or send, here or through the daemon.
async fn change(access: &Access, id: &str, c: &NoticeChange) -> anyhow::Result<()> {
    let local_by = || c.by.clone().unwrap_or_else(super::people::default_actor);
    if let Some(spec) = &c.edit {
        let (key, file) = spec.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--edit {spec}: write NOTICE=FILE, e.g. customers-EU=edited.md")
        })?;
        let body = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let (version, was) = match access {
            Access::Local(store) => {
                let (stored, was, _) =
                    lifecycle::edit(store, id, key, body, &local_by(), None, chrono::Utc::now())
                        .await?;
                (stored.version, was)
            }
            Access::Daemon(r) => {
                let j = r
                    .post(
                        &format!("/api/v1/incidents/{id}/notices/{key}"),
                        &serde_json::json!({"body": body, "by": r.by(c.by.clone())}),
                    )
                    .await?;
                (
                    j["version"].as_u64().unwrap_or_default() as u32,
                    j["replaces"].as_u64().unwrap_or_default() as u32,
                )
            }
        };
        eprintln!(
            "{id}: {key} v{version} stored (v{was} was the latest); approve it before sending"
        );
    }
    if let Some(key) = &c.sent {
        match access {
            Access::Local(store) => {
                lifecycle::mark_sent(store, id, key, &local_by(), None, chrono::Utc::now()).await?;
            }
            Access::Daemon(r) => {
                r.post(
                    &format!("/api/v1/incidents/{id}/notices/{key}/sent"),
                    &serde_json::json!({"by": r.by(c.by.clone())}),
                )
                .await?;
            }
        }
        eprintln!("{id}: {key} recorded as sent");
    }
    Ok(())
}

pub(super) async fn run(
    env: &Env,
    id: &str,
    export: Option<PathBuf>,
    format: NoticeFormat,
    c: NoticeChange,
) -> anyhow::Result<ExitCode> {
    let access = env.access()?;
    if c.edit.is_some() || c.sent.is_some() {
        change(&access, id, &c).await?;
    }
    let drafts: Vec<NoticeDraft> = match &access {
        Access::Local(store) => {
            store.incident(id)?;
            lifecycle::latest(store.notices(id)?)
        }
        Access::Daemon(r) => {
            let j = r.get(&format!("/api/v1/incidents/{id}/notices")).await?;
            serde_json::from_value(j["notices"].clone())?
        }
    };
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
