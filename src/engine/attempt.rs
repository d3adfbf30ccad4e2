//! One item's attempts, pure: from the recorded run, an attempt's result,
//! the attempt count and the step's retry policy, the item's next state and
//! the event that records it. The driver (`engine::step::action`) writes
//! each state before it acts on it and performs the call and the sleep.

use crate::store::EventKind;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::retry;
use crate::integrations::{CallError, Success};
use crate::runbook::RetryPolicy;
use crate::source::duration::duration_text;
use crate::store::{ItemRun, NewEvent, StepStatus};

/// Which item of which step, calling what: names it in events.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub step: &'a str,
    /// The item's index when the step fans out (`None`: a single call).
    pub index: Option<u32>,
    pub integration: &'a str,
    pub action: &'a str,
}

impl Item<'_> {
    pub fn label(&self) -> String {
        match self.index {
            Some(i) => format!("{} item {i}", self.step),
            None => self.step.to_string(),
        }
    }

    fn event(&self, kind: EventKind, message: String) -> NewEvent {
        NewEvent::new(kind, "quench", message)
            .step(self.step)
            .item(self.index)
    }
}

/// How many attempts the item may make in all. An attempt cut short by a
/// crash has an unknown outcome: it gets one more try even when the budget
/// is spent.
pub fn budget(policy: &RetryPolicy, prior: Option<&ItemRun>) -> u32 {
    match prior {
        Some(p) if p.status == StepStatus::Running => policy.attempts.max(p.attempts + 1),
        _ => policy.attempts,
    }
}

/// The next attempt starts.
pub fn begin(ir: &mut ItemRun, now: DateTime<Utc>) {
    ir.attempts += 1;
    ir.status = StepStatus::Running;
    ir.started_at.get_or_insert(now);
}

/// The event that records an attempt's start (after [`begin`]), for a
/// driver that records it before the call goes out. Built only when asked:
/// a fan-out, which records no start, spends nothing on it.
pub fn started(ir: &ItemRun, item: Item, budget: u32) -> NewEvent {
    item.event(
        EventKind::ItemAttempt,
        format!(
            "{}: {}.{} attempt {} of {budget}",
            item.label(),
            item.integration,
            item.action,
            ir.attempts
        ),
    )
    .data(json!({"idempotency_key": ir.idempotency_key, "attempt": ir.attempts}))
}

/// What follows an attempt.
#[derive(Debug)]
pub enum After {
    /// Final: the item succeeded (or found its effect already held), with
    /// the HTTP status that said so; [`succeeded`] is its event.
    Succeeded { status: u16 },
    /// Not final: record the event, wait `delay`, then begin again.
    Retry { delay: Duration, event: NewEvent },
    /// Final: a refusal, or the budget is spent.
    Failed(NewEvent),
}

/// The item's state after an attempt's `result`. `jitter` in [0, 1]
/// spreads retries of many items failing together (see `retry::delay`).
pub fn after(
    ir: &mut ItemRun,
    result: Result<Success, CallError>,
    now: DateTime<Utc>,
    item: Item,
    budget: u32,
    policy: &RetryPolicy,
    jitter: f64,
) -> After {
    match result {
        Ok(ok) => {
            ir.status = StepStatus::Succeeded;
            ir.output = ok.output;
            ir.already_done = ok.already_done;
            ir.error = None;
            ir.finished_at = Some(now);
            After::Succeeded { status: ok.status }
        }
        Err(CallError::Retriable {
            retry_after,
            message,
            status,
        }) if ir.attempts < budget => {
            let label = item.label();
            let delay = retry::delay(policy, ir.attempts + 1, retry_after, jitter);
            let why = match retry_after {
                Some(ra) if retry::capped(policy, retry_after) => format!(
                    " (the vendor asked for {} with Retry-After; capped at the step's max_backoff {})",
                    duration_text(ra),
                    duration_text(policy.max_backoff)
                ),
                Some(ra) => format!(" (Retry-After {})", duration_text(ra)),
                None => String::new(),
            };
            let event = item
                .event(
                    EventKind::ItemRetry,
                    format!(
                        "{label}: {message}; retrying in {}{why}",
                        duration_text(delay)
                    ),
                )
                .data(json!({
                    "status": status,
                    "delay_ms": delay.as_millis() as u64,
                    "retry_after_ms": retry_after.map(|d| d.as_millis() as u64),
                }));
            After::Retry { delay, event }
        }
        Err(e) => {
            let exhausted = matches!(e, CallError::Retriable { .. });
            let error = if exhausted {
                format!("{e} (gave up after {} attempts)", ir.attempts)
            } else {
                e.to_string()
            };
            let status = e.status();
            After::Failed(fail(ir, error, now, item).data(json!({ "status": status })))
        }
    }
}

/// The event of an item that succeeded (`After::Succeeded`), for a driver
/// that records it: a fan-out counts its successes in its summary instead.
pub fn succeeded(ir: &ItemRun, item: Item, status: u16) -> NewEvent {
    let label = item.label();
    let msg = if ir.already_done {
        format!("{label}: already done (HTTP {status}), recorded as success")
    } else {
        format!("{label}: done (HTTP {status})")
    };
    item.event(EventKind::ItemSucceeded, msg)
        .data(json!({"status": status, "already_done": ir.already_done}))
}

