//! The scenario table (issue 14): mock platforms in this process, quench in
//! a child process of its own, so its CPU and peak RSS are quench's alone.
//!
//! The parent starts the platforms, runs `bench child SPEC` and reads one
//! JSON line back; the platforms then say what really happened: grants left,
//! 429s, 503s, replays and duplicate effects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use quench::integrations::{Executor, Routing, Secrets};
use quench::library::{Folders, Library};
use quench::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::platform::{Config, Platform};

/// What the child runs.
#[derive(Serialize, Deserialize)]
struct Spec {
    /// Per platform: its URL and the limit its manifest documents.
    platforms: Vec<(String, Option<(f64, f64)>)>,
    concurrency: usize,
    shape: Shape,
}

#[derive(Serialize, Deserialize)]
enum Shape {
    /// One incident, one revoking step per platform over the ids given.
    Revoke { per_platform: usize },
    /// One incident: list every grant of platform 0 in pages, then revoke
    /// what was listed.
    ListThenRevoke { grants: usize },
    /// Incidents declared at once through the daemon's API, each with its
    /// severity and its own `n` grants of platform 0.
    Daemon { severities: Vec<String>, n: usize },
}

#[derive(Serialize, Deserialize)]
struct Report {
    seconds: f64,
    cpu: f64,
    rss_mb: f64,
    store_bytes: u64,
    /// Store flushes, and the writes they covered.
    flushes: (f64, f64),
    /// Unix seconds when each incident was declared (the daemon shape).
    declared_at: Vec<f64>,
    /// Unix seconds when each incident completed.
    completed_at: Vec<f64>,
}

struct Scenario {
    name: &'static str,
    latency: Duration,
    limit: Option<(f64, f64)>,
    fail_share: f64,
    platforms: usize,
    concurrency: usize,
    shape: Shape,
    /// Who does the work: quench, or the asyncio script it is compared with.
    runner: Runner,
}

#[derive(Clone, Copy, PartialEq)]
enum Runner {
    Quench,
    /// `asyncio_baseline.py`: the same work with no record kept.
    Asyncio,
    /// `bench child-reqwest`: the same work on quench's HTTP client and
    /// task shape (a task per item, a semaphore of `concurrency`, a
    /// timeout per call), with no engine and no store: what they cost.
    Reqwest,
}

fn scenarios(which: &[String]) -> Vec<Scenario> {
    let ms = Duration::from_millis;
    let limited = Some((100.0, 10.0));
    let all = vec![
        Scenario {
            name: "A",
            latency: ms(50),
            limit: None,
            fail_share: 0.0,
            platforms: 1,
            concurrency: 100,
            shape: Shape::Revoke { per_platform: 1200 },
            runner: Runner::Quench,
        },
        Scenario {
            name: "B",
            latency: ms(50),
            limit: limited,
            fail_share: 0.02,
            platforms: 1,
            concurrency: 100,
            shape: Shape::Revoke { per_platform: 1200 },
            runner: Runner::Quench,
        },
        Scenario {
            name: "B4",
            latency: ms(50),
            limit: limited,
            fail_share: 0.0,
            platforms: 4,
            concurrency: 100,
            shape: Shape::Revoke { per_platform: 300 },
            runner: Runner::Quench,
        },
        Scenario {
            name: "C",
            latency: ms(50),
            limit: limited,
            fail_share: 0.0,
            platforms: 1,
            concurrency: 20,
            // The sev1 is declared last: it still goes ahead.
            shape: Shape::Daemon {
                severities: ["sev3"; 9]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(["sev1".to_string()])
                    .collect(),
                n: 100,
            },
            runner: Runner::Quench,
        },
        scale("S20k", 20_000, Runner::Quench),
        scale("S200k", 200_000, Runner::Quench),
        scale("S20k-asyncio", 20_000, Runner::Asyncio),
        scale("S200k-asyncio", 200_000, Runner::Asyncio),
        scale("S200k-reqwest", 200_000, Runner::Reqwest),
    ];
    all.into_iter()
        .filter(|s| which.is_empty() || which.iter().any(|w| w == s.name))
        .collect()
}

/// S: list then revoke at 10 ms, concurrency 200.
fn scale(name: &'static str, grants: usize, runner: Runner) -> Scenario {
    Scenario {
        name,
        latency: Duration::from_millis(10),
        limit: None,
        fail_share: 0.0,
        platforms: 1,
        concurrency: 200,
        shape: Shape::ListThenRevoke { grants },
        runner,
    }
}

fn grants(s: &Scenario) -> usize {
    match &s.shape {
        Shape::Revoke { per_platform } => *per_platform,
        Shape::ListThenRevoke { grants } => *grants,
        Shape::Daemon { severities, n } => severities.len() * n,
    }
}

