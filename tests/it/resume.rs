//! Crash and resume: an engine process is killed with SIGKILL in the middle
//! of a fan-out; a new engine on the same store finishes the incident
//! without redoing finished work, retrying the in-flight item with the same
//! idempotency key. The same on both backends: the child's store is sled
//! in its dir, or PostgreSQL when `QUENCH_CHILD_DB` names a database.

use std::process::Command;

use quench::engine::FakeClock;
use quench::store::{IncidentStatus, StepStatus};
use serde_json::json;

use crate::support::{build_engine, build_engine_over, start_time, Mock, Reply};

const RUNBOOK: &str = r#"
version: 1
name: test
inputs:
  ids: { type: list, default: ["0", "1", "2", "3", "4"] }
steps:
  - id: first
    action: mockp.get
    with: { path: first }
  - id: fan
    action: mockp.post
    needs: [first]
    for_each: inputs.ids
    concurrency: 1
    with: { path: "item/{{item}}", value: "{{item}}" }
"#;

/// Not a test on its own: the child process of `resume_after_sigkill`.
#[tokio::test]
#[ignore = "run by resume_after_sigkill as a child process"]
async fn child_engine_process() {
    let dir = std::env::var("QUENCH_CHILD_DIR").expect("started by resume_after_sigkill");
    let url = std::env::var("QUENCH_CHILD_MOCK").unwrap();
    let dir = std::path::Path::new(&dir);
    let (engine, _store, lib) = match std::env::var("QUENCH_CHILD_DB") {
        Ok(db) => build_engine_over(
            dir,
            &url,
            std::sync::Arc::new(FakeClock::new(start_time())),
            true,
            quench::store::Store::open_leading(&db, "tests")
                .await
                .unwrap(),
        ),
        Err(_) => build_engine(dir, &url, FakeClock::new(start_time()), true),
    };
    let rb = quench::runbook::load("test.yaml", RUNBOOK, &lib.known()).unwrap();
    let inputs = quench::runbook::inputs::parse(&rb, &[]).unwrap();
    let id = engine
        .declare(
            &rb,
            quench::engine::Declaration {
                runbook_file: "test.yaml".into(),
                runbook_source: RUNBOOK.into(),
                inputs,
                declared_by: "child".into(),
                token: None,
                severity: quench::store::Severity::Sev2,
                channel: None,
            },
        )
        .await
        .unwrap();
    std::fs::write(dir.join("incident-id"), &id).unwrap();
    engine.run(&id).await.unwrap();
    unreachable!("the parent kills this process while item 2 is in flight");
}

#[tokio::test]
async fn resume_after_sigkill() {
    resume_after_sigkill_on(None).await;
}

#[tokio::test]
async fn resume_after_sigkill_on_postgres() {
    resume_after_sigkill_on(Some(crate::postgres::database().await)).await;
}

async fn resume_after_sigkill_on(db: Option<String>) {
    let mock = Mock::start().await;
    mock.on("/first", vec![Reply::json(200, json!({}))]);
    for i in ["0", "1", "3", "4"] {
        mock.on(
            &format!("/item/{i}"),
            vec![Reply::json(200, json!({"n": i}))],
        );
    }
    // Item 2 hangs the first time (the process dies mid-request), then works.
    mock.on(
        "/item/2",
        vec![Reply::hang(), Reply::json(200, json!({"n": "2"}))],
    );

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--ignored",
            "--exact",
            "resume::child_engine_process",
            "--nocapture",
        ])
        .env("QUENCH_CHILD_DIR", dir.path())
        .env("QUENCH_CHILD_MOCK", &mock.url);
    if let Some(db) = &db {
        child.env("QUENCH_CHILD_DB", db);
    }
    let mut child = child
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    mock.wait_for("/item/2").await;
    child.kill().unwrap(); // SIGKILL: no destructors, no flush on the way out
    child.wait().unwrap();

    let id = std::fs::read_to_string(dir.path().join("incident-id")).unwrap();
    let (engine, store, _) = match &db {
        Some(db) => build_engine_over(
            dir.path(),
            &mock.url,
            std::sync::Arc::new(FakeClock::new(start_time())),
            true,
            quench::store::Store::open_leading(db, "tests")
                .await
                .unwrap(),
        ),
        None => build_engine(dir.path(), &mock.url, FakeClock::new(start_time()), true),
    };
    // What the dead process acknowledged is all there.
    assert_eq!(store.incident(&id).unwrap().status, IncidentStatus::Running);
    assert_eq!(
        store.step_run(&id, "first").unwrap().status,
        StepStatus::Succeeded
    );
    assert_eq!(
        store.step_run(&id, "fan").unwrap().status,
        StepStatus::Running
    );
    // Item 2 was in flight: it has no outcome, and the step's record
    // admitted it before its call went out.
    let before = store.item_runs(&id, "fan").unwrap();
    assert!(!before.contains_key(&2), "{:?}", before.get(&2));
    // Item 0 was done before item 2 started (at most twice the step's
    // concurrency of items are on their way at once); item 1's call had
    // returned, and its record may or may not have been flushed yet: an
    // item waits for its record without holding the step's one slot.
    assert!(before.contains_key(&0), "{before:?}");
    let item1 = if before.contains_key(&1) { 1 } else { 2 };
    assert!(
        store
            .step_run(&id, "fan")
            .unwrap()
            .started_below
            .is_some_and(|b| b > 2),
        "item 2 was admitted before it started"
    );

    let resumed = engine.resume_all().await;
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].1.as_ref().unwrap(), &IncidentStatus::Completed);

    assert_eq!(mock.hits("/first"), 1, "finished steps are not redone");
    for (path, n) in [
        ("/item/0", 1),
        ("/item/1", item1),
        ("/item/2", 2),
        ("/item/3", 1),
        ("/item/4", 1),
    ] {
        assert_eq!(mock.hits(path), n, "{path}");
    }
    for item in [1, 2] {
        let keys: Vec<String> = mock
            .seen()
            .iter()
            .filter(|s| s.path == format!("/item/{item}"))
            .map(|s| s.headers["idempotency-key"].clone())
            .collect();
        assert!(
            keys.iter()
                .all(|k| *k == quench::engine::idempotency_key(&id, "fan", item)),
            "an unrecorded item is retried with the same idempotency key: {keys:?}"
        );
    }

    let events = store.events(&id).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "no acknowledged event was lost or reordered"
    );
    // All five items were admitted at once; one call at a time, 0 (and
    // perhaps 1) were recorded, 2 was in flight, 3 and 4 had not started:
    // the record cannot tell the rest apart, and says so.
    let unrecorded = 5 - before.len();
    assert!(
        events.iter().any(|e| e.kind == "incident.resumed"
            && e.message.contains(&format!(
                "fan (up to {unrecorded} item(s) may have been sent with no outcome recorded)"
            ))),
        "{events:#?}"
    );
    let run = store.step_run(&id, "fan").unwrap();
    assert_eq!(
        run.output,
        json!([{"n": "0"}, {"n": "1"}, {"n": "2"}, {"n": "3"}, {"n": "4"}])
    );
    // The attempt the crash cut short left no record to count it by.
    assert_eq!(store.item_runs(&id, "fan").unwrap()[&2].attempts, 1);
}