/// The item fails without a call (its `with` did not render, say).
pub fn fail(ir: &mut ItemRun, error: String, now: DateTime<Utc>, item: Item) -> NewEvent {
    ir.status = StepStatus::Failed;
    ir.finished_at = Some(now);
    let msg = format!("{} failed: {error}", item.label());
    ir.error = Some(error);
    item.event(EventKind::ItemFailed, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventKind;

    const ITEM: Item = Item {
        step: "revoke",
        index: Some(7),
        integration: "hubspot",
        action: "delete_token",
    };

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }

    fn fresh() -> ItemRun {
        ItemRun::pending("k".into())
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn busy(retry_after: Option<u64>) -> Result<Success, CallError> {
        Err(CallError::Retriable {
            status: Some(429),
            retry_after: retry_after.map(Duration::from_secs),
            message: "HTTP 429".into(),
        })
    }

    #[test]
    fn retries_until_the_budget_then_fails_saying_so() {
        let mut ir = fresh();
        let budget = budget(&policy(), None);
        let mut delays = vec![];
        loop {
            let at = t(ir.attempts.into());
            begin(&mut ir, at);
            let ev = started(&ir, ITEM, budget);
            assert_eq!(ir.status, StepStatus::Running);
            assert_eq!(ev.data["attempt"], ir.attempts);
            match after(&mut ir, busy(None), t(1), ITEM, budget, &policy(), 1.0) {
                After::Retry { delay, event } => {
                    assert_eq!(event.kind, EventKind::ItemRetry);
                    delays.push(delay);
                }
                After::Failed(ev) => {
                    assert_eq!(ev.kind, EventKind::ItemFailed);
                    assert_eq!(ev.data["status"], 429);
                    break;
                }
                After::Succeeded { .. } => panic!("a 429 is not a success"),
            }
        }
        assert_eq!(ir.attempts, 3);
        assert_eq!(ir.status, StepStatus::Failed);
        assert_eq!(
            ir.error.as_deref(),
            Some("HTTP 429 (gave up after 3 attempts)")
        );
        // The first attempt's start is kept across retries.
        assert_eq!(ir.started_at, Some(t(0)));
        assert_eq!(delays, [Duration::from_millis(500), Duration::from_secs(1)]);
    }

    #[test]
    fn a_refusal_fails_at_once_and_a_success_records_its_output() {
        let mut ir = fresh();
        begin(&mut ir, t(0));
        let refused = Err(CallError::Fatal {
            status: Some(403),
            message: "HTTP 403: missing scope".into(),
        });
        let After::Failed(ev) = after(&mut ir, refused, t(1), ITEM, 3, &policy(), 0.0) else {
            panic!("a 403 is not retried");
        };
        assert_eq!(ev.message, "revoke item 7 failed: HTTP 403: missing scope");
        assert_eq!(ir.attempts, 1);

        let mut ir = fresh();
        begin(&mut ir, t(0));
        let done = Ok(Success {
            status: 404,
            output: json!({"gone": true}),
            already_done: true,
        });
        let After::Succeeded { status } = after(&mut ir, done, t(2), ITEM, 3, &policy(), 0.0)
        else {
            panic!("already done is a success");
        };
        let ev = succeeded(&ir, ITEM, status);
        assert!(ev.message.contains("already done (HTTP 404)"));
        assert_eq!((ir.status, ir.already_done), (StepStatus::Succeeded, true));
        assert_eq!(ir.output["gone"], true);
        assert_eq!(ir.finished_at, Some(t(2)));
    }

    #[test]
    fn retry_after_is_a_floor_up_to_the_steps_cap_and_the_cap_is_said() {
        let mut ir = fresh();
        begin(&mut ir, t(0));
        let After::Retry { delay, event } =
            after(&mut ir, busy(Some(4)), t(1), ITEM, 3, &policy(), 0.0)
        else {
            panic!("retried");
        };
        assert_eq!(delay, Duration::from_secs(4));
        assert!(
            event.message.ends_with("(Retry-After 4s)"),
            "{}",
            event.message
        );
        assert_eq!(event.data["retry_after_ms"], 4000);

        let After::Retry { delay, event } =
            after(&mut ir, busy(Some(3600)), t(1), ITEM, 3, &policy(), 0.0)
        else {
            panic!("retried");
        };
        assert_eq!(delay, Duration::from_secs(10));
        assert!(
            event
                .message
                .contains("capped at the step's max_backoff 10s"),
            "{}",
            event.message
        );
    }

    #[test]
    fn an_attempt_cut_short_by_a_crash_gets_one_more_try_past_the_budget() {
        let mut spent = fresh();
        spent.attempts = 3;
        spent.status = StepStatus::Running;
        assert_eq!(budget(&policy(), Some(&spent)), 4);
        // A recorded failure is final, and a pending one has its budget.
        spent.status = StepStatus::Pending;
        assert_eq!(budget(&policy(), Some(&spent)), 3);
    }

    #[test]
    fn a_single_call_is_named_by_its_step() {
        let single = Item {
            index: None,
            ..ITEM
        };
        let mut ir = fresh();
        let ev = fail(&mut ir, "`with`: no such input".into(), t(0), single);
        assert_eq!(ev.message, "revoke failed: `with`: no such input");
        assert_eq!(ev.item, None);
    }
}