/// Runs the scenarios named in `which` (all when empty) and prints the table.
pub(crate) async fn table(which: &[String]) {
    println!(
        "| scenario | contained in | floor | ratio | calls | latency waited | in flight at arrival | 429s | 503s | retries | duplicate effects | grants left | CPU | peak RSS | store per item | writes per flush |"
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for s in scenarios(which) {
        run(s).await;
    }
}

async fn run(s: Scenario) {
    let n = grants(&s);
    let mut platforms = Vec::new();
    for i in 0..s.platforms {
        platforms.push(
            Platform::start(Config {
                latency: s.latency,
                limit: s.limit,
                fail_share: s.fail_share,
                seed: 14 + i as u64,
                grants: n,
            })
            .await,
        );
    }
    let spec = Spec {
        platforms: platforms.iter().map(|p| (p.url.clone(), s.limit)).collect(),
        concurrency: s.concurrency,
        shape: s.shape,
    };
    // `BENCH_CHILD_WRAPPER="heaptrack -o /tmp/s"` (or valgrind, perf)
    // profiles quench alone, not the mock platforms.
    let wrapper = std::env::var("BENCH_CHILD_WRAPPER").unwrap_or_default();
    let mut argv: Vec<String> = wrapper.split_whitespace().map(String::from).collect();
    match s.runner {
        Runner::Quench | Runner::Reqwest => {
            argv.push(std::env::current_exe().unwrap().display().to_string());
            argv.push(match s.runner {
                Runner::Reqwest => "child-reqwest".into(),
                _ => "child".into(),
            });
        }
        Runner::Asyncio => {
            argv.push("python3".into());
            argv.push(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/examples/bench/asyncio_baseline.py"
                )
                .into(),
            );
        }
    }
    let out = match tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .arg(serde_json::to_string(&spec).unwrap())
        .output()
        .await
    {
        Ok(out) => out,
        Err(e) if s.runner == Runner::Asyncio => {
            println!(
                "| {} | not run: python3 could not be started ({e}) |",
                s.name
            );
            return;
        }
        Err(e) => panic!("scenario {}: the child could not be started: {e}", s.name),
    };
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("scenario {} failed", s.name);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    // A wrapper (heaptrack) may print after the child's report.
    let r: Report = line
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the child prints its report as a JSON line");

    let sum = |f: fn(&crate::platform::Stats) -> u64| -> u64 {
        platforms.iter().map(|p| f(p.stats())).sum()
    };
    use std::sync::atomic::Ordering::Relaxed;
    let requests = sum(|s| s.requests.load(Relaxed));
    let throttled = sum(|s| s.throttled.load(Relaxed));
    let failed = sum(|s| s.failed.load(Relaxed));
    let lists = sum(|s| s.lists.load(Relaxed));
    let duplicates = sum(|s| s.duplicates.load(Relaxed));
    let replays = sum(|s| s.replays.load(Relaxed));
    let left: usize = platforms.iter().map(|p| p.remaining()).sum();
    let in_flight = sum(|s| s.in_flight_seen.load(Relaxed)) as f64 / requests.max(1) as f64;
    let waited_ms = sum(|s| s.waited_us.load(Relaxed)) as f64 / requests.max(1) as f64 / 1000.0;
    let items = (n * s.platforms) as u64;
    let retries = requests - items - lists;
    let lat = s.latency.as_secs_f64();
    // The floor: the slowest of what the concurrency allows and what each
    // platform's bucket admits (every 503 spends a token too), plus the
    // listing's pages one after the other.
    let by_concurrency = (n as f64 / spec.concurrency as f64).ceil() * lat;
    let by_rate = match s.limit {
        Some((rate, burst)) => {
            let worst = platforms
                .iter()
                .map(|p| p.stats().failed.load(Relaxed) as f64)
                .fold(0.0, f64::max);
            ((n as f64 + worst - burst) / rate).max(0.0) + lat
        }
        None => 0.0,
    };
    let floor = by_concurrency.max(by_rate) + lists as f64 * lat;
    println!(
        "| {} | {:.2} s | {:.2} s | {:.3}x | {requests} | {waited_ms:.2} ms | {in_flight:.0} | {throttled} | {failed} | {retries} ({replays} replays) | {duplicates} | {left} | {:.1} s | {:.0} MB | {:.0} B | {:.1} ({:.0} flushes) |",
        s.name,
        r.seconds,
        floor,
        r.seconds / floor,
        r.cpu,
        r.rss_mb,
        r.store_bytes as f64 / items as f64,
        r.flushes.1 / r.flushes.0.max(1.0),
        r.flushes.0,
    );
    if let Shape::Daemon { severities, n } = &spec.shape {
        fairness(&platforms[0], severities, *n, &r);
    }
}

