//! Property tests over everything that reads outside input: the runbook,
//! manifest, rule-table, registry and config loaders, template analysis
//! and rendering, the Slack endpoints' payload parsing and the API's
//! request bodies. Inputs are the bundled files and sample payloads with
//! random edits (bytes flipped, YAML and JSON punctuation inserted, spans
//! cut or repeated), so the cases reach deep into each parser. The
//! property: no panic, a located diagnostic or a 4xx, and the daemon still
//! healthy after. `QUENCH_FUZZ_CASES` sets the cases per target (CI runs
//! thousands; `.ci/run` prints how many ran). Seeds of failures proptest
//! finds are kept under `tests/it/fuzz.proptest-regressions` and replayed
//! first.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{json, Value as Json};

fn cases(default: u32) -> u32 {
    std::env::var("QUENCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/fuzz.proptest-regressions",
        ))),
        ..Config::default()
    })
}

/// One edit of a source: where (a fraction of its length) and what.
#[derive(Debug, Clone)]
enum Edit {
    Flip(f64, u8),
    Insert(f64, &'static str),
    Cut(f64, usize),
    Repeat(f64, usize, usize),
}

const PUNCTUATION: &[&str] = &[
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "\n",
    "  ",
    "\t",
    "'",
    "\"",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "|\n",
    ">-\n",
    "{{",
    "}}",
    "{{#each x}}",
    "{{/each}}",
    "{{{",
    "\\",
    "\u{0}",
    "\u{1b}",
    "é",
    "%",
    "?",
    ",",
    "---\n",
    "...\n",
    "~",
    "null",
    "1e999",
    "-1",
    "<<: *a\n",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
        (0.0..1.0f64, proptest::sample::select(PUNCTUATION))
            .prop_map(|(at, p)| Edit::Insert(at, p)),
        (0.0..1.0f64, 1..400usize).prop_map(|(at, n)| Edit::Cut(at, n)),
        (0.0..1.0f64, 1..200usize, 2..20usize).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
    ]
}

