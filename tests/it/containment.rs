//! The bundled runbook against the stateful simulator: what each platform
//! holds at the end, not which calls were made. The tenants (in each
//! manifest's `tenant:`) hold the tool beside approved apps, names that
//! merely contain the tool's, users with nothing granted, sends paused or
//! drafted before the incident, and lists longer than a page.

use std::collections::BTreeMap;
use std::sync::Arc;

use quench::engine::{Decision, Declaration, Engine, FakeClock, Resolution, Settings};
use quench::integrations::simulator::StoreKeeper;
use quench::integrations::{Executor, Simulator};
use quench::library::Library;
use quench::store::{IncidentStatus, StepStatus, Store};
use serde_json::{json, Value as Json};

use crate::support::{start_time, tls};

struct Drill {
    engine: Engine,
    sim: Simulator,
    store: Store,
    auto: bool,
    /// The incident whose tenant the assertions read.
    id: std::sync::Mutex<String>,
    _dir: tempfile::TempDir,
}

const RESPONDER: &str = "U0RESP01";
const LEGAL: &str = "U0LEGAL1";
const MOPS: &str = "U0MOPS01";

async fn drill(auto: bool) -> Drill {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    build(auto, store, dir).await
}

/// An engine and a simulator over `store`, which keeps the simulated
/// platforms as `quench drill` does.
async fn build(auto: bool, store: Store, dir: tempfile::TempDir) -> Drill {
    tls();
    let lib = Arc::new(Library::load(&Default::default()).unwrap());
    let keeper = Arc::new(StoreKeeper(store.clone()));
    let sim = Simulator::start_keeping(&lib.catalog, Some(keeper))
        .await
        .unwrap();
    let exec =
        Arc::new(Executor::new(&lib.catalog, sim.routing(&lib.catalog.secret_names())).unwrap());
    let roles = [
        ("responder", RESPONDER),
        ("legal", LEGAL),
        ("mops-lead", MOPS),
    ]
    .into_iter()
    .map(|(r, u)| (r.to_string(), vec![u.to_string()]))
    .collect::<BTreeMap<_, _>>();
    let settings = Settings {
        drill: auto,
        max_wait: std::time::Duration::from_millis(1),
        roles,
        organization: json!({"name": "Acme Retail Ltd", "dpo": {"name": "Jane Doe", "email": "dpo@acme.example", "phone": "+44 20 7946 0000"}, "website": "https://acme.example/security"}),
        ..Settings::default()
    };
    let engine = Engine::new(
        Arc::new(store.clone()),
        exec,
        Arc::new(FakeClock::new(start_time())),
        lib,
        settings,
    );
    Drill {
        engine,
        sim,
        store,
        auto,
        id: Default::default(),
        _dir: dir,
    }
}

impl Drill {
    /// A new engine and simulator on the same store, as after a crash or a
    /// daemon restart.
    async fn restart(self) -> Drill {
        let Drill {
            engine,
            sim,
            store,
            auto,
            id,
            _dir,
        } = self;
        drop((engine, sim));
        let d = build(auto, store, _dir).await;
        *d.id.lock().unwrap() = id.into_inner().unwrap();
        d
    }

    async fn declare(&self, inputs: &[&str]) -> String {
        let lib = self.engine.library();
        let lr = lib.runbook("shadow-ai-exposure").unwrap();
        let pairs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        let inputs = quench::runbook::inputs::parse(&lr.runbook, &pairs).unwrap();
        self.engine
            .declare(
                &lr.runbook,
                Declaration {
                    runbook_file: lr.file.clone(),
                    runbook_source: lr.source.clone(),
                    inputs,
                    declared_by: RESPONDER.into(),
                    token: None,
                    severity: quench::store::Severity::Sev1,
                    channel: None,
                },
            )
            .await
            .inspect(|id| *self.id.lock().unwrap() = id.clone())
            .unwrap()
    }

    /// Objects of one collection, by a display field.
    fn objects(&self, integration: &str, collection: &str) -> Vec<Json> {
        let id = self.id.lock().unwrap().clone();
        self.sim
            .tenant_of(&id, integration)
            .remove(collection)
            .unwrap_or_else(|| panic!("{integration} has no tenant collection {collection}"))
    }

