//! `quench serve` as a process: started, killed, resumed, refused.

use std::collections::BTreeMap;

use super::*;

/// A project whose `mockp` points at `mock`, with runbook `two`: a, then b.
pub(crate) fn project(mock: &Mock) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_manifest(dir.path());
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(
        dir.path().join("runbooks/two.yaml"),
        "version: 1\nname: two\nsteps:\n  - id: a\n    action: mockp.get\n    with: { path: a }\n  - id: b\n    action: mockp.get\n    needs: [a]\n    with: { path: b }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        format!("integrations:\n  mockp: {{ base_url: \"{}\" }}\n", mock.url),
    )
    .unwrap();
    dir
}

/// Starts `quench serve` on port 0, its log appended to `dir/serve.log` (a
/// file, not a pipe nobody reads, which would block it); returns it and the
/// URL from its first line.
async fn spawn_serve(dir: &std::path::Path) -> (std::process::Child, String) {
    spawn_serve_with(dir, &[]).await
}

/// `spawn_serve` with these environment variables (Slack's secrets).
pub(crate) async fn spawn_serve_with(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir)
        .args([
            "--data-dir",
            "store",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("QUENCH_API_TOKEN", TOKEN)
        .env("MOCKP_TOKEN", crate::support::SECRET)
        // Everything quench and its libraries log, so a leaked secret shows.
        .env("QUENCH_LOG", "trace")
        .env_remove("SLACK_SIGNING_SECRET")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = listening(&mut child).await;
    (child, url)
}

/// The URL a spawned `quench serve` prints on its first line.
pub(crate) async fn listening(child: &mut std::process::Child) -> String {
    let line = first_line(child).await;
    line.trim()
        .strip_prefix("quench serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string()
}

/// The first line a spawned process prints (empty if it ends first).
pub(crate) async fn first_line(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    })
    .await
    .unwrap()
}

/// GET `path` from a daemon process with the API token, as JSON.
async fn get_json(http: &reqwest::Client, url: &str, path: &str) -> Json {
    http.get(format!("{url}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn incident_status(http: &reqwest::Client, url: &str, id: &str) -> String {
    let j = get_json(http, url, &format!("/api/v1/incidents/{id}")).await;
    j["status"].as_str().unwrap_or_default().to_string()
}

/// The incident's status once it stops running (a daemon in another
/// process: its record is polled, bounded).
async fn completed(http: &reqwest::Client, url: &str, id: &str) -> String {
    let mut status = incident_status(http, url, id).await;
    for _ in 0..500 {
        if status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = incident_status(http, url, id).await;
    }
    status
}

#[tokio::test]
async fn a_killed_daemon_resumes_its_incidents_without_repeating_effects() {
    crate::support::tls();
    let mock = Mock::start().await;
    mock.on("/a", vec![Reply::json(200, json!({"ok": true}))]);
    mock.on(
        "/b",
        vec![Reply::hang(), Reply::json(200, json!({"ok": true}))],
    );
    let dir = project(&mock);
    let (mut daemon, url) = spawn_serve(dir.path()).await;

    // The CLI declares through the daemon, which holds the store.
    let dir_path = dir.path().to_path_buf();
    let u = url.clone();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(dir_path)
            .args(["declare", "two", "--server", &u])
            .env("QUENCH_API_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    assert!(out.contains(&format!("{url}/incidents/{id}")), "{out}");

    mock.wait_for("/b").await;
    daemon.kill().unwrap(); // SIGKILL with the call to b in flight
    daemon.wait().unwrap();

    let (daemon, url) = spawn_serve(dir.path()).await;
    mock.wait_hits("/b", 2).await;
    let http = reqwest::Client::new();
    // The run records its end right after b answers: wait for that.
    assert_eq!(completed(&http, &url, &id).await, "completed");
    crate::support::assert_resumed_without_repeats(&mock);
    let tl = get_json(&http, &url, &format!("/api/v1/incidents/{id}/timeline")).await;
    assert!(tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "incident.resumed"
            && e["message"]
                .as_str()
                .unwrap()
                .ends_with("with their idempotency keys: b")));

    // While the daemon holds the store, the CLI goes through it.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(dir.path())
            .args(["--data-dir", "store"])
            .args(args)
            .env("QUENCH_API_TOKEN", TOKEN)
            .env("QUENCH_SERVER", &url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A drill declared on the daemon runs on its simulator, never the platform.
    let out = cli(&["drill", "two", "--server", &url]);
    let drill_id = out.split_whitespace().next().unwrap().to_string();
    assert_eq!(completed(&http, &url, &drill_id).await, "completed");
    assert_eq!(mock.hits("/a"), 1, "the drill did not call the platform");
    let d = get_json(&http, &url, &format!("/api/v1/incidents/{drill_id}")).await;
    assert_eq!(d["drill"], true);
    let out = cli(&["notices", &id]);
    assert!(out.contains("no notices drafted"), "{out}");
    let out = cli(&["status", &id]);
    assert!(out.contains("· two · sev2 · completed"), "{out}");
    assert!(out.contains("  b "), "{out}");
    let list: Json = serde_json::from_str(&cli(&["--json", "incidents"])).unwrap();
    assert_eq!(list["incidents"][0]["id"], id.as_str());
    let out = cli(&["note", &id, "Reviewed by the DPO", "--by", "dpo"]);
    assert!(out.contains("note #"), "{out}");
    let md = cli(&["timeline", &id, "--format", "markdown"]);
    assert!(md.contains("Reviewed by the DPO"), "{md}");
    assert!(cli(&["audit", "verify", &id]).contains(": intact"));
    let k: Json = serde_json::from_str(&cli(&["--json", "kpis"])).unwrap();
    assert_eq!(k["incidents"]["completed"], 1);
    // Decisions go through the daemon too; its refusal comes back as is.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args([
            "--data-dir",
            "store",
            "approve",
            &id,
            "b",
            "--by",
            "U0LEGAL1",
        ])
        .env("QUENCH_API_TOKEN", TOKEN)
        .env("QUENCH_SERVER", &url)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("answered 409 Conflict: step \"b\" is action"),
        "{err}"
    );
    // Without the token the CLI says what to set.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args(["--data-dir", "store", "status", &id])
        .env_remove("QUENCH_API_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("set QUENCH_TOKEN"), "{err}");

    // SIGTERM: a clean stop, logged as JSON lines without the token.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = tokio::task::spawn_blocking(move || daemon.wait_with_output().unwrap())
        .await
        .unwrap();
    // Both daemons' logs, at trace level.
    let err = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}\nlog: {}",
        String::from_utf8_lossy(&o.stderr),
        &err[err.len().saturating_sub(3000)..]
    );
    assert!(
        err.contains("\"daemon stopped\""),
        "{}",
        &err[err.len().saturating_sub(2000)..]
    );
    for line in err.lines() {
        serde_json::from_str::<Json>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(!err.contains(TOKEN), "the API token reached the log");
    assert!(
        !err.contains(crate::support::SECRET),
        "a platform secret reached the log"
    );
}

