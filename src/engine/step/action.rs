//! Action steps: fan-out over items under the step's concurrency, and the
//! attempts of one item with retries, each persisted before it starts.

use crate::integrations::CallError;
use crate::store::EventKind;
use std::sync::Arc;
use tracing::Instrument;

use serde_json::{json, Value as Json};
use tokio::task::{JoinError, JoinSet};

use super::idempotency_key;
use super::reads::{collect, Reads};
use crate::engine::{attempt, Engine, EngineError};
use crate::integrations::response::type_name;
use crate::runbook::{Runbook, Step};
use crate::store::audit::ItemsDigest;
use crate::store::{Incident, ItemRun, NewEvent, StepRun, StepStatus};
use crate::template::{lookup, truthy, Scope, Templates};

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn action_step(
        &self,
        inc: &Incident,
        step: &Step,
        mut run: StepRun,
        start: Option<NewEvent>,
        mut ctx: Json,
        rb: &Runbook,
        integration: &str,
        action: &str,
    ) -> Result<StepRun, EngineError> {
        let id = inc.id.as_str();
        let found = match &step.for_each {
            None => Ok(Some((vec![Json::Null], None))),
            Some(path) => self.for_each_items(id, rb, step, &mut ctx, path).await,
        };
        // The step's start, written with its fan-out below when there is
        // one, and on its own before any other outcome.
        let mut start = start;
        if !matches!(found, Ok(Some(_))) || run.items.is_some() {
            if let Some(ev) = start.take() {
                self.put_step(id, &step.id, &run, Some(ev)).await?;
            }
        }
        let (items, parents) = match &step.for_each {
            None => (vec![Json::Null], None),
            Some(path) => match found {
                Ok(Some(found)) => found,
                Ok(None) => {
                    // Nothing to fan out over because the step that lists it
                    // was skipped (or failed under on_failure: continue):
                    // there is nothing to do, which is not a failure.
                    let source = source_step(path).unwrap_or("");
                    let source_status = ctx["steps"][source]["status"].as_str().unwrap_or("");
                    if matches!(source_status, "skipped" | "failed") {
                        run.status = StepStatus::Skipped;
                        run.finished_at = Some(self.clock.now());
                        let ev = NewEvent::new(EventKind::StepSkipped, "quench", format!("{} skipped: {source}, whose output it iterates, was {source_status}", step.id)).step(&step.id);
                        self.put_step(id, &step.id, &run, Some(ev)).await?;
                        return Ok(run);
                    }
                    return self
                        .finish(
                            id,
                            step,
                            run,
                            Err(format!("for_each path {path} resolved to nothing")),
                        )
                        .await;
                }
                Err(why) => return self.finish(id, step, run, Err(why)).await,
            },
        };
        let fan_out = step.for_each.is_some();
        // Decided once per step, not per item (it compiles the template).
        let filter_items = per_item_when(step);
        if fan_out && run.items.is_none() {
            run.items = Some(items.len() as u32);
            // The first window is admitted with the fan-out itself: one
            // write between the step's start and its first call, not two.
            run.started_below = Some(admit(step, 0, items.len() as u32));
            let ev = NewEvent::new(
                EventKind::StepFannedOut,
                "quench",
                format!(
                    "{}: {} item(s), up to {} at a time",
                    step.id,
                    items.len(),
                    step.concurrency
                ),
            )
            .step(&step.id);
            self.put_step_events(
                id,
                &step.id,
                &run,
                start.take().into_iter().chain([ev]).collect(),
            )
            .await?;
        }
        // Each item gets its own copy of the context: keep only what the
        // step's templates read, or a fan-out over a long list copies every
        // earlier output (and the list itself) once per item.
        let ctx = Reads::templates(step).narrow(ctx);
        let results = self
            .fan_out(
                id,
                step,
                &mut run,
                &ctx,
                Items {
                    list: items,
                    parents,
                    fan_out,
                    filter: filter_items,
                },
                integration,
                action,
                inc.severity.weight(),
            )
            .await?;
        run.attempts = results.attempts;
        let output = match step_output(results, fan_out) {
            Ok(output) => output,
            Err((msg, partial)) => {
                run.output = partial;
                return self.finish(id, step, run, Err(msg)).await;
            }
        };
        if let Some(v) = &step.verify {
            if let Err(msg) = self
                .record_verification(id, step, v, &ctx, &output, fan_out, integration)
                .await?
            {
                run.output = output;
                return self.finish(id, step, run, Err(msg)).await;
            }
        }
        self.finish(id, step, run, Ok(output)).await
    }

    /// Runs every item not already final, up to the step's concurrency at
    /// once, and returns what each item (finished before or now) left.
    ///
    /// At most `concurrency` items are in flight and nothing more of an
    /// item than its outcome outlives it: a 200,000-item fan-out holds 200
    /// items' contexts and futures, not 200,000 (each item's record is in
    /// the journal).
    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        &self,
        id: &str,
        step: &Step,
        run: &mut StepRun,
        ctx: &Json,
        items: Items,
        integration: &str,
        action: &str,
        weight: u32,
    ) -> Result<Outcomes, EngineError> {
        let Items {
            list,
            parents,
            fan_out,
            filter: filter_items,
        } = items;
        let mut done = self.journal.item_runs(id, &step.id).await?;
        let total = list.len() as u32;
        let step = Arc::new(step.clone());
        let (ctx, integration, action): (Arc<Json>, Arc<str>, Arc<str>) =
            (Arc::new(ctx.clone()), integration.into(), action.into());
        let mut set: JoinSet<(u32, Result<ItemRun, EngineError>)> = JoinSet::new();
        // `concurrency` bounds the calls in flight, which is what a platform
        // feels: an item whose call has returned waits for the flush of its
        // record without holding a slot, so the store's flushes do not
        // stretch every call's turn. The items waiting so are bounded too.
        let conc = step.concurrency.max(1);
        let calls = Arc::new(tokio::sync::Semaphore::new(conc));
        let mut outcomes = Outcomes::default();
        let mut first_err: Option<EngineError> = None;
        let mut parents = parents.map(Vec::into_iter);
        let mut marks = None;
        let mut digest = Digesting::default();
        for (i, item) in list.into_iter().enumerate() {
            let idx = i as u32;
            let parent = parents.as_mut().and_then(Iterator::next);
            let prior = done.remove(&idx);
            if let Some(p) = prior.as_ref().filter(|p| p.status.is_final()) {
                outcomes.add(idx, p.clone());
                digest.finish_item(idx);
                continue;
            }
            // Progress is reported from what is done when the first item
            // starts: a resumed step does not repeat the marks it passed.
            let marks = marks.get_or_insert_with(|| Marks::after(outcomes.done(), total));
            while set.len() >= 2 * conc {
                if let Some(j) = set.join_next().await {
                    if let Some(idx) = joined(j, &mut outcomes, &mut first_err) {
                        digest.finish_item(idx);
                    }
                    if fan_out {
                        self.progress(id, &step.id, &outcomes, total, marks, &mut first_err)
                            .await;
                        self.digest_ahead(id, &step.id, &mut digest, &mut first_err)
                            .await;
                    }
                }
            }
            if first_err.is_some() {
                // The journal failed: start nothing it might not record.
                break;
            }
            if fan_out && run.started_below.is_none_or(|b| idx >= b) {
                // Items start only once a durable record says they may
                // have: one write admits a window of them, not one each.
                run.started_below = Some(admit(&step, idx, total));
                if let Err(e) = self.put_step(id, &step.id, run, None).await {
                    first_err.get_or_insert(e);
                    break;
                }
            }
            let me = self.clone();
            let (step, ctx, integ, act) = (
                step.clone(),
                ctx.clone(),
                integration.clone(),
                action.clone(),
            );
            let inc_id = id.to_string();
            let calls = calls.clone();
            set.spawn(
                async move {
                    // The item's context, wrapped once for all its renders.
                    let mut ictx = Scope::new(Json::clone(&ctx));
                    if fan_out {
                        ictx.insert("item", item);
                    }
                    if let Some(p) = parent {
                        ictx.insert("parent", p);
                    }
                    let r = if filter_items {
                        me.item_when(
                            &inc_id, &step, idx, prior, &ictx, &integ, &act, weight, &calls,
                        )
                        .await
                    } else {
                        me.run_item(
                            &inc_id, &step, idx, fan_out, prior, &ictx, &integ, &act, weight,
                            &calls,
                        )
                        .await
                    };
                    (idx, r)
                }
                // Items log inside their step's span.
                .in_current_span(),
            );
        }
        while let Some(j) = set.join_next().await {
            if let Some(idx) = joined(j, &mut outcomes, &mut first_err) {
                digest.finish_item(idx);
            }
            if let (true, Some(marks)) = (fan_out, marks.as_mut()) {
                self.progress(id, &step.id, &outcomes, total, marks, &mut first_err)
                    .await;
                self.digest_ahead(id, &step.id, &mut digest, &mut first_err)
                    .await;
            }
        }
        if let (true, None, 1..) = (fan_out, &first_err, total) {
            self.summarise(id, &step.id, &outcomes, total, digest)
                .await?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }

    /// Records the fan-out's progress when it passes its next tenth.
    async fn progress(
        &self,
        id: &str,
        step: &str,
        o: &Outcomes,
        total: u32,
        marks: &mut Marks,
        first_err: &mut Option<EngineError>,
    ) {
        if !marks.passed(o.done()) || o.done() >= total {
            return;
        }
        let ev = o.event(EventKind::ItemsProgress, step, total);
        if let Err(e) = self.record(id, ev).await {
            first_err.get_or_insert(e);
        }
    }

    /// Hashes the records of the items finished since the last part, once
    /// there are `DIGEST_PART` of them.
    async fn digest_ahead(
        &self,
        id: &str,
        step: &str,
        d: &mut Digesting,
        first_err: &mut Option<EngineError>,
    ) {
        if d.finished - d.hashed < DIGEST_PART || first_err.is_some() {
            return;
        }
        match self
            .journal
            .digest_items(id, step, &mut d.digest, d.hashed, Some(d.finished))
            .await
        {
            Ok(()) => d.hashed = d.finished,
            Err(e) => {
                first_err.get_or_insert(e.into());
            }
        }
    }

    /// The fan-out's one event for all its items: what they came to, and
    /// the digest of their records, which keeps the records in the audit
    /// chain without an event per item.
    async fn summarise(
        &self,
        id: &str,
        step: &str,
        o: &Outcomes,
        total: u32,
        mut d: Digesting,
    ) -> Result<(), EngineError> {
        let mut ev = o.event(EventKind::ItemsSummary, step, total);
        // The rest, and any record past the list (a list that shrank
        // between runs), as a digest of every record at once would.
        self.journal
            .digest_items(id, step, &mut d.digest, d.hashed, None)
            .await?;
        ev.data["items_digest"] = Json::String(d.digest.finish());
        self.record(id, ev).await
    }

    /// Re-reads what the step changed and records whether anything of the
    /// tool remains: `Err` with the reason when it does (or cannot tell).
    #[allow(clippy::too_many_arguments)]
    async fn record_verification(
        &self,
        id: &str,
        step: &Step,
        v: &crate::runbook::Verify,
        ctx: &Json,
        output: &Json,
        fan_out: bool,
        integration: &str,
    ) -> Result<Result<(), String>, EngineError> {
        let verdict = verify(&self.templates, v, ctx, output, fan_out);
        let (kind, msg, data) = match &verdict {
            Ok(checked) => (
                EventKind::ContainmentVerified,
                format!(
                    "{integration} verified: {}: none remains ({checked} re-read)",
                    self.verdict_label(v, ctx)
                ),
                json!({"platform": integration, "checked": checked, "remains": []}),
            ),
            Err(Unverified::Remain { checked, names }) => (
                EventKind::ContainmentUnverified,
                format!(
                    "{integration} NOT contained: {}: {} of {checked} re-read remain: {}",
                    self.verdict_label(v, ctx),
                    names.len(),
                    names.join(", ")
                ),
                json!({"platform": integration, "checked": checked, "remains": names}),
            ),
            Err(Unverified::Unreadable(e)) => (
                EventKind::ContainmentUnverified,
                format!("{integration} could not be verified: {e}"),
                json!({"platform": integration, "error": e}),
            ),
        };
        self.record(
            id,
            NewEvent::new(kind, "quench", msg.clone())
                .step(&step.id)
                .data(data),
        )
        .await?;
        Ok(verdict.map(|_| ()).map_err(|_| msg))
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_item(
        &self,
        id: &str,
        step: &Step,
        idx: u32,
        fan_out: bool,
        prior: Option<ItemRun>,
        ctx: &Scope,
        integration: &str,
        action: &str,
        weight: u32,
        calls: &tokio::sync::Semaphore,
    ) -> Result<ItemRun, EngineError> {
        let item_no = fan_out.then_some(idx);
        let who = attempt::Item {
            step: &step.id,
            index: item_no,
            integration,
            action,
        };
        let budget = attempt::budget(&step.retry, prior.as_ref());
        let mut ir = prior.unwrap_or_else(|| new_item(id, step, idx));

        let with = match self.templates.render_value(&step.with, ctx) {
            Ok(w) => w,
            Err(e) => {
                let ev = attempt::fail(&mut ir, format!("`with`: {e}"), self.clock.now(), who);
                self.put_item(id, &step.id, idx, &ir, Some(ev)).await?;
                item_outcome(integration, action, &ir);
                return Ok(ir);
            }
        };

        if self.settings.plan
            && self
                .library
                .catalog
                .action(integration, action)
                .is_some_and(|a| !a.reads())
        {
            return self
                .plan_item(
                    id,
                    step,
                    idx,
                    item_no,
                    ir,
                    ctx.data(),
                    &with,
                    integration,
                    action,
                    &who.label(),
                )
                .await;
        }

        loop {
            attempt::begin(&mut ir, self.clock.now());
            // A fan-out's attempt is not written before it goes out: its
            // key is fixed by (incident, step, item), so an attempt a crash
            // cut short is sent again with the same key, and an item with
            // no outcome recorded is one still to do. A single call's
            // attempt is its step's story, and is recorded.
            if !fan_out {
                let ev = attempt::started(&ir, who, budget);
                self.put_item(id, &step.id, idx, &ir, Some(ev)).await?;
            }
            let turn = calls
                .acquire()
                .await
                .expect("the fan-out's semaphore stays open");
            let result = self
                .actions
                .call(
                    crate::integrations::Caller {
                        incident: Some(id),
                        weight,
                    },
                    integration,
                    action,
                    &with,
                    &ir.idempotency_key,
                    step.timeout,
                )
                .await;
            drop(turn);
            let now = self.clock.now();
            let refused = result.as_ref().err().map(CallError::status);
            match attempt::after(
                &mut ir,
                result,
                now,
                who,
                budget,
                &step.retry,
                fastrand::f64(),
            ) {
                attempt::After::Retry { delay, event } => {
                    crate::telemetry::global().retry(integration, refused.flatten());
                    // With the attempts so far, so a resume keeps count.
                    self.put_item(id, &step.id, idx, &ir, Some(event)).await?;
                    self.clock.sleep(delay).await;
                }
                attempt::After::Succeeded { status } => {
                    // A fan-out's successes are counted in its summary.
                    let ev = (!fan_out).then(|| attempt::succeeded(&ir, who, status));
                    self.put_item(id, &step.id, idx, &ir, ev).await?;
                    item_outcome(integration, action, &ir);
                    return Ok(ir);
                }
                attempt::After::Failed(ev) => {
                    self.put_item(id, &step.id, idx, &ir, Some(ev)).await?;
                    item_outcome(integration, action, &ir);
                    return Ok(ir);
                }
            }
        }
    }
}

impl Engine {
    /// A plan's write: recorded as what would be sent, never sent.
    #[allow(clippy::too_many_arguments)]
    async fn plan_item(
        &self,
        id: &str,
        step: &Step,
        idx: u32,
        item_no: Option<u32>,
        mut ir: ItemRun,
        ctx: &Json,
        with: &Json,
        integration: &str,
        action: &str,
        label: &str,
    ) -> Result<ItemRun, EngineError> {
        let now = self.clock.now();
        ir.started_at.get_or_insert(now);
        ir.finished_at = Some(now);
        let (kind, msg) = match self.actions.preview(integration, action, with) {
            Ok(would) => {
                let msg = format!(
                    "{label}: would send {} {}",
                    would["method"].as_str().unwrap_or(""),
                    would["url"].as_str().unwrap_or("")
                );
                ir.status = StepStatus::Succeeded;
                ir.output =
                    json!({"would": would, "item": ctx.get("item").cloned().unwrap_or(Json::Null)});
                (EventKind::PlanWouldCall, msg)
            }
            Err(e) => {
                ir.status = StepStatus::Failed;
                ir.error = Some(e.clone());
                (EventKind::ItemFailed, format!("{label} failed: {e}"))
            }
        };
        let ev = NewEvent::new(kind, "plan", msg)
            .step(&step.id)
            .item(item_no)
            .data(json!({"integration": integration, "action": action}));
        self.put_item(id, &step.id, idx, &ir, Some(ev)).await?;
        Ok(ir)
    }
}

enum Unverified {
    Remain { checked: usize, names: Vec<String> },
    Unreadable(String),
}

/// Checks what a verification step re-read: the number of items checked,
/// or what remains (named by `shows`).
/// What a step iterates: the items, each one's parent (when the step reads
/// `parent`), whether it fans out at all, and whether each item has its
/// own `when`.
struct Items {
    list: Vec<Json>,
    parents: Option<Vec<Json>>,
    fan_out: bool,
    filter: bool,
}

/// What a step keeps of its items once they finish: their outputs in item
/// order and its failures, not their records (those are in the journal).
#[derive(Default, Clone)]
struct Outcomes {
    /// (index, output, skipped), sorted by index when read. Most items of a
    /// revocation answer nothing: `None` holds their null in 8 bytes, not
    /// a whole value's 72 (a 200,000-item step's outputs: 16 MB to 3 MB).
    outputs: Vec<(u32, Option<Box<Json>>, bool)>,
    /// (index, error) of the items that failed.
    failed: Vec<(u32, String)>,
    attempts: u32,
    /// Items that succeeded by changing something, and that found their
    /// effect already held.
    succeeded: u32,
    already_done: u32,
    skipped: u32,
}

impl Outcomes {
    fn add(&mut self, idx: u32, r: ItemRun) {
        self.attempts = self.attempts.max(r.attempts);
        match r.status {
            StepStatus::Failed => self.failed.push((idx, r.error.unwrap_or_default())),
            StepStatus::Skipped => self.skipped += 1,
            _ if r.already_done => self.already_done += 1,
            _ => self.succeeded += 1,
        }
        let output = (!r.output.is_null()).then(|| Box::new(r.output));
        self.outputs
            .push((idx, output, r.status == StepStatus::Skipped));
    }

    fn done(&self) -> u32 {
        self.outputs.len() as u32
    }

    /// A progress or summary event: its data's `succeeded` counts the
    /// items that changed something, not those `already_done`.
    fn event(&self, kind: EventKind, step: &str, total: u32) -> NewEvent {
        NewEvent::new(kind, "quench", format!("{step}: {}", self.tally(total)))
            .step(step)
            .data(self.counts(total))
    }

    fn counts(&self, total: u32) -> Json {
        json!({
            "total": total,
            "done": self.done(),
            "succeeded": self.succeeded,
            "already_done": self.already_done,
            "failed": self.failed.len(),
            "skipped": self.skipped,
        })
    }

    fn tally(&self, total: u32) -> String {
        let mut parts = vec![format!("{} succeeded", self.succeeded)];
        for (n, what) in [
            (self.already_done, "already done"),
            (self.failed.len() as u32, "failed"),
            (self.skipped, "skipped"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!(
            "{} of {total} item(s) done ({})",
            self.done(),
            parts.join(", ")
        )
    }
}

/// Where the window of items admitted from `idx` ends: a few rounds of
/// the step's concurrency, so one write covers many items.
fn admit(step: &Step, idx: u32, total: u32) -> u32 {
    let window = (step.concurrency.max(1) as u32).saturating_mul(4).max(64);
    idx.saturating_add(window).min(total)
}

/// A fan-out's progress marks: each tenth of its items.
struct Marks {
    total: u32,
    /// The next tenth to report (1 to 9).
    next: u32,
}

impl Marks {
    /// The marks still ahead of `done` items.
    fn after(done: u32, total: u32) -> Marks {
        let mut m = Marks { total, next: 1 };
        while m.next < 10 && done >= m.at(m.next) {
            m.next += 1;
        }
        m
    }

    fn at(&self, tenth: u32) -> u32 {
        ((self.total as u64 * tenth as u64).div_ceil(10)) as u32
    }

    /// Whether `done` items pass the next mark (and moves past every mark
    /// it passes, so a jump reports once).
    fn passed(&mut self, done: u32) -> bool {
        let mut passed = false;
        while self.next < 10 && done >= self.at(self.next) {
            self.next += 1;
            passed = true;
        }
        passed
    }
}

/// Takes in a finished item task: its outcome, or the first error. The
/// item's index once its outcome is in.
fn joined(
    j: Result<(u32, Result<ItemRun, EngineError>), JoinError>,
    outcomes: &mut Outcomes,
    first_err: &mut Option<EngineError>,
) -> Option<u32> {
    match j {
        Ok((idx, Ok(r))) => {
            outcomes.add(idx, r);
            Some(idx)
        }
        Ok((_, Err(e))) => {
            first_err.get_or_insert(e);
            None
        }
        Err(e) if JoinError::is_panic(&e) => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// How many finished items' records are hashed at a time while a
/// fan-out runs (some 2.7 MB of records at 670 bytes each).
const DIGEST_PART: u32 = 4096;

/// The digest of a fan-out's item records, taken in parts as the items
/// finish: a run of finished items from the lowest not yet hashed is read
/// while later ones still run, so the summary of a 200,000-item step reads
/// only its last part rather than every record (a quarter of a second of
/// its end, `bench table S200k`). A finished item's record is not written
/// again in the same run, so each part hashes what the summary would.
#[derive(Default)]
struct Digesting {
    digest: ItemsDigest,
    /// Every item below it is finished and hashed.
    hashed: u32,
    /// Every item below it is finished.
    finished: u32,
    /// Items finished above `finished`: about the concurrency's worth.
    ahead: std::collections::BTreeSet<u32>,
}

impl Digesting {
    fn finish_item(&mut self, idx: u32) {
        if idx != self.finished {
            self.ahead.insert(idx);
            return;
        }
        self.finished += 1;
        while self.ahead.remove(&self.finished) {
            self.finished += 1;
        }
    }
}

/// A step's output from its items' outcomes: the one call's output, or for
/// a fan-out the outputs of the items not skipped, in item order. `Err`
/// when an item failed: the step's error and the outputs so far.
fn step_output(mut o: Outcomes, fan_out: bool) -> Result<Json, (String, Json)> {
    o.outputs.sort_unstable_by_key(|(i, _, _)| *i);
    o.failed.sort_unstable_by_key(|(i, _)| *i);
    if let Some((first_idx, first)) = o.failed.first() {
        let msg = if fan_out {
            format!(
                "{} of {} item(s) failed; first (item {first_idx}): {first}",
                o.failed.len(),
                o.outputs.len(),
            )
        } else {
            first.clone()
        };
        let partial = if fan_out {
            Json::Array(
                o.outputs
                    .into_iter()
                    .map(|(_, out, _)| unbox(out))
                    .collect(),
            )
        } else {
            Json::Null
        };
        return Err((msg, partial));
    }
    Ok(if fan_out {
        Json::Array(
            o.outputs
                .into_iter()
                .filter(|(_, _, skipped)| !skipped)
                .map(|(_, out, _)| unbox(out))
                .collect(),
        )
    } else {
        o.outputs
            .into_iter()
            .find(|(i, _, _)| *i == 0)
            .map(|(_, out, _)| unbox(out))
            .unwrap_or(Json::Null)
    })
}

fn unbox(out: Option<Box<Json>>) -> Json {
    out.map_or(Json::Null, |b| *b)
}

fn verify(
    templates: &Templates,
    v: &crate::runbook::Verify,
    ctx: &Json,
    output: &Json,
    fan_out: bool,
) -> Result<usize, Unverified> {
    let items: Vec<&Json> = match output {
        // One re-read list per fan-out item (a user's grants).
        Json::Array(a) if fan_out => {
            let mut items = vec![];
            for (i, x) in a.iter().enumerate() {
                match x {
                    Json::Array(inner) => items.extend(inner),
                    other => {
                        return Err(Unverified::Unreadable(format!(
                            "re-read {i} answered {}, not a list",
                            type_name(other)
                        )))
                    }
                }
            }
            items
        }
        Json::Array(a) => a.iter().collect(),
        other => {
            return Err(Unverified::Unreadable(format!(
            "the re-read answered {}, not a list; verify with a list action (output or paginate)",
            type_name(other)
        )))
        }
    };
    let mut names = vec![];
    let mut ictx = Scope::new(ctx.clone());
    for item in &items {
        ictx.insert("item", (*item).clone());
        let remains = templates
            .render_str(&v.remains, &ictx)
            .map_err(|e| Unverified::Unreadable(format!("`verify.remains`: {e}")))?;
        if truthy(&remains) {
            let name = match &v.shows {
                Some(t) => templates
                    .render_str(t, &ictx)
                    .map_err(|e| Unverified::Unreadable(format!("`verify.shows`: {e}")))?,
                None => item
                    .get("id")
                    .map(crate::template::plain)
                    .unwrap_or_else(|| item.to_string()),
            };
            names.push(name);
        }
    }
    if names.is_empty() {
        Ok(items.len())
    } else {
        Err(Unverified::Remain {
            checked: items.len(),
            names,
        })
    }
}

impl Engine {
    fn verdict_label(&self, v: &crate::runbook::Verify, ctx: &Json) -> String {
        v.label
            .as_deref()
            .and_then(|l| self.render(l, ctx).ok())
            .unwrap_or_else(|| "the tool's access".to_string())
    }
}

/// Counts an item's outcome for `/metrics` (`quench_items_total`).
fn item_outcome(integration: &str, action: &str, ir: &ItemRun) {
    let outcome = match ir.status {
        StepStatus::Succeeded if ir.already_done => "already_done",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Skipped => "skipped",
        _ => "failed",
    };
    crate::telemetry::global().item(integration, action, outcome);
}

/// A not yet attempted item, with its idempotency key.
fn new_item(id: &str, step: &Step, idx: u32) -> ItemRun {
    ItemRun::pending(idempotency_key(id, &step.id, idx))
}

impl Engine {
    /// The list a `for_each` iterates, and for each element the item of
    /// the fan-out that listed it (`parent`), when the path is a fan-out
    /// step's output whose entries are lists. `Ok(None)`: the path resolved
    /// to nothing.
    ///
    /// A vendor's child objects often do not name their parent (an OpenAI
    /// project key carries no project id), yet the call that changes one
    /// needs it: `parent` is the only honest place to take it from.
    #[allow(clippy::type_complexity)]
    async fn for_each_items(
        &self,
        id: &str,
        rb: &Runbook,
        step: &Step,
        ctx: &mut Json,
        path: &str,
    ) -> Result<Option<(Vec<Json>, Option<Vec<Json>>)>, String> {
        // The list is taken out of the context, not copied, when no
        // template of the step reads it: it is the largest thing a fan-out
        // holds, and the items are all it needs of it.
        let found = if Reads::templates(step).path_read(path) {
            lookup(ctx, path).cloned()
        } else {
            crate::template::take(ctx, path)
        };
        let lists = match found {
            // A fan-out step's output is one entry per item; when each
            // entry is itself a list (per-user grants), iterate them all.
            Some(Json::Array(a)) if !a.is_empty() && a.iter().all(Json::is_array) => a,
            Some(Json::Array(a)) => return Ok(Some((a, None))),
            Some(Json::Null) | None => return Ok(None),
            Some(other) => {
                let kind = match &other {
                    Json::Object(_) => "an object",
                    Json::String(_) => "a string",
                    _ => "a scalar",
                };
                return Err(format!(
                    "for_each path {path} resolved to {kind}, not a list"
                ));
            }
        };
        if !reads_parent(step) {
            return Ok(Some((flatten(lists), None)));
        }
        // Validation lets a step read `parent` only when it iterates a
        // fan-out step's output, so the source and its own list exist.
        let source = source_step(path)
            .and_then(|s| rb.step(s))
            .ok_or_else(|| format!("`parent`: {path} is not a step's output"))?;
        let source_path = source
            .for_each
            .as_deref()
            .ok_or_else(|| format!("`parent`: step {} does not fan out", source.id))?;
        let iterated = match lookup(ctx, source_path) {
            Some(Json::Array(a)) if !a.is_empty() && a.iter().all(Json::is_array) => {
                flatten(a.clone())
            }
            Some(Json::Array(a)) => a.clone(),
            _ => vec![],
        };
        // The output leaves out items its own `when` skipped: line the rest
        // up with the items they came from by index.
        let kept: Vec<usize> = self
            .journal
            .item_runs(id, &source.id)
            .await
            .map_err(|e| format!("`parent`: reading step {}'s items: {e}", source.id))?
            .into_iter()
            .filter(|(_, r)| r.status != StepStatus::Skipped)
            .map(|(i, _)| i as usize)
            .collect();
        if kept.len() != lists.len() || kept.iter().any(|&i| i >= iterated.len()) {
            return Err(format!(
                "`parent`: step {}'s {} output(s) do not line up with the {} item(s) it iterated",
                source.id,
                lists.len(),
                iterated.len()
            ));
        }
        let parents = lists
            .iter()
            .zip(&kept)
            .flat_map(|(l, &i)| {
                let n = l.as_array().map_or(0, Vec::len);
                std::iter::repeat_n(iterated[i].clone(), n)
            })
            .collect();
        Ok(Some((flatten(lists), Some(parents))))
    }
}

/// A fan-out's list of lists, as one list.
fn flatten(lists: Vec<Json>) -> Vec<Json> {
    lists
        .into_iter()
        .flat_map(|x| match x {
            Json::Array(a) => a,
            _ => vec![],
        })
        .collect()
}

/// `steps.ID.output` -> `ID`.
pub(super) fn source_step(path: &str) -> Option<&str> {
    path.strip_prefix("steps.")
        .and_then(|r| r.split('.').next())
}

/// Whether any of the step's per-item templates reads `parent`.
pub(super) fn reads_parent(step: &Step) -> bool {
    let mut templates = Vec::new();
    collect(&step.with, &mut templates);
    templates.extend(step.when.as_deref());
    templates.iter().any(|t| {
        t.contains("parent")
            && crate::template::analyse(t)
                .vars
                .iter()
                .any(|v| !v.scoped && v.path.first().is_some_and(|r| r == "parent"))
    })
}

/// A fan-out step whose `when` reads `item` filters items, not the step.
pub(super) fn per_item_when(step: &Step) -> bool {
    step.for_each.is_some()
        && step.when.as_deref().is_some_and(|w| {
            crate::template::analyse(w)
                .vars
                .iter()
                .any(|v| v.path[0] == "item")
        })
}

impl Engine {
    /// Evaluates a per-item `when`, recording a skipped item or running it.
    #[allow(clippy::too_many_arguments)]
    async fn item_when(
        &self,
        id: &str,
        step: &Step,
        idx: u32,
        prior: Option<ItemRun>,
        ctx: &Scope,
        integration: &str,
        action: &str,
        weight: u32,
        calls: &tokio::sync::Semaphore,
    ) -> Result<ItemRun, EngineError> {
        if prior.is_none() {
            let w = step.when.as_deref().unwrap_or_default();
            // A skipped item is counted in the step's summary, not logged:
            // a filter over a large tenant skips most of what it lists.
            let (status, error, ev) = match self.templates.render_str(w, ctx) {
                Ok(v) if truthy(&v) => (None, None, None),
                Ok(_) => (Some(StepStatus::Skipped), None, None),
                Err(e) => (
                    Some(StepStatus::Failed),
                    Some(format!("`when`: {e}")),
                    Some(
                        NewEvent::new(
                            EventKind::ItemFailed,
                            "quench",
                            format!("{} item {idx} failed: `when`: {e}", step.id),
                        )
                        .step(&step.id)
                        .item(Some(idx)),
                    ),
                ),
            };
            if let Some(status) = status {
                let mut ir = new_item(id, step, idx);
                ir.status = status;
                ir.error = error;
                if self.settings.plan {
                    // What a plan found and left alone, for its report.
                    ir.output = json!({"item": ctx.data()["item"], "left_alone": true});
                }
                ir.finished_at = Some(self.clock.now());
                self.put_item(id, &step.id, idx, &ir, ev).await?;
                item_outcome(integration, action, &ir);
                return Ok(ir);
            }
        }
        self.run_item(
            id,
            step,
            idx,
            true,
            prior,
            ctx,
            integration,
            action,
            weight,
            calls,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(status: StepStatus, output: Json, error: Option<&str>) -> ItemRun {
        ItemRun {
            status,
            output,
            error: error.map(str::to_string),
            ..ItemRun::pending("k".into())
        }
    }

    /// Outcomes added in the order given: items finish out of order.
    fn outcomes(runs: Vec<(u32, ItemRun)>) -> Outcomes {
        let mut o = Outcomes::default();
        for (i, r) in runs {
            o.add(i, r);
        }
        o
    }

    #[test]
    fn the_digests_frontier_passes_only_items_finished_without_a_gap() {
        let mut d = Digesting::default();
        for idx in [2, 0, 3] {
            d.finish_item(idx);
        }
        assert_eq!(d.finished, 1, "1 is still running");
        d.finish_item(1);
        assert_eq!((d.finished, d.ahead.len()), (4, 0));
        d.finish_item(6);
        d.finish_item(4);
        assert_eq!(d.finished, 5);
        assert_eq!(d.ahead.iter().copied().collect::<Vec<_>>(), vec![6]);
    }

    #[test]
    fn a_fan_out_reports_each_tenth_once_and_a_resume_only_those_ahead() {
        let mut m = Marks::after(0, 25);
        let reported: Vec<u32> = (1..=25).filter(|&d| m.passed(d)).collect();
        // ceil(25 * k / 10) for k = 1..9
        assert_eq!(reported, [3, 5, 8, 10, 13, 15, 18, 20, 23]);
        // A jump past several tenths is one report.
        let mut m = Marks::after(0, 100);
        assert!(m.passed(35));
        assert!(!m.passed(39));
        assert!(m.passed(40));
        // Resumed with 47 of 100 done: the next report is at 50.
        let mut m = Marks::after(47, 100);
        assert!(!m.passed(49));
        assert!(m.passed(50));
        // Fewer items than tenths: a mark per item (`progress` leaves the
        // last one, the end, to the summary).
        let mut m = Marks::after(0, 3);
        assert_eq!((1..=3).filter(|&d| m.passed(d)).count(), 3);
        assert!(!m.passed(3));
    }

    #[test]
    fn a_summary_counts_changes_apart_from_items_already_done() {
        let mut done = ran(StepStatus::Succeeded, json!(null), None);
        done.already_done = true;
        let o = outcomes(vec![
            (0, ran(StepStatus::Succeeded, json!(null), None)),
            (1, done),
            (2, ran(StepStatus::Failed, json!(null), Some("HTTP 403"))),
            (3, ran(StepStatus::Skipped, json!(null), None)),
            (4, ran(StepStatus::Succeeded, json!(null), None)),
        ]);
        let ev = o.event(EventKind::ItemsSummary, "revoke", 6);
        assert_eq!(
            ev.message,
            "revoke: 5 of 6 item(s) done (2 succeeded, 1 already done, 1 failed, 1 skipped)"
        );
        assert_eq!(
            ev.data,
            json!({"total": 6, "done": 5, "succeeded": 2, "already_done": 1, "failed": 1, "skipped": 1})
        );
        assert_eq!(ev.step.as_deref(), Some("revoke"));
    }

    #[test]
    fn a_fan_outs_output_is_its_items_in_order_without_the_skipped_ones() {
        let results = outcomes(vec![
            (2, ran(StepStatus::Succeeded, json!("c"), None)),
            (0, ran(StepStatus::Succeeded, json!("a"), None)),
            (1, ran(StepStatus::Skipped, Json::Null, None)),
        ]);
        assert_eq!(step_output(results.clone(), true), Ok(json!(["a", "c"])));
        let one = outcomes(vec![(
            0,
            ran(StepStatus::Succeeded, json!({"id": 7}), None),
        )]);
        assert_eq!(step_output(one, false), Ok(json!({"id": 7})));
    }

    #[test]
    fn a_failed_item_fails_the_step_naming_how_many_and_the_first() {
        let results = outcomes(vec![
            (2, ran(StepStatus::Failed, Json::Null, Some("404"))),
            (0, ran(StepStatus::Succeeded, json!("a"), None)),
            (
                1,
                ran(StepStatus::Failed, Json::Null, Some("403 Forbidden")),
            ),
        ]);
        assert_eq!(
            step_output(results, true),
            Err((
                "2 of 3 item(s) failed; first (item 1): 403 Forbidden".to_string(),
                json!(["a", null, null])
            ))
        );
        let one = outcomes(vec![(
            0,
            ran(StepStatus::Failed, Json::Null, Some("timed out")),
        )]);
        assert_eq!(
            step_output(one, false),
            Err(("timed out".to_string(), Json::Null))
        );
    }
}