/// C's two questions: did every incident make progress in its first
/// second, and did the sev1 finish ahead of the sev3s?
fn fairness(p: &Platform, severities: &[String], n: usize, r: &Report) {
    let unix = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let mut first = Vec::new();
    for (k, sev) in severities.iter().enumerate() {
        let times: Vec<f64> = p
            .revoked_at(k * n..(k + 1) * n)
            .into_iter()
            .flatten()
            .map(unix)
            .collect();
        let start = r.declared_at[k];
        let f = times.iter().cloned().fold(f64::INFINITY, f64::min) - start;
        first.push(f);
        let done = r.completed_at[k] - start;
        println!("  C incident {k} ({sev}): first revocation after {f:.2} s, completed after {done:.2} s");
    }
    let worst = first.iter().cloned().fold(0.0, f64::max);
    println!("  C slowest first revocation: {worst:.2} s (no incident may wait past 1 s)");
}

fn manifest(i: usize, limit: Option<(f64, f64)>) -> String {
    let rate = match limit {
        Some((r, b)) => format!("rate_limit: {{ per_second: {r}, burst: {b} }}\n"),
        None => String::new(),
    };
    format!(
        r#"name: mock{i}
base_url: https://bench.invalid
auth: {{ bearer: "{{{{secrets.MOCK{i}_TOKEN}}}}" }}
{rate}actions:
  list:
    method: GET
    path: /grants
    query: {{ limit: "1000" }}
    paginate: {{ items: data, cursor: next_cursor, cursor_param: cursor }}
    simulate: {{ status: 200 }}
  revoke:
    method: DELETE
    path: "/grants/{{{{with.id}}}}"
    headers: {{ Idempotency-Key: "{{{{run.idempotency_key}}}}" }}
    ok: [204]
    simulate: {{ status: 204 }}
"#
    )
}

const RETRY: &str = "    retry: { attempts: 8, backoff: 100ms, max_backoff: 5s }\n";

fn runbook(spec: &Spec) -> String {
    let c = spec.concurrency;
    let mut rb = String::from("version: 1\nname: bench\n");
    match &spec.shape {
        // More ids than an input may be given: the runbook's default.
        Shape::Revoke { per_platform } => {
            rb.push_str("inputs:\n");
            for i in 0..spec.platforms.len() {
                rb.push_str(&format!(
                    "  ids{i}: {{ type: list, default: {} }}\n",
                    ids(0, *per_platform)
                ));
            }
            rb.push_str("steps:\n");
            for i in 0..spec.platforms.len() {
                rb.push_str(&format!(
                    "  - id: revoke-{i}\n    action: mock{i}.revoke\n    for_each: inputs.ids{i}\n    concurrency: {c}\n    with: {{ id: \"{{{{item}}}}\" }}\n{RETRY}"
                ));
            }
        }
        Shape::ListThenRevoke { .. } => rb.push_str(&format!(
            "steps:\n  - id: list\n    action: mock0.list\n  - id: revoke\n    action: mock0.revoke\n    needs: [list]\n    for_each: steps.list.output\n    concurrency: {c}\n    with: {{ id: \"{{{{item.id}}}}\" }}\n{RETRY}"
        )),
        Shape::Daemon { .. } => rb.push_str(&format!(
            "inputs:\n  ids0: {{ type: list }}\nsteps:\n  - id: revoke\n    action: mock0.revoke\n    for_each: inputs.ids0\n    concurrency: {c}\n    with: {{ id: \"{{{{item}}}}\" }}\n{RETRY}"
        )),
    }
    rb
}

fn ids(from: usize, n: usize) -> serde_json::Value {
    json!((from..from + n)
        .map(|i| format!("g{i}"))
        .collect::<Vec<_>>())
}

