//! Engine semantics against a mock platform: ordering, concurrency,
//! for_each, retries, timeouts, when, on_failure, waits, approvals.

use std::time::Duration;

use quench::store::{IncidentStatus, StepStatus};
use serde_json::json;

use crate::support::{Mock, Reply, Rig, SECRET};

#[tokio::test]
async fn needs_orders_steps_and_outputs_flow_into_templates() {
    let mock = Mock::start().await;
    mock.on(
        "/users",
        vec![Reply::json(
            200,
            json!({"items": [{"id": "u1"}, {"id": "u2"}]}),
        )],
    );
    mock.on("/users/u1/revoke", vec![Reply::json(200, json!({"ok": 1}))]);
    mock.on("/users/u2/revoke", vec![Reply::json(200, json!({"ok": 2}))]);
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: list
    action: mockp.list
    with: { path: users }
  - id: revoke
    action: mockp.post
    needs: [list]
    for_each: steps.list.output
    with: { path: "users/{{item.id}}/revoke", value: "{{inputs.who}} {{incident.severity}}" }
inputs:
  who: { type: string, default: bob }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let paths: Vec<String> = mock.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths[0], "/users", "the dependency runs first: {paths:?}");
    let posts: Vec<_> = mock
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(
        posts.iter().all(|p| p.body == r#"{"value":"bob sev2"}"#),
        "{posts:?}"
    );
    let run = rig.step(&id, "revoke");
    assert_eq!(run.items, Some(2));
    assert_eq!(
        run.output,
        json!([{"ok": 1}, {"ok": 2}]),
        "outputs keep item order"
    );
    let keys: std::collections::BTreeSet<_> = posts
        .iter()
        .map(|p| p.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 2, "each item has its own idempotency key");
    assert!(posts
        .iter()
        .all(|p| p.headers["authorization"] == format!("Bearer {SECRET}")));
}

#[tokio::test]
async fn independent_steps_run_concurrently() {
    let mock = Mock::start().await;
    // `a` hangs until the test sees `b` arrive: only possible if both are in flight at once.
    mock.on("/a", vec![Reply::json(200, json!({}))]);
    mock.on("/b", vec![Reply::json(200, json!({}))]);
    mock.on("/slow", vec![Reply::hang()]);
    let rig = Rig::new(&mock, true);
    let src = r#"
version: 1
name: test
steps:
  - id: slow
    action: mockp.get
    with: { path: slow }
    retry: { attempts: 1 }
    timeout: 60s
    on_failure: continue
  - id: a
    action: mockp.get
    with: { path: a }
  - id: b
    action: mockp.get
    needs: [a]
    with: { path: b }
"#;
    let id = rig.declare(src, json!({})).await;
    let engine = rig.engine.clone();
    let id2 = id.clone();
    let run = tokio::spawn(async move { engine.run(&id2).await });
    // `b` finishes while `slow` is still in flight: independent branches do not wait for each other.
    mock.wait_for("/b").await;
    mock.wait_for("/slow").await;
    let mut events = rig.engine.subscribe();
    while rig.step(&id, "b").status != StepStatus::Succeeded {
        let _ = events.recv().await;
    }
    assert_eq!(rig.step(&id, "slow").status, StepStatus::Running);
    run.abort();
}

#[tokio::test]
async fn for_each_respects_step_concurrency() {
    let mock = Mock::start().await;
    let items: Vec<_> = (0..12).map(|i| json!({"id": format!("g{i}")})).collect();
    mock.on("/grants", vec![Reply::json(200, json!({"items": items}))]);
    for i in 0..12 {
        mock.on(&format!("/grants/g{i}"), vec![Reply::status(204)]);
    }
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: list
    action: mockp.list
    with: { path: grants }
  - id: revoke
    action: mockp.revoke
    needs: [list]
    for_each: steps.list.output
    concurrency: 3
    with: { path: "grants/{{item.id}}" }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(
        mock.seen().iter().filter(|s| s.method == "DELETE").count(),
        12
    );
    assert!(
        mock.max_in_flight() <= 3,
        "at most 3 at once, saw {}",
        mock.max_in_flight()
    );
    assert_eq!(rig.step(&id, "revoke").items, Some(12));
}

