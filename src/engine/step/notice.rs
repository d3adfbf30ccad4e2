//! Notice steps: one draft per audience and jurisdiction, versioned.

use crate::store::EventKind;
use serde_json::{json, Value as Json};

use super::StepFailure;
use crate::engine::Engine;
use crate::notices;
use crate::runbook::{Jurisdictions, Runbook, Step};
use crate::store::{Incident, NewEvent, NoticeDraft};
use crate::template::lookup;

impl Engine {
    pub(super) async fn notice_step(
        &self,
        inc: &Incident,
        step: &Step,
        spec: &crate::runbook::NoticeSpec,
        ctx: &Json,
        rb: &Runbook,
    ) -> Result<Json, StepFailure> {
        let codes: Vec<Option<String>> = match &spec.jurisdictions {
            None => vec![None],
            Some(Jurisdictions::List(l)) => l.iter().cloned().map(Some).collect(),
            Some(Jurisdictions::Path(p)) => match lookup(ctx, p) {
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|v| {
                        Some(
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect(),
                Some(other) => {
                    return Err(StepFailure::Step(format!(
                        "`notice.jurisdictions` path {p} is {other}, not a list"
                    )))
                }
                None => {
                    return Err(StepFailure::Step(format!(
                        "`notice.jurisdictions` path {p} does not resolve"
                    )))
                }
            },
        };
        // Notices for a stand-in organisation must not reach regulators or
        // customers: a real incident needs the configured one.
        let example = ctx["organization"]["example"] == true;
        if example && !self.settings.drill {
            return Err(StepFailure::Step(
                "no `organization:` in quench.yaml: a real incident's notices need the organisation's name, DPO (name, email, phone) and website; add `organization: {name, dpo: {name, email, phone}, website}` and resume".into(),
            ));
        }
        // The moments recorded so far (a determination's date), for the
        // templates that must print it rather than the declaration time.
        let events = self
            .journal
            .events(&inc.id)
            .await
            .map_err(|e| StepFailure::Engine(e.into()))?;
        let (exposure, moments, _) = crate::timeline::clocks::inputs_of(inc, &events);
        // The steps taken so far, for the notices that give an account of
        // them (Singapore's chronology).
        let snap = crate::store::Snapshot {
            incident: inc.clone(),
            steps: self
                .journal
                .step_runs(&inc.id)
                .await
                .map_err(|e| StepFailure::Engine(e.into()))?,
        };
        let chronology =
            crate::timeline::chronology::chronology(rb, &snap, &events, &self.library.catalog);
        let chronology = serde_json::to_value(chronology).unwrap_or_default();
        let recorded: serde_json::Map<String, Json> = moments
            .recorded
            .iter()
            .map(|(m, at)| (m.as_str().to_string(), json!(at.to_rfc3339())))
            .collect();
        let mut out = Vec::new();
        for code in codes {
            let template = match &spec.template {
                Some(t) => t.clone(),
                None => self
                    .library
                    .notices
                    .pick(&spec.audience, code.as_deref())
                    .ok_or_else(|| {
                        StepFailure::Step(format!(
                            "no notice template for audience {} and jurisdiction {}",
                            spec.audience,
                            code.as_deref().unwrap_or("-")
                        ))
                    })?,
            };
            let mut nctx = ctx.clone();
            nctx["jurisdiction"] = match &code {
                Some(c) => json!({
                    "code": c,
                    "name": notices::jurisdiction_name(c),
                    // The regulator's zone, for times shown in local time.
                    "zone": crate::timeline::clocks::table().zone(c).map(|z| z.name()),
                    // The jurisdiction's own count (input `residents`), when given.
                    "residents": exposure.residents.get(c),
                }),
                None => Json::Null,
            };
            nctx["chronology"] = chronology.clone();
            nctx["notice"] = json!({"audience": spec.audience, "version": 1});
            nctx["moments"] = Json::Object(recorded.clone());
            let mut body = self
                .library
                .notices
                .render_with(&self.templates, &template, &nctx)
                .map_err(|e| StepFailure::Step(e.to_string()))?;
            if example {
                body.insert_str(
                    0,
                    "[DRILL: drafted for the example organisation \"Example Marketing Ltd\"; set `organization:` in quench.yaml for your own]\n\n",
                );
            }
            let draft = NoticeDraft {
                incident: inc.id.clone(),
                step: step.id.clone(),
                audience: spec.audience.clone(),
                jurisdiction: code.clone(),
                template: template.clone(),
                version: 0,
                body,
                drafted_at: self.clock.now(),
                drafted_by: "quench".into(),
                approved_by: None,
                approved_at: None,
            };
            let msg = format!(
                "Drafted {} notice{} from template {template}",
                spec.audience,
                code.as_deref()
                    .map(|c| format!(" for {c}"))
                    .unwrap_or_default()
            );
            let ev = NewEvent::new(EventKind::NoticeDrafted, "quench", msg).step(&step.id);
            let (stored, te) = self
                .journal
                .put_notice(draft, ev)
                .await
                .map_err(|e| StepFailure::Engine(e.into()))?;
            self.announce(&inc.id, Some(te));
            out.push(
                json!({"jurisdiction": code, "template": template, "version": stored.version}),
            );
        }
        Ok(Json::Array(out))
    }
}
