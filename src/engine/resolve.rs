//! People resolving parked steps: approvals (yes or no) and manual tasks.
//!
//! Only a member of one of the step's approver roles may decide an
//! approval; a refused attempt is itself recorded, with who tried. An
//! approval also makes the notices drafted before it ready: the timeline
//! says who approved which version, and when.

use serde_json::json;

use super::{Engine, EngineError};
use crate::runbook::StepKind;
use crate::store::EventKind;
use crate::store::{Incident, NewEvent, StepStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Done,
}

#[derive(Debug, Clone)]
pub struct Resolution {
    pub step: String,
    pub decision: Decision,
    /// Whose decision it is: their roles are checked.
    pub by: String,
    /// An admin deciding for `by` (recorded as "via for by").
    pub via: Option<String>,
    /// The label of the credential the decision came with (see `NewEvent::token`).
    pub token: Option<String>,
    pub note: Option<String>,
}

impl Resolution {
    /// The actor the timeline records.
    pub fn actor(&self) -> String {
        actor_of(&self.by, self.via.as_deref())
    }
}

/// "A for B" when A acts for B; else B.
pub fn actor_of(by: &str, via: Option<&str>) -> String {
    match via {
        Some(v) if v != by => format!("{v} for {by}"),
        _ => by.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("incident {id} has no step \"{step}\"")]
    NoStep { id: String, step: String },
    #[error("step \"{step}\" is {kind}, not {expected}; {fix}")]
    WrongKind {
        step: String,
        kind: &'static str,
        expected: &'static str,
        /// What to do instead.
        fix: String,
    },
    #[error("step \"{step}\" is {status}, not waiting: nothing to resolve")]
    NotWaiting { step: String, status: &'static str },
    #[error("step \"{step}\" was already decided: {first} (at {at}); your decision was not recorded as one")]
    AlreadyDecided {
        step: String,
        first: String,
        at: String,
    },
    #[error("{by} may not decide \"{step}\": it needs a member of {roles}; add them under `roles:` in quench.yaml")]
    Forbidden {
        by: String,
        step: String,
        roles: String,
    },
}

impl From<crate::store::StoreError> for ResolveError {
    fn from(e: crate::store::StoreError) -> Self {
        ResolveError::Engine(e.into())
    }
}

impl Engine {
    fn holds_any(&self, by: &str, roles: &[String]) -> bool {
        roles.iter().any(|r| {
            self.settings
                .roles
                .get(r)
                .is_some_and(|members| members.iter().any(|m| m == by))
        })
    }

    /// Resolves a waiting approval or manual step. The caller then runs the
    /// incident on (`Engine::run`).
    pub async fn resolve(&self, id: &str, res: Resolution) -> Result<(), ResolveError> {
        let actor = res.actor();
        let inc = self.journal.incident(id).await?;
        let rb = self.runbook_of(&inc)?;
        let step = rb.step(&res.step).ok_or_else(|| ResolveError::NoStep {
            id: id.into(),
            step: res.step.clone(),
        })?;
        let now = self.clock.now();
        let manual_action = match &step.kind {
            StepKind::Action {
                integration,
                action,
            } => self
                .library
                .catalog
                .action(integration, action)
                .is_some_and(|a| a.manual.is_some()),
            _ => false,
        };
        let (is_approval, roles): (bool, Vec<String>) = match &step.kind {
            StepKind::Approval { approvers, .. } => (true, approvers.clone()),
            StepKind::Manual { assignee, .. } => (false, assignee.clone().into_iter().collect()),
            _ if manual_action => (false, vec![]),
            other => {
                // Nobody resolves it: it runs on its own.
                return Err(ResolveError::WrongKind {
                    fix: format!(
                        "it runs on its own, and no one approves or completes it; `quench status {id}` shows where it is"
                    ),
                    step: res.step,
                    kind: other.name(),
                    expected: "an approval or manual step",
                });
            }
        };
        match (is_approval, res.decision) {
            (true, Decision::Done) => {
                return Err(ResolveError::WrongKind {
                    fix: format!(
                        "use `quench approve {id} {}` (with --reject to say no)",
                        res.step
                    ),
                    step: res.step,
                    kind: "approval",
                    expected: "a manual step",
                })
            }
            (false, Decision::Approve | Decision::Reject) => {
                return Err(ResolveError::WrongKind {
                    fix: format!("use `quench done {id} {}`", res.step),
                    step: res.step,
                    kind: "manual",
                    expected: "an approval",
                })
            }
            _ => {}
        }
        // From here to the step's new state, one decision at a time.
        let _deciding = self.deciding.lock().await;
        let mut run = self.journal.step_run(id, &res.step).await?;
        if run.status != StepStatus::Waiting {
            // Lost a race, or late: say who decided, and keep the attempt.
            let first = self.journal.events(id).await?.into_iter().rev().find(|e| {
                e.step.as_deref() == Some(res.step.as_str())
                    && matches!(
                        EventKind::parse(&e.kind),
                        Some(
                            EventKind::ApprovalGranted
                                | EventKind::ApprovalRejected
                                | EventKind::ManualDone
                        )
                    )
            });
            if let Some(first) = first {
                let tried = match res.decision {
                    Decision::Approve => "approve",
                    Decision::Reject => "reject",
                    Decision::Done => "mark done",
                };
                let ev = NewEvent::new(
                    EventKind::DecisionLate,
                    &actor,
                    format!(
                        "{} tried to {tried} {} after it was decided ({})",
                        actor, res.step, first.message
                    ),
                )
                .step(&res.step)
                .token(res.token.as_deref());
                self.record(id, ev).await?;
                return Err(ResolveError::AlreadyDecided {
                    step: res.step,
                    first: first.message,
                    at: first.at.to_rfc3339(),
                });
            }
            return Err(ResolveError::NotWaiting {
                step: res.step,
                status: run.status.name(),
            });
        }
        // Approvals need a role holder. A manual task's assignee is enforced
        // only when that role is configured (it may name a person instead).
        let enforce = is_approval || roles.iter().any(|r| self.settings.roles.contains_key(r));
        if enforce && !self.holds_any(&res.by, &roles) {
            let ev = NewEvent::new(
                EventKind::ApprovalRefused,
                &actor,
                format!(
                    "{} tried to resolve {} without the role {}",
                    actor,
                    res.step,
                    roles.join(" or ")
                ),
            )
            .step(&res.step)
            .token(res.token.as_deref());
            self.record(id, ev).await?;
            return Err(ResolveError::Forbidden {
                by: res.by,
                step: res.step,
                roles: roles.join(" or "),
            });
        }
        let note = res.note.clone().unwrap_or_default();
        let (kind, msg, output) = match res.decision {
            Decision::Approve => (
                EventKind::ApprovalGranted,
                format!("Approved by {}{}", actor, suffix(&note)),
                json!({"approved": true, "by": res.by, "via": res.via, "note": res.note}),
            ),
            Decision::Reject => (
                EventKind::ApprovalRejected,
                format!("Rejected by {}{}", actor, suffix(&note)),
                json!({"approved": false, "by": res.by, "via": res.via, "note": res.note}),
            ),
            Decision::Done => (
                EventKind::ManualDone,
                format!("Done by {}{}", actor, suffix(&note)),
                json!({"done": true, "by": res.by, "via": res.via, "note": res.note}),
            ),
        };
        self.record(
            id,
            NewEvent::new(kind, &actor, msg)
                .step(&res.step)
                .token(res.token.as_deref()),
        )
        .await?;
        if res.decision == Decision::Approve {
            self.approve_notices_before(&inc, &res.step, &actor).await?;
            self.apply_exception(id, &res.step, &actor).await?;
        }
        run.status = StepStatus::Succeeded;
        run.finished_at = Some(now);
        run.output = output;
        let ev = NewEvent::new(
            EventKind::StepSucceeded,
            &actor,
            format!("{} succeeded", res.step),
        )
        .step(&res.step);
        self.put_step(id, &res.step, &run, Some(ev)).await?;
        // A waiting incident runs again; `run` decides its new status.
        Ok(())
    }

    /// An approval step named after a rule-table exception (step
    /// `inadvertent-disclosure` for `inadvertent_disclosure`) is that
    /// decision: a yes applies the exception to the regulatory clocks.
    pub(crate) async fn apply_exception(
        &self,
        id: &str,
        step: &str,
        by: &str,
    ) -> Result<(), EngineError> {
        let name = step.replace('-', "_");
        let known = crate::timeline::clocks::table().rules.iter().any(|r| {
            r.exception.as_deref() == Some(name.as_str())
                || r.on_exception.as_deref() == Some(name.as_str())
        });
        if !known {
            return Ok(());
        }
        let ev = NewEvent::new(
            EventKind::ExceptionApplied,
            by,
            format!("Exception {name} applies (decided by {by} in step {step})"),
        )
        .step(step)
        .data(json!({"exception": name}));
        self.record(id, ev).await?;
        Ok(())
    }

    /// Marks the latest drafts of every notice step this approval depends
    /// on as approved by `by`.
    pub(crate) async fn approve_notices_before(
        &self,
        inc: &Incident,
        step: &str,
        by: &str,
    ) -> Result<(), EngineError> {
        let rb = self.runbook_of(inc)?;
        let notice_steps: Vec<String> = crate::runbook::graph::Graph::new(&rb)
            .ancestors(step)
            .into_iter()
            .filter(|d| {
                rb.step(d)
                    .is_some_and(|s| matches!(s.kind, StepKind::Notice(_)))
            })
            .map(str::to_string)
            .collect();
        if notice_steps.is_empty() {
            return Ok(());
        }
        for te in self
            .journal
            .approve_notices(&inc.id, &notice_steps, by, self.clock.now())
            .await?
        {
            self.announce(&inc.id, Some(te));
        }
        Ok(())
    }
}

fn suffix(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(": {note}")
    }
}