/// A fan-out longer than the digest's parts (4,096 items each, hashed
/// while later items still run, finishing out of order) summarises the
/// same digest a reading of every record at once gives, and the audit
/// holds; a changed record early in the step is still caught.
#[tokio::test]
async fn a_long_fan_outs_digest_is_taken_in_parts_and_still_covers_every_record() {
    const N: usize = 9_000;
    let mock = Mock::start().await;
    let items: Vec<_> = (0..N).map(|i| json!({"id": format!("g{i}")})).collect();
    mock.on("/grants", vec![Reply::json(200, json!({"items": items}))]);
    // Every seventh grant is already gone: records of two shapes.
    for i in (0..N).step_by(7) {
        mock.on(&format!("/grants/g{i}"), vec![Reply::status(404)]);
    }
    mock.otherwise(Reply::status(204));
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: list
    action: mockp.list
    with: { path: grants }
  - id: revoke
    action: mockp.revoke
    needs: [list]
    for_each: steps.list.output
    concurrency: 40
    with: { path: "grants/{{item.id}}" }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let summary = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "items.summary")
        .expect("the fan-out's summary");
    assert_eq!(summary.data["already_done"], json!(N.div_ceil(7)));
    assert_eq!(
        summary.data["items_digest"],
        json!(rig.store.items_digest(&id, "revoke").unwrap()),
        "the digest in parts is the digest of the whole"
    );
    let audit = rig.store.audit(&id).unwrap();
    assert!(audit.intact(), "{:?}", audit.problems);

    // An early record, hashed in the first part, changed afterwards.
    let mut run = rig.store.item_runs(&id, "revoke").unwrap()[&10].clone();
    run.already_done = true;
    rig.store
        .put_item(&id, "revoke", 10, &run, crate::support::start_time(), None)
        .await
        .unwrap();
    let audit = rig.store.audit(&id).unwrap();
    assert!(
        audit
            .problems
            .iter()
            .any(|p| p.contains("item records differ")),
        "{:?}",
        audit.problems
    );
}

