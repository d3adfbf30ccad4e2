//! The incident's scheduling rules, pure: from the runbook and the recorded
//! step runs, which steps start now, which are skipped and why, and what
//! the incident's status is once nothing more can start. No store, no
//! clock, no HTTP: the driver (`Engine::run`) records what this decides
//! and performs it, and the rules are tested here on plain values.

use crate::store::EventKind;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;

use crate::runbook::{OnFailure, Runbook, Step};
use crate::store::{IncidentStatus, NewEvent, StepRun, StepStatus};

/// What the driver does with a step next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Run it: a pending step whose needs are final, or one that was in
    /// flight when the process stopped (picked up again with its keys).
    Start(String),
    /// Record it as skipped; it never runs.
    Skip { step: String, why: Skip },
}

/// Why a pending step is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A step it needs failed under `on_failure: abort`, or was itself
    /// skipped for that reason. Recorded with the reason as the step's
    /// `error`, so a resume (and the steps after it) see the same.
    Blocked(String),
    /// In a plan: it reads what this write would have changed, and a plan
    /// changes nothing, so it has nothing true to read.
    AfterWrite(String),
}

impl Skip {
    /// The step's recorded `error`: only a block is one.
    pub fn error(&self) -> Option<String> {
        match self {
            Skip::Blocked(why) => Some(why.clone()),
            Skip::AfterWrite(_) => None,
        }
    }

    pub fn event(&self, step: &str) -> NewEvent {
        match self {
            Skip::Blocked(why) => NewEvent::new(
                EventKind::StepSkipped,
                "quench",
                format!("{step} skipped: {why}"),
            ),
            Skip::AfterWrite(write) => NewEvent::new(
                EventKind::PlanAfterWrite,
                "plan",
                format!("{step} would run after {write}"),
            )
            .data(json!({ "after": write })),
        }
        .step(step)
    }
}

/// What can be decided now, in runbook order. `active` are the steps the
/// driver is running. Skipping a step can make others skippable or
/// startable, so this decides until nothing more changes, on its own view
/// of the skips it chose: the driver applies the moves in order.
pub fn moves(
    rb: &Runbook,
    runs: &BTreeMap<String, StepRun>,
    active: &HashSet<String>,
    after_write: &BTreeMap<String, String>,
) -> Vec<Move> {
    // step -> (status, blocked): what `runs` says, overlaid with the skips
    // decided in this call.
    let mut skipped: HashMap<&str, bool> = HashMap::new();
    let mut started: HashSet<&str> = HashSet::new();
    let state = |skipped: &HashMap<&str, bool>, id: &str| -> Option<(StepStatus, bool)> {
        if let Some(blocked) = skipped.get(id) {
            return Some((StepStatus::Skipped, *blocked));
        }
        runs.get(id).map(|r| (r.status, r.error.is_some()))
    };
    let mut out = Vec::new();
    let mut changed = true;
    while changed {
        changed = false;
        for s in &rb.steps {
            if active.contains(&s.id) || started.contains(s.id.as_str()) {
                continue;
            }
            let status = state(&skipped, &s.id).map_or(StepStatus::Pending, |(st, _)| st);
            let startable = match status {
                StepStatus::Pending => s
                    .needs
                    .iter()
                    .all(|n| state(&skipped, n).is_some_and(|(st, _)| st.is_final())),
                StepStatus::Running => true,
                _ => false,
            };
            if !startable {
                continue;
            }
            changed = true;
            if status == StepStatus::Pending {
                let skip = match after_write.get(&s.id) {
                    Some(write) => Some(Skip::AfterWrite(write.clone())),
                    None => blocked_by(rb, |n| state(&skipped, n), s).map(Skip::Blocked),
                };
                if let Some(why) = skip {
                    skipped.insert(&s.id, matches!(why, Skip::Blocked(_)));
                    out.push(Move::Skip {
                        step: s.id.clone(),
                        why,
                    });
                    continue;
                }
            }
            started.insert(&s.id);
            out.push(Move::Start(s.id.clone()));
        }
    }
    out
}

/// Why a pending step must not run: a step it needs failed under
/// `on_failure: abort`, or was skipped for that reason.
fn blocked_by(
    rb: &Runbook,
    state: impl Fn(&str) -> Option<(StepStatus, bool)>,
    step: &Step,
) -> Option<String> {
    step.needs.iter().find_map(|n| {
        let (status, blocked) = state(n)?;
        match status {
            StepStatus::Failed if rb.step(n).is_some_and(|s| s.on_failure == OnFailure::Abort) => {
                Some(format!("needs {n}, which failed (on_failure: abort)"))
            }
            StepStatus::Skipped if blocked => Some(format!(
                "needs {n}, which was skipped because a step it needs failed"
            )),
            _ => None,
        }
    })
}

