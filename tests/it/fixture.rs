//! A data dir written before the architecture work (store format 1,
//! `tests/fixtures/make-store-v1.sh`) opens and resumes with this build: a
//! completed drill reads back whole, and a live incident left waiting for
//! legal when its daemon stopped runs on to completion once legal approves.
//! If this fails, a change broke users' existing stores: migrate them,
//! never regenerate the fixture.

use quench::engine::{Decision, FakeClock};
use quench::store::{IncidentStatus, StepStatus};

use crate::support::{build_engine, start_time, Mock};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_store_from_before_opens_and_its_waiting_incident_resumes() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let waiting = std::fs::read_to_string(fixtures.join("store-v1.waiting")).unwrap();
    let waiting = waiting.trim();
    let dir = tempfile::tempdir().unwrap();
    // sled writes on open: never open the fixture in place.
    copy_dir(&fixtures.join("store-v1"), &dir.path().join("store"));
    let mock = Mock::start().await;
    let (engine, store, _) =
        build_engine(dir.path(), &mock.url, FakeClock::new(start_time()), false);

    let incidents = store.incidents().unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    let drill = incidents.iter().find(|i| i.drill).expect("the drill");
    assert_eq!(drill.status, IncidentStatus::Completed);
    assert_eq!(drill.runbook, "shadow-ai-exposure");
    for inc in &incidents {
        let report = store.audit(&inc.id).unwrap();
        assert!(
            report.problems.is_empty(),
            "{}: {:?}",
            inc.id,
            report.problems
        );
        assert!(report.events > 0);
    }
    let text = quench::timeline::render_text(drill, &store.events(&drill.id).unwrap());
    assert!(text.contains("Completed"), "{text}");

    let inc = store.incident(waiting).unwrap();
    assert_eq!(inc.status, IncidentStatus::Waiting);
    assert_eq!(inc.inputs["tool"], "Jasper");
    assert_eq!(
        engine.resume(waiting).await.unwrap(),
        IncidentStatus::Waiting
    );
    engine
        .resolve(
            waiting,
            crate::support::by_person("ask-legal", Decision::Approve, "U0LEGAL1"),
        )
        .await
        .unwrap();
    engine.run(waiting).await.unwrap();
    engine
        .resolve(
            waiting,
            crate::support::by_person("tell-team", Decision::Done, "sam"),
        )
        .await
        .unwrap();
    assert_eq!(
        engine.run(waiting).await.unwrap(),
        IncidentStatus::Completed
    );
    let runs = store.step_runs(waiting).unwrap();
    assert!(
        runs.values().all(|r| r.status == StepStatus::Succeeded),
        "{runs:?}"
    );
    let report = store.audit(waiting).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let kinds: Vec<String> = store
        .events(waiting)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "incident.declared").count(),
        1
    );
    assert!(kinds.iter().any(|k| k == "incident.resumed"));
    assert_eq!(kinds.last().map(String::as_str), Some("incident.completed"));
}