#[tokio::test]
async fn retries_5xx_and_429_with_backoff_honouring_retry_after() {
    let mock = Mock::start().await;
    mock.on(
        "/flaky",
        vec![
            Reply::json(503, json!({"error": "down"})),
            Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "7"),
            Reply::json(200, json!({"fine": true})),
        ],
    );
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: call
    action: mockp.get
    with: { path: flaky }
    retry: { attempts: 5, backoff: 2s, max_backoff: 30s }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let run = rig.step(&id, "call");
    assert_eq!(run.attempts, 3);
    assert_eq!(run.output, json!({"fine": true}));
    let sleeps = rig.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    // First retry: 2s nominal with equal jitter => [1s, 2s].
    assert!(
        sleeps[0] >= Duration::from_secs(1) && sleeps[0] <= Duration::from_secs(2),
        "{sleeps:?}"
    );
    // Second: nominal 4s => [2s, 4s], but Retry-After: 7 is a floor.
    assert_eq!(sleeps[1], Duration::from_secs(7));
    let keys: Vec<_> = mock
        .seen()
        .iter()
        .map(|s| s.headers["idempotency-key"].clone())
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "retries reuse the key: {keys:?}"
    );
    let retries = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "item.retry")
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn a_retry_after_date_is_measured_on_the_engines_clock() {
    let mock = Mock::start().await;
    // 45 s after the fake clock's start (support::start_time).
    mock.on(
        "/dated",
        vec![
            Reply::json(429, json!({"error": "slow down"}))
                .header("Retry-After", "Sun, 29 Nov 2026 09:00:45 GMT"),
            Reply::json(200, json!({"fine": true})),
        ],
    );
    let rig = Rig::new(&mock, true);
    let (_, status) = rig
        .run(
            "version: 1\nname: test\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: dated }\n    retry: { attempts: 3, backoff: 1s, max_backoff: 60s }\n",
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    // Before, the date was measured on the wall clock, days after the
    // fake one: the wait came out as zero and the backoff alone counted.
    assert_eq!(rig.clock.sleeps(), [Duration::from_secs(45)]);
}

#[tokio::test]
async fn exhausted_retries_fail_the_step_with_status_and_body_and_abort() {
    let mock = Mock::start().await;
    mock.on(
        "/down",
        vec![Reply::json(502, json!({"error": "bad gateway upstream"}))],
    );
    mock.on("/after", vec![Reply::json(200, json!({}))]);
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: call
    action: mockp.get
    with: { path: down }
    retry: { attempts: 3, backoff: 100ms }
  - id: after
    action: mockp.get
    needs: [call]
    with: { path: after }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Failed);
    let run = rig.step(&id, "call");
    assert_eq!(run.status, StepStatus::Failed);
    assert_eq!(run.attempts, 3);
    let err = run.error.unwrap();
    assert!(
        err.contains("HTTP 502")
            && err.contains("bad gateway upstream")
            && err.contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(mock.hits("/after"), 0, "abort stops dependents");
    let after = rig.step(&id, "after");
    assert_eq!(after.status, StepStatus::Skipped);
    assert_eq!(
        after.error.as_deref(),
        Some("needs call, which failed (on_failure: abort)")
    );
    assert!(rig
        .kinds(&id)
        .last()
        .unwrap()
        .starts_with("incident.failed"));
}

#[tokio::test]
async fn a_failed_abort_step_stops_its_dependents_only() {
    // One platform down must not abandon containment on the others.
    let mock = Mock::start().await;
    mock.on("/down", vec![Reply::json(400, json!({"error": "no"}))]);
    for p in ["/other", "/other-next", "/after"] {
        mock.on(p, vec![Reply::json(200, json!({}))]);
    }
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: after-after
    action: mockp.get
    needs: [after]
    with: { path: after }
  - id: call
    action: mockp.get
    with: { path: down }
  - id: after
    action: mockp.get
    needs: [call, other]
    with: { path: after }
  - id: other
    action: mockp.get
    with: { path: other }
  - id: other-next
    action: mockp.get
    needs: [other]
    with: { path: other-next }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Failed);
    assert_eq!(rig.step(&id, "other").status, StepStatus::Succeeded);
    assert_eq!(rig.step(&id, "other-next").status, StepStatus::Succeeded);
    assert_eq!(mock.hits("/after"), 0);
    assert_eq!(rig.step(&id, "after").status, StepStatus::Skipped);
    let aa = rig.step(&id, "after-after");
    assert_eq!(
        aa.status,
        StepStatus::Skipped,
        "dependents of dependents too"
    );
    assert_eq!(
        aa.error.as_deref(),
        Some("needs after, which was skipped because a step it needs failed")
    );
    let events = rig.store.events(&id).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.kind, "incident.failed");
    assert!(
        last.message.contains("call failed under on_failure: abort")
            && last
                .message
                .contains("skipped as dependents: after, after-after"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_already_done_is_success() {
    let mock = Mock::start().await;
    mock.on(
        "/bad",
        vec![Reply::json(400, json!({"message": "invalid campaign"}))],
    );
    mock.on(
        "/gone",
        vec![Reply::json(404, json!({"message": "not found"}))],
    );
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: bad
    action: mockp.get
    with: { path: bad }
    on_failure: continue
  - id: gone
    action: mockp.revoke
    with: { path: gone }
"#,
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        IncidentStatus::Completed,
        "on_failure: continue keeps the incident going"
    );
    assert_eq!(mock.hits("/bad"), 1);
    let bad = rig.step(&id, "bad");
    assert_eq!((bad.status, bad.attempts), (StepStatus::Failed, 1));
    assert_eq!(rig.step(&id, "gone").status, StepStatus::Succeeded);
    let items = rig.store.item_runs(&id, "gone").unwrap();
    assert!(items[&0].already_done);
    assert!(rig
        .store
        .events(&id)
        .unwrap()
        .iter()
        .any(|e| e.message.contains("already done (HTTP 404)")));
}

#[tokio::test]
async fn a_request_that_cannot_be_built_fails_once_and_is_not_retried() {
    let mock = Mock::start().await;
    // A platform's answer carries CR/LF into a value bound for a header.
    mock.on(
        "/whoami",
        vec![Reply::json(200, json!({"name": "x\r\nX-Injected: 1"}))],
    );
    mock.on("/tag", vec![Reply::json(200, json!({}))]);
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: who
    action: mockp.get
    with: { path: whoami }
  - id: tag
    action: mockp.tagged
    needs: [who]
    retry: { attempts: 5, backoff: 1s }
    with: { path: tag, tag: "{{steps.who.output.name}}" }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Failed);
    let run = rig.step(&id, "tag");
    assert_eq!((run.status, run.attempts), (StepStatus::Failed, 1));
    assert_eq!(mock.hits("/tag"), 0, "nothing was sent");
    let err = run.error.unwrap_or_default();
    assert!(err.contains("the request cannot be built"), "{err}");
}

#[tokio::test]
async fn timeouts_count_as_retriable_attempts() {
    let mock = Mock::start().await;
    mock.on("/hang", vec![Reply::hang()]);
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: call
    action: mockp.get
    with: { path: hang }
    timeout: 200ms
    retry: { attempts: 2, backoff: 1s }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Failed);
    let run = rig.step(&id, "call");
    assert_eq!(run.attempts, 2);
    assert!(
        run.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        run.error
    );
    assert_eq!(mock.hits("/hang"), 2);
}

