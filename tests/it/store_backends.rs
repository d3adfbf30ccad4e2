//! One suite, both backends: what the engine writes through `Store` reads
//! back the same from sled and from PostgreSQL, after the process that
//! wrote it is gone (a reopen), with an audit chain that verifies; and
//! the shared store's own failures (a newer schema, a failed migration, a
//! database out of reach) are refused with what to do.

use chrono::{DateTime, Utc};
use quench::store::{
    EventKind, Incident, IncidentStatus, ItemRun, NewEvent, NoticeDraft, Severity, StepRun,
    StepStatus, Store, StoreError, TimelineEvent,
};
use serde_json::json;

use crate::support::{Mock, Reply, Rig};

enum Backend {
    Sled(tempfile::TempDir),
    Postgres(String),
    /// A server that takes only TLS, verified as a managed database's is.
    PostgresTls(String),
}

impl Backend {
    async fn all() -> Vec<Backend> {
        vec![
            Backend::Sled(tempfile::tempdir().unwrap()),
            Backend::Postgres(crate::postgres::database().await),
            Backend::PostgresTls(tls_url(None).await),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sled(_) => "sled",
            Backend::Postgres(_) => "postgres",
            Backend::PostgresTls(_) => "postgres over TLS",
        }
    }

    /// The store as a new process finds it.
    async fn open(&self) -> Store {
        match self {
            Backend::Sled(dir) => {
                // sled's threads let go of the last store opened here a
                // moment after its drop; there is nothing to await.
                for _ in 0..200 {
                    match Store::open(&dir.path().join("store")) {
                        Err(StoreError::Locked { .. }) => {
                            std::thread::sleep(std::time::Duration::from_millis(10))
                        }
                        other => return other.unwrap(),
                    }
                }
                panic!("the sled store stayed locked for 2 s after its last use here");
            }
            Backend::Postgres(url) | Backend::PostgresTls(url) => {
                Store::open_leading(url, "tests").await.unwrap()
            }
        }
    }
}