/// step -> the write it (transitively) needs, for every step that needs
/// one: in a plan these would run after that write.
pub fn after_writes(rb: &Runbook, is_write: impl Fn(&Step) -> bool) -> BTreeMap<String, String> {
    fn first_write(
        rb: &Runbook,
        is_write: &dyn Fn(&Step) -> bool,
        id: &str,
        memo: &mut BTreeMap<String, Option<String>>,
    ) -> Option<String> {
        if let Some(m) = memo.get(id) {
            return m.clone();
        }
        // Cycles are refused at load; the placeholder only ends recursion.
        memo.insert(id.to_string(), None);
        let found = rb.step(id).and_then(|s| {
            s.needs.iter().find_map(|n| {
                let need = rb.step(n)?;
                if is_write(need) {
                    Some(n.clone())
                } else {
                    first_write(rb, is_write, n, memo)
                }
            })
        });
        memo.insert(id.to_string(), found.clone());
        found
    }
    let mut memo = BTreeMap::new();
    rb.steps
        .iter()
        .filter_map(|s| first_write(rb, &is_write, &s.id, &mut memo).map(|w| (s.id.clone(), w)))
        .collect()
}

/// Where the incident stands once nothing more can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step is final and none failed under abort (`failed` ran under
    /// `on_failure: continue`).
    Completed { failed: Vec<String> },
    /// Every step is final and these failed under abort; `skipped` were
    /// skipped because of them.
    Failed {
        aborting: Vec<String>,
        first_error: String,
        skipped: Vec<String>,
    },
    /// Steps are parked on people. A failure under abort no longer stops
    /// the rest, so `aborting` says the incident will end failed.
    Waiting {
        parked: Vec<String>,
        aborting: Vec<String>,
    },
}

pub fn outcome(rb: &Runbook, runs: &BTreeMap<String, StepRun>) -> Outcome {
    let with = |status: StepStatus| -> Vec<String> {
        runs.iter()
            .filter(|(_, r)| r.status == status)
            .map(|(s, _)| s.clone())
            .collect()
    };
    let all_final = rb
        .steps
        .iter()
        .all(|s| runs.get(&s.id).is_some_and(|r| r.status.is_final()));
    let aborting: Vec<String> = rb
        .steps
        .iter()
        .filter(|s| s.on_failure == OnFailure::Abort)
        .filter(|s| {
            runs.get(&s.id)
                .is_some_and(|r| r.status == StepStatus::Failed)
        })
        .map(|s| s.id.clone())
        .collect();
    match (all_final, aborting.first()) {
        (true, Some(first)) => Outcome::Failed {
            first_error: runs
                .get(first)
                .and_then(|r| r.error.clone())
                .unwrap_or_default(),
            skipped: runs
                .iter()
                .filter(|(_, r)| r.status == StepStatus::Skipped && r.error.is_some())
                .map(|(s, _)| s.clone())
                .collect(),
            aborting,
        },
        (true, None) => Outcome::Completed {
            failed: with(StepStatus::Failed),
        },
        (false, _) => Outcome::Waiting {
            parked: with(StepStatus::Waiting),
            aborting,
        },
    }
}

impl Outcome {
    pub fn status(&self) -> IncidentStatus {
        match self {
            Outcome::Completed { .. } => IncidentStatus::Completed,
            Outcome::Failed { .. } => IncidentStatus::Failed,
            Outcome::Waiting { .. } => IncidentStatus::Waiting,
        }
    }