#[tokio::test]
async fn when_skips_steps_and_items() {
    let mock = Mock::start().await;
    mock.on(
        "/list",
        vec![Reply::json(
            200,
            json!({"items": [{"name": "ChatGPT", "id": "1"}, {"name": "Approved", "id": "2"}]}),
        )],
    );
    mock.on("/t/1", vec![Reply::status(204)]);
    mock.on("/t/2", vec![Reply::status(204)]);
    mock.on("/never", vec![Reply::json(200, json!({}))]);
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
inputs:
  tool: { type: string, default: ChatGPT }
  records: { type: integer, default: 0 }
steps:
  - id: skipped
    action: mockp.get
    when: "{{inputs.records}}"
    with: { path: never }
  - id: list
    action: mockp.list
    with: { path: list }
  - id: revoke
    action: mockp.revoke
    needs: [list, skipped]
    for_each: steps.list.output
    when: "{{eq item.name inputs.tool}}"
    with: { path: "t/{{item.id}}" }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(rig.step(&id, "skipped").status, StepStatus::Skipped);
    assert_eq!(mock.hits("/never"), 0);
    assert_eq!(mock.hits("/t/1"), 1);
    assert_eq!(mock.hits("/t/2"), 0, "per-item when filters the fan-out");
    let items = rig.store.item_runs(&id, "revoke").unwrap();
    assert_eq!(items[&1].status, StepStatus::Skipped);
}

#[tokio::test]
async fn items_of_a_list_of_lists_know_the_item_they_were_listed_for() {
    // Projects a, b, c; b is skipped by `when`, so the keys step's output
    // has two lists, which must line up with a and c, not a and b.
    let mock = Mock::start().await;
    mock.on(
        "/projects",
        vec![Reply::json(
            200,
            json!({"items": [{"id": "a"}, {"id": "b", "skip": true}, {"id": "c"}]}),
        )],
    );
    mock.on(
        "/p/a/keys",
        vec![Reply::json(
            200,
            json!({"items": [{"id": "k1"}, {"id": "k2"}]}),
        )],
    );
    mock.on(
        "/p/c/keys",
        vec![Reply::json(200, json!({"items": [{"id": "k3"}]}))],
    );
    for p in ["/p/a/keys/k1", "/p/a/keys/k2", "/p/c/keys/k3"] {
        mock.on(p, vec![Reply::status(204)]);
    }
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: projects
    action: mockp.list
    with: { path: projects }
  - id: keys
    action: mockp.list
    needs: [projects]
    for_each: steps.projects.output
    when: "{{#if item.skip}}false{{else}}true{{/if}}"
    with: { path: "p/{{item.id}}/keys" }
  - id: revoke
    action: mockp.revoke
    needs: [keys]
    for_each: steps.keys.output
    with: { path: "p/{{parent.id}}/keys/{{item.id}}" }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(rig.step(&id, "revoke").items, Some(3));
    for p in ["/p/a/keys/k1", "/p/a/keys/k2", "/p/c/keys/k3"] {
        assert_eq!(mock.hits(p), 1, "{p}");
    }
    assert_eq!(
        mock.seen()
            .iter()
            .filter(|s| s.path.starts_with("/p/b"))
            .count(),
        0
    );
}

#[tokio::test]
async fn failed_continue_step_lets_dependents_run() {
    let mock = Mock::start().await;
    mock.on("/x", vec![Reply::json(403, json!({}))]);
    mock.on("/y", vec![Reply::json(200, json!({}))]);
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: x
    action: mockp.get
    with: { path: x }
    on_failure: continue
  - id: y
    action: mockp.get
    needs: [x]
    with: { path: y }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(rig.step(&id, "x").status, StepStatus::Failed);
    assert_eq!(rig.step(&id, "y").status, StepStatus::Succeeded);
    let last = rig.store.events(&id).unwrap().pop().unwrap();
    assert!(
        last.message.contains("failed steps") && last.message.contains('x'),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn drill_cuts_long_waits_and_records_it() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            "version: 1\nname: test\nsteps:\n  - id: pause\n    wait: 10m\n",
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(rig.clock.sleeps(), vec![Duration::from_secs(5)]);
    let cut = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "wait.cut")
        .unwrap();
    assert_eq!(
        cut.message,
        "Waiting 5s instead of 10m (drill cap --max-wait)"
    );
}

#[tokio::test]
async fn outside_drills_waits_are_full_and_approvals_park_the_incident() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, false);
    let src = r#"
version: 1
name: test
steps:
  - id: pause
    wait: 10m
  - id: legal
    approval: { approvers: [legal], prompt: "Send it?" }
    needs: [pause]
  - id: after
    wait: 1s
    needs: [legal]