/// A fresh database on the TLS-only server, by the name its certificate
/// carries, trusting the CA that signs it; `query` in place of the TLS
/// options when given.
async fn tls_url(query: Option<&str>) -> String {
    let (port, name) = crate::postgres::tls_database().await;
    let ca = crate::postgres::tls_ca();
    let query = query
        .map(str::to_string)
        .unwrap_or_else(|| format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    format!("postgres://quench:{PASSWORD}@localhost:{port}/{name}?{query}")
}

/// In the TLS URLs (the test server trusts local users, so it never asks
/// for it); no error may show it.
const PASSWORD: &str = "tls-Pa55w0rd";

fn at() -> DateTime<Utc> {
    "2026-12-02T09:00:00Z".parse().unwrap()
}

fn incident(id: &str) -> Incident {
    Incident {
        id: id.into(),
        runbook: "test".into(),
        title: "test".into(),
        runbook_file: "test.yaml".into(),
        runbook_source: String::new(),
        status: IncidentStatus::Running,
        declared_at: at(),
        declared_by: "tester".into(),
        finished_at: None,
        inputs: json!({}),
        drill: true,
        severity: Severity::Sev2,
    }
}

async fn declared(store: &Store, id: &str) {
    store
        .create_incident(
            &incident(id),
            NewEvent::new(EventKind::IncidentDeclared, "tester", "declared"),
        )
        .await
        .unwrap();
}

/// What a reader sees of an incident: enough to tell two stores apart.
fn everything(store: &Store, id: &str) -> serde_json::Value {
    let events: Vec<TimelineEvent> = store.events(id).unwrap();
    json!({
        "incident": store.incident(id).unwrap(),
        "steps": store.step_runs(id).unwrap(),
        "items": store.step_runs(id).unwrap().keys().map(|s| (s.clone(), store.item_runs(id, s).unwrap())).collect::<std::collections::BTreeMap<_, _>>(),
        "events": events,
        "notices": store.notices(id).unwrap(),
        "audit": store.audit(id).unwrap().head,
    })
}

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
    concurrency: 2
    with: { path: "item/{{item}}", value: "{{item}}" }
"#;

#[tokio::test]
async fn an_incident_reads_back_the_same_after_a_reopen_on_both_backends() {
    let mock = Mock::start().await;
    mock.on("/first", vec![Reply::json(200, json!({"ok": true}))]);
    mock.otherwise(Reply::json(200, json!({"done": true})));
    let mut kinds = Vec::new();
    for backend in Backend::all().await {
        let name = backend.name();
        let store = backend.open().await;
        let (id, seen) = {
            let rig = Rig::over(&mock, true, tempfile::tempdir().unwrap(), store);
            let (id, status) = rig.run(RUNBOOK, json!({})).await;
            assert_eq!(status, IncidentStatus::Completed, "{name}");
            let seen = everything(&rig.store, &id);
            (id, seen)
        };
        let reopened = backend.open().await;
        assert_eq!(
            everything(&reopened, &id),
            seen,
            "{name}: read back after a reopen"
        );
        let report = reopened.audit(&id).unwrap();
        assert!(report.intact(), "{name}: {:?}", report.problems);
        assert_eq!(report.events, seen["events"].as_array().unwrap().len());
        // A new process goes on numbering incidents, and their events
        // start again at one, in a chain of their own.
        let next = reopened.next_incident_id(at()).unwrap();
        assert_ne!(next, id, "{name}: an incident id is never given twice");
        reopened
            .create_incident(
                &incident(&next),
                NewEvent::new(EventKind::IncidentDeclared, "tester", "again"),
            )
            .await
            .unwrap();
        assert_eq!(reopened.events(&next).unwrap()[0].seq, 1);
        drop(reopened);
        let third = backend.open().await;
        assert!(third.audit(&next).unwrap().intact(), "{name}");
        assert_eq!(third.incidents().unwrap().len(), 2, "{name}");
        kinds.push(
            seen["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["kind"].clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(kinds[0], kinds[1], "both backends record the same timeline");
}

/// A list step's output (every grant of a large tenant) is written once,
/// in a record of its own: the run that holds it, and its neighbours
/// written at every window of the fan-out after it, stay small, so sled
/// never rewrites the list with them. It reads back whole after a reopen,
/// from the shared store too.
#[tokio::test]
async fn a_long_output_is_stored_once_apart_and_reads_back_whole_on_both_backends() {
    let long: serde_json::Value = (0..2_000).map(|i| json!({"id": format!("g{i}")})).collect();
    let long_bytes = serde_json::to_vec(&long).unwrap();
    for backend in Backend::all().await {
        let name = backend.name();
        let (store, id) = (backend.open().await, "INC-20261204-0001");
        declared(&store, id).await;
        let listed = StepRun {
            status: StepStatus::Succeeded,
            output: long.clone(),
            ..StepRun::default()
        };
        store
            .put_step(id, "list", &listed, at(), vec![])
            .await
            .unwrap();
        for below in [200, 400, 600, 800] {
            let fanning = StepRun {
                status: StepStatus::Running,
                items: Some(1_000),
                started_below: Some(below),
                ..StepRun::default()
            };
            store
                .put_step(id, "revoke", &fanning, at(), vec![])
                .await
                .unwrap();
        }
        let item = ItemRun {
            status: StepStatus::Succeeded,
            attempts: 1,
            output: long.clone(),
            ..ItemRun::pending("quench-item-0".into())
        };
        store
            .put_item(id, "revoke", 0, &item, at(), None)
            .await
            .unwrap();
        let small = ItemRun {
            status: StepStatus::Succeeded,
            attempts: 1,
            output: json!({"revoked": true}),
            ..ItemRun::pending("quench-item-1".into())
        };
        store
            .put_item(id, "revoke", 1, &small, at(), None)
            .await
            .unwrap();
        let digest = store.items_digest(id, "revoke").unwrap();
        drop(store);

        let reopened = backend.open().await;
        let list = reopened.step_run(id, "list").unwrap();
        assert_eq!(list.output, long, "{name}");
        assert!(!list.output_apart, "{name}: a run handed out is whole");
        assert_eq!(
            reopened.step_runs(id).unwrap()["list"].output,
            long,
            "{name}"
        );
        assert_eq!(
            reopened.step_run(id, "revoke").unwrap().started_below,
            Some(800)
        );
        let items = reopened.item_runs(id, "revoke").unwrap();
        assert_eq!(items[&0].output, long, "{name}");
        assert_eq!(items[&1].output, json!({"revoked": true}), "{name}");
        assert!(items.values().all(|i| !i.output_apart), "{name}");
        assert_eq!(
            reopened.items_digest(id, "revoke").unwrap(),
            digest,
            "{name}"
        );

        // As stored: the list twice (the step's and its item's), each once,
        // in `outputs`; every run's own record small.
        let records: Vec<_> = reopened.records().map(Result::unwrap).collect();
        let holding: Vec<(&str, String)> = records
            .iter()
            .filter(|(_, _, v)| v.windows(7).any(|w| w == b"\"g1999\""))
            .map(|(t, k, _)| (*t, String::from_utf8_lossy(k).replace('\u{0}', "/")))
            .collect();
        assert_eq!(
            holding,
            vec![
                ("outputs", format!("{id}/list")),
                ("outputs", format!("{id}/revoke/00000000")),
            ],
            "{name}"
        );
        for (tree, k, v) in &records {
            if *tree == "outputs" {
                assert_eq!(v.as_ref(), long_bytes.as_slice(), "{name}");
            }
            if *tree == "steps" || *tree == "items" {
                assert!(v.len() < 400, "{name}: {tree} {k:?} is {} bytes", v.len());
            }
        }
    }
}

#[tokio::test]
async fn item_writes_made_at_once_are_all_durable_on_both_backends() {
    for backend in Backend::all().await {
        let name = backend.name();
        let (store, id) = (backend.open().await, "INC-20261202-0001");
        declared(&store, id).await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..300u32 {
            let store = store.clone();
            set.spawn(async move {
                let mut run = ItemRun::pending(format!("key-{i}"));
                run.status = StepStatus::Succeeded;
                run.attempts = 1;
                run.output = json!({"n": i});
                // Every tenth item has an event, as a failed item does.
                let ev = (i % 10 == 0).then(|| {
                    NewEvent::new(EventKind::ItemFailed, "engine", format!("item {i}"))
                        .item(Some(i))
                });
                store.put_item(id, "fan", i, &run, at(), ev).await.unwrap();
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        drop(store);
        let reopened = backend.open().await;
        let items = reopened.item_runs(id, "fan").unwrap();
        assert_eq!(items.len(), 300, "{name}");
        assert_eq!(items[&299].output, json!({"n": 299}), "{name}");
        let events = reopened.events(id).unwrap();
        assert_eq!(
            events.len(),
            31,
            "{name}: the declaration and 30 item events"
        );
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=31).collect::<Vec<_>>(), "{name}");
        assert!(reopened.audit(id).unwrap().intact(), "{name}");
    }
}

#[tokio::test]
async fn notice_versions_and_their_approval_read_back_on_both_backends() {
    for backend in Backend::all().await {
        let name = backend.name();
        let (store, id) = (backend.open().await, "INC-20261202-0001");
        declared(&store, id).await;
        for body in ["first draft", "second draft"] {
            let draft = NoticeDraft {
                incident: id.into(),
                step: "notify".into(),
                audience: "customers".into(),
                jurisdiction: Some("EU".into()),
                template: "customer.hbs".into(),
                version: 0,
                body: body.into(),
                drafted_at: at(),
                drafted_by: "engine".into(),
                approved_by: None,
                approved_at: None,
            };
            store
                .put_notice(
                    draft,
                    NewEvent::new(EventKind::NoticeDrafted, "engine", "drafted").step("notify"),
                )
                .await
                .unwrap();
        }
        store
            .approve_notices(id, &["notify".to_string()], "U0LEGAL1", at())
            .await
            .unwrap();
        store
            .put_meta("slack-thread", &json!({"ts": "1.2"}))
            .await
            .unwrap();
        drop(store);
        let reopened = backend.open().await;
        let notices = reopened.notices(id).unwrap();
        assert_eq!(notices.len(), 2, "{name}");
        assert_eq!(notices[1].version, 2);
        assert_eq!(notices[1].body, "second draft");
        assert_eq!(
            notices[1].approved_by.as_deref(),
            Some("U0LEGAL1"),
            "{name}"
        );
        assert_eq!(
            notices[0].approved_by, None,
            "{name}: only the latest version"
        );
        assert_eq!(
            reopened.meta("slack-thread").unwrap(),
            Some(json!({"ts": "1.2"}))
        );
        let report = reopened.audit(id).unwrap();
        assert!(report.intact(), "{name}: {:?}", report.problems);
        assert_eq!(report.notices, 2, "{name}");
    }
}

/// How many records the database holds, and its last `rev`.
async fn records(db: &tokio_postgres::Client) -> (i64, Option<i64>) {
    let r = db
        .query_one("SELECT count(*), max(rev) FROM quench_records", &[])
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Records in a newer layout than this quench reads (`store_format`) are
/// refused when a daemon reads the shared store, as on the embedded one,
/// rather than misread.
#[tokio::test]
async fn a_shared_store_in_a_newer_record_format_is_refused() {
    let url = crate::postgres::database().await;
    drop(Store::open_shared(&url, None).await.unwrap());
    let db = admin(&url).await;
    db.execute(
        "INSERT INTO quench_records (tree, key, value, rev)
         VALUES ('meta', $1, $2, nextval('quench_rev'))",
        &[&b"store_format".as_slice(), &b"3".as_slice()],
    )
    .await
    .unwrap();
    let err = Store::open_shared(&url, None).await.err().expect("refused");
    assert!(matches!(err, StoreError::Unusable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("written by a newer quench (store format 3; this one reads up to 2)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_and_left_as_it_is() {
    let url = crate::postgres::database().await;
    drop(Store::open_shared(&url, None).await.unwrap());
    let db = admin(&url).await;
    db.batch_execute("UPDATE quench_schema SET version = 99")
        .await
        .unwrap();
    let err = Store::open_shared(&url, None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("schema version 99, newer than this quench's"),
        "{err}"
    );
    assert!(err.contains("run a newer quench"), "{err}");
    let v: i32 = db
        .query_one("SELECT version FROM quench_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 99);
}

#[tokio::test]
async fn a_migration_that_fails_leaves_the_schema_unchanged() {
    let url = crate::postgres::database().await;
    let db = admin(&url).await;
    // Something of the operator's is in the way of the first migration.
    db.batch_execute("CREATE TABLE quench_records (mine text)")
        .await
        .unwrap();
    let err = Store::open_shared(&url, None)
        .await
        .err()
        .unwrap()
        .to_string();
    let to = quench::store::shared::SCHEMA_VERSION;
    assert!(
        err.contains(&format!(
            "to schema version {to} failed, and it was left at version 0"
        )),
        "{err}"
    );
    let versions = db
        .query("SELECT version FROM quench_schema", &[])
        .await
        .unwrap();
    assert!(versions.is_empty(), "no version was recorded");
    let seq = db
        .query("SELECT 1 FROM pg_class WHERE relname = 'quench_rev'", &[])
        .await
        .unwrap();
    assert!(
        seq.is_empty(),
        "the migration's other statements were rolled back"
    );
    let cols: i64 = db
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'quench_records'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cols, 1, "the operator's table is as it was");
}

#[tokio::test]
async fn an_unreachable_database_is_named_by_host_and_never_by_its_password() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://quench:hunter2-secret@127.0.0.1:{port}/incidents");
    let err = Store::open_shared(&url, None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!(
            "cannot reach the PostgreSQL store at 127.0.0.1:{port}/incidents"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = Store::open_shared("not a url at all", None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
        "{err}"
    );
}

#[tokio::test]
async fn a_write_after_a_takeover_is_refused_and_nothing_of_it_lands() {
    let url = crate::postgres::database().await;
    let lease = std::time::Duration::from_secs(10);
    let a = Store::open_shared(&url, None).await.unwrap();
    assert_eq!(a.lead("a", lease).await.unwrap(), Some(1));
    let b = Store::open_shared(&url, None).await.unwrap();
    assert_eq!(b.lead("b", lease).await.unwrap(), None, "a's lease runs");
    assert!(!b.leads());
    declared(&a, "INC-20261202-0001").await;
    // A standby follows what the leader writes, and writes nothing itself.
    assert!(b.follow().await.unwrap() > 0);
    assert_eq!(b.incidents().unwrap().len(), 1);
    let refused = b
        .append(
            "INC-20261202-0001",
            at(),
            NewEvent::new(EventKind::Note, "b", "from the standby"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no longer leads"), "{refused}");

    // a is paused past its lease (here: its lease is run out by hand).
    let db = admin(&url).await;
    db.batch_execute("UPDATE quench_leader SET lease_until = now() - interval '1 second'")
        .await
        .unwrap();
    assert_eq!(b.lead("b", lease).await.unwrap(), Some(2));
    let before = records(&db).await;
    let err = a
        .append(
            "INC-20261202-0001",
            at(),
            NewEvent::new(EventKind::Note, "a", "written after the takeover"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no longer leads"), "{err}");
    assert_eq!(
        records(&db).await,
        before,
        "nothing of the fenced write landed"
    );
    assert!(!a.leads());
    assert!(!a.renew(lease).await.unwrap(), "a learns it was deposed");

    // b goes on where a stopped, and its chain verifies.
    b.append(
        "INC-20261202-0001",
        at(),
        NewEvent::new(EventKind::Note, "b", "the new leader's note"),
    )
    .await
    .unwrap();
    let events = b.events("INC-20261202-0001").unwrap();
    assert_eq!(events.len(), 2);
    assert!(!events
        .iter()
        .any(|e| e.message.contains("after the takeover")));
    assert!(b.audit("INC-20261202-0001").unwrap().intact());
    // The same holder takes its own lease back at once, and that fences
    // what ran under its old epoch just the same.
    let b2 = Store::open_shared(&url, None).await.unwrap();
    assert_eq!(b2.lead("b", lease).await.unwrap(), Some(3));
    let err = b
        .append(
            "INC-20261202-0001",
            at(),
            NewEvent::new(EventKind::Note, "b", "old run"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no longer leads"), "{err}");
}

#[tokio::test]
async fn tls_to_the_shared_store_is_verified_or_refused_with_the_fix() {
    async fn refused(url: &str) -> String {
        Store::open_shared(url, None)
            .await
            .err()
            .expect("refused")
            .to_string()
    }
    let ca = crate::postgres::tls_ca();
    // The server takes no connection without TLS.
    let url = tls_url(Some("sslmode=disable")).await;
    let err = refused(&url).await;
    assert!(err.contains("no encryption"), "{err}");

    // The default (prefer) talks TLS when the server offers it, verified.
    let url = tls_url(Some(&format!("sslrootcert={}", ca.display()))).await;
    let store = Store::open_leading(&url, "tests").await.unwrap();
    declared(&store, "INC-20261202-0001").await;
    drop(store);
    let again = Store::open_shared(&url, None).await.unwrap();
    assert!(again.incident("INC-20261202-0001").is_ok());

    // A certificate no trusted CA signs: refused, saying how to trust it.
    let url = tls_url(Some("sslmode=require")).await;
    let err = refused(&url).await;
    assert!(err.contains("did not prove who it is"), "{err}");
    assert!(err.contains("not trusted for localhost"), "{err}");
    assert!(err.contains("sslrootcert=PATH"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");

    // The right CA, but a name the certificate does not carry.
    let url = tls_url(None).await.replace("@localhost:", "@127.0.0.1:");
    let err = refused(&url).await;
    assert!(err.contains("not trusted for 127.0.0.1"), "{err}");
    assert!(err.contains("127.0.0.1:"), "{err}");

    // A CA file that is not there is named.
    let url = tls_url(Some("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).await;
    let err = refused(&url).await;
    assert!(
        err.contains("sslrootcert /nonexistent/ca.pem, which cannot be used"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}