#[test]
fn serve_refuses_to_start_without_an_api_token() {
    let dir = tempfile::tempdir().unwrap();
    // `serve` with this token (none: unset), its exit code and stderr.
    let serve = |token: Option<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_quench"));
        cmd.current_dir(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("QUENCH_DATABASE_URL");
        match token {
            Some(t) => cmd.env("QUENCH_API_TOKEN", t),
            None => cmd.env_remove("QUENCH_API_TOKEN"),
        };
        let o = cmd.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = serve(None);
    assert_eq!(code, Some(2));
    assert!(err.contains("export QUENCH_API_TOKEN="), "{err}");
    // A token padded with a newline could never be presented: refused.
    let (code, err) = serve(Some(format!("{TOKEN}\n")));
    assert_eq!(code, Some(2));
    assert!(err.contains("starts or ends with whitespace"), "{err}");
    // A malformed `access:` entry is named with the fix.
    std::fs::write(
        dir.path().join("quench.yaml"),
        "access:\n  - { user: U0LEGAL1, token_sha256: \"abc\", can: [read] }\n",
    )
    .unwrap();
    let (code, err) = serve(None);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("access[0] (U0LEGAL1): `token_sha256` must be 64 hex characters"),
        "{err}"
    );
    // A lease too short to renew is refused before any store opens: no
    // database URL is set, so reaching the store would fail otherwise.
    std::fs::write(
        dir.path().join("quench.yaml"),
        "store: { backend: postgres, lease: 100ms }\n",
    )
    .unwrap();
    let (code, err) = serve(Some(TOKEN.into()));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`store.lease`: \"100ms\" is not a duration of 300ms or more"),
        "{err}"
    );
    assert!(!err.contains("QUENCH_DATABASE_URL"), "{err}");
}

