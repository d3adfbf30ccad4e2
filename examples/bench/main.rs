//! Prints quench's throughput figures: store writes, fan-out against the
//! built-in simulator, how close a rate-limited fan-out runs to the
//! manifest's limit, and the daemon over HTTP (declarations per second to
//! completion, read latency), and declaration to first call (scenario D;
//! alone: `... --example bench -- declare`). Run: `cargo run --release --example bench`.
//!
//! The scenario table of issue 14 (A, B, B4, C, S: mock platforms with
//! latency, 429s and 503s, quench in a child process):
//! `... --example bench -- table [A B B4 C S20k S200k S20k-asyncio S200k-asyncio S200k-reqwest]`
//! (`-asyncio`: the asyncio script of `asyncio_baseline.py`; `-reqwest`:
//! quench's HTTP client and task shape alone, `scenarios::child_reqwest`). To profile the
//! child alone: `BENCH_CHILD_WRAPPER="heaptrack -o /tmp/s" ...`.
//!
//! Figures, not assertions: this machine is shared and noisy, so tests
//! never assert on wall-clock time.
// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

mod platform;
mod precise_sleep;
mod scenarios;

use quench::store::EventKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quench::engine::{Declaration, Engine, Settings, SystemClock};
use quench::integrations::{Executor, Simulator};
use quench::library::{Folders, Library};
use quench::store::{ItemRun, NewEvent, StepStatus, Store};
use serde_json::json;

/// A manifest with one revoking action, its token from secret `secret`,
/// and the rate limit given.
fn revoke_manifest(name: &str, secret: &str, rate_limit: &str) -> String {
    format!(
        r#"name: {name}
base_url: https://bench.invalid
auth: {{ bearer: "{{{{secrets.{secret}}}}}" }}
{rate_limit}actions:
  revoke:
    method: DELETE
    path: "/grants/{{{{with.id}}}}"
    ok: [204]
    simulate: {{ status: 204 }}
"#
    )
}

fn runbook(integration: &str, n: usize, concurrency: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("\"g{i}\"")).collect();
    format!(
        "version: 1\nname: bench\ninputs:\n  ids: {{ type: list, default: [{}] }}\nsteps:\n  - id: revoke\n    action: {integration}.revoke\n    for_each: inputs.ids\n    concurrency: {concurrency}\n    with: {{ id: \"{{{{item}}}}\" }}\n",
        ids.join(", ")
    )
}

/// Section 2 of the bench (alone: `-- fanout`; on PostgreSQL with
/// `BENCH_DATABASE_URL=postgres://...`).
async fn fan_outs(lib: &Arc<Library>, exec: &Arc<Executor>) {
    for (items, conc) in [(500, 1), (500, 20), (2000, 50), (10000, 50)] {
        let cpu = cpu_seconds();
        let (e, events) = fan_out(lib, exec, "benchp", items, conc).await;
        let cpu = cpu_seconds() - cpu;
        println!(
            "fan-out: {items} revocations, concurrency {conc}: {:.2}s = {:.0} items/s, CPU {:.2}s = {:.0} us/item ({events} timeline events)",
            e.as_secs_f64(),
            items as f64 / e.as_secs_f64(),
            cpu,
            cpu * 1e6 / items as f64
        );
    }
}

async fn fan_out(
    lib: &Arc<Library>,
    exec: &Arc<Executor>,
    integration: &str,
    n: usize,
    concurrency: usize,
) -> (Duration, usize) {
    let dir = tempfile::tempdir().unwrap();
    // `BENCH_DATABASE_URL`: the same fan-out on the shared store.
    let store = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => Store::open_leading(&url, "bench").await.unwrap(),
        Err(_) => Store::open(dir.path()).unwrap(),
    };
    let src = runbook(integration, n, concurrency);
    let t = Instant::now();
    let id = run_to_completion(&store, exec.clone(), lib, true, &src).await;
    (t.elapsed(), store.events(&id).unwrap().len())
}