/// `src` with `edits` applied, kept valid UTF-8 (a flipped byte that breaks
/// it is replaced), and never over 256 KiB.
fn apply(src: &str, edits: &[Edit]) -> String {
    let mut b = src.as_bytes().to_vec();
    for e in edits {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match *e {
            Edit::Flip(f, v) => {
                if !b.is_empty() {
                    let i = at(f, b.len() - 1);
                    b[i] = v;
                }
            }
            Edit::Insert(f, p) => {
                let i = at(f, b.len());
                b.splice(i..i, p.bytes());
            }
            Edit::Cut(f, n) => {
                let i = at(f, b.len());
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
            Edit::Repeat(f, n, k) => {
                let i = at(f, b.len());
                let j = (i + n).min(b.len());
                let piece = b[i..j].to_vec();
                for _ in 1..k {
                    b.splice(j..j, piece.iter().copied());
                }
            }
        }
        b.truncate(256 << 10);
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(edit(), 1..8)
}

/// Every diagnostic points inside the file it is about.
fn located(src: &str, d: &quench::runbook::Diagnostics) -> Result<(), TestCaseError> {
    let lines = src.lines().count() + 1;
    for x in &d.0 {
        prop_assert!(
            x.line >= 1 && x.line <= lines,
            "{x} is outside the file's {lines} lines"
        );
        prop_assert!(!x.message.is_empty());
    }
    Ok(())
}

fn report(target: &str, n: u64) {
    // .ci/run collects these lines into its summary.
    println!("fuzz: {target}: {n} cases, no panic");
}

#[test]
fn the_loaders_never_panic_and_locate_every_problem() {
    let known = quench::library::Library::load(&quench::library::Folders::default())
        .unwrap()
        .known();
    let corpus: Vec<(&str, &str)> = vec![
        (
            "runbook",
            include_str!("../../runbooks/shadow-ai-exposure.yaml"),
        ),
        ("manifest", include_str!("../../integrations/hubspot.yaml")),
        (
            "manifest",
            include_str!("../../integrations/google-workspace.yaml"),
        ),
        ("rules", include_str!("../../runbooks/notices/rules.yaml")),
        (
            "registry",
            include_str!("../../examples/approved-tools.yaml"),
        ),
        ("config", include_str!("../../examples/quench.yaml")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner(200);
    let n = AtomicU64::new(0);
    runner
        .run(&(0..corpus.len(), edits()), |(which, edits)| {
            n.fetch_add(1, Ordering::Relaxed);
            let (kind, base) = corpus[which];
            let src = apply(base, &edits);
            let result = match kind {
                "runbook" => {
                    quench::runbook::load("shadow-ai-exposure.yaml", &src, &known).map(|_| ())
                }
                "manifest" => quench::integrations::manifest::load("m.yaml", &src).map(|_| ()),
                "rules" => quench::notices::clocks::RuleTable::load("rules.yaml", &src).map(|_| ()),
                "registry" => {
                    quench::registry::Registry::parse("approved-tools.yaml", &src).map(|_| ())
                }
                _ => {
                    let p = dir.path().join("quench.yaml");
                    std::fs::write(&p, &src).unwrap();
                    quench::config::Config::load(Some(&p))
                        .map(|_| ())
                        .map_err(|d| quench::runbook::Diagnostics(vec![d]))
                }
            };
            if let Err(d) = result {
                located(&src, &d)?;
            }
            Ok(())
        })
        .unwrap();
    report("loaders", n.into_inner());
}

#[test]
fn template_analysis_and_rendering_never_panic() {
    let base = include_str!("../../runbooks/notices/regulator-EU.hbs");
    let ctx = json!({
        "inputs": {"tool": "ChatGPT", "data_elements": ["name", "email"], "records": 3},
        "organization": {"name": "Acme", "dpo": {"name": "D", "email": "d@x"}},
        "incident": {"id": "INC-1", "declared_at": "2026-12-01T10:00:00Z"},
        "item": {"id": "x", "items": [1, 2]},
    });
    let mut runner = runner(300);
    let n = AtomicU64::new(0);
    runner
        .run(&edits(), |edits| {
            n.fetch_add(1, Ordering::Relaxed);
            let src = apply(base, &edits);
            let a = quench::template::analyse(&src);
            let _ = format!("{a:?}");
            let _ = quench::template::render_str(&src, &ctx);
            if let Ok(md) = quench::template::render_markdown(&src, &ctx) {
                let _ = quench::template::markdown_to_text(&md);
            }
            Ok(())
        })
        .unwrap();
    report("templates", n.into_inner());
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Json::Number)
            .unwrap_or(Json::Null)),
        "[a-z_]{0,12}".prop_map(Json::String),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("runbook".to_string()),
                    Just("inputs".to_string()),
                    Just("tool".to_string()),
                    Just("by".to_string()),
                    Just("approve".to_string()),
                    Just("text".to_string()),
                    Just("moment".to_string()),
                    Just("exception".to_string()),
                    Just("severity".to_string()),
                    Just("body".to_string()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn api_bodies_and_slack_payloads_never_break_the_daemon() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(crate::server::host_opts(
        crate::server::SlackKind::Http,
        true,
        false,
    ));
    let id = rt.block_on(h.declare_and_settle(json!({"tool": "ChatGPT"})));
    let posts = [
        "/api/v1/incidents".to_string(),
        "/api/v1/plans".to_string(),
        format!("/api/v1/incidents/{id}/approvals/legal"),
        format!("/api/v1/incidents/{id}/steps/vendor/done"),
        format!("/api/v1/incidents/{id}/notes"),
        format!("/api/v1/incidents/{id}/notices/draft.regulator.EU"),
        format!("/api/v1/incidents/{id}/notices/draft.regulator.EU/sent"),
    ];
    let n = AtomicU64::new(0);
    runner(100)
        .run(&(0..posts.len(), json_value()), |(which, body)| {
            n.fetch_add(1, Ordering::Relaxed);
            let (s, b) = rt.block_on(h.call("POST", &posts[which], Some(body.clone())));
            prop_assert!(s < 500, "POST {} {body} answered {s}: {b}", posts[which]);
            Ok(())
        })
        .unwrap();
    let api = n.swap(0, Ordering::Relaxed);
    report("api bodies", api);

    let command = include_str!("../../examples/slack/command.txt")
        .trim()
        .to_string();
    let click = include_str!("../../examples/slack/block_actions.json").to_string();
    let event = include_str!("../../examples/slack/url_verification.json").to_string();
    runner(100)
        .run(&(0..3usize, edits()), |(which, edits)| {
            n.fetch_add(1, Ordering::Relaxed);
            let (path, body) = match which {
                0 => ("/slack/commands", apply(&command, &edits)),
                1 => (
                    "/slack/interactions",
                    serde_urlencoded::to_string([("payload", apply(&click, &edits))]).unwrap(),
                ),
                _ => ("/slack/events", apply(&event, &edits)),
            };
            let ts = crate::server::now_ts();
            let sig = crate::server::sign(&ts, &body);
            let (s, b) = rt.block_on(h.slack_post(path, body.clone(), &ts, &sig));
            prop_assert!(s < 500, "{path} {body:?} answered {s}: {b}");
            Ok(())
        })
        .unwrap();
    report("slack payloads", n.into_inner());
    let (s, _) = rt.block_on(h.call("GET", "/healthz", None));
    assert_eq!(s, 200, "the daemon is still healthy");
    // The incidents the bodies declared still run; their tasks are dropped
    // with the runtime, bounded the way the binary bounds it (src/main.rs).
    drop(h);
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
}
