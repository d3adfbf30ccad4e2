//! Approvals and manual tasks (people), and durable waits.

use crate::store::EventKind;
use std::time::Duration;

use serde_json::json;

use crate::engine::{Engine, EngineError};
use crate::runbook::Step;
use crate::source::duration::duration_text;
use crate::store::{Incident, NewEvent, StepRun, StepStatus};

impl Engine {
    /// Approvals and manual tasks park the incident on a person; drills
    /// resolve them at once and say so.
    pub(super) async fn person_step(
        &self,
        inc: &Incident,
        step: &Step,
        mut run: StepRun,
        kind: &str,
        who: Option<&Vec<String>>,
        text: &str,
    ) -> Result<StepRun, EngineError> {
        let id = inc.id.as_str();
        run.attempts = 1;
        let who_text = who.map(|w| w.join(", ")).unwrap_or_else(|| "anyone".into());
        if self.settings.plan {
            // Assumed yes, so the plan shows what a yes would change.
            let (msg, output) = if kind == "approval" {
                (
                    format!("Would ask {who_text} to approve: {text}"),
                    json!({"approved": true, "by": "plan", "assumed": true}),
                )
            } else {
                (
                    format!("Would ask {who_text} to do: {text}"),
                    json!({"done": true, "by": "plan", "assumed": true}),
                )
            };
            let ev = NewEvent::new(EventKind::PlanWouldAsk, "plan", msg)
                .step(&step.id)
                .data(json!({"kind": kind, "who": who, "text": text}));
            self.record(id, ev).await?;
            return self.finish(id, step, run, Ok(output)).await;
        }
        if self.settings.drill {
            let (event, msg, output) = if kind == "approval" {
                (
                    EventKind::ApprovalGranted,
                    format!("Auto-approved (drill) for {who_text}: {text}"),
                    json!({"approved": true, "by": "drill", "auto": true}),
                )
            } else {
                (
                    EventKind::ManualDone,
                    format!("Auto-completed (drill) for {who_text}: {text}"),
                    json!({"done": true, "by": "drill", "auto": true}),
                )
            };
            let ev = NewEvent::new(event, "drill", msg)
                .step(&step.id)
                .data(json!({"approvers": who, "text": text}));
            self.record(id, ev).await?;
            if kind == "approval" {
                self.approve_notices_before(inc, &step.id, "drill").await?;
                self.apply_exception(id, &step.id, "drill").await?;
            }
            return self.finish(id, step, run, Ok(output)).await;
        }
        run.status = StepStatus::Waiting;
        let (event, msg) = if kind == "approval" {
            (
                EventKind::ApprovalRequested,
                format!("Waiting for approval by {who_text}: {text}"),
            )
        } else {
            (
                EventKind::ManualRequested,
                format!("Waiting for {who_text}: {text}"),
            )
        };
        let ev = NewEvent::new(event, "quench", msg)
            .step(&step.id)
            .data(json!({"approvers": who, "text": text}));
        self.put_step(id, &step.id, &run, Some(ev)).await?;
        Ok(run)
    }

    pub(super) async fn wait_step(
        &self,
        inc: &Incident,
        step: &Step,
        mut run: StepRun,
        d: Duration,
    ) -> Result<StepRun, EngineError> {
        let id = inc.id.as_str();
        if self.settings.plan {
            let ev = NewEvent::new(
                EventKind::PlanWouldWait,
                "plan",
                format!("Would wait {}", duration_text(d)),
            )
            .step(&step.id)
            .data(json!({"wait_ms": d.as_millis() as u64}));
            self.record(id, ev).await?;
            return self
                .finish(id, step, run, Ok(json!({"waited": false})))
                .await;
        }
        let now = self.clock.now();
        let wake_at = match run.wake_at {
            Some(w) => w,
            None => {
                let w = now + chrono::Duration::from_std(d).unwrap_or_default();
                run.wake_at = Some(w);
                run.attempts = 1;
                self.put_step(id, &step.id, &run, None).await?;
                w
            }
        };
        let left = (wake_at - now).to_std().unwrap_or(Duration::ZERO);
        let sleep = if self.settings.drill && left > self.settings.max_wait {
            let ev = NewEvent::new(
                EventKind::WaitCut,
                "drill",
                format!(
                    "Waiting {} instead of {} (drill cap --max-wait)",
                    duration_text(self.settings.max_wait),
                    duration_text(left)
                ),
            )
            .step(&step.id);
            self.record(id, ev).await?;
            self.settings.max_wait
        } else {
            left
        };
        self.clock.sleep(sleep).await;
        self.finish(
            id,
            step,
            run,
            Ok(json!({"waited_ms": sleep.as_millis() as u64})),
        )
        .await
    }
}
