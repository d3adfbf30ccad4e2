//! Running one step: the dispatch on its kind, and what every kind shares
//! (the template context, recording the outcome). Each kind lives in its
//! own module.

mod action;
mod notice;
mod person;
pub(crate) mod reads;

use crate::store::EventKind;
use action::per_item_when;

use crate::source::duration::duration_text;
use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::{Engine, EngineError, Settings};
use crate::runbook::{Runbook, Step, StepKind};
use crate::store::{Incident, NewEvent, StepRun, StepStatus};
use crate::template::truthy;

/// The template context a step sees: inputs, incident, finished steps, of
/// which only what the step `reads`. The outputs in `take` are moved out of
/// `runs` rather than copied (see [`reads::last_reads`]).
pub(crate) fn context(
    inc: &Incident,
    runs: &mut BTreeMap<String, StepRun>,
    settings: &Settings,
    reads: &reads::Reads,
    take: &std::collections::BTreeSet<String>,
) -> Json {
    let steps: serde_json::Map<String, Json> = runs
        .iter_mut()
        .filter(|(id, _)| reads.step(id))
        .map(|(id, r)| {
            let output = if take.contains(id) {
                std::mem::take(&mut r.output)
            } else {
                r.output.clone()
            };
            // Built by hand: `json!` would serialize (copy) the output.
            let entry = serde_json::Map::from_iter([
                ("output".to_string(), output),
                ("status".to_string(), Json::from(r.status.name())),
            ]);
            (id.clone(), Json::Object(entry))
        })
        .collect();
    let inputs = match &inc.inputs {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| reads.input(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    let mut ctx = json!({
        "incident": {
            "id": inc.id,
            "declared_at": inc.declared_at.to_rfc3339(),
            "declared_by": inc.declared_by,
            "severity": inc.severity,
            "runbook": inc.runbook,
        },
        "organization": settings.organization,
    });
    // Moved in, not through `json!`, which would serialize (copy) them.
    ctx["inputs"] = inputs;
    ctx["steps"] = Json::Object(steps);
    ctx
}

/// The idempotency key of one item of one step of one incident: stable
/// across retries and restarts, distinct between items.
pub fn idempotency_key(incident: &str, step: &str, item: u32) -> String {
    format!("quench-{incident}-{step}-{item}")
}

impl Engine {
    async fn finish(
        &self,
        inc: &str,
        step: &Step,
        mut run: StepRun,
        result: Result<Json, String>,
    ) -> Result<StepRun, EngineError> {
        run.finished_at = Some(self.clock.now());
        let ev = match result {
            Ok(output) => {
                run.status = StepStatus::Succeeded;
                run.output = output;
                run.error = None;
                NewEvent::new(
                    EventKind::StepSucceeded,
                    "quench",
                    format!("{} succeeded", step.id),
                )
            }
            Err(e) => {
                run.status = StepStatus::Failed;
                run.error = Some(self.actions.redact(&e));
                let tail = match step.on_failure {
                    crate::runbook::OnFailure::Continue => {
                        " (on_failure: continue, the incident goes on)"
                    }
                    crate::runbook::OnFailure::Abort => "",
                };
                NewEvent::new(
                    EventKind::StepFailed,
                    "quench",
                    format!(
                        "{} failed: {}{tail}",
                        step.id,
                        run.error.as_deref().unwrap_or("")
                    ),
                )
            }
        };
        self.put_step(inc, &step.id, &run, Some(ev.step(&step.id)))
            .await?;
        Ok(run)
    }

    pub(crate) async fn run_step(
        &self,
        inc: &Incident,
        step: &Step,
        mut run: StepRun,
        ctx: Json,
        rb: &Runbook,
    ) -> Result<StepRun, EngineError> {
        let id = inc.id.as_str();
        let mut start = None;
        if run.status == StepStatus::Pending {
            if let Some(w) = step.when.as_ref().filter(|_| !per_item_when(step)) {
                match self.render(w, &ctx) {
                    Ok(v) if !truthy(&v) => {
                        run.status = StepStatus::Skipped;
                        run.finished_at = Some(self.clock.now());
                        let ev = NewEvent::new(
                            EventKind::StepSkipped,
                            "quench",
                            format!("{} skipped: `when` rendered \"{}\"", step.id, v.trim()),
                        )
                        .step(&step.id);
                        self.put_step(id, &step.id, &run, Some(ev)).await?;
                        return Ok(run);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return self
                            .finish(id, step, run, Err(format!("`when`: {e}")))
                            .await
                    }
                }
            }
            run.status = StepStatus::Running;
            run.started_at = Some(self.clock.now());
            let ev = NewEvent::new(
                EventKind::StepStarted,
                "quench",
                format!("{} started ({})", step.id, describe(step)),
            )
            .step(&step.id);
            // A fan-out records its start with its items, in one write:
            // nothing leaves between the two, and it is one flush fewer
            // before the first call.
            if fans_out_by_api(self, step) {
                start = Some(ev);
            } else {
                self.put_step(id, &step.id, &run, Some(ev)).await?;
            }
        }

        match &step.kind {
            StepKind::Action {
                integration,
                action,
            } => {
                let manual = self
                    .library
                    .catalog
                    .action(integration, action)
                    .and_then(|a| a.manual.clone());
                match manual {
                    Some(ui) => {
                        let text = format!("{integration} offers no API for {action}: {ui}");
                        self.person_step(inc, step, run, "manual", None, &text)
                            .await
                    }
                    None => {
                        self.action_step(inc, step, run, start, ctx, rb, integration, action)
                            .await
                    }
                }
            }
            StepKind::Notice(spec) => {
                let result = self.notice_step(inc, step, spec, &ctx, rb).await;
                match result {
                    Ok(out) => self.finish(id, step, run, Ok(out)).await,
                    Err(StepFailure::Step(e)) => self.finish(id, step, run, Err(e)).await,
                    Err(StepFailure::Engine(e)) => Err(e),
                }
            }
            StepKind::Approval { approvers, prompt } => {
                let text = match prompt.as_deref().map(|p| self.render(p, &ctx)) {
                    Some(Ok(t)) => t,
                    Some(Err(e)) => {
                        return self
                            .finish(id, step, run, Err(format!("`approval.prompt`: {e}")))
                            .await
                    }
                    None => format!("Approve step {}?", step.id),
                };
                self.person_step(inc, step, run, "approval", Some(approvers), &text)
                    .await
            }
            StepKind::Manual {
                assignee,
                instructions,
            } => {
                let text = match self.render(instructions, &ctx) {
                    Ok(t) => t,
                    Err(e) => {
                        return self
                            .finish(id, step, run, Err(format!("`manual.instructions`: {e}")))
                            .await
                    }
                };
                let who = assignee.clone().map(|a| vec![a]);
                self.person_step(inc, step, run, "manual", who.as_ref(), &text)
                    .await
            }
            StepKind::Wait(d) => self.wait_step(inc, step, run, *d).await,
        }
    }
}

/// Why a step body stopped: the step failed (recorded, the incident may go
/// on) or the engine could not record it (the run stops).
pub(crate) enum StepFailure {
    Step(String),
    Engine(EngineError),
}

fn describe(step: &Step) -> String {
    match &step.kind {
        StepKind::Action {
            integration,
            action,
        } => format!("{integration}.{action}"),
        StepKind::Notice(n) => format!("notice for {}", n.audience),
        StepKind::Approval { approvers, .. } => format!("approval by {}", approvers.join(", ")),
        StepKind::Manual { assignee, .. } => format!(
            "manual task for {}",
            assignee.as_deref().unwrap_or("anyone")
        ),
        StepKind::Wait(d) => format!("wait {}", duration_text(*d)),
    }
}

/// An action step with `for_each` whose action has an API (not manual).
fn fans_out_by_api(engine: &Engine, step: &Step) -> bool {
    match &step.kind {
        StepKind::Action {
            integration,
            action,
        } if step.for_each.is_some() => engine
            .library
            .catalog
            .action(integration, action)
            .is_some_and(|a| a.manual.is_none()),
        _ => false,
    }
}