"#;
    let (id, status) = rig.run(src, json!({})).await;
    assert_eq!(status, IncidentStatus::Waiting);
    assert_eq!(rig.clock.sleeps(), vec![Duration::from_secs(600)]);
    assert_eq!(rig.step(&id, "legal").status, StepStatus::Waiting);
    assert_eq!(rig.step(&id, "after").status, StepStatus::Pending);
    let req = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "approval.requested")
        .unwrap();
    assert_eq!(req.message, "Waiting for approval by legal: Send it?");
}

#[tokio::test]
async fn drills_auto_approve_and_say_so() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            "version: 1\nname: test\nsteps:\n  - id: legal\n    approval: { approvers: [legal] }\n  - id: task\n    manual: Call the vendor\n    needs: [legal]\n",
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(
        rig.step(&id, "legal").output,
        json!({"approved": true, "by": "drill", "auto": true})
    );
    let ev: Vec<_> = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "drill")
        .map(|e| e.kind)
        .collect();
    assert_eq!(ev, ["approval.granted", "manual.done"]);
}

#[tokio::test]
async fn without_an_organization_only_drills_draft_and_they_say_so() {
    const RB: &str = r#"
version: 1
name: test
inputs:
  tool: { type: string, default: ChatGPT }
  records: { type: integer, default: 10 }
  jurisdictions: { type: list, default: [EU] }
  data_elements: { type: list, default: [name, email] }
steps:
  - id: draft
    notice: { audience: customers, jurisdictions: inputs.jurisdictions }
"#;
    let mock = Mock::start().await;
    let example = quench::config::Config::default().organization_json();
    assert_eq!(example["example"], true);
    for drill in [false, true] {
        let rig = Rig::new(&mock, drill);
        let engine = rig.engine.with_settings(quench::engine::Settings {
            drill,
            organization: example.clone(),
            ..rig.engine.settings().clone()
        });
        let id = rig.declare(RB, json!({})).await;
        let status = engine.run(&id).await.unwrap();
        let notices = rig.store.notices(&id).unwrap();
        if drill {
            assert_eq!(status, IncidentStatus::Completed);
            assert!(
                notices[0]
                    .body
                    .starts_with("[DRILL: drafted for the example organisation"),
                "{}",
                notices[0].body
            );
        } else {
            assert_eq!(status, IncidentStatus::Failed);
            assert!(notices.is_empty());
            let err = rig.step(&id, "draft").error.unwrap();
            assert!(
                err.starts_with("no `organization:` in quench.yaml"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn notice_steps_draft_one_notice_per_jurisdiction() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
inputs:
  tool: { type: string, default: ChatGPT }
  records: { type: integer, default: 1200 }
  jurisdictions: { type: list, default: [EU, US-CA] }
  data_elements: { type: list, default: [name, email] }
steps:
  - id: draft
    notice: { audience: customers, jurisdictions: inputs.jurisdictions }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let notices = rig.store.notices(&id).unwrap();
    let picked: Vec<_> = notices
        .iter()
        .map(|n| {
            (
                n.jurisdiction.clone().unwrap(),
                n.template.clone(),
                n.version,
            )
        })
        .collect();
    assert_eq!(
        picked,
        [
            ("EU".to_string(), "customers-EU".to_string(), 1),
            ("US-CA".to_string(), "customers-US-CA".to_string(), 1)
        ]
    );
    let ca = &notices[1].body;
    assert!(
        ca.contains("NOTICE OF DATA BREACH") && ca.contains("ChatGPT") && ca.contains("1200"),
        "{ca}"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_store_or_errors() {
    let mock = Mock::start().await;
    // A hostile or careless platform echoes the credential in its error body.
    mock.on(
        "/echo",
        vec![Reply::json(
            400,
            json!({"error": format!("bad token Bearer {SECRET}")}),
        )],
    );
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run("version: 1\nname: test\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: echo }\n", json!({}))
        .await;
    assert_eq!(status, IncidentStatus::Failed);
    let err = rig.step(&id, "call").error.unwrap();
    assert!(
        err.contains("[REDACTED:MOCKP_TOKEN]") && !err.contains(SECRET),
        "{err}"
    );
    let events = serde_json::to_string(&rig.store.events(&id).unwrap()).unwrap();
    assert!(!events.contains(SECRET));
    rig.store.flush().await;
    for entry in walk(rig.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(SECRET),
            "secret found on disk in {}",
            entry.display()
        );
    }
}

pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn simulator_answers_every_bundled_action_and_checks_credentials() {
    crate::support::tls();
    let lib = quench::library::Library::load(&Default::default()).unwrap();
    let sim = quench::integrations::Simulator::start(&lib.catalog)
        .await
        .unwrap();
    let routing = sim.routing(&lib.catalog.secret_names());
    let exec = quench::integrations::Executor::new(&lib.catalog, routing).unwrap();
    // Every non-manual action of the whole catalog, integrations side by side
    // (each one's rate limit applies, as in a drill).
    let per_integration = lib.catalog.manifests().map(|m| {
        let exec = &exec;
        async move {
            let mut called = 0u64;
            for (name, a) in m.actions.iter().filter(|(_, a)| a.manual.is_none()) {
                let with = crate::catalog::sample_with(a);
                let r = exec.call(&m.name, name, &with, "k", None).await;
                // A stateful change to an object the sample ids do not name
                // answers the vendor's not-found (the containment tests
                // change real tenant objects).
                let stateful = a
                    .simulate
                    .effect
                    .as_ref()
                    .filter(|e| e.op != quench::integrations::manifest::Op::List);
                if let (Some(e), Err(err)) = (stateful, &r) {
                    // The simulator's own not-found, or the vendor's
                    // documented answer the manifest gives (Marketo's 709
                    // inside a 200).
                    let said = match &e.missing_body {
                        Some(b) => serde_json::to_string(b).unwrap(),
                        None => "in this tenant".into(),
                    };
                    assert!(
                        err.status() == Some(e.missing) && err.to_string().contains(&said),
                        "{}.{name}: {err}",
                        m.name
                    );
                    called += 1;
                    continue;
                }
                let ok = r.unwrap_or_else(|e| panic!("{}.{name}: {e:?}", m.name));
                // (A stateful list filtered by a sample id may rightly be empty.)
                if a.paginate.is_some() && a.simulate.effect.is_none() {
                    assert!(
                        ok.output.as_array().is_some_and(|l| !l.is_empty()),
                        "{}.{name}: the simulated list has no items: {}",
                        m.name,
                        ok.output
                    );
                }
                called += 1;
            }
            called
        }
    });
    let called: u64 = futures_util::future::join_all(per_integration)
        .await
        .into_iter()
        .sum();
    assert_eq!(lib.catalog.manifests().count(), 16);
    assert!(called >= 100, "only {called} actions");
    // One request per action, plus the empty last page of offset-paged lists.
    let calls = sim.calls();
    assert!(calls.values().sum::<u64>() >= called, "{calls:?}");
    let answered: std::collections::BTreeSet<&str> = calls
        .keys()
        .filter_map(|k| k.split_once('.').map(|(i, _)| i))
        .collect();
    assert_eq!(answered.len(), 16, "{answered:?}");
    // Without credentials the simulator answers 401, as the vendor would.
    let resp = reqwest::Client::new()
        .get(format!("{}/users", sim.base_url("google-workspace")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn drill_approval_makes_the_notices_before_it_ready() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
inputs:
  tool: { type: string, default: ChatGPT }
  records: { type: integer, default: 5 }
  jurisdictions: { type: list, default: [EU] }
  data_elements: { type: list, default: [email] }
steps:
  - id: draft
    notice: { audience: regulator, jurisdictions: inputs.jurisdictions }
  - id: legal
    approval: { approvers: [legal] }
    needs: [draft]
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let n = rig.store.notices(&id).unwrap();
    assert_eq!(n[0].approved_by.as_deref(), Some("drill"));
    let ev = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "notice.approved")
        .unwrap();
    assert_eq!(
        ev.message,
        "regulator notice for EU v1 approved by drill: ready to send"
    );
}

/// Grants of the declared tool, an unapproved tool, an approved one and an unknown one.
fn grants(mock: &Mock) {
    let items = json!({"items": [
        {"displayText": "ChatGPT", "clientId": "c1"},
        {"displayText": "Jasper AI", "clientId": "c2"},
        {"displayText": "Approved CRM Sync", "clientId": "c3"},
        {"displayText": "Zoom", "clientId": "c4"}
    ]});
    mock.on("/tokens", vec![Reply::json(200, items)]);
    for c in ["c1", "c2", "c3", "c4"] {
        mock.on(&format!("/tokens/{c}"), vec![Reply::status(204)]);
    }
}

#[tokio::test]
async fn revoke_unapproved_uses_the_registry_verdict() {
    let src = r#"
version: 1
name: test
inputs:
  tool: { type: string, default: ChatGPT }
  revoke_unapproved: { type: boolean, default: false }
steps:
  - id: list
    action: mockp.list
    with: { path: tokens }
  - id: revoke
    action: mockp.revoke
    needs: [list]
    for_each: steps.list.output
    when: '{{#if (eq item.displayText inputs.tool)}}true{{else}}{{#if inputs.revoke_unapproved}}{{eq (verdict item.displayText "google-workspace") "unapproved"}}{{else}}false{{/if}}{{/if}}'
    with: { path: "tokens/{{item.clientId}}" }
"#;
    let hits = |m: &Mock| ["c1", "c2", "c3", "c4"].map(|c| m.hits(&format!("/tokens/{c}")));
    let mock = Mock::start().await;
    grants(&mock);
    Rig::new(&mock, true).run(src, json!({})).await;
    assert_eq!(
        hits(&mock),
        [1, 0, 0, 0],
        "only the declared tool by default"
    );

    let mock = Mock::start().await;
    grants(&mock);
    Rig::new(&mock, true)
        .run(src, json!({"revoke_unapproved": true}))
        .await;
    assert_eq!(
        hits(&mock),
        [1, 1, 0, 0],
        "plus unapproved ones; approved and unknown apps stay"
    );
}

#[tokio::test]
async fn fanning_out_over_a_skipped_steps_output_is_a_skip_not_a_failure() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
inputs:
  enabled: { type: boolean, default: false }
steps:
  - id: list
    action: mockp.list
    when: "{{inputs.enabled}}"
    with: { path: things }
  - id: each
    action: mockp.revoke
    needs: [list]
    for_each: steps.list.output
    with: { path: "things/{{item.id}}" }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(rig.step(&id, "each").status, StepStatus::Skipped);
    let ev = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind == "step.skipped")
        .unwrap();
    assert_eq!(
        ev.message,
        "each skipped: list, whose output it iterates, was skipped"
    );
    assert!(mock.seen().is_empty());
}

#[tokio::test]
async fn an_approval_named_after_a_rule_exception_records_the_decision() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, true);
    let src = r#"
version: 1
name: test
steps:
  - id: inadvertent-disclosure
    approval: { approvers: [legal] }
  - id: legal
    approval: { approvers: [legal] }
"#;
    let (id, _) = rig.run(src, json!({})).await;
    let applied: Vec<_> = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "exception.applied")
        .collect();
    assert_eq!(
        applied.len(),
        1,
        "only the step named after an exception decides one"
    );
    assert_eq!(applied[0].data["exception"], "inadvertent_disclosure");
}

#[tokio::test]
async fn a_person_approving_the_exception_step_records_the_exception_too() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, false);
    let src = "version: 1\nname: test\nsteps:\n  - id: inadvertent-disclosure\n    approval: { approvers: [legal] }\n";
    let (id, status) = rig.run(src, json!({})).await;
    assert_eq!(status, IncidentStatus::Waiting);
    rig.engine
        .resolve(
            &id,
            crate::support::by_person(
                "inadvertent-disclosure",
                quench::engine::Decision::Approve,
                "U0LEGAL1",
            ),
        )
        .await
        .unwrap();
    let applied: Vec<_> = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "exception.applied")
        .collect();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].actor, "U0LEGAL1");
    assert_eq!(applied[0].data["exception"], "inadvertent_disclosure");
}

