//! The postmortem draft (`timeline ID --format markdown`, the page's
//! download link): the review's summary, impact, key events, obligations
//! and follow-ups, headings for the team to write, and the full event log.
//! A handlebars registry of its own escapes for Markdown, not HTML.

use std::sync::OnceLock;

use handlebars::Handlebars;

use super::review::Review;

const TEMPLATE: &str = include_str!("templates/postmortem.md.hbs");

pub use crate::template::markdown::escape;

fn registry() -> &'static Handlebars<'static> {
    static R: OnceLock<Handlebars<'static>> = OnceLock::new();
    R.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(escape);
        hb.register_template_string("postmortem", TEMPLATE)
            .unwrap_or_else(|e| panic!("bundled postmortem template is invalid: {e}"));
        hb
    })
}

/// `review` should carry every event (`events_cap: usize::MAX`).
pub fn render(review: &Review) -> Result<String, handlebars::RenderError> {
    registry().render("postmortem", review)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{Folders, Library};
    use crate::store::{
        Incident, IncidentStatus, ItemRun, Snapshot, StepRun, StepStatus, TimelineEvent,
    };
    use crate::timeline::review::{review, Lens, Record};
    use chrono::{DateTime, Utc};
    use serde_json::{json, Value as Json};
    use std::collections::BTreeMap;

    const RB: &str = r#"
version: 1
name: t
inputs:
  tool: { type: string, default: ChatGPT }
  jurisdictions: { type: list, default: [EU] }
steps:
  - id: revoke
    action: salesforce.revoke_token
    with: { token: x }
    phase: contain
  - id: draft
    notice: { audience: regulator, jurisdictions: inputs.jurisdictions }
    needs: [revoke]
    phase: notify
  - id: ok
    approval: { approvers: [legal], prompt: "Tell customers about {{inputs.tool}}?" }
    needs: [draft]
    phase: notify
"#;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ev(
        seq: u64,
        at: &str,
        kind: &str,
        step: Option<&str>,
        actor: &str,
        message: &str,
        data: Json,
    ) -> TimelineEvent {
        TimelineEvent {
            seq,
            at: t(at),
            kind: kind.into(),
            step: step.map(str::to_string),
            item: None,
            actor: actor.into(),
            message: message.into(),
            data,
        }
    }

    #[test]
    fn the_draft_has_every_section_in_order_from_the_record() {
        let lib = Library::load(&Folders::default()).unwrap();
        let rb = crate::runbook::load("t.yaml", RB, &lib.known()).unwrap();
        let run = |from: &str, to: Option<&str>, status| StepRun {
            status,
            attempts: 1,
            started_at: Some(t(from)),
            finished_at: to.map(t),
            ..StepRun::default()
        };
        let tool = "Jasper|<b>x</b>";
        let snap = Snapshot {
            incident: Incident {
                id: "INC-1".into(),
                runbook: "t".into(),
                title: "Exposure".into(),
                status: IncidentStatus::Waiting,
                declared_at: t("2026-03-02T09:00:00Z"),
                declared_by: "U0RESP".into(),
                severity: crate::store::Severity::Sev1,
                inputs: json!({"tool": tool, "jurisdictions": ["EU"], "data_elements": ["name", "email"], "records": 1200}),
                drill: false,
                runbook_file: "t.yaml".into(),
                runbook_source: RB.into(),
                finished_at: None,
            },
            steps: [
                (
                    "revoke",
                    run(
                        "2026-03-02T09:00:01Z",
                        Some("2026-03-02T09:00:03Z"),
                        StepStatus::Succeeded,
                    ),
                ),
                (
                    "draft",
                    run(
                        "2026-03-02T09:00:03Z",
                        Some("2026-03-02T09:00:04Z"),
                        StepStatus::Succeeded,
                    ),
                ),
                ("ok", run("2026-03-02T09:00:04Z", None, StepStatus::Waiting)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        };
        let events = vec![
            ev(
                1,
                "2026-03-02T09:00:00Z",
                "incident.declared",
                None,
                "U0RESP",
                "Declared",
                json!({}),
            ),
            ev(
                2,
                "2026-03-02T09:00:03Z",
                "item.succeeded",
                Some("revoke"),
                "quench",
                "revoke: done (HTTP 200)",
                json!({"already_done": false}),
            ),
            ev(
                3,
                "2026-03-02T09:00:04Z",
                "notice.drafted",
                Some("draft"),
                "quench",
                "Drafted",
                json!({"audience": "regulator", "jurisdiction": "EU", "version": 1}),
            ),
            ev(
                4,
                "2026-03-02T09:00:05Z",
                "approval.requested",
                Some("ok"),
                "quench",
                &format!("Waiting for legal: Tell customers about {tool}?"),
                json!({"approvers": ["legal"], "text": format!("Tell customers about {tool}?")}),
            ),
            ev(
                5,
                "2026-03-03T10:00:00Z",
                "notice.sent",
                Some("draft"),
                "U0LEGAL1",
                "sent",
                json!({"audience": "regulator", "jurisdiction": "EU", "version": 1}),
            ),
        ];
        let rec = Record {
            snap,
            events,
            notices: vec![],
            items: BTreeMap::from([(
                "revoke".to_string(),
                BTreeMap::from([(
                    0u32,
                    ItemRun {
                        status: StepStatus::Succeeded,
                        attempts: 1,
                        ..ItemRun::pending("k".into())
                    },
                )]),
            )]),
        };
        let roles = BTreeMap::from([("legal".to_string(), vec!["U0LEGAL1".to_string()])]);
        let lens = Lens {
            runbook: Some(&rb),
            catalog: &lib.catalog,
            roles: &roles,
            now: t("2026-03-04T09:00:00Z"),
            zone: "Europe/Berlin".parse().unwrap(),
            events_cap: usize::MAX,
        };
        let md = render(&review(&rec, &lens)).unwrap();
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            headings,
            [
                "## Summary",
                "## Impact",
                "## Key events",
                "## Regulatory obligations",
                "## Notices",
                "## What went well",
                "## What to improve",
                "## Follow-ups",
                "## Appendix: the full event log",
            ]
        );
        let section = |name: &str| {
            let start = md.find(&format!("## {name}\n")).unwrap();
            let rest = &md[start + 3..];
            rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
        };
        let summary = section("Summary");
        assert!(summary.contains("**Time to contain:** 3 s"), "{summary}");
        assert!(
            summary.contains("  - EU regulator: 1 d 1 h (sent by U0LEGAL1)"),
            "{summary}"
        );
        assert!(
            summary.contains("**Declared:** 2026-03-02 10:00:00 CET by U0RESP"),
            "{summary}"
        );
        let impact = section("Impact");
        assert!(
            impact.contains("**Tool:** Jasper\\|&lt;b&gt;x&lt;/b&gt;"),
            "{impact}"
        );
        assert!(impact.contains("1200 records"), "{impact}");
        assert!(
            impact.contains("| Salesforce Platform | 1 (Revoke an OAuth grant) | - |"),
            "{impact}"
        );
        let key = section("Key events");
        assert!(key.contains("| 2026-03-02 10:00:00 CET | Became aware of the breach; incident INC-1 declared by U0RESP |"), "{key}");
        let law = section("Regulatory obligations");
        assert!(law.contains("| EU | authority | GDPR Art. 33"), "{law}");
        assert!(
            law.contains("met 2026-03-03 11:00:00 CET"),
            "the notice sent before the 72 h: {law}"
        );
        let follow = section("Follow-ups");
        assert!(
            follow.contains("- [ ] approval ok (legal (U0LEGAL1)): Tell customers about Jasper\\|&lt;b&gt;x&lt;/b&gt;?"),
            "{follow}"
        );
        let appendix = section("Appendix: the full event log");
        let rows = appendix
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
            .count();
        assert_eq!(rows, rec.events.len(), "{appendix}");
        assert!(
            appendix.contains(
                "| 4 | 2026-03-02 10:00:05 CET | +5 s | approval.requested | ok | quench |"
            ),
            "{appendix}"
        );
    }

    #[test]
    fn markdown_escaping_keeps_values_as_text() {
        assert_eq!(
            escape("a|b <script> *x* [l](u) `c`\nnext #1 _y_"),
            "a\\|b &lt;script&gt; \\*x\\* \\[l\\](u) \\`c\\` next \\#1 \\_y\\_"
        );
    }
}