    /// `name field -> state field` for every object of a collection.
    fn states(
        &self,
        integration: &str,
        collection: &str,
        name: &str,
        state: &str,
    ) -> BTreeMap<String, Json> {
        self.objects(integration, collection)
            .iter()
            .map(|o| {
                (
                    quench::template::lookup(o, name)
                        .and_then(Json::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    quench::template::lookup(o, state)
                        .cloned()
                        .unwrap_or(Json::Null),
                )
            })
            .collect()
    }
}

fn map(pairs: &[(&str, Json)]) -> BTreeMap<String, Json> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// What containment must leave on every stateful platform, whatever
/// recovery does afterwards: nothing of the tool's access, everything else
/// as it was.
fn assert_contained(d: &Drill, ads: bool) {
    // Klaviyo: the tool's key off; the approved one, the one merely
    // containing the tool's name and the one already off untouched.
    assert_eq!(
        d.states(
            "klaviyo",
            "api_keys",
            "attributes.name",
            "attributes.status"
        ),
        map(&[
            ("ChatGPT export", json!("disabled")),
            ("Shopify sync", json!("active")),
            ("ChatGPTZero detector", json!("active")),
            ("Old ChatGPT test", json!("disabled")),
        ])
    );
    // Klaviyo campaigns that send, on every channel, went back to draft
    // (not cancelled for good).
    assert_eq!(
        d.states(
            "klaviyo",
            "campaigns",
            "attributes.name",
            "attributes.status"
        ),
        map(&[
            ("Black Friday VIP", json!("Draft")),
            ("Cyber Monday reminder", json!("Draft")),
            ("Gift guide", json!("Draft")),
            ("January sale (draft)", json!("Draft")),
            ("November newsletter", json!("Sent")),
            ("Flash sale SMS", json!("Draft")),
            ("App push: back in stock", json!("Draft")),
        ])
    );
    // Google Workspace: no grant of the tool left for any user (one user had
    // none: tokens.list answers without `items`); the others stay.
    let tokens: Vec<(String, String)> = d
        .objects("google-workspace", "tokens")
        .iter()
        .map(|t| {
            (
                t["userKey"].as_str().unwrap().into(),
                t["displayText"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        tokens,
        vec![
            ("1001".to_string(), "Approved CRM Sync".to_string()),
            ("1002".to_string(), "ChatGPT Writer for Gmail".to_string()),
        ]
    );
    // Mailchimp one-off sends: scheduled ones unscheduled (over two pages),
    // the one sending cancelled after a yes, draft and sent untouched.
    assert_eq!(
        d.states("mailchimp", "campaigns", "settings.title", "status"),
        map(&[
            ("Black Friday reminder", json!("save")),
            ("Weekly digest", json!("save")),
            ("Holiday hours", json!("save")),
            ("Cyber Monday launch", json!("canceled")),
            ("January sale (draft)", json!("save")),
            ("November newsletter", json!("sent")),
        ])
    );
    // Slack: the tool restricted (so nobody installs it again) and
    // uninstalled; "ChatGPT Notes" is another app and stays approved; Jasper
    // stays restricted.
    assert_eq!(
        d.states("slack", "apps", "app.name", "quench_sim.list"),
        map(&[
            ("ChatGPT", json!("restricted")),
            ("Asana", json!("approved")),
            ("ChatGPT Notes", json!("approved")),
            ("Google Drive", json!("approved")),
            ("Jasper", json!("restricted")),
        ])
    );
    let installed = d.states("slack", "apps", "app.name", "quench_sim.installed");
    assert!(
        installed
            .iter()
            .all(|(app, on)| *on == json!(app != "ChatGPT")),
        "{installed:?}"
    );
    // Salesforce: the tool's grants revoked for every user; "ChatGPT Writer"
    // is another app (revoking forces users to consent again: exact names).
    let apps: Vec<Json> = d
        .objects("salesforce", "oauth_tokens")
        .iter()
        .map(|t| t["AppName"].clone())
        .collect();
    assert_eq!(
        apps,
        [
            json!("ChatGPT Writer"),
            json!("ChatGPTZero detector"),
            json!("Salesforce for Outlook"),
            json!("Salesforce Mobile App")
        ]
    );
    // Anthropic: keys named for the tool deactivated (reversible, so a whole
    // word match); the rest as they were, archived and inactive ones too.
    assert_eq!(
        d.states("anthropic", "api_keys", "name", "status"),
        map(&[
            ("ChatGPT custom GPT", json!("inactive")),
            ("ChatGPT Writer", json!("inactive")),
            ("newsletter-drafts", json!("active")),
            ("Claude Code CI", json!("active")),
            ("support-bot", json!("active")),
            ("ChatGPTZero detector", json!("active")),
            ("Old ChatGPT test", json!("inactive")),
            ("ChatGPT pilot 2025", json!("archived")),
        ])
    );
    // OpenAI: only the admin key named exactly for the tool deleted, after a yes.
    let names: Vec<Json> = d
        .objects("openai", "admin_api_keys")
        .iter()
        .map(|k| k["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("Finance reporting (expired)"),
            json!("Marketing automation admin"),
            json!("ChatGPTZero detector"),
            json!("ChatGPT Writer")
        ]
    );
    // OpenAI projects: the person's key named for the tool deleted by its
    // project (taken from `parent`: keys do not name it); the tool's
    // service-account key gone with its account; the approved CMS account,
    // its key and the near-named keys untouched.
    let keys: Vec<(String, String)> = d
        .objects("openai", "project_api_keys")
        .iter()
        .map(|k| {
            (
                k["quench_sim"]["project"].as_str().unwrap().to_string(),
                k["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        keys,
        pairs(&[
            ("proj_marketing01", "newsletter drafts"),
            ("proj_marketing01", "ChatGPT Writer"),
            ("proj_marketing01", "cms-integration"),
        ])
    );
    let accounts: Vec<Json> = d
        .objects("openai", "project_service_accounts")
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(accounts, [json!("svc_acct_cms01")]);
    // SFMC: running journeys paused; scheduled, stopped and draft ones not.
    let sfmc = d.states("sfmc", "journeys", "name", "status");
    assert_eq!(sfmc["Holiday countdown"], json!("ScheduledToPublish"));
    assert_eq!(sfmc["Spring re-engagement"], json!("Stopped"));
    assert_eq!(sfmc["Loyalty tiers (draft)"], json!("Draft"));
    // Marketo email programs: approved ones scheduled after the declaration
    // unapproved (their sends cancelled, left to a person to reschedule);
    // the one already sent, the draft and the other program types as they
    // were.
    assert_eq!(
        d.states("marketo", "programs", "name", "status"),
        map(&[
            ("Black Friday email", json!("unlocked")),
            ("Always-on nurture", json!("on")),
            ("October newsletter", json!("locked")),
            ("Holiday gift guide (draft)", json!("unlocked")),
            ("Webinar follow-up", json!("")),
            ("Loyalty points reminder", json!("unlocked")),
        ])
    );
    // Marketo: a batch campaign cannot be deactivated, an inactive one stays.
    let mkto = d.states("marketo", "smart_campaigns", "name", "isActive");
    assert_eq!(mkto["Weekly digest - batch"], json!(true));
    assert_eq!(mkto["Sunset re-engagement - trigger"], json!(false));
    assert_eq!(mkto["Q1 planning (draft)"], json!(false));
    // HubSpot: what was not sending is untouched; one-off sends stay stopped
    // for a person to reschedule, whatever recovery decides.
    let hs = d.states("hubspot", "emails", "name", "isPublished");
    assert_eq!(hs["November newsletter"], json!(true), "a sent email stays");
    assert_eq!(hs["Win-back 90 days"], json!(false));
    assert_eq!(hs["January sale (draft)"], json!(false));
    assert_eq!(hs["Black Friday early access"], json!(false));
    assert_eq!(hs["Cyber Monday subject test"], json!(false));
    if ads {
        let g = d.states(
            "google-ads",
            "campaigns",
            "campaign.name",
            "campaign.status",
        );
        assert_eq!(g["Summer sale 2026"], json!("PAUSED"));
        assert_eq!(g["Spring 2025 launch"], json!("REMOVED"));
        let l = d.states("linkedin", "campaigns", "name", "status");
        assert_eq!(l["Evergreen thought leadership"], json!("PAUSED"));
        assert_eq!(l["Q1 hiring push (draft)"], json!("DRAFT"));
        assert_eq!(l["Holiday 2025"], json!("ARCHIVED"));
        let m = d.states("meta", "ad_objects", "name", "status");
        assert_eq!(m["Summer sale 2026"], json!("PAUSED"));
        assert_eq!(m["Spring promo 2025"], json!("ARCHIVED"));
    }
    // Entra: every consent to the tool gone (three, over two pages), the
    // tool's app disabled, the consenting users signed out; the rest as was.
    let grants: Vec<Json> = d
        .objects("microsoft-graph", "grants")
        .iter()
        .map(|g| g["id"].clone())
        .collect();
    assert_eq!(grants, vec![json!("grant-9")]);
    let roles: Vec<Json> = d
        .objects("microsoft-graph", "app_role_assignments")
        .iter()
        .map(|g| g["id"].clone())
        .collect();
    assert_eq!(roles, vec![json!("ar-salesforce-1")]);
    assert_eq!(
        d.states(
            "microsoft-graph",
            "service_principals",
            "displayName",
            "accountEnabled"
        ),
        map(&[
            ("ChatGPT", json!(false)),
            ("ChatGPT Writer", json!(true)),
            ("Salesforce", json!(true)),
        ])
    );
    assert_eq!(
        d.states(
            "microsoft-graph",
            "users",
            "userPrincipalName",
            "signInSessionsValidFromDateTime"
        ),
        map(&[
            ("mops@acme.example", json!("2026-12-01T00:00:00Z")),
            ("content@acme.example", json!("2026-12-01T00:00:00Z")),
            ("intern@acme.example", json!("2026-01-05T09:00:00Z")),
        ])
    );
}

/// What quench paused on the send and ad platforms: paused while contained,
/// running again after a yes to recovery (only those).
fn assert_paused_sends(d: &Drill, resumed: bool) {
    let pick = |yes: &str, no: &str| json!(if resumed { yes } else { no });
    // Klaviyo flows quench paused; one paused before and a draft stay so.
    let flows = d.states("klaviyo", "flows", "attributes.name", "attributes.status");
    for f in ["Welcome series", "Browse abandonment", "Winback"] {
        assert_eq!(flows[f], pick("live", "manual"), "klaviyo flow {f}");
    }
    assert_eq!(flows["Sunset unengaged"], json!("manual"));
    assert_eq!(flows["Holiday teaser"], json!("draft"));
    // A flow's status is set on all its message actions: resumed, the ones
    // off on purpose before the incident (an email, an SMS) were put back.
    let actions = d.states(
        "klaviyo",
        "flow_actions",
        "id",
        "attributes.definition.data.status",
    );
    let want = [
        ("9001", pick("live", "manual")),
        ("9002", Json::Null),
        ("9003", json!("manual")),
        ("9011", pick("live", "manual")),
        ("9012", pick("draft", "manual")),
        ("9021", pick("live", "manual")),
        ("9031", json!("manual")),
    ];
    assert_eq!(actions, map(&want));
    // Mailchimp automations quench paused; the paused one and the draft stay.
    let autos = d.states("mailchimp", "automations", "settings.title", "status");
    for a in [
        "Abandoned cart",
        "Post-purchase thank you",
        "Birthday coupon",
    ] {
        assert_eq!(autos[a], pick("sending", "paused"), "mailchimp {a}");
    }
    assert_eq!(
        autos["Sunset re-engagement (paused in October)"],
        json!("paused")
    );
    assert_eq!(autos["Winter welcome (draft)"], json!("save"));
    let sfmc = d.states("sfmc", "journeys", "name", "status");
    for j in ["Welcome journey", "Cart recovery", "Birthday rewards"] {
        assert_eq!(sfmc[j], pick("Published", "Paused"), "sfmc {j}");
    }
    let mkto = d.states("marketo", "smart_campaigns", "name", "isActive");
    for c in [
        "Welcome - trigger",
        "Score change alert",
        "Webinar registration - trigger",
    ] {
        assert_eq!(mkto[c], json!(resumed), "marketo {c}");
    }
    let hs = d.states("hubspot", "emails", "name", "isPublished");
    for e in [
        "Welcome email 1",
        "Abandoned cart reminder",
        "Post-purchase review ask",
        "Guide download follow-up",
    ] {
        assert_eq!(hs[e], json!(resumed), "hubspot {e}");
    }
    let wf = d.states("hubspot", "flows", "name", "isEnabled");
    for w in ["Nurture: downloaded guide", "Lead scoring sync"] {
        assert_eq!(wf[w], json!(resumed), "hubspot workflow {w}");
    }
    // Off before the incident, or not a contact workflow: untouched.
    assert_eq!(wf["Re-engagement (off since October)"], json!(false));
    assert_eq!(wf["Deal stage alerts"], json!(true));
    assert_eq!(wf["Shared actions"], json!(true));
    let g = d.states(
        "google-ads",
        "campaigns",
        "campaign.name",
        "campaign.status",
    );
    for c in [
        "BF 2026 - Search - Brand",
        "Remarketing - customer list",
        "PMax - Holiday catalogue",
    ] {
        assert_eq!(g[c], pick("ENABLED", "PAUSED"), "google-ads {c}");
    }
    let l = d.states("linkedin", "campaigns", "name", "status");
    for c in [
        "BF 2026 - Matched audience",
        "Webinar registrations - retargeting",
    ] {
        assert_eq!(l[c], pick("ACTIVE", "PAUSED"), "linkedin {c}");
    }
    let m = d.states("meta", "ad_objects", "name", "status");
    for c in [
        "BF 2026 - Custom audience retargeting",
        "Lookalike prospecting",
        "Always-on brand awareness",
    ] {
        assert_eq!(m[c], pick("ACTIVE", "PAUSED"), "meta {c}");
    }
}

#[tokio::test]
async fn a_drill_contains_the_tool_on_every_platform_and_recovery_restores_only_what_it_paused() {
    let d = drill(true).await;
    let id = d.declare(&["tool=ChatGPT", "pause_ads=true"]).await;
    let status = d.engine.run(&id).await.unwrap();
    let failed: Vec<(String, Option<String>)> = d
        .store
        .step_runs(&id)
        .unwrap()
        .into_iter()
        .filter(|(_, r)| r.status == StepStatus::Failed)
        .map(|(s, r)| (s, r.error))
        .collect();
    assert_eq!(
        status,
        IncidentStatus::Completed,
        "failed steps: {failed:?}"
    );
    assert_contained(&d, true);
    // Each platform was re-read and found clean, within time to contain.
    let snap = d.store.snapshot(&id).unwrap();
    let rb = d
        .engine
        .library()
        .runbook("shadow-ai-exposure")
        .unwrap()
        .runbook;
    let report = quench::timeline::report(&rb, &snap);
    let verified: Vec<(&str, &str)> = report["verification"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    let every: Vec<(&str, &str)> = [
        "anthropic",
        "google-ads",
        "google-workspace",
        "hubspot",
        "klaviyo",
        "linkedin",
        "mailchimp",
        "marketo",
        "meta",
        "microsoft-graph",
        "openai",
        "salesforce",
        "sfmc",
        "slack",
    ]
    .into_iter()
    .map(|p| (p, "verified"))
    .collect();
    assert_eq!(verified, every);
    let ttc = report["time_to_contain_ms"].as_i64().unwrap();
    for p in report["verification"].as_array().unwrap() {
        assert!(p["time_to_verify_ms"].as_i64().unwrap() <= ttc, "{p}");
    }
    // Recovery (approved in the drill): what quench paused runs again; what
    // was paused or drafted before the incident stays so.
    assert_paused_sends(&d, true);
}

/// Every approval yes, every manual task done.
fn yes_to_everything(step: &str) -> Decision {
    match step {
        s if s.starts_with("confirm-")
            || s.ends_with("-approval")
            || s == "approve-resume"
            || s == "inadvertent-disclosure" =>
        {
            Decision::Approve
        }
        _ => Decision::Done,
    }
}

/// Runs the incident, answering every person's step as `answer` says,
/// until it ends.
async fn run_with_people(d: &Drill, id: &str, answer: impl Fn(&str) -> Decision) -> IncidentStatus {
    let who = |step: &str| match step {
        "legal-approval" | "inadvertent-disclosure" => LEGAL,
        "approve-resume" | "vendor-deletion-request" | "reschedule-campaigns" => MOPS,
        _ => RESPONDER,
    };
    for _ in 0..20 {
        let status = d.engine.run(id).await.unwrap();
        if !status.is_open() {
            return status;
        }
        let waiting: Vec<String> = d
            .store
            .step_runs(id)
            .unwrap()
            .into_iter()
            .filter(|(_, r)| r.status == StepStatus::Waiting)
            .map(|(s, _)| s)
            .collect();
        assert!(
            !waiting.is_empty(),
            "the incident is {status:?} yet waits on nobody"
        );
        for step in waiting {
            let decision = answer(&step);
            d.engine
                .resolve(
                    id,
                    Resolution {
                        step: step.clone(),
                        decision,
                        by: who(&step).into(),
                        via: None,
                        token: None,
                        note: None,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("{step}: {e}"));
        }
    }
    panic!("the incident did not end after 20 rounds of decisions");
}

#[tokio::test]
async fn a_drill_resumed_after_a_restart_finds_its_platforms_as_it_left_them() {
    let d = drill(false).await;
    let id = d.declare(&["tool=ChatGPT"]).await;
    // Up to the first decisions: what needs nobody has been contained.
    assert_eq!(d.engine.run(&id).await.unwrap(), IncidentStatus::Waiting);
    let grants = |d: &Drill| -> usize {
        d.objects("google-workspace", "tokens")
            .iter()
            .filter(|t| t["displayText"] == "ChatGPT")
            .count()
    };
    assert_eq!(grants(&d), 0);
    let d = d.restart().await;
    assert_eq!(
        grants(&d),
        0,
        "the restarted simulator brought the grants back"
    );
    let status = run_with_people(&d, &id, yes_to_everything).await;
    // Every verification re-read the platforms as the first run left them.
    assert_eq!(status, IncidentStatus::Completed);
    assert_contained(&d, false);
}

#[tokio::test]
async fn a_no_to_recovery_leaves_everything_contained_and_paused() {
    let d = drill(false).await;
    let id = d.declare(&["tool=ChatGPT", "pause_ads=true"]).await;
    let status = run_with_people(&d, &id, |step| match step {
        "approve-resume" => Decision::Reject,
        s => yes_to_everything(s),
    })
    .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_contained(&d, true);
    // Nothing restarted: what quench paused is still paused.
    assert_paused_sends(&d, false);
    // Every recovery step that changes a platform was skipped.
    let runs = d.store.step_runs(&id).unwrap();
    let lib = d.engine.library();
    let rb = lib.runbook("shadow-ai-exposure").unwrap().runbook;
    for s in rb.steps.iter().filter(|s| {
        s.phase == Some(quench::runbook::Phase::Recover)
            && matches!(s.kind, quench::runbook::StepKind::Action { .. })
    }) {
        // Skipped whole, or (a per-item `when`) every item skipped.
        let r = &runs[&s.id];
        let items = d.store.item_runs(&id, &s.id).unwrap();
        assert!(
            r.status == StepStatus::Skipped
                || (r.status == StepStatus::Succeeded
                    && items.values().all(|i| i.status == StepStatus::Skipped)),
            "{} ran after a no: {:?}, items {:?}",
            s.id,
            r.status,
            items.values().map(|i| i.status).collect::<Vec<_>>()
        );
    }
    // Each recovery call the platform would have seen: none.
    let calls = d.sim.calls();
    for action in [
        "klaviyo.resume_flow",
        "klaviyo.update_flow_action",
        "mailchimp.start_automation",
        "google-ads.enable_campaign",
        "meta.resume_campaign",
        "linkedin.resume_campaign",
        "hubspot.publish_email",
        "hubspot.enable_workflow",
    ] {
        assert_eq!(calls.get(action), None, "{action} was called after a no");
    }
}

#[tokio::test]
async fn a_no_to_an_irreversible_step_leaves_the_platform_unverified_and_recovery_waits() {
    let d = drill(false).await;
    let id = d.declare(&["tool=ChatGPT"]).await;
    let status = run_with_people(&d, &id, |step| match step {
        "confirm-slack-uninstall" => Decision::Reject,
        s if s.starts_with("confirm-") || s.ends_with("-approval") || s == "approve-resume" => {
            Decision::Approve
        }
        _ => Decision::Done,
    })
    .await;
    assert_eq!(status, IncidentStatus::Failed);
    // Not contained, so no time to contain.
    let lib = d.engine.library();
    let rb = lib.runbook("shadow-ai-exposure").unwrap().runbook;
    let report = quench::timeline::report(&rb, &d.store.snapshot(&id).unwrap());
    assert_eq!(
        report["time_to_contain_ms"],
        Json::Null,
        "{}",
        report["time_to_contain_ms"]
    );
    // Restricted but still installed: the re-read says so, by name.
    let run = d.store.step_run(&id, "verify-slack-installed").unwrap();
    assert_eq!(run.status, StepStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("slack NOT contained: ChatGPT restricted but still installed (the uninstall was declined): 1 of 2 re-read remain: ChatGPT (A0CHATGPT1)")
    );
    assert_eq!(
        d.states("slack", "apps", "app.name", "quench_sim.list")["ChatGPT"],
        json!("restricted")
    );
    assert_eq!(
        d.states("slack", "apps", "app.name", "quench_sim.installed")["ChatGPT"],
        json!(true)
    );
    // Recovery waits for a platform that is not verified...
    assert_eq!(
        d.store.step_run(&id, "approve-resume").unwrap().status,
        StepStatus::Skipped
    );
    assert_eq!(
        d.states("mailchimp", "automations", "settings.title", "status")["Abandoned cart"],
        json!("paused")
    );
    // ...and the other platforms were verified all the same.
    let snap = d.store.snapshot(&id).unwrap();
    let rb = d
        .engine
        .library()
        .runbook("shadow-ai-exposure")
        .unwrap()
        .runbook;
    let report = quench::timeline::report(&rb, &snap);
    let statuses: BTreeMap<String, String> = report["verification"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap().into(),
                p["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(statuses["slack"], "not verified");
    assert!(
        statuses
            .iter()
            .filter(|(k, _)| *k != "slack")
            .all(|(_, v)| v == "verified"),
        "{statuses:?}"
    );
    let unverified = d
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "containment.unverified")
        .unwrap();
    assert_eq!(unverified.data["remains"], json!(["ChatGPT (A0CHATGPT1)"]));
}

#[tokio::test]
async fn each_drill_starts_from_its_own_tenant() {
    // A daemon runs many drills on one simulator: the second must find the
    // tool's access in place again, not the first one's end state.
    let d = drill(true).await;
    let first = d.declare(&["tool=ChatGPT"]).await;
    assert_eq!(
        d.engine.run(&first).await.unwrap(),
        IncidentStatus::Completed
    );
    let second = d.declare(&["tool=ChatGPT"]).await;
    assert_eq!(
        d.engine.run(&second).await.unwrap(),
        IncidentStatus::Completed
    );
    for id in [&first, &second] {
        let revoked = d
            .store
            .item_runs(id, "disable-klaviyo-keys")
            .unwrap()
            .values()
            .filter(|i| i.status == StepStatus::Succeeded)
            .count();
        assert_eq!(revoked, 1, "{id} disabled the tool's key itself");
    }
    let keys = d
        .sim
        .tenant_of(&first, "klaviyo")
        .remove("api_keys")
        .unwrap();
    assert_eq!(keys[0]["attributes"]["status"], json!("disabled"));
    // Requests naming no drill (inventory) see the tenant as it starts.
    let fresh = d.sim.tenant("klaviyo").remove("api_keys").unwrap();
    assert_eq!(fresh[0]["attributes"]["status"], json!("active"));
}

#[tokio::test]
async fn repeating_an_effect_gets_the_vendors_own_answer_and_counts_as_done() {
    // A crash between a revoke and its record retries it: the vendor then
    // answers in its own way (Slack: 200 ok:false app_not_found; Salesforce:
    // 400 invalid_token), which the manifests read as already done.
    tls();
    let lib = Library::load(&Default::default()).unwrap();
    let sim = Simulator::start(&lib.catalog).await.unwrap();
    let exec = Executor::new(&lib.catalog, sim.routing(&lib.catalog.secret_names())).unwrap();
    let call = |i: &'static str, a: &'static str, with: Json| {
        let exec = &exec;
        async move {
            exec.call_for(
                quench::integrations::Caller {
                    incident: Some("INC-1"),
                    weight: 1,
                },
                i,
                a,
                &with,
                "k",
                None,
            )
            .await
        }
    };
    for (i, a, with) in [
        ("slack", "uninstall_app", json!({"app_id": "A0CHATGPT1"})),
        (
            "salesforce",
            "revoke_token",
            json!({"token": "aPrxDelEtEtOkEn1"}),
        ),
    ] {
        let first = call(i, a, with.clone()).await.unwrap();
        assert!(!first.already_done, "{i}.{a}: the first call does it");
        let again = call(i, a, with).await.unwrap();
        assert!(
            again.already_done,
            "{i}.{a}: the repeat is recorded as already done"
        );
    }
}