/// `--log-format json`: every line of an incident's work names the
/// incident, and every line of a step's work (its platform calls, the
/// HTTP client's own lines) names the step too, as span fields.
#[tokio::test]
async fn the_json_log_names_the_incident_and_step_on_every_line_of_their_work() {
    crate::support::tls();
    let mock = Mock::start().await;
    mock.on("/a", vec![Reply::json(200, json!({"ok": true}))]);
    mock.on("/b", vec![Reply::json(200, json!({"ok": true}))]);
    let dir = project(&mock);
    let (mut daemon, url) = spawn_serve(dir.path()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/v1/incidents"))
        .bearer_auth(TOKEN)
        .json(&json!({"runbook": "two", "by": "U0RESP01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Json>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(completed(&http, &url, &id).await, "completed");
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let lines: Vec<Json> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let spans_of = |l: &Json, key: &str| -> Vec<String> {
        l["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s[key].as_str().map(str::to_string))
            .collect()
    };
    let mut per_step: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        let steps = spans_of(l, "step");
        if steps.is_empty() {
            continue;
        }
        assert_eq!(spans_of(l, "incident"), [id.as_str()], "{l}");
        *per_step.entry(steps[0].clone()).or_default() += 1;
    }
    // Each step logged its outcome and its call's lines, under its own name.
    assert_eq!(per_step.keys().collect::<Vec<_>>(), ["a", "b"], "{log}");
    assert!(per_step.values().all(|n| *n >= 2), "{per_step:?}");
    let ran: Vec<&Json> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "step ran")
        .collect();
    assert_eq!(ran.len(), 2, "{log}");
}

/// The same daemon on the shared store: killed with a call in flight, it
/// resumes from PostgreSQL without repeating effects; the CLI, given no
/// --server, goes through it; and `store migrate` copies the store out to
/// a data dir, where `audit verify` passes, and back into a new database.
#[tokio::test]
async fn a_daemon_on_postgres_resumes_after_sigkill_and_its_store_migrates_both_ways() {
    crate::support::tls();
    let mock = Mock::start().await;
    mock.on("/a", vec![Reply::json(200, json!({"ok": true}))]);
    mock.on(
        "/b",
        vec![Reply::hang(), Reply::json(200, json!({"ok": true}))],
    );
    let dir = project(&mock);
    // The server trusts local connections, so any password passes: one is
    // given to show that it never reaches a log or a message.
    let db = crate::postgres::database().await.replacen(
        "postgres://quench@",
        "postgres://quench:pw-LEAKS-1f2e@",
        1,
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::fs::read_to_string(dir.path().join("quench.yaml")).unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        format!("{config}listen: 127.0.0.1:{port}\nstore: {{ backend: postgres }}\n"),
    )
    .unwrap();
    let serve = || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("serve.log"))
            .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(dir.path())
            .args(["serve", "--log-format", "json"])
            .env("QUENCH_API_TOKEN", TOKEN)
            .env("QUENCH_DATABASE_URL", &db)
            .env("MOCKP_TOKEN", crate::support::SECRET)
            .env("QUENCH_LOG", "debug")
            .env_remove("QUENCH_SERVER")
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let cli = |args: &[&str]| {
        let (dir, args) = (
            dir.path().to_path_buf(),
            args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
                .current_dir(dir)
                .args(&args)
                .env("QUENCH_API_TOKEN", TOKEN)
                .env("QUENCH_DATABASE_URL", db)
                .env_remove("QUENCH_SERVER")
                .output()
                .unwrap()
        })
    };
    let mut daemon = serve();
    let url = listening(&mut daemon).await;
    assert_eq!(url, format!("http://127.0.0.1:{port}"));

    let o = cli(&["declare", "two"]).await.unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = out.split_whitespace().next().unwrap().to_string();

    mock.wait_for("/b").await;
    daemon.kill().unwrap(); // SIGKILL with the call to b in flight
    daemon.wait().unwrap();
    let mut daemon = serve();
    let url = listening(&mut daemon).await;
    mock.wait_hits("/b", 2).await;
    let http = reqwest::Client::new();
    assert_eq!(completed(&http, &url, &id).await, "completed");
    crate::support::assert_resumed_without_repeats(&mock);

    let o = cli(&["audit", "verify", &id]).await.unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(": intact"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let events =
        get_json(&http, &url, &format!("/api/v1/incidents/{id}/timeline")).await["events"].clone();

    let ok = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = tokio::task::spawn_blocking(move || daemon.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0));

    // Out to a data dir; there the record is the same and verifies.
    let out_dir = dir.path().join("copied");
    let o = cli(&[
        "store",
        "migrate",
        "--from",
        &db,
        "--to",
        out_dir.to_str().unwrap(),
    ])
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("(1 incidents)") && stdout.contains("verifies on every incident"),
        "{stdout}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains("pw-LEAKS"),
        "{stdout}{stderr}"
    );
    let local = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(std::env::temp_dir())
            .arg("--data-dir")
            .arg(&out_dir)
            .args(args)
            .output()
            .unwrap()
    };
    let o = local(&["audit", "verify", &id]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(": intact"),
        "{o:?}"
    );
    let o = local(&["timeline", &id, "--format", "json"]);
    let copied: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        copied["events"], events,
        "the timeline is the same on the copy"
    );

    // Back into a new database; a second copy into it is refused.
    let db2 = crate::postgres::database().await;
    let o = cli(&[
        "store",
        "migrate",
        "--from",
        out_dir.to_str().unwrap(),
        "--to",
        &db2,
    ])
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let back = quench::store::Store::open_shared(&db2, None).await.unwrap();
    assert!(back.audit(&id).unwrap().intact());
    assert_eq!(
        back.events(&id).unwrap().len(),
        events.as_array().unwrap().len()
    );
    drop(back);
    let o = cli(&[
        "store",
        "migrate",
        "--from",
        out_dir.to_str().unwrap(),
        "--to",
        &db2,
    ])
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("already holds a store (1 incidents); nothing was copied"),
        "{err}"
    );
    // The refused copy gave its lease back: another holder leads at once
    // rather than after the lease runs out.
    let next = quench::store::Store::open_leading(&db2, "after the refused copy")
        .await
        .unwrap_or_else(|e| panic!("the failed migrate kept the lease: {e}"));
    next.release().await.unwrap();

    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("read the PostgreSQL store"),
        "{}",
        &log[..log.len().min(2000)]
    );
    assert!(
        !log.contains("pw-LEAKS"),
        "the database password reached the log"
    );
}
