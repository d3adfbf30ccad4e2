//! Plans: the bundled runbook run read-only against the stateful simulator
//! (one platform refusing the credential), and the guarantee that no write
//! ever leaves, for the runbook and for every catalog action.

use std::collections::BTreeSet;
use std::sync::Arc;

use quench::engine::Settings;
use quench::integrations::{Executor, Simulator};
use quench::library::Library;
use quench::plan::{PlanRequest, Target};
use quench::registry::Registry;
use quench::store::Store;
use serde_json::{json, Value as Json};

use crate::support::{tls, Mock, Reply};

struct Planned {
    report: Json,
    store: Store,
    sim: Simulator,
    klaviyo: Mock,
    lib: Arc<Library>,
    _dir: tempfile::TempDir,
}

/// Plans the bundled runbook for ChatGPT on the simulator, with Klaviyo
/// answering every request 401 (a key without the scopes).
async fn plan() -> Planned {
    tls();
    let dir = tempfile::tempdir().unwrap();
    let lib = Arc::new(Library::load(&Default::default()).unwrap());
    let sim = Simulator::start(&lib.catalog).await.unwrap();
    let klaviyo = Mock::start().await;
    // Klaviyo's JSON:API error for a key it does not accept.
    klaviyo.otherwise(Reply::json(
        401,
        json!({"errors": [{"id": "e1", "status": 401, "code": "not_authenticated", "title": "Incorrect authentication credentials.", "detail": "Incorrect authentication credentials."}]}),
    ));
    let mut routing = sim.routing(&lib.catalog.secret_names());
    routing
        .base_urls
        .insert("klaviyo".into(), klaviyo.url.clone());
    routing.read_only = true;
    let exec = Arc::new(Executor::new(&lib.catalog, routing).unwrap());
    let store = Store::open(&dir.path().join("store")).unwrap();
    let registry = Registry::parse(
        "approved-tools.yaml",
        "tools:\n  - { name: CRM Sync, match: [approved crm sync], owner: mops-lead }\n",
    )
    .unwrap();
    let settings = Settings {
        registry,
        roles: [("responder".to_string(), vec!["U0RESP01".to_string()])].into(),
        ..Settings::default()
    };
    let loaded = lib.runbook("shadow-ai-exposure").unwrap();
    let inputs =
        quench::runbook::inputs::parse(&loaded.runbook, &["tool=ChatGPT".to_string()]).unwrap();
    let req = PlanRequest {
        runbook: &loaded,
        inputs,
        by: "operator".into(),
        target: Target::Simulator,
    };
    let id = quench::plan::begin(&store, &req, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(store.plan(&id).unwrap().unwrap()["status"], "running");
    let report = quench::plan::run(&store, &id, lib.clone(), exec, settings, req)
        .await
        .unwrap();
    // Kept with its inputs and time.
    let id = report["plan"].as_str().unwrap();
    assert_eq!(store.plan(id).unwrap().as_ref(), Some(&report));
    Planned {
        report,
        store,
        sim,
        klaviyo,
        lib,
        _dir: dir,
    }
}

fn platform<'a>(r: &'a Json, name: &str) -> &'a Json {
    r["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == name)
        .unwrap_or_else(|| panic!("no platform {name} in {r}"))
}