/// Declares runbook `src` on a fresh engine over `store` and runs it; an
/// incident that does not complete prints its timeline and panics.
async fn run_to_completion(
    store: &Store,
    exec: Arc<Executor>,
    lib: &Arc<Library>,
    drill: bool,
    src: &str,
) -> String {
    let engine = Engine::new(
        Arc::new(store.clone()),
        exec,
        Arc::new(SystemClock),
        lib.clone(),
        Settings {
            drill,
            ..Settings::default()
        },
    );
    let rb = quench::runbook::load("bench.yaml", src, &lib.known()).unwrap();
    let inputs = quench::runbook::inputs::parse(&rb, &[]).unwrap();
    let id = engine
        .declare(
            &rb,
            Declaration {
                runbook_file: "bench.yaml".into(),
                runbook_source: src.to_string(),
                inputs,
                declared_by: "bench".into(),
                token: None,
                severity: quench::store::Severity::Sev2,
                channel: None,
            },
        )
        .await
        .unwrap();
    let status = engine.run(&id).await.unwrap();
    if status.name() != "completed" {
        for e in store.events(&id).unwrap() {
            eprintln!("{} {}", e.kind, e.message);
        }
        panic!("the incident {}", status.name());
    }
    id
}

#[tokio::main]
async fn main() {
    quench::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("integrations")).unwrap();
    std::fs::write(
        dir.path().join("integrations/benchp.yaml"),
        revoke_manifest("benchp", "BENCH_TOKEN", ""),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("integrations/limited.yaml"),
        revoke_manifest(
            "limited",
            "LIMITED_TOKEN",
            "rate_limit: { per_second: 100, burst: 10 }\n",
        ),
    )
    .unwrap();
    let lib = Arc::new(
        Library::load(&Folders {
            runbooks: None,
            integrations: Some(dir.path().join("integrations")),
        })
        .unwrap(),
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => return scenarios::child(&args[1]).await,
        Some("child-reqwest") => return scenarios::child_reqwest(&args[1]).await,
        Some("table") => return scenarios::table(&args[1..]).await,
        _ => {}
    }
    // `bench declare`: only scenario D.
    if args.first().map(String::as_str) == Some("declare") {
        let d = tempfile::tempdir().unwrap();
        declare_to_first_call(d.path(), &dir.path().join("integrations")).await;
        return;
    }
    let sim = Simulator::start(&lib.catalog).await.unwrap();
    let exec =
        Arc::new(Executor::new(&lib.catalog, sim.routing(&lib.catalog.secret_names())).unwrap());

    if args.first().map(String::as_str) == Some("fanout") {
        fan_outs(&lib, &exec).await;
        return;
    }

    // 1. Durable store writes: each one flushed before it returns.
    let sdir = tempfile::tempdir().unwrap();
    let store = Store::open(sdir.path()).unwrap();
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        let run = ItemRun {
            status: StepStatus::Running,
            attempts: 1,
            ..ItemRun::pending(format!("k{i}"))
        };
        store
            .put_item(
                "INC-1",
                "s",
                i,
                &run,
                chrono::Utc::now(),
                Some(NewEvent::new(EventKind::ItemRetry, "bench", "x")),
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
    //    CPU time beside wall time: the wall clock here is mostly flushes
    //    and a shared machine's noise, the CPU is the engine's work (the
    //    simulator's included, the same in every build).
    fan_outs(&lib, &exec).await;
    templates_bench();

    // 3. Rate-limited: 300 calls at per_second 100 (burst 10) should take ~2.9s.
    let (e, _) = fan_out(&lib, &exec, "limited", 300, 50).await;
    println!(
        "rate limit: 300 calls at per_second 100, burst 10: {:.2}s = {:.1} calls/s (limit 100/s; ideal {:.2}s)",
        e.as_secs_f64(),
        300.0 / e.as_secs_f64(),
        2.9
    );

    // 4. The daemon over HTTP: incidents declared by concurrent API clients
    //    and run to completion, then read latency of one incident's JSON.
    daemon_bench(dir.path(), &exec).await;

    // 5. Declaration to the first outbound call, through the API.
    let d = tempfile::tempdir().unwrap();
    declare_to_first_call(d.path(), &dir.path().join("integrations")).await;

    // 6. The scenario table.
    scenarios::table(&[]).await;
}