/// The child: quench alone, against the parent's platforms.
pub(crate) async fn child(spec: &str) {
    let spec: Spec = serde_json::from_str(spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ints, rbs) = (dir.path().join("integrations"), dir.path().join("runbooks"));
    std::fs::create_dir_all(&ints).unwrap();
    std::fs::create_dir_all(&rbs).unwrap();
    let mut secrets = Secrets::default();
    let mut base_urls = std::collections::HashMap::new();
    for (i, (url, limit)) in spec.platforms.iter().enumerate() {
        std::fs::write(ints.join(format!("mock{i}.yaml")), manifest(i, *limit)).unwrap();
        secrets.insert(&format!("MOCK{i}_TOKEN"), "bench-secret-token");
        base_urls.insert(format!("mock{i}"), url.clone());
    }
    let src = runbook(&spec);
    std::fs::write(rbs.join("bench.yaml"), &src).unwrap();
    let lib = Arc::new(
        Library::load(&Folders {
            runbooks: Some(rbs),
            integrations: Some(ints),
        })
        .unwrap(),
    );
    let exec = Arc::new(
        Executor::new(
            &lib.catalog,
            Routing {
                base_urls,
                token_urls: Default::default(),
                secrets,
                simulated: false,
                read_only: false,
            },
        )
        .unwrap(),
    );
    let sdir = dir.path().join("store");
    let now = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let t = Instant::now();
    let (mut declared_at, mut completed_at) = (Vec::new(), Vec::new());
    match &spec.shape {
        Shape::Daemon { severities, n } => {
            let (daemon, url) = crate::serve_daemon(&sdir, lib, exec).await;
            let mut feed = daemon.engine().subscribe();
            let http = reqwest::Client::new();
            let mut set = tokio::task::JoinSet::new();
            for (k, sev) in severities.iter().enumerate() {
                let body = json!({"runbook": "bench", "inputs": {"ids0": ids(k * n, *n)}, "severity": sev, "by": "bench"});
                let (http, url) = (http.clone(), url.clone());
                set.spawn(async move {
                    let at = now();
                    let r = http
                        .post(format!("{url}/api/v1/incidents"))
                        .bearer_auth(crate::TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let j: serde_json::Value = r.json().await.unwrap();
                    (k, at, j["id"].as_str().unwrap().to_string())
                });
            }
            let mut by_id = BTreeMap::new();
            declared_at = vec![0.0; severities.len()];
            while let Some(r) = set.join_next().await {
                let (k, at, id) = r.unwrap();
                declared_at[k] = at;
                by_id.insert(id, k);
            }
            completed_at = vec![0.0; severities.len()];
            let mut left = by_id.len();
            while left > 0 {
                let (id, ev) = feed.recv().await.unwrap();
                if ev.kind == "incident.completed" {
                    if let Some(k) = by_id.get(&id) {
                        completed_at[*k] = now();
                        left -= 1;
                    }
                }
            }
            daemon.stop().await;
        }
        _ => {
            let store = Store::open(&sdir).unwrap();
            crate::run_to_completion(&store, exec, &lib, false, &src).await;
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    let report = Report {
        seconds,
        cpu: crate::cpu_seconds(),
        rss_mb: peak_rss_mb(),
        store_bytes: dir_bytes(&sdir),
        flushes: flushes(),
        declared_at,
        completed_at,
    };
    println!("{}", serde_json::to_string(&report).unwrap());
}

/// `Runner::Reqwest`: list then revoke with reqwest alone, shaped as
/// quench's fan-out is (`engine::step::action`): a task per item, at most
/// twice `concurrency` of them, each taking a slot of `concurrency` for its
/// call under a timeout.
pub(crate) async fn child_reqwest(spec: &str) {
    let spec: Spec = serde_json::from_str(spec).unwrap();
    let url = spec.platforms[0].0.clone();
    let client = reqwest::Client::new();
    let t = Instant::now();
    let mut ids: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page = client
            .get(format!("{url}/grants"))
            .bearer_auth("bench-secret-token")
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            page = page.query(&[("cursor", c)]);
        }
        let body: serde_json::Value = page.send().await.unwrap().json().await.unwrap();
        let data = body["data"].as_array().expect("a page has data");
        ids.extend(data.iter().map(|g| g["id"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(spec.concurrency));
    let mut set = tokio::task::JoinSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        while set.len() >= 2 * spec.concurrency {
            set.join_next().await.unwrap().unwrap();
        }
        let (client, url, slots) = (client.clone(), url.clone(), slots.clone());
        set.spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            let call = client
                .delete(format!("{url}/grants/{id}"))
                .bearer_auth("bench-secret-token")
                .header("idempotency-key", format!("bench-{i}"))
                .send();
            let r = tokio::time::timeout(Duration::from_secs(30), call)
                .await
                .expect("the platform answers")
                .unwrap();
            assert_eq!(r.status(), 204, "grant {id}");
        });
    }
    while let Some(j) = set.join_next().await {
        j.unwrap();
    }
    let report = Report {
        seconds: t.elapsed().as_secs_f64(),
        cpu: crate::cpu_seconds(),
        rss_mb: peak_rss_mb(),
        store_bytes: 0,
        flushes: (0.0, 0.0),
        declared_at: Vec::new(),
        completed_at: Vec::new(),
    };
    println!("{}", serde_json::to_string(&report).unwrap());
}

/// The process's store flushes and the writes they covered, from the
/// series `/metrics` shows.
pub(crate) fn flushes() -> (f64, f64) {
    let mut reg = prometheus_client::registry::Registry::default();
    quench::telemetry::global().register(&mut reg);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    let find = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        find("quench_store_flush_writes_count"),
        find("quench_store_flush_writes_sum"),
    )
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}
