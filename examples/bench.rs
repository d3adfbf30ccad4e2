//! Prints quench's throughput figures: store writes, fan-out against the
//! built-in simulator, and how close a rate-limited fan-out runs to the
//! manifest's limit. Run: `cargo run --release --example bench`.
//!
//! Figures, not assertions: this machine is shared and noisy, so tests
//! never assert on wall-clock time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quench::engine::{Declaration, Engine, Settings, SystemClock};
use quench::integrations::{Executor, Simulator};
use quench::library::{Folders, Library};
use quench::store::{ItemRun, NewEvent, StepStatus, Store};
use serde_json::json;

const MANIFEST: &str = r#"
name: benchp
base_url: https://bench.invalid
auth: { bearer: "{{secrets.BENCH_TOKEN}}" }
actions:
  revoke:
    method: DELETE
    path: "/grants/{{with.id}}"
    ok: [204]
    simulate: { status: 204 }
"#;

const LIMITED: &str = r#"
name: limited
base_url: https://bench.invalid
auth: { bearer: "{{secrets.LIMITED_TOKEN}}" }
rate_limit: { per_second: 100, burst: 10 }
actions:
  revoke:
    method: DELETE
    path: "/grants/{{with.id}}"
    ok: [204]
    simulate: { status: 204 }
"#;

fn runbook(integration: &str, n: usize, concurrency: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("\"g{i}\"")).collect();
    format!(
        "version: 1\nname: bench\ninputs:\n  ids: {{ type: list, default: [{}] }}\nsteps:\n  - id: revoke\n    action: {integration}.revoke\n    for_each: inputs.ids\n    concurrency: {concurrency}\n    with: {{ id: \"{{{{item}}}}\" }}\n",
        ids.join(", ")
    )
}

async fn fan_out(
    lib: &Arc<Library>,
    exec: &Arc<Executor>,
    integration: &str,
    n: usize,
    concurrency: usize,
) -> (Duration, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let settings = Settings {
        drill: true,
        ..Settings::default()
    };
    let engine = Engine::new(
        store.clone(),
        exec.clone(),
        Arc::new(SystemClock),
        lib.clone(),
        settings,
    );
    let src = runbook(integration, n, concurrency);
    let rb = quench::runbook::load("bench.yaml", &src, &lib.known()).unwrap();
    let inputs = quench::runbook::inputs::parse(&rb, &[]).unwrap();
    let t = Instant::now();
    let id = engine
        .declare(
            &rb,
            Declaration {
                runbook_file: "bench.yaml".into(),
                runbook_source: src.clone(),
                inputs,
                declared_by: "bench".into(),
                severity: "sev2".into(),
                channel: None,
            },
        )
        .await
        .unwrap();
    let status = engine.run(&id).await.unwrap();
    assert_eq!(status.name(), "completed");
    (t.elapsed(), store.events(&id).unwrap().len())
}

#[tokio::main]
async fn main() {
    quench::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("integrations")).unwrap();
    std::fs::write(dir.path().join("integrations/benchp.yaml"), MANIFEST).unwrap();
    std::fs::write(dir.path().join("integrations/limited.yaml"), LIMITED).unwrap();
    let lib = Arc::new(
        Library::load(&Folders {
            runbooks: None,
            integrations: Some(dir.path().join("integrations")),
        })
        .unwrap(),
    );
    let sim = Simulator::start(&lib.catalog).await.unwrap();
    let exec =
        Arc::new(Executor::new(&lib.catalog, sim.routing(&lib.catalog.secret_names())).unwrap());

    // 1. Durable store writes: each one flushed before it returns.
    let sdir = tempfile::tempdir().unwrap();
    let store = Store::open(sdir.path()).unwrap();
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        let run = ItemRun {
            status: StepStatus::Running,
            attempts: 1,
            idempotency_key: format!("k{i}"),
            output: json!(null),
            error: None,
            already_done: false,
            started_at: None,
            finished_at: None,
        };
        store
            .put_item(
                "INC-1",
                "s",
                i,
                &run,
                chrono::Utc::now(),
                NewEvent::new("item.attempt", "bench", "x"),
            )
            .await
            .unwrap();
    }
    let e = t.elapsed();
    println!(
        "store: {n} flushed item+event writes in {:.2}s = {:.0} writes/s ({:.2} ms each)",
        e.as_secs_f64(),
        n as f64 / e.as_secs_f64(),
        e.as_secs_f64() * 1000.0 / n as f64
    );

    // 2. Fan-out against the simulator, no rate limit: the engine's own cost.
    for (items, conc) in [(500, 1), (500, 20), (2000, 50)] {
        let (e, events) = fan_out(&lib, &exec, "benchp", items, conc).await;
        println!(
            "fan-out: {items} revocations, concurrency {conc}: {:.2}s = {:.0} items/s ({events} timeline events)",
            e.as_secs_f64(),
            items as f64 / e.as_secs_f64()
        );
    }

    // 3. Rate-limited: 300 calls at per_second 100 (burst 10) should take ~2.9s.
    let (e, _) = fan_out(&lib, &exec, "limited", 300, 50).await;
    println!(
        "rate limit: 300 calls at per_second 100, burst 10: {:.2}s = {:.1} calls/s (limit 100/s; ideal {:.2}s)",
        e.as_secs_f64(),
        300.0 / e.as_secs_f64(),
        2.9
    );
}