/// Process CPU time (user + system), every thread.
fn cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    #[allow(unsafe_code)]
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// What compiling each template once saves per item: the bundled runbook's
/// longest per-item `when` (Klaviyo's), rendered for 10,000 items the way
/// the engine does (compiled once, one context per item), against
/// handlebars compiling it and copying the context for every render.
fn templates_bench() {
    let when = include_str!("../../runbooks/shadow-ai-exposure.yaml")
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("when: '"))
        .max_by_key(|w| w.len())
        .and_then(|w| w.strip_suffix('\''))
        .expect("a per-item when")
        .to_string();
    let ctx = json!({
        "inputs": {"tool": "ChatGPT", "revoke_unapproved": true},
        "incident": {"id": "INC-1"},
    });
    // The same item for both, on the branch that needs no quench helper
    // (handlebars alone has none).
    let item = json!({"attributes": {"status": "inactive", "name": "tool"}});
    let n = 10_000;
    let templates = quench::template::Templates::standard();
    let t = Instant::now();
    for _ in 0..n {
        let mut scope = quench::template::Scope::new(ctx.clone());
        scope.insert("item", item.clone());
        templates.render_str(&when, &scope).unwrap();
    }
    let once = t.elapsed();
    let mut hb = handlebars::Handlebars::new();
    hb.set_strict_mode(true);
    let t = Instant::now();
    for _ in 0..n {
        let mut c = ctx.clone();
        c["item"] = item.clone();
        hb.render_template(&when, &c).unwrap();
    }
    let each = t.elapsed();
    println!(
        "templates: {n} renders of a {}-byte `when`: compiled once {:.1} us/render; compiled per render {:.1} us/render",
        when.len(),
        once.as_secs_f64() * 1e6 / n as f64,
        each.as_secs_f64() * 1e6 / n as f64
    );
}