#[tokio::test]
async fn every_recorded_event_is_announced_to_subscribers() {
    let mock = Mock::start().await;
    mock.on(
        "/list",
        vec![Reply::json(
            200,
            json!({"items": [{"id": "1"}, {"id": "2"}]}),
        )],
    );
    mock.on(
        "/t/1",
        vec![Reply::json(503, json!({})), Reply::status(204)],
    );
    mock.on("/t/2", vec![Reply::status(204)]);
    let rig = Rig::new(&mock, true);
    let mut rx = rig.engine.subscribe();
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
inputs:
  tool: { type: string, default: ChatGPT }
  records: { type: integer, default: 5 }
  jurisdictions: { type: list, default: [EU] }
  data_elements: { type: list, default: [email] }
steps:
  - id: list
    action: mockp.list
    with: { path: list }
  - id: revoke
    action: mockp.revoke
    needs: [list]
    for_each: steps.list.output
    when: '{{eq item.id "1"}}'
    with: { path: "t/{{item.id}}" }
  - id: draft
    notice: { audience: customers, jurisdictions: inputs.jurisdictions }
  - id: legal
    approval: { approvers: [legal] }
    needs: [draft]
  - id: pause
    wait: 1h
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let mut announced = vec![];
    while let Ok((inc, ev)) = rx.try_recv() {
        assert_eq!(inc, id);
        announced.push(ev.seq);
    }
    let stored: Vec<u64> = rig
        .store
        .events(&id)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    announced.sort();
    assert_eq!(
        announced, stored,
        "progress displays and Slack see what the timeline holds"
    );
}

