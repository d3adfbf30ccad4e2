//! The binary end to end: drills, inputs, timeline, exit codes.

use std::process::{Command, Output};

use serde_json::{json, Value as Json};

use crate::support::{write_manifest, Mock, Reply, SECRET};

/// Runs quench in `dir` with its store in `dir/store`.
pub(crate) fn quench(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("store"))
        .args(args)
        .env_remove("MOCKP_TOKEN")
        .output()
        .unwrap()
}

/// A project folder whose `mockp` integration points at `mock`, with one
/// runbook file.
fn mock_project(mock: &Mock, runbook_file: &str, runbook: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path());
    std::fs::write(
        dir.path().join("quench.yaml"),
        format!("integrations:\n  mockp: {{ base_url: \"{}\" }}\n", mock.url),
    )
    .unwrap();
    std::fs::write(dir.path().join(runbook_file), runbook).unwrap();
    dir
}

/// Runs quench in `dir` off the async runtime, which must stay free to
/// serve the mock the command talks to.
async fn quench_off_runtime(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quench"));
    cmd.current_dir(dir).args(args).env_remove("MOCKP_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Drills the bundled runbook for ChatGPT with these inputs; its report.
#[track_caller]
fn drill_bundled(dir: &std::path::Path, inputs: &[&str]) -> Json {
    let mut args = vec![
        "--json",
        "drill",
        "shadow-ai-exposure",
        "--input",
        "tool=ChatGPT",
    ];
    for i in inputs {
        args.extend(["--input", i]);
    }
    args.extend(["--max-wait", "10ms"]);
    let o = quench(dir, &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn drill_of_the_bundled_runbook_completes_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let o = quench(
        dir.path(),
        &[
            "--json",
            "drill",
            "shadow-ai-exposure",
            "--input",
            "tool=ChatGPT",
            "--input",
            "jurisdictions=EU,UK,US-CA,US-NY",
            "--input",
            "pause_ads=true",
            "--max-wait",
            "10ms",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    let report: Json = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["runbook"], "shadow-ai-exposure");
    assert!(report["time_to_contain_ms"].as_i64().is_some());
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.len() >= 50, "{} steps", steps.len());
    assert!(
        steps.iter().all(|s| s["status"] == "succeeded"),
        "{steps:#?}"
    );
    let revoke = steps
        .iter()
        .find(|s| s["id"] == "revoke-workspace-grants")
        .unwrap();
    assert_eq!(revoke["items"], 4);

    // The timeline is in the store, in order, starting with the declaration.
    let id = report["incident"].as_str().unwrap();
    let o = quench(dir.path(), &["timeline", id, "--format", "json"]);
    let tl: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(tl["incident"], id);
    let events = tl["events"].as_array().unwrap();
    assert_eq!(events[0]["kind"], "incident.declared");
    // The drill ends, then its rehearsal list is recorded.
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["incident.completed", "drill.rehearsal"]
    );
    assert!(events.iter().any(|e| e["kind"] == "wait.cut"));
    assert!(events
        .iter()
        .any(|e| e["kind"] == "approval.granted" && e["actor"] == "drill"));
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));

    let o = quench(dir.path(), &["timeline", id, "--format", "markdown"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("| 1 |"));

    // The drill counts in the KPIs as a drill, with its time to contain.
    let o = quench(dir.path(), &["--json", "kpis", "--since", "2026-01-01"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let k: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(k["drills"]["incidents"], 1);
    assert_eq!(k["drills"]["completed"], 1);
    assert_eq!(
        k["drills"]["time_to_contain"]["median_ms"],
        report["time_to_contain_ms"]
    );
    assert!(k["drills"]["time_to_notify"]["median_ms"]
        .as_i64()
        .is_some());
    assert_eq!(k["incidents"]["incidents"], 0);
    let o = quench(dir.path(), &["kpis", "--format", "markdown"]);
    let md = text(&o).0;
    assert!(md.contains("| time to contain, median |"), "{md}");
    let o = quench(dir.path(), &["kpis", "--since", "last week"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("is not a date"));
}

#[test]
fn inputs_are_typed_and_required_ones_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let o = quench(dir.path(), &["drill", "shadow-ai-exposure"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("missing required input `tool`"),
        "{}",
        text(&o).1
    );

    let o = quench(
        dir.path(),
        &[
            "drill",
            "shadow-ai-exposure",
            "--input",
            "tool=X",
            "--input",
            "records=many",
            "--input",
            "tol=Y",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("--input records=\"many\": `records` must be an integer"),
        "{err}"
    );
    assert!(
        err.contains("has no input \"tol\" (did you mean `tool`?)"),
        "{err}"
    );

    // The values that decide which clocks start are checked too.
    let o = quench(
        dir.path(),
        &[
            "drill",
            "shadow-ai-exposure",
            "--input",
            "tool=X",
            "--input",
            "jurisdictions=EU,US-CAL",
            "--input",
            "data_elements=name,snn",
            "--input",
            "residents=US-CAL:20,EU:many,UK",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    for want in [
        "--input residents: unknown jurisdiction \"US-CAL\" in \"US-CAL:20\" (did you mean `US-CA`?)",
        "--input residents: \"many\" in \"EU:many\" is not a count of people; write CODE:COUNT, e.g. US-CA:20",
        "--input residents: \"UK\" is not CODE:COUNT; write e.g. residents=US-CA:20,EU:10000",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert!(
        err.contains("--input jurisdictions: unknown value \"US-CAL\" (did you mean `US-CA`?)"),
        "{err}"
    );
    assert!(
        err.contains("--input data_elements: unknown value \"snn\" (did you mean `ssn`?)"),
        "{err}"
    );

    let o = quench(dir.path(), &["drill", "shadow-ai-exposur"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("did you mean `shadow-ai-exposure`?"),
        "{}",
        text(&o).1
    );
}

#[tokio::test]
async fn live_drill_failure_exits_nonzero_and_never_prints_secrets() {
    let mock = Mock::start().await;
    mock.on(
        "/echo",
        vec![Reply::json(
            401,
            json!({"error": format!("invalid token {SECRET}")}),
        )],
    );
    let dir = mock_project(&mock, "echo.yaml", "version: 1\nname: echo\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: echo }\n");
    // Every log line too, at the most verbose level.
    let o = quench_off_runtime(
        dir.path(),
        &[
            "--data-dir",
            "store",
            "--json",
            "drill",
            "echo.yaml",
            "--live",
        ],
        &[("MOCKP_TOKEN", SECRET), ("QUENCH_LOG", "trace")],
    )
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let report: Json = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(report["steps"][0]["error"]
        .as_str()
        .unwrap()
        .contains("HTTP 401"));
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "secret leaked:\n{out}\n{err}"
    );
    assert_eq!(
        mock.seen()[0].headers["authorization"],
        format!("Bearer {SECRET}"),
        "the live call used the env secret"
    );
}

#[test]
fn live_drill_names_missing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path());
    std::fs::write(
        dir.path().join("echo.yaml"),
        "version: 1\nname: echo\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: echo }\n    retry: { attempts: 1 }\n",
    )
    .unwrap();
    let o = quench(dir.path(), &["--json", "drill", "echo.yaml", "--live"]);
    assert_eq!(o.status.code(), Some(1));
    let report: Json = serde_json::from_str(text(&o).0.lines().last().unwrap()).unwrap();
    let e = report["steps"][0]["error"].as_str().unwrap();
    assert!(e.contains("missing secret MOCKP_TOKEN"), "{e}");
}

#[test]
fn declared_incident_waits_for_a_role_holder_then_notices_are_ready() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        "roles:\n  legal: [U0LEGAL1]\norganization: { name: Acme Retail Ltd, dpo: { name: Jane Doe, email: dpo@acme.example, phone: \"+44 20 7946 0000\" }, website: \"https://acme.example/security\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notify.yaml"),
        r#"version: 1
name: notify
inputs:
  tool: { type: string, required: true }
  records: { type: integer, default: 10 }
  jurisdictions: { type: list, default: [EU] }
  data_elements: { type: list, default: [name, email] }
steps:
  - id: draft
    notice: { audience: customers, jurisdictions: inputs.jurisdictions }
  - id: legal
    approval: { approvers: [legal], prompt: "Send it?" }
    needs: [draft]
  - id: after
    manual: { instructions: "Send the approved notices" }
    needs: [legal]
"#,
    )
    .unwrap();
    let o = quench(
        dir.path(),
        &[
            "--json",
            "declare",
            "notify.yaml",
            "--input",
            "tool=ChatGPT",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let report: Json = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["status"], "waiting");
    let id = report["incident"].as_str().unwrap().to_string();

    let o = quench(dir.path(), &["--json", "notices", &id]);
    let n: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        n["notices"][0]["ready"], false,
        "no approval, no ready notice"
    );

    // Someone without the role is refused, and the refusal is on the timeline.
    let o = quench(dir.path(), &["approve", &id, "legal", "--by", "U0INTERN"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("U0INTERN may not decide \"legal\""),
        "{}",
        text(&o).1
    );

    let o = quench(
        dir.path(),
        &[
            "approve", &id, "legal", "--by", "U0LEGAL1", "--note", "checked",
        ],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let o = quench(dir.path(), &["--json", "notices", &id]);
    let n: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(n["notices"][0]["ready"], true);
    assert_eq!(n["notices"][0]["approved_by"], "U0LEGAL1");
    let o = quench(
        dir.path(),
        &["notices", &id, "--sent", "customers-EU", "--by", "mops"],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    // An edit is a new version, and needs its own approval.
    std::fs::write(dir.path().join("edited.md"), "Subject: Updated\n\nNew text").unwrap();
    let o = quench(
        dir.path(),
        &["--json", "notices", &id, "--edit", "customers-EU=edited.md"],
    );
    let n: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            n["notices"][0]["version"].as_u64(),
            n["notices"][0]["ready"].as_bool()
        ),
        (Some(2), Some(false))
    );

    let o = quench(dir.path(), &["done", &id, "after", "--by", "mops"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = quench(dir.path(), &["timeline", &id, "--format", "json"]);
    let tl: Json = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "approval.requested",
        "approval.refused",
        "approval.granted",
        "notice.approved",
        "manual.done",
        "incident.completed",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let refused = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "approval.refused")
        .unwrap();
    assert_eq!(refused["actor"], "U0INTERN");

    let export = dir.path().join("out");
    let o = quench(
        dir.path(),
        &[
            "notices",
            &id,
            "--export",
            export.to_str().unwrap(),
            "--format",
            "eml",
        ],
    );
    assert!(o.status.success());
    let eml = std::fs::read_to_string(export.join("customers-EU-v2.eml")).unwrap();
    assert!(
        eml.starts_with("MIME-Version: 1.0\r\nSubject: Updated\r\n"),
        "{eml}"
    );
    assert!(eml.ends_with("\r\n\r\nNew text"), "{eml}");
}

#[test]
fn status_shows_regulatory_clocks_from_recorded_moments() {
    let dir = tempfile::tempdir().unwrap();
    let o = quench(
        dir.path(),
        &[
            "--json",
            "drill",
            "shadow-ai-exposure",
            "--input",
            "tool=ChatGPT",
            "--input",
            "jurisdictions=EU,US-TX",
            "--input",
            "data_elements=name,ssn",
            "--input",
            "records=300",
            "--max-wait",
            "1ms",
        ],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let report: Json = serde_json::from_str(text(&o).0.lines().last().unwrap()).unwrap();
    let id = report["incident"].as_str().unwrap().to_string();
    let clocks = |dir: &std::path::Path| -> Vec<Json> {
        let o = quench(dir, &["--json", "status", &id]);
        let s: Json = serde_json::from_slice(&o.stdout).unwrap();
        s["clocks"].as_array().unwrap().clone()
    };
    let find = |cs: &[Json], j: &str, r: &str| {
        cs.iter()
            .find(|c| c["jurisdiction"] == j && c["recipient"] == r)
            .cloned()
            .unwrap()
    };

    let cs = clocks(dir.path());
    assert_eq!(find(&cs, "EU", "authority")["status"], "running");
    assert_eq!(
        find(&cs, "US-TX", "individuals")["status"],
        "not started",
        "Texas counts from `tx_breach_determined`"
    );
    assert_eq!(
        find(&cs, "US-TX", "attorney_general")["status"],
        "running",
        "250+ Texans"
    );

    // Awareness came long ago: the GDPR clock is overdue. Determination now starts Texas.
    let o = quench(
        dir.path(),
        &[
            "note",
            &id,
            "Agency flagged it in January",
            "--moment",
            "aware=2026-01-05T09:00:00Z",
        ],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    quench(
        dir.path(),
        &[
            "note",
            &id,
            "Scope confirmed",
            "--moment",
            "tx_breach_determined",
        ],
    );
    let cs = clocks(dir.path());
    let gdpr = find(&cs, "EU", "authority");
    assert_eq!(gdpr["overdue"], true);
    assert_eq!(gdpr["due"], "2026-01-08T09:00:00+00:00");
    assert_eq!(find(&cs, "US-TX", "individuals")["status"], "running");

    // A law-enforcement delay pauses the clocks that allow one, not GDPR's.
    quench(
        dir.path(),
        &["note", &id, "FBI asked us to hold", "--pause"],
    );
    let cs = clocks(dir.path());
    assert_eq!(find(&cs, "US-TX", "individuals")["status"], "paused");
    assert_eq!(find(&cs, "EU", "authority")["status"], "overdue");

    let o = quench(dir.path(), &["note", &id, "x", "--moment", "guessed"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("unknown moment \"guessed\""),
        "{}",
        text(&o).1
    );

    let o = quench(dir.path(), &["timeline", &id, "--format", "markdown"]);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("## Regulatory obligations") && md.contains("**OVERDUE**"),
        "{md}"
    );
}

#[test]
fn a_store_in_use_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let _held = quench::store::Store::open(&dir.path().join("store")).unwrap();
    let o = quench(dir.path(), &["incidents"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.contains("is in use by another quench process") && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn inventory_marks_what_it_finds_against_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        "approved_tools: tools.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tools.yaml"),
        "tools:\n  - { name: ChatGPT, status: unapproved }\n  - { name: Approved CRM Sync, match: [approved crm], allowed_platforms: [google-workspace] }\n",
    )
    .unwrap();
    let o = quench(dir.path(), &["--json", "inventory", "--simulated"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let scan: Json = serde_json::from_slice(&o.stdout).unwrap();
    let items = scan["items"].as_array().unwrap();
    let find = |platform: &str, name: &str| {
        items
            .iter()
            .find(|i| i["platform"] == platform && i["name"] == name)
            .unwrap_or_else(|| panic!("{platform}/{name} not in {items:#?}"))
    };
    assert_eq!(find("google-workspace", "ChatGPT")["verdict"], "unapproved");
    assert_eq!(find("google-workspace", "ChatGPT")["kind"], "oauth_grant");
    assert_eq!(
        find("google-workspace", "Approved CRM Sync")["verdict"],
        "approved"
    );
    assert_eq!(find("slack", "Asana")["verdict"], "unknown");
    assert!(items.len() >= 10, "{} items", items.len());

    // A broken registry is a located error, not a silent "unknown".
    std::fs::write(
        dir.path().join("tools.yaml"),
        "tools:\n  - { name: X, staus: approved }\n",
    )
    .unwrap();
    let o = quench(dir.path(), &["inventory", "--simulated"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("tools.yaml:2:16: error: unknown key `staus` in a tool"),
        "{}",
        text(&o).1
    );
}

#[test]
fn a_bad_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        "data_dir: .quench\nlisten_addr: 127.0.0.1:8080\n",
    )
    .unwrap();
    let o = quench(dir.path(), &["incidents"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.contains("quench.yaml:2:1: error: invalid config: unknown field `listen_addr`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_killed_declare_is_finished_by_resume_without_repeating_effects() {
    let mock = Mock::start().await;
    mock.on("/a", vec![Reply::json(200, json!({"ok": true}))]);
    mock.on(
        "/b",
        vec![Reply::hang(), Reply::json(200, json!({"ok": true}))],
    );
    let dir = mock_project(&mock, "two.yaml", "version: 1\nname: two\nsteps:\n  - id: a\n    action: mockp.get\n    with: { path: a }\n  - id: b\n    action: mockp.get\n    needs: [a]\n    with: { path: b }\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args(["--data-dir", "store", "declare", "two.yaml"])
        .env("MOCKP_TOKEN", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    mock.wait_for("/b").await;
    child.kill().unwrap(); // SIGKILL mid-request
    child.wait().unwrap();

    let o = quench_off_runtime(
        dir.path(),
        &["--data-dir", "store", "resume"],
        &[("MOCKP_TOKEN", SECRET)],
    )
    .await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains(": completed"), "{out}");
    crate::support::assert_resumed_without_repeats(&mock);
}

#[tokio::test]
async fn sigterm_stops_a_declare_cleanly_and_says_how_to_continue() {
    let mock = Mock::start().await;
    mock.on("/b", vec![Reply::hang()]);
    let dir = mock_project(
        &mock,
        "one.yaml",
        "version: 1\nname: one\nsteps:\n  - id: b\n    action: mockp.get\n    with: { path: b }\n",
    );
    let child = Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args(["--data-dir", "store", "declare", "one.yaml"])
        .env("MOCKP_TOKEN", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    mock.wait_for("/b").await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(130));
    let err = text(&o).1;
    assert!(
        err.contains("stays running in the store; `quench resume"),
        "{err}"
    );
}

#[tokio::test]
async fn secrets_can_come_from_the_secrets_file_whose_content_never_shows() {
    let mock = Mock::start().await;
    mock.on("/ok", vec![Reply::json(200, json!({}))]);
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path());
    std::fs::write(
        dir.path().join("quench.yaml"),
        format!(
            "secrets_file: secrets.yaml\nintegrations:\n  mockp: {{ base_url: \"{}\" }}\n",
            mock.url
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secrets.yaml"),
        format!("MOCKP_TOKEN: {SECRET}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("ok.yaml"), "version: 1\nname: ok\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: ok }\n").unwrap();
    let d = dir.path().to_path_buf();
    let run = move |d: std::path::PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(&d)
            .args(["--data-dir", "store", "drill", "ok.yaml", "--live"])
            .env_remove("MOCKP_TOKEN")
            .output()
            .unwrap()
    };
    let d2 = d.clone();
    let o = tokio::task::spawn_blocking(move || run(d2)).await.unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(
        mock.seen()[0].headers["authorization"],
        format!("Bearer {SECRET}")
    );

    // A malformed secrets file is named, but its content is not echoed.
    std::fs::write(d.join("secrets.yaml"), format!("MOCKP_TOKEN: [{SECRET}\n")).unwrap();
    let o = tokio::task::spawn_blocking(move || run(d)).await.unwrap();
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = text(&o);
    assert!(
        err.contains("secrets.yaml") && err.contains("must be a map of NAME: value strings"),
        "{err}"
    );
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{err}");
}

#[test]
fn singapore_notice_of_a_drill_tells_what_was_done_from_its_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let report = drill_bundled(
        dir.path(),
        &[
            "jurisdictions=SG",
            "data_elements=name,government_id",
            "records=900",
            "residents=SG:600",
        ],
    );
    let id = report["incident"].as_str().unwrap();
    let export = dir.path().join("out");
    let o = quench(
        dir.path(),
        &["notices", id, "--export", export.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let name = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("regulator-SG"))
        .expect("a regulator-SG notice");
    let body = std::fs::read_to_string(export.join(name)).unwrap();
    let account: Vec<&str> = body
        .lines()
        .skip_while(|l| !l.starts_with("Chronological account"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        account[0].ends_with(&format!(
            "+08: Became aware of the breach; incident {id} declared by operator"
        )),
        "{account:#?}"
    );
    // The revocations the draft waits for, with their counts, in time
    // order (Singapore time). Other steps run alongside the drafting, so
    // whether they made it in is a race; the unit tests cover each kind.
    for want in [
        "Microsoft Graph: Delete one delegated consent: 3 times",
        "Google Workspace Admin SDK: Revoke every token one user granted one OAuth client: ",
    ] {
        assert!(
            account.iter().any(|l| l.contains(want)),
            "no {want:?} in {account:#?}"
        );
    }
    let times: Vec<&str> = account.iter().map(|l| &l[2..18]).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        body.contains("Affected individuals in Singapore: 600 (the count given for Singapore"),
        "{body}"
    );
    assert!(body.contains("[to be completed: how the organisation learned of it"));
}

#[test]
fn a_drill_says_what_a_real_incident_would_need() {
    let dir = tempfile::tempdir().unwrap();
    let report = drill_bundled(dir.path(), &["jurisdictions=EU"]);
    let r = &report["rehearsal"];
    let names = |key: &str, field: &str| -> Vec<String> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[field].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // No config: nobody holds the runbook's roles, no platform has credentials.
    let roles = names("roles_without_members", "role");
    for role in ["legal", "responder", "mops-lead"] {
        assert!(roles.iter().any(|x| x == role), "{role}: {roles:?}");
    }
    let platforms = names("platforms_missing_secrets", "platform");
    assert!(platforms.iter().any(|p| p == "salesforce"), "{platforms:?}");
    // What the drill did in people's place.
    assert!(names("approvals_assumed", "step")
        .iter()
        .any(|s| s == "legal-approval"));
    assert!(names("manual_tasks", "step")
        .iter()
        .any(|s| s == "vendor-deletion-request"));
    assert!(names("waits_cut", "step")
        .iter()
        .any(|s| s == "watch-for-reuse"));
    assert!(!r["notices_to_approve"].as_array().unwrap().is_empty());
    // Recorded, so the page shows it too.
    let id = report["incident"].as_str().unwrap();
    let o = quench(dir.path(), &["timeline", id, "--format", "html"]);
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.contains("<h2>What a real incident would need that this drill filled in</h2>"),
        "{page}"
    );
    assert!(page.contains("role legal has no members"), "{page}");
    // With the role configured, it is no longer listed.
    std::fs::write(
        dir.path().join("quench.yaml"),
        "roles:\n  legal: [U0LEGAL1]\n",
    )
    .unwrap();
    let report = drill_bundled(dir.path(), &["jurisdictions=EU"]);
    let roles: Vec<&str> = report["rehearsal"]["roles_without_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["role"].as_str())
        .collect();
    assert!(!roles.contains(&"legal"), "{roles:?}");
}

#[test]
fn a_misspelt_time_zone_is_named_at_its_line_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        "roles:\n  legal: [U0LEGAL1]\ntimezone: Europe/Berln\n",
    )
    .unwrap();
    let o = quench(dir.path(), &["incidents"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.contains("quench.yaml:3:11:")
            && err.contains("\"Europe/Berln\" is not a time zone")
            && err.contains("Europe/Berlin"),
        "{err}"
    );
    // A valid zone is how exports show times.
    std::fs::write(dir.path().join("quench.yaml"), "timezone: Asia/Tokyo\n").unwrap();
    let o = quench(
        dir.path(),
        &[
            "drill",
            "shadow-ai-exposure",
            "--input",
            "tool=ChatGPT",
            "--max-wait",
            "10ms",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let report: Json = serde_json::from_str(text(&o).0.lines().last().unwrap()).unwrap();
    let id = report["incident"].as_str().unwrap();
    let md = text(&quench(
        dir.path(),
        &["timeline", id, "--format", "markdown"],
    ))
    .0;
    assert!(
        md.contains(" JST by operator"),
        "{}",
        &md[..md.len().min(2000)]
    );
    assert!(md.contains("times in Asia/Tokyo"));
}