async fn daemon_bench(dir: &std::path::Path, exec: &Arc<Executor>) {
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("runbooks/bench.yaml"), runbook("benchp", 5, 5)).unwrap();
    let lib = Arc::new(
        Library::load(&Folders {
            runbooks: Some(dir.join("runbooks")),
            integrations: Some(dir.join("integrations")),
        })
        .unwrap(),
    );
    let sdir = tempfile::tempdir().unwrap();
    let (daemon, url) = serve_daemon(sdir.path(), lib, exec.clone()).await;
    let http = reqwest::Client::new();
    let n = 200;
    let clients = 16;
    let mut rx = daemon.engine().subscribe();
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, url) = (http.clone(), url.clone());
        set.spawn(async move {
            let mut ids = Vec::new();
            for _ in (c..n).step_by(clients) {
                let r = declare_bench(&http, &url).await;
                let j: serde_json::Value = r.json().await.unwrap();
                ids.push(j["id"].as_str().unwrap().to_string());
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = set.join_next().await {
        ids.extend(r.unwrap());
    }
    let declared = t.elapsed();
    let completed_in_store = || {
        daemon
            .store()
            .incidents()
            .unwrap()
            .iter()
            .filter(|i| i.status == quench::store::IncidentStatus::Completed)
            .count()
    };
    let mut done = completed_in_store();
    while done < n {
        match rx.recv().await {
            Ok((_, ev)) if ev.kind != "incident.completed" => {}
            // The store decides (the feed drops events for slow readers).
            _ => done = completed_in_store(),
        }
    }
    let completed = t.elapsed();
    println!(
        "daemon: {n} incidents (5 revocations each) declared over HTTP by {clients} clients in {:.2}s = {:.0}/s; all completed in {:.2}s = {:.0} incidents/s",
        declared.as_secs_f64(),
        n as f64 / declared.as_secs_f64(),
        completed.as_secs_f64(),
        n as f64 / completed.as_secs_f64()
    );
    let mut lat = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        let r = http
            .get(format!("{url}/api/v1/incidents/{}", ids[i % ids.len()]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "daemon: GET /api/v1/incidents/ID (steps + clocks) x500: p50 {:.2} ms, p99 {:.2} ms",
        lat[250].as_secs_f64() * 1000.0,
        lat[495].as_secs_f64() * 1000.0
    );
}

/// D: declaration to the first outbound call, through the API: a platform
/// on loopback notes when each request arrives; 200 declarations, one at
/// a time, each making one call.
async fn declare_to_first_call(dir: &std::path::Path, lib_dir: &std::path::Path) {
    use std::collections::BTreeMap;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let platform = axum::Router::new().fallback(move || {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Instant::now());
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let platform_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, platform).await.unwrap() });

    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("runbooks/bench.yaml"), runbook("benchp", 1, 1)).unwrap();
    let lib = Arc::new(
        Library::load(&Folders {
            runbooks: Some(dir.join("runbooks")),
            integrations: Some(lib_dir.to_path_buf()),
        })
        .unwrap(),
    );
    let mut secrets = quench::integrations::Secrets::default();
    secrets.insert("BENCH_TOKEN", "bench-secret-token");
    let exec = Arc::new(
        Executor::new(
            &lib.catalog,
            quench::integrations::Routing {
                base_urls: BTreeMap::from([("benchp".to_string(), platform_url)])
                    .into_iter()
                    .collect(),
                token_urls: Default::default(),
                secrets,
                simulated: false,
                read_only: false,
            },
        )
        .unwrap(),
    );
    let sdir = tempfile::tempdir().unwrap();
    let (daemon, url) = serve_daemon(sdir.path(), lib, exec).await;
    let http = reqwest::Client::new();
    let mut took = Vec::new();
    let mut acked = Vec::new();
    let (before, _) = scenarios::flushes();
    for _ in 0..200 {
        let t = Instant::now();
        declare_bench(&http, &url).await;
        acked.push(t.elapsed());
        let first = rx.recv().await.unwrap();
        took.push(first - t);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let q = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    // Each declaration runs to its end before the next: its flushes are
    // those on its path to the first call, and the few after it.
    let (after, _) = scenarios::flushes();
    println!(
        "D declare to first call (API, 200 declarations): median {:.2} ms, p99 {:.2} ms; the 201 itself: median {:.2} ms, p99 {:.2} ms; {:.1} store flushes per declaration",
        ms(q(&mut took, 0.5)),
        ms(q(&mut took, 0.99)),
        ms(q(&mut acked, 0.5)),
        ms(q(&mut acked, 0.99)),
        (after - before) / 200.0,
    );
    daemon.stop().await;
}

const TOKEN: &str = "bench-token-0123456789abcdef";

/// A live daemon on a store in `dir`, serving its API on loopback.
async fn serve_daemon(
    dir: &std::path::Path,
    lib: Arc<Library>,
    exec: Arc<Executor>,
) -> (quench::daemon::Daemon, String) {
    let store = Store::open(dir).unwrap();
    let engine = Engine::new(
        Arc::new(store.clone()),
        exec,
        Arc::new(SystemClock),
        lib,
        Settings {
            drill: false,
            ..Settings::default()
        },
    );
    let daemon = quench::daemon::Daemon::new(quench::daemon::DaemonParts {
        store,
        live: engine,
        drill: None,
        access: quench::daemon::access::Access::legacy_only(TOKEN),
        channel: None,
        planners: Default::default(),
    });
    daemon.start().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let d = daemon.clone();
    tokio::spawn(async move {
        quench::server::serve(d, axum::Router::new(), listener, std::future::pending())
            .await
            .unwrap()
    });
    (daemon, url)
}

/// Declares runbook `bench` through the API; the answer is a 201.
async fn declare_bench(http: &reqwest::Client, url: &str) -> reqwest::Response {
    let r = http
        .post(format!("{url}/api/v1/incidents"))
        .bearer_auth(TOKEN)
        .json(&json!({"runbook": "bench", "by": "bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r
}

/// The allocator `quench` itself runs with (src/main.rs), so the child
/// measures what the binary would.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