    /// The event that records it.
    pub fn event(&self) -> NewEvent {
        match self {
            Outcome::Failed {
                aborting,
                first_error,
                skipped,
            } => {
                let first = &aborting[0];
                let tail = if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped as dependents: {}", skipped.join(", "))
                };
                NewEvent::new(
                    EventKind::IncidentFailed,
                    "quench",
                    format!(
                        "Failed: {} failed under on_failure: abort (first: {first}: {first_error}); every step that did not depend on {} ran to the end{tail}",
                        aborting.join(", "),
                        if aborting.len() > 1 { "them" } else { "it" },
                    ),
                )
                .step(first)
                .data(json!({"failed": aborting, "skipped": skipped}))
            }
            Outcome::Completed { failed } => {
                let msg = if failed.is_empty() {
                    "Completed: every step finished".to_string()
                } else {
                    format!(
                        "Completed with failed steps under on_failure: continue: {}",
                        failed.join(", ")
                    )
                };
                NewEvent::new(EventKind::IncidentCompleted, "quench", msg)
            }
            Outcome::Waiting { parked, aborting } => {
                let doomed = if aborting.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} failed under on_failure: abort, so the incident will end failed",
                        aborting.join(", ")
                    )
                };
                NewEvent::new(
                    EventKind::IncidentWaiting,
                    "quench",
                    format!("Waiting on people: {}{doomed}", parked.join(", ")),
                )
                .data(json!({ "failed": aborting }))
            }
        }
    }

    /// Whether the outcome is news, given the incident's status before the
    /// run and the last `incident.waiting` message recorded. A rerun that
    /// parks on the same people again (a resume, a kick that changed
    /// nothing) says nothing new: one `incident.waiting` per distinct wait.
    pub fn is_news(&self, before: IncidentStatus, last_wait: Option<&str>) -> bool {
        let same_wait = self.status() == IncidentStatus::Waiting
            && before == IncidentStatus::Waiting
            && last_wait == Some(self.event().message.as_str());
        !same_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::StepKind;

    /// A runbook of manual steps: (id, needs, aborts).
    fn rb(steps: &[(&str, &[&str], bool)]) -> Runbook {
        Runbook {
            name: "t".into(),
            title: "t".into(),
            inputs: vec![],
            steps: steps
                .iter()
                .map(|(id, needs, abort)| Step {
                    id: id.to_string(),
                    kind: StepKind::Manual {
                        assignee: None,
                        instructions: String::new(),
                    },
                    needs: needs.iter().map(|n| n.to_string()).collect(),
                    for_each: None,
                    concurrency: 1,
                    with: serde_json::Value::Null,
                    when: None,
                    retry: Default::default(),
                    timeout: None,
                    on_failure: if *abort {
                        OnFailure::Abort
                    } else {
                        OnFailure::Continue
                    },
                    phase: None,
                    description: None,
                    verify: None,
                })
                .collect(),
        }
    }

    fn runs(states: &[(&str, StepStatus, Option<&str>)]) -> BTreeMap<String, StepRun> {
        states
            .iter()
            .map(|(id, status, error)| {
                (
                    id.to_string(),
                    StepRun {
                        status: *status,
                        error: error.map(str::to_string),
                        ..StepRun::default()
                    },
                )
            })
            .collect()
    }

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn start(id: &str) -> Move {
        Move::Start(id.to_string())
    }

    #[test]
    fn roots_start_together_and_their_dependents_wait() {
        let rb = rb(&[("a", &[], true), ("b", &[], true), ("c", &["a", "b"], true)]);
        let m = moves(&rb, &runs(&[]), &HashSet::new(), &none());
        assert_eq!(m, vec![start("a"), start("b")]);
        // a done, b still running (active): c still waits for b.
        let r = runs(&[
            ("a", StepStatus::Succeeded, None),
            ("b", StepStatus::Running, None),
        ]);
        let active = HashSet::from(["b".to_string()]);
        assert_eq!(moves(&rb, &r, &active, &none()), vec![]);
        let r = runs(&[
            ("a", StepStatus::Succeeded, None),
            ("b", StepStatus::Skipped, None),
        ]);
        assert_eq!(moves(&rb, &r, &HashSet::new(), &none()), vec![start("c")]);
    }

    #[test]
    fn a_step_in_flight_at_a_crash_is_picked_up_again_but_a_parked_one_is_not() {
        let rb = rb(&[("a", &[], true), ("b", &[], true)]);
        let r = runs(&[
            ("a", StepStatus::Running, None),
            ("b", StepStatus::Waiting, None),
        ]);
        assert_eq!(moves(&rb, &r, &HashSet::new(), &none()), vec![start("a")]);
    }

    #[test]
    fn an_abort_skips_what_depends_on_it_transitively_and_nothing_else() {
        // c needs the failed abort step a; d needs c (blocked in turn);
        // e needs the failed continue step b and runs; f is unrelated.
        let rb = rb(&[
            ("a", &[], true),
            ("b", &[], false),
            ("d", &["c"], true),
            ("c", &["a"], true),
            ("e", &["b"], true),
            ("f", &[], true),
        ]);
        let r = runs(&[
            ("a", StepStatus::Failed, Some("HTTP 500")),
            ("b", StepStatus::Failed, Some("HTTP 500")),
        ]);
        let m = moves(&rb, &r, &HashSet::new(), &none());
        assert_eq!(
            m,
            vec![
                Move::Skip {
                    step: "c".into(),
                    why: Skip::Blocked("needs a, which failed (on_failure: abort)".into())
                },
                start("e"),
                start("f"),
                // d comes before c in the file: decided on the next pass.
                Move::Skip {
                    step: "d".into(),
                    why: Skip::Blocked(
                        "needs c, which was skipped because a step it needs failed".into()
                    )
                },
            ]
        );
    }

    #[test]
    fn a_step_skipped_by_when_does_not_block_its_dependents() {
        let rb = rb(&[("a", &[], true), ("b", &["a"], true)]);
        let r = runs(&[("a", StepStatus::Skipped, None)]);
        assert_eq!(moves(&rb, &r, &HashSet::new(), &none()), vec![start("b")]);
    }

    #[test]
    fn a_plan_skips_what_reads_a_write_and_runs_the_rest() {
        let rb = rb(&[
            ("list", &[], true),
            ("revoke", &["list"], true),
            ("verify", &["revoke"], true),
            ("tell", &["verify"], true),
        ]);
        let after = after_writes(&rb, |s| s.id == "revoke");
        assert_eq!(
            after,
            BTreeMap::from([
                ("verify".to_string(), "revoke".to_string()),
                ("tell".to_string(), "revoke".to_string())
            ])
        );
        let r = runs(&[
            ("list", StepStatus::Succeeded, None),
            ("revoke", StepStatus::Succeeded, None),
        ]);
        let m = moves(&rb, &r, &HashSet::new(), &after);
        assert_eq!(
            m,
            vec![
                Move::Skip {
                    step: "verify".into(),
                    why: Skip::AfterWrite("revoke".into())
                },
                Move::Skip {
                    step: "tell".into(),
                    why: Skip::AfterWrite("revoke".into())
                },
            ]
        );
        // A plan's skip is not a block: it is recorded without an error.
        assert_eq!(Skip::AfterWrite("revoke".into()).error(), None);
    }

    #[test]
    fn the_outcome_of_final_runs() {
        let rb = rb(&[("a", &[], true), ("b", &[], false), ("c", &["a"], true)]);
        let done = runs(&[
            ("a", StepStatus::Succeeded, None),
            ("b", StepStatus::Failed, Some("HTTP 500")),
            ("c", StepStatus::Succeeded, None),
        ]);
        let o = outcome(&rb, &done);
        assert_eq!(
            o,
            Outcome::Completed {
                failed: vec!["b".into()]
            }
        );
        assert_eq!(o.status(), IncidentStatus::Completed);
        assert_eq!(
            o.event().message,
            "Completed with failed steps under on_failure: continue: b"
        );

        let failed = runs(&[
            ("a", StepStatus::Failed, Some("HTTP 500")),
            ("b", StepStatus::Succeeded, None),
            ("c", StepStatus::Skipped, Some("needs a")),
        ]);
        let o = outcome(&rb, &failed);
        assert_eq!(
            o,
            Outcome::Failed {
                aborting: vec!["a".into()],
                first_error: "HTTP 500".into(),
                skipped: vec!["c".into()]
            }
        );
        assert!(o.event().message.contains("skipped as dependents: c"));
    }

    #[test]
    fn a_wait_after_an_abort_says_the_incident_will_fail() {
        let rb = rb(&[("a", &[], true), ("b", &[], true)]);
        let r = runs(&[
            ("a", StepStatus::Failed, Some("x")),
            ("b", StepStatus::Waiting, None),
        ]);
        let o = outcome(&rb, &r);
        assert_eq!(o.status(), IncidentStatus::Waiting);
        assert_eq!(
            o.event().message,
            "Waiting on people: b; a failed under on_failure: abort, so the incident will end failed"
        );
    }

    #[test]
    fn the_same_wait_again_is_not_news_but_a_new_one_is() {
        let rb = rb(&[("a", &[], true), ("b", &[], true)]);
        let o = outcome(&rb, &runs(&[("a", StepStatus::Waiting, None)]));
        let said = o.event().message;
        assert!(o.is_news(IncidentStatus::Running, None));
        assert!(!o.is_news(IncidentStatus::Waiting, Some(&said)));
        assert!(o.is_news(IncidentStatus::Waiting, Some("Waiting on people: b")));
        let done = outcome(
            &rb,
            &runs(&[
                ("a", StepStatus::Succeeded, None),
                ("b", StepStatus::Skipped, None),
            ]),
        );
        assert!(done.is_news(IncidentStatus::Waiting, Some(&said)));
    }
}