/// (action, name, id) of what a platform would change.
fn changes(r: &Json, name: &str) -> BTreeSet<(String, String, String)> {
    platform(r, name)["would_change"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["action"].as_str().unwrap().to_string(),
                w["name"].as_str().unwrap_or("").to_string(),
                w["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn set(v: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// name -> why, of what a platform found and left alone.
fn left(r: &Json, name: &str) -> std::collections::BTreeMap<String, String> {
    platform(r, name)["left_alone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap_or("").to_string(),
                l["why"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_plan_lists_exactly_the_tools_access_leaves_the_rest_with_a_reason_and_sends_no_write() {
    let p = plan().await;
    let r = &p.report;
    // Only reads reached the platforms: every simulated call was a read...
    for (call, n) in p.sim.calls() {
        let (integration, action) = call.split_once('.').unwrap();
        let a = p
            .lib
            .catalog
            .get(integration)
            .and_then(|m| m.actions.get(action))
            .unwrap_or_else(|| panic!("{call}"));
        assert!(
            a.reads(),
            "{call} ({} {}) was sent {n} time(s) in a plan",
            a.method,
            a.path
        );
    }
    // ...and every request to the refusing platform a GET.
    let seen = p.klaviyo.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.method, "GET", "{} {}", s.method, s.path);
    }
    assert_eq!(r["writes_sent"], 0);

    // The declared tool's grants, keys and apps, by exact name, on each platform.
    assert_eq!(
        changes(r, "google-workspace"),
        set(&[(
            "delete_user_token",
            "ChatGPT",
            "1234567890-chatgpt.apps.googleusercontent.com"
        )])
        .into_iter()
        .collect::<BTreeSet<_>>(),
        "one (action, name, id) for two users"
    );
    let owners: BTreeSet<&str> = platform(r, "google-workspace")["would_change"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, BTreeSet::from(["1001", "1002"]));
    assert_eq!(
        changes(r, "openai"),
        set(&[
            ("delete_admin_api_key", "ChatGPT", "key_chatgpt789"),
            ("delete_project_api_key", "ChatGPT", "key_user0002"),
            ("delete_project_service_account", "ChatGPT", "key_svc00002"),
        ])
    );
    assert_eq!(
        changes(r, "slack"),
        set(&[("restrict_app", "ChatGPT", "A0CHATGPT1")])
    );
    assert_eq!(
        changes(r, "anthropic"),
        set(&[
            (
                "deactivate_api_key",
                "ChatGPT custom GPT",
                "apikey_01ChGpTcUsToMgPt000001"
            ),
            (
                "deactivate_api_key",
                "ChatGPT Writer",
                "apikey_01ChGpTwRiTeR0000000000004"
            ),
        ])
    );
    // What the write would send, secrets redacted, on the vendor's own URL.
    let w = &platform(r, "openai")["would_change"][1];
    assert_eq!(w["method"], "DELETE");
    assert_eq!(
        w["url"],
        "https://api.openai.com/v1/organization/projects/proj_marketing01/api_keys/key_user0002"
    );

    // Approved tools and look-alike names: found, left alone, and why.
    let ws = left(r, "google-workspace");
    assert_eq!(ws["Approved CRM Sync"], "approved in the registry");
    assert_eq!(
        ws["ChatGPT Writer for Gmail"],
        "its name only resembles \"ChatGPT\"; not an exact match"
    );
    let slack = left(r, "slack");
    assert_eq!(
        slack["ChatGPT Notes"],
        "its name only resembles \"ChatGPT\"; not an exact match"
    );
    assert_eq!(slack["Asana"], "the step's condition leaves it out");
    let openai = left(r, "openai");
    assert!(
        !openai.contains_key("ChatGPT"),
        "what one step deletes is not left alone: {openai:?}"
    );
    assert_eq!(
        openai["ChatGPTZero detector"],
        "its name only resembles \"ChatGPT\"; not an exact match"
    );

    // Live sends: what would be paused, by name.
    let mailchimp: BTreeSet<String> = changes(r, "mailchimp").into_iter().map(|c| c.1).collect();
    assert_eq!(
        mailchimp,
        [
            "Black Friday reminder",
            "Weekly digest",
            "Holiday hours",
            "Cyber Monday launch",
            "Abandoned cart",
            "Post-purchase thank you",
            "Birthday coupon"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );

    // The refusing platform: every read failed with its status and the
    // permission the vendor documents for it; nothing planned there.
    let k = platform(r, "klaviyo");
    assert!(k["would_change"].as_array().unwrap().is_empty());
    let unread = k["unreadable"].as_array().unwrap();
    assert!(!unread.is_empty());
    for u in unread {
        assert_eq!(u["status"], 401, "{u}");
        let needs = u["needs"].as_str().unwrap();
        assert!(needs.starts_with("the vendor documents "), "{needs}");
        let scopes = u["scopes"].as_array().unwrap();
        assert!(!scopes.is_empty(), "{u}");
        assert!(needs.contains(scopes[0].as_str().unwrap()), "{u}");
    }
    assert!(
        unread
            .iter()
            .any(|u| u["scopes"] == json!(["credentials:read"])),
        "{unread:?}"
    );
    assert_eq!(r["status"], "incomplete");

    // People, and what waits on a write's effect.
    let asked: BTreeSet<&str> = r["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_str().unwrap())
        .collect();
    assert!(asked.contains("confirm-openai-key-deletion"), "{asked:?}");
    let after: Vec<(&str, &str)> = r["after_writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["step"].as_str().unwrap(), a["after"].as_str().unwrap()))
        .collect();
    assert!(
        after.contains(&("verify-workspace-grants", "revoke-workspace-grants")),
        "{after:?}"
    );
    // Readiness: roles nobody holds here, and the writes' permissions.
    let no_members: BTreeSet<&str> = r["readiness"]["roles_without_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(no_members, BTreeSet::from(["legal", "mops-lead"]));
    assert!(r["readiness"]["scopes_for_writes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["platform"] == "microsoft-graph"
            && s["action"] == "delete_app_role_assignment"
            && s["any_of"] == json!(["AppRoleAssignment.ReadWrite.All"])));
}

#[tokio::test]
async fn the_text_and_markdown_reports_have_every_section() {
    let p = plan().await;
    let text = quench::plan::report::render_text(&p.report);
    for want in [
        "Nothing was changed:",
        "would delete_user_token: ChatGPT (1234567890-chatgpt.apps.googleusercontent.com) of 1001",
        "leaves alone: Approved CRM Sync",
        "CANNOT READ (find-klaviyo-keys)",
        "People it would ask (assumed yes in this plan):",
        "Would run after a write, so not in this plan:",
        "A real incident would lack:",
        "- role legal has no members",
        "The writes need these permissions",
    ] {
        assert!(text.contains(want), "text lacks {want:?}:\n{text}");
    }
    let md = quench::plan::report::render_markdown(&p.report);
    for want in [
        "# Plan PLAN-",
        "## google-workspace (",
        "### Would change",
        "| Action | Name | Id | Owner | Request |",
        "### Left alone",
        "### Could not read",
        "| find-klaviyo-keys | 401 |",
        "## People it would ask",
        "## Would run after a write",
        "## Readiness",
    ] {
        assert!(md.contains(want), "markdown lacks {want:?}:\n{md}");
    }
}

#[tokio::test]
async fn a_read_only_executor_refuses_every_catalog_write_before_it_leaves() {
    tls();
    let lib = Library::load(&Default::default()).unwrap();
    let mock = Mock::start().await;
    mock.otherwise(Reply::json(200, json!({})));
    let mut routing = quench::integrations::Routing {
        base_urls: lib
            .catalog
            .manifests()
            .map(|m| (m.name.clone(), mock.url.clone()))
            .collect(),
        token_urls: lib
            .catalog
            .manifests()
            .map(|m| (m.name.clone(), format!("{}/token", mock.url)))
            .collect(),
        secrets: quench::integrations::Secrets::simulated(&lib.catalog.secret_names()),
        simulated: false,
        read_only: true,
    };
    routing.read_only = true;
    let exec = Executor::new(&lib.catalog, routing).unwrap();
    let mut writes = 0;
    for m in lib.catalog.manifests() {
        for (name, a) in m
            .actions
            .iter()
            .filter(|(_, a)| a.manual.is_none() && !a.reads())
        {
            let with = crate::catalog::sample_with(a);
            let err = exec
                .call(&m.name, name, &with, "k", None)
                .await
                .expect_err(&format!("{}.{name} was allowed", m.name));
            assert!(err.to_string().contains("a plan sends only reads"), "{err}");
            writes += 1;
        }
    }
    assert!(writes >= 60, "only {writes} writes in the catalog");
    assert!(mock.seen().is_empty(), "{:?}", mock.seen());
}

#[tokio::test]
async fn an_incident_after_a_plan_says_where_it_differed() {
    let p = plan().await;
    // The same store, a drill with full access: Klaviyo, unreadable in the
    // plan, is contained for real, and the comparison names it.
    let store = p.store.clone();
    let exec = Arc::new(
        Executor::new(&p.lib.catalog, p.sim.routing(&p.lib.catalog.secret_names())).unwrap(),
    );
    let engine = quench::engine::Engine::new(
        std::sync::Arc::new(store.clone()),
        exec,
        Arc::new(quench::engine::SystemClock),
        p.lib.clone(),
        Settings::default(),
    );
    let loaded = p.lib.runbook("shadow-ai-exposure").unwrap();
    let inputs =
        quench::runbook::inputs::parse(&loaded.runbook, &["tool=ChatGPT".to_string()]).unwrap();
    let id = engine
        .declare(
            &loaded.runbook,
            quench::engine::Declaration {
                runbook_file: loaded.file.clone(),
                runbook_source: loaded.source.clone(),
                inputs,
                declared_by: "operator".into(),
                token: None,
                severity: quench::store::Severity::Sev1,
                channel: None,
            },
        )
        .await
        .unwrap();
    engine.run(&id).await.unwrap();
    let snap = store.snapshot(&id).unwrap();
    let c = quench::plan::compare::against_last_plan(&store, &loaded.runbook, &snap, |i, a| {
        p.lib.catalog.is_write(i, a)
    })
    .unwrap()
    .expect("the plan is found");
    assert_eq!(c["plan"], p.report["plan"]);
    assert_eq!(c["same"], false);
    let diffs: BTreeSet<(String, u64, u64)> = c["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["platform"], "klaviyo", "{d}");
            (
                d["step"].as_str().unwrap().to_string(),
                d["planned"].as_u64().unwrap(),
                d["changed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        diffs,
        [
            ("pause-klaviyo-flows".to_string(), 0, 3),
            ("disable-klaviyo-keys".to_string(), 0, 1),
            ("revert-klaviyo-campaigns".to_string(), 0, 5),
        ]
        .into_iter()
        .collect()
    );
    let line = quench::plan::compare::text(&c);
    assert!(line.contains("3 difference(s): klaviyo"), "{line}");
}