/// A clock whose sleep panics: a bug inside a step, on demand.
struct PanickingSleep(quench::engine::FakeClock);

impl quench::engine::Clock for PanickingSleep {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now()
    }
    fn sleep(&self, _: Duration) -> quench::clock::Sleep {
        panic!("injected: sleeping is broken")
    }
}

#[tokio::test]
async fn a_step_that_panics_fails_itself_and_the_incident_still_ends() {
    let mock = Mock::start().await;
    mock.on("/elsewhere", vec![Reply::json(200, json!({"ok": true}))]);
    let dir = tempfile::tempdir().unwrap();
    let clock = quench::engine::FakeClock::new(crate::support::start_time());
    let (engine, store, lib) = crate::support::build_engine_on(
        dir.path(),
        &mock.url,
        std::sync::Arc::new(PanickingSleep(clock)),
        false,
    );
    let src = "version: 1\nname: test\nsteps:\n  - id: pause\n    wait: 1m\n  - id: after\n    action: mockp.get\n    needs: [pause]\n    with: { path: elsewhere }\n  - id: other\n    action: mockp.get\n    with: { path: elsewhere }\n";
    let rb = quench::runbook::load("test.yaml", src, &lib.known()).unwrap();
    let id = engine
        .declare(
            &rb,
            quench::engine::Declaration {
                runbook_file: "test.yaml".into(),
                runbook_source: src.into(),
                inputs: json!({}),
                declared_by: "tester".into(),
                token: None,
                severity: quench::store::Severity::Sev2,
                channel: None,
            },
        )
        .await
        .unwrap();
    // Before: the panic took the driver down with it, and the incident
    // stayed running with no one driving it.
    let status = engine.run(&id).await.unwrap();
    assert_eq!(status, IncidentStatus::Failed);
    let pause = store.step_run(&id, "pause").unwrap();
    assert_eq!(pause.status, StepStatus::Failed);
    assert!(
        pause
            .error
            .as_deref()
            .unwrap()
            .contains("quench crashed running this step (injected: sleeping is broken)"),
        "{pause:?}"
    );
    assert_eq!(
        store.step_run(&id, "after").unwrap().status,
        StepStatus::Skipped
    );
    assert_eq!(
        store.step_run(&id, "other").unwrap().status,
        StepStatus::Succeeded
    );
    assert!(store
        .events(&id)
        .unwrap()
        .iter()
        .any(|e| e.kind == "step.failed" && e.step.as_deref() == Some("pause")));
}

