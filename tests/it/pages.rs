//! The recovery review in a real browser: headless Chromium loads the
//! daemon's pages and the tests read the DOM it built, at laptop and phone
//! width, with JavaScript on and off, and compare it with the record the
//! API serves.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{json, Value as Json};

use crate::browser::{Browser, Load};
use crate::server::{spawn_serve_with, TOKEN};

const HOSTILE_TOOL: &str = "<script>window.pwned=1</script>Evil<img src=x onerror=window.pwned=2>";

/// A completed drill of the bundled runbook, served by a `quench serve`
/// over its store, with the display zone set to Berlin.
struct Drilled {
    _serve: ServeGuard,
    url: String,
    id: String,
    report: Json,
    incident: Json,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

struct ServeGuard(std::process::Child);

impl Drop for ServeGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn drilled() -> Drilled {
    crate::support::tls();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quench.yaml"), "timezone: Europe/Berlin\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args([
            "--data-dir",
            "store",
            "--json",
            "drill",
            "shadow-ai-exposure",
        ])
        .args(["--input", "tool=ChatGPT"])
        .args(["--input", "jurisdictions=EU,US-CA", "--max-wait", "100ms"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Json = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let id = report["incident"].as_str().unwrap().to_string();
    let (child, url) = spawn_serve_with(dir.path(), &[]).await;
    let mut d = Drilled {
        _serve: ServeGuard(child),
        url,
        id,
        report,
        incident: Json::Null,
        http: reqwest::Client::new(),
        dir,
    };
    d.incident = d.get(&format!("/api/v1/incidents/{}", d.id)).await;
    d
}

impl Drilled {
    /// GET with the token, as JSON.
    async fn get(&self, path: &str) -> Json {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// What the summary, chart and tables show, read from the DOM.
const READ_PAGE: &str = r#"(() => {
  const all = (s) => [...document.querySelectorAll(s)];
  const text = (s) => document.querySelector(s)?.textContent.trim();
  return {
    status: text('#status'),
    contain: text('#time-to-contain'),
    automatic: text('#steps-automatic'),
    people: text('#steps-people'),
    verified: text('#verified-count'),
    bars: all('svg.gantt g.bar').map(g => g.dataset.step),
    titled: all('svg.gantt g.bar').filter(g => g.querySelector(':scope > title')?.textContent.length > 0).length,
    phases: all('svg.gantt g.phase').map(g => g.dataset.phase),
    deadlines: all('svg.gantt g.deadline').map(g => g.querySelector('title').textContent),
    platforms: all('#platforms tr.verification').map(r => [r.dataset.platform, r.textContent]),
    changes: all('#platforms tr[data-step]').map(r => [r.dataset.step, r.querySelector('td.changed').textContent]),
    items: all('#platforms details li').map(li => li.textContent),
    clocks: all('#clocks tr[data-jurisdiction]').map(r => [r.dataset.jurisdiction, r.dataset.recipient, r.cells[3].textContent]),
    notices: all('#notices tr[data-audience]').map(r => r.lastElementChild.textContent),
    declared: [document.querySelector('.meta time').textContent, document.querySelector('.meta time').getAttribute('title')],
    body: document.body.innerText,
    scripts: document.scripts.length,
    pwned: window.pwned === undefined ? null : window.pwned,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    containBox: (() => { const r = document.querySelector('#time-to-contain').getBoundingClientRect(); return [r.left, r.right, r.width]; })(),
    width: window.innerWidth,
    keyEvents: all('#key-events tbody tr').length,
    everyEvent: all('#all-events tbody tr').length,
    // Our stylesheet applied: the Content-Security-Policy lets it run.
    styled: getComputedStyle(document.querySelector('main')).maxWidth,
  };
})()"#;

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_drills_review_page_shows_the_record_in_a_browser() {
    let d = drilled().await;
    let mut b = Browser::launch().await;
    b.open(
        &format!("{}/incidents/{}", d.url, d.id),
        &Load::laptop(TOKEN),
    )
    .await;
    let p = b.eval(READ_PAGE).await;

    assert_eq!(p["status"], "completed");
    assert_eq!(
        p["styled"], "1152px",
        "the page's own style is allowed by its CSP"
    );
    let ms = d.report["time_to_contain_ms"].as_i64().unwrap();
    assert_eq!(
        p["contain"],
        quench::timeline::display::duration_text(chrono::TimeDelta::milliseconds(ms))
    );
    // One bar per step that ran, and only those; each with its text.
    let steps = d.incident["steps"].as_array().unwrap();
    let ran: BTreeSet<String> = steps
        .iter()
        .filter(|s| !s["started_at"].is_null() && s["status"] != "skipped")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let bars = strings(&p["bars"]);
    assert_eq!(bars.len(), ran.len(), "one bar per step: {bars:?}");
    assert_eq!(bars.iter().cloned().collect::<BTreeSet<_>>(), ran);
    assert_eq!(p["titled"], json!(bars.len()));
    assert_eq!(strings(&p["phases"]), ["contain", "notify", "recover"]);
    // The bundled runbook's people steps are approvals and manual tasks;
    // the rest ran on their own.
    let people = p["people"].as_str().unwrap().parse::<usize>().unwrap();
    let automatic = p["automatic"].as_str().unwrap().parse::<usize>().unwrap();
    assert_eq!(people + automatic, ran.len());
    assert!(people >= 5, "{people}");

    // A deadline marker per clock with a due time, named in the zone
    // of its jurisdiction.
    let clocks = d.incident["clocks"].as_array().unwrap();
    let due: Vec<&Json> = clocks.iter().filter(|c| !c["due"].is_null()).collect();
    let deadlines = strings(&p["deadlines"]);
    assert_eq!(deadlines.len(), due.len(), "{deadlines:?}");
    assert!(deadlines.iter().any(|t| t.contains("CET")), "{deadlines:?}");
    let rows = p["clocks"].as_array().unwrap();
    assert_eq!(rows.len(), clocks.len());
    for c in clocks {
        let row = rows
            .iter()
            .find(|r| r[0] == c["jurisdiction"] && r[1] == c["recipient"])
            .unwrap_or_else(|| panic!("no row for {c}"));
        if c["jurisdiction"] == "US-CA" && !c["due"].is_null() {
            assert!(row[2].as_str().unwrap().ends_with("PST"), "{row}");
        }
    }

    // Every platform the drill verified, verified on the page too.
    let verified = d.report["verification"].as_array().unwrap();
    assert!(verified.len() >= 10);
    let shown = p["platforms"].as_array().unwrap();
    for v in verified {
        let row = shown
            .iter()
            .find(|r| r[0] == v["platform"])
            .unwrap_or_else(|| panic!("{} missing from {shown:?}", v["platform"]));
        assert!(
            row[1].as_str().unwrap().contains("Re-read: verified"),
            "{row}"
        );
    }
    assert_eq!(
        p["verified"],
        format!("{0} of {0} platforms verified", verified.len())
    );
    // Each revocation changed as many objects as the event log records
    // items done (not found already done) for it: a single call's own
    // event, or a fan-out's summary.
    let events = d.get(&format!("/api/v1/incidents/{}/timeline", d.id)).await;
    let done_for = |step: &str| {
        let of_step = || {
            events["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(move |e| e["step"] == step)
        };
        let single = of_step()
            .filter(|e| e["kind"] == "item.succeeded" && e["data"]["already_done"] == false)
            .count();
        let fanned = of_step()
            .rfind(|e| e["kind"] == "items.summary")
            .map_or(0, |e| e["data"]["succeeded"].as_u64().unwrap() as usize);
        single + fanned
    };
    let changes = p["changes"].as_array().unwrap();
    assert!(changes.len() > 10, "{changes:?}");
    for c in changes {
        let step = c[0].as_str().unwrap();
        let shown: usize = c[1].as_str().unwrap().parse().unwrap();
        let logged = done_for(step);
        // A single call (no fan-out) logs its one success the same way.
        assert_eq!(shown, logged, "{step}");
    }
    let revoked = changes
        .iter()
        .find(|r| r[0] == "revoke-salesforce-grants")
        .unwrap();
    assert_ne!(
        revoked[1], "0",
        "the drill's tenant has ChatGPT grants to revoke"
    );
    // Each item is named as the vendor names it, never "item N".
    let items = strings(&p["items"]);
    assert!(items.len() > 50, "{items:?}");
    let unnamed: Vec<&String> = items.iter().filter(|i| i.starts_with("item ")).collect();
    assert!(unnamed.is_empty(), "{unnamed:?}");
    assert!(
        items
            .iter()
            .any(|i| i.starts_with("ChatGPT (0058d000001XyZaAAK): succeeded")),
        "a Salesforce grant by its app and user: {items:?}"
    );

    // Times in the configured zone, the exact instant in the title.
    let declared = p["declared"].as_array().unwrap();
    assert!(
        declared[0].as_str().unwrap().ends_with("CET"),
        "{declared:?}"
    );
    assert_eq!(
        declared[1],
        d.incident["declared_at"]
            .as_str()
            .unwrap()
            .replace("+00:00", "Z")
    );

    assert_eq!(p["scripts"], 0, "a finished incident's page has no script");
    // Significant events by default, every event on demand.
    let key = p["keyEvents"].as_u64().unwrap();
    let every = p["everyEvent"].as_u64().unwrap();
    assert!(key > 10 && key * 3 < every, "{key} of {every}");
    assert!(p["body"]
        .as_str()
        .unwrap()
        .contains("contain phase finished"));
    assert_eq!(p["overflow"], 0, "the page fits a laptop");

    // The rehearsal list shows on the drill's page.
    assert!(p["body"]
        .as_str()
        .unwrap()
        .contains("What a real incident would need that this drill filled in"));
}

#[tokio::test]
async fn the_review_page_fits_a_phone_and_reads_without_javascript() {
    let d = drilled().await;
    let mut b = Browser::launch().await;
    let url = format!("{}/incidents/{}", d.url, d.id);
    b.open(&url, &Load::phone(TOKEN)).await;
    let p = b.eval(READ_PAGE).await;
    assert_eq!(p["width"], 390);
    assert_eq!(
        p["overflow"], 0,
        "nothing wider than the phone but the scrolling chart"
    );
    let bx = p["containBox"].as_array().unwrap();
    assert!(
        bx[2].as_f64().unwrap() > 0.0 && bx[1].as_f64().unwrap() <= 390.0,
        "{bx:?}"
    );
    assert!(!p["bars"].as_array().unwrap().is_empty());
    if std::env::var_os("QUENCH_SCREENSHOTS").is_some() {
        b.screenshot(&d.dir.path().join("phone.png")).await;
    }

    let mut off = Load::laptop(TOKEN);
    off.no_script = true;
    b.open(&url, &off).await;
    let q = b.eval(READ_PAGE).await;
    assert_eq!(
        q["contain"], p["contain"],
        "server-rendered: no script needed"
    );
    assert_eq!(q["bars"], p["bars"]);

    // The standalone copy: the same page from a file, no daemon needed.
    let r = d
        .http
        .get(format!("{}/incidents/{}/review.html", d.url, d.id))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"{}-review.html\"", d.id)
    );
    let file = d.dir.path().join("review.html");
    std::fs::write(&file, r.text().await.unwrap()).unwrap();
    let mut plain = Load::laptop(TOKEN);
    plain.bearer = None;
    b.open(&format!("file://{}", file.display()), &plain).await;
    let s = b.eval(READ_PAGE).await;
    assert_eq!(s["bars"], p["bars"]);
    assert_eq!(s["contain"], p["contain"]);
    assert!(s["body"]
        .as_str()
        .unwrap()
        .contains("a copy of the record at that time"));

    // The page's postmortem link downloads the draft, every event included.
    b.open(&url, &Load::laptop(TOKEN)).await;
    let href = b
        .eval("document.getElementById('postmortem').getAttribute('href')")
        .await;
    assert_eq!(href, format!("/incidents/{}/postmortem.md", d.id));
    let r = d
        .http
        .get(format!("{}{}", d.url, href.as_str().unwrap()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{}-postmortem.md\"", d.id).as_str()
    );
    let md = r.text().await.unwrap();
    assert!(
        md.starts_with(&format!("# Postmortem draft: {}", d.id)),
        "{md}"
    );
    let events = d.get(&format!("/api/v1/incidents/{}/timeline", d.id)).await;
    let last = events["events"].as_array().unwrap().last().unwrap()["seq"].clone();
    assert!(
        md.contains(&format!("\n| {last} | ")),
        "the appendix ends with the last event"
    );
    assert!(md.contains("## What went well\n\n_To be written._"));
}

#[tokio::test]
async fn a_parked_incidents_page_shows_who_it_waits_for_and_refreshes_in_place() {
    let h = crate::server::host_opts(crate::server::SlackKind::Off, false, false).await;
    // The mock platform answers every path, so a tool named in markup is
    // revoked like any other.
    h.platform.otherwise(crate::support::Reply::status(204));
    let id = h
        .declare_and_settle(json!({"tool": HOSTILE_TOOL, "jurisdictions": ["EU"]}))
        .await;
    let mut b = Browser::launch().await;
    b.open(&format!("{}/incidents/{id}", h.url), &Load::phone(TOKEN))
        .await;
    let p = b.eval(READ_PAGE).await;
    assert_eq!(p["status"], "waiting");
    assert_eq!(p["contain"], "0 ms", "the fake clock stands still");
    let body = p["body"].as_str().unwrap();
    assert!(body.contains("legal (waiting)"), "{body}");
    // The hostile input is text: shown, never run.
    assert!(
        body.contains(&format!("Notify for {HOSTILE_TOOL}?")),
        "{body}"
    );
    assert_eq!(p["pwned"], Json::Null);
    assert_eq!(p["scripts"], 1, "only the refresh script, while it runs");
    // The EU regulator clock: 72 h from the declaration, due in Brussels
    // time, and one marker on the chart.
    assert_eq!(p["deadlines"].as_array().unwrap().len(), 1);
    let people = b
        .eval("[...document.querySelectorAll('#people tr[data-step]')].map(r => [r.dataset.step, r.cells[2].textContent, r.cells[3].textContent])")
        .await;
    assert_eq!(
        people,
        json!([
            ["vendor", "mops (no members configured)", "waiting"],
            ["legal", "legal (U0LEGAL1)", "waiting"]
        ]),
        "who was asked, from the roles"
    );

    // The reader opens every event and scrolls down; the incident moves on.
    b.eval("document.getElementById('all-events').open = true; window.scrollTo(0, 600); window.scrollY")
        .await;
    let mut rx = h.daemon.engine().subscribe();
    let (s, body) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0LEGAL1"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    crate::server::settle(&mut rx, &id).await;
    let after = b
        .eval("quenchRefresh().then(() => ({open: document.getElementById('all-events').open, y: window.scrollY, legal: document.querySelector('#people tr[data-step=legal]').cells[3].textContent}))")
        .await;
    assert_eq!(after["open"], true, "the reader's <details> stays open");
    assert_eq!(after["y"], 600, "and the reader's place");
    assert_eq!(
        after["legal"], "approved by U0LEGAL1",
        "the page shows the new state: {after}"
    );
}

#[tokio::test]
async fn the_index_lists_open_incidents_first_and_charts_the_kpis_with_filters() {
    let h = crate::server::host_opts(crate::server::SlackKind::Off, false, false).await;
    let done = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let mut rx = h.daemon.engine().subscribe();
    for (path, by) in [
        ("approvals/legal", "U0LEGAL1"),
        ("steps/vendor/done", "mops-lead"),
    ] {
        let body = if path.starts_with("approvals") {
            json!({"approve": true, "by": by})
        } else {
            json!({"by": by})
        };
        let (s, b) = h
            .call(
                "POST",
                &format!("/api/v1/incidents/{done}/{path}"),
                Some(body),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    loop {
        if crate::server::settle(&mut rx, &done).await == "incident.completed" {
            break;
        }
    }
    let open = h.declare_and_settle(json!({"tool": "Jasper"})).await;

    let mut b = Browser::launch().await;
    let read = r#"(() => ({
      rows: [...document.querySelectorAll('#incidents tbody tr')].map(r => [r.dataset.id, r.className.trim()]),
      dots: [...document.querySelectorAll('svg.kpis circle[data-id]')].map(c => [c.dataset.id, c.getAttribute('class')]),
      kpis: [...document.querySelectorAll('#kpis tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
      selected: [...document.querySelectorAll('form.filters option[selected]')].map(o => o.value),
      overflow: document.documentElement.scrollWidth - window.innerWidth,
    }))()"#;
    b.open(&format!("{}/", h.url), &Load::laptop(TOKEN)).await;
    let p = b.eval(read).await;
    assert_eq!(
        p["rows"],
        json!([[open, "open"], [done, ""]]),
        "open incidents first, then recent ones"
    );
    // Both contained and finished their notify phase (the drafts): a
    // dot per figure, per incident, filled (real).
    assert_eq!(
        p["dots"],
        json!([
            [done, "contain"],
            [done, "notify"],
            [open, "contain"],
            [open, "notify"]
        ]),
        "{p}"
    );
    let declared = p["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "declared")
        .cloned();
    assert_eq!(
        declared,
        Some(json!(["declared", "2", "0"])),
        "real incidents apart from drills"
    );

    b.open(&format!("{}/?kind=drill", h.url), &Load::phone(TOKEN))
        .await;
    let drills = b.eval(read).await;
    assert_eq!(drills["rows"], json!([]));
    assert_eq!(drills["dots"], json!([]));
    assert_eq!(drills["selected"], json!(["", "drill"]));
    assert_eq!(drills["overflow"], 0, "the index fits a phone");
    b.open(
        &format!("{}/?runbook=contain&kind=real", h.url),
        &Load::laptop(TOKEN),
    )
    .await;
    assert_eq!(b.eval(read).await["rows"].as_array().unwrap().len(), 2);

    let r = reqwest::Client::new()
        .get(format!("{}/?kind=bogus", h.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not one of all, real, drill"));
}