#[tokio::test]
async fn a_parked_incident_run_again_records_its_wait_once() {
    let mock = Mock::start().await;
    let rig = Rig::new(&mock, false);
    let src = "version: 1\nname: test\nsteps:\n  - id: legal\n    approval: { approvers: [legal], prompt: ok? }\n  - id: task\n    manual: { assignee: legal, instructions: do it }\n";
    let (id, status) = rig.run(src, json!({})).await;
    assert_eq!(status, IncidentStatus::Waiting);
    let waits = |rig: &Rig| {
        rig.store
            .events(&id)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "incident.waiting")
            .map(|e| e.message)
            .collect::<Vec<_>>()
    };
    // Reruns that change nothing (a resume, a kick) add nothing.
    rig.engine.run(&id).await.unwrap();
    rig.engine.resume(&id).await.unwrap();
    assert_eq!(waits(&rig), ["Waiting on people: legal, task"]);
    // A wait on fewer people is news.
    rig.engine
        .resolve(
            &id,
            crate::support::by_person("legal", quench::engine::Decision::Approve, "U0LEGAL1"),
        )
        .await
        .unwrap();
    rig.engine.run(&id).await.unwrap();
    assert_eq!(
        waits(&rig),
        ["Waiting on people: legal, task", "Waiting on people: task"]
    );
    // Approving an action step, or finishing an approval, says what to do.
    let e = rig
        .engine
        .resolve(
            &id,
            crate::support::by_person("legal", quench::engine::Decision::Done, "U0LEGAL1"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("use `quench approve {id} legal`")),
        "{e}"
    );
}

#[tokio::test]
async fn approving_a_step_that_runs_on_its_own_does_not_advise_approving_it() {
    let mock = Mock::start().await;
    mock.on("/slow", vec![Reply::hang()]);
    let rig = Rig::new(&mock, false);
    let id = rig
        .declare(
            "version: 1\nname: test\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: slow }\n",
            json!({}),
        )
        .await;
    let e = rig
        .engine
        .resolve(
            &id,
            crate::support::by_person("call", quench::engine::Decision::Approve, "U0LEGAL1"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("step \"call\" is action, not an approval or manual step; it runs on its own, and no one approves or completes it; `quench status {id}` shows where it is")
    );
}
