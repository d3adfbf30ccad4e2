//! The edges a black-box test found: inputs too long or with control
//! characters, clock facts from the future, errors axum answers itself,
//! and the headers a page needs. Each gets a clear answer and loses nothing.

use serde_json::json;

use crate::server::{host_opts, SlackKind, TOKEN};

#[tokio::test]
async fn a_declaration_with_an_endless_or_multi_line_input_is_refused_naming_it() {
    let h = host_opts(SlackKind::Off, false, false).await;
    let cases = [
        (
            "A".repeat(70_000),
            "input `tool` is 70000 characters; at most 256",
        ),
        (
            "ChatGPT\r\nX-Injected: 1".to_string(),
            "input `tool` has a control character (U+000D) at character 8",
        ),
        (
            "Chat\u{1b}[31mGPT".to_string(),
            "input `tool` has a control character (U+001B)",
        ),
    ];
    for (tool, want) in cases {
        let (s, b) = h
            .call(
                "POST",
                "/api/v1/incidents",
                Some(json!({"runbook": "contain", "inputs": {"tool": tool}})),
            )
            .await;
        assert_eq!(s, 422, "{b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{want:?} missing: {msg}");
        assert!(msg.len() < 1_000, "the error does not echo the input");
    }
    // Nor as a list item.
    let (s, b) = h
        .call(
            "POST",
            "/api/v1/incidents",
            Some(json!({"runbook": "contain", "inputs": {"tool": "X", "jurisdictions": ["EU\n"]}})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("input `jurisdictions` has a control character (U+000A)"));
    assert!(h.daemon.store().incidents().unwrap().is_empty());
}

#[tokio::test]
async fn a_moment_from_the_future_is_refused_and_nothing_is_recorded() {
    let h = host_opts(SlackKind::Off, false, false).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let before = h.daemon.store().events(&id).unwrap().len();
    let (s, b) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/notes"),
            Some(
                json!({"text": "aware", "by": "U0LEGAL1", "moment": "aware=9999-12-31T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is in the future"));
    let (s, b) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/notes"),
            Some(json!({"text": "x", "by": "U0LEGAL1", "exception": "no_such_exception"})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("unknown exception \"no_such_exception\""));
    assert_eq!(h.daemon.store().events(&id).unwrap().len(), before);
}

#[tokio::test]
async fn errors_axum_answers_itself_come_back_in_the_api_shape() {
    let h = host_opts(SlackKind::Off, false, false).await;
    let http = reqwest::Client::new();
    let send = |method: &str, path: String| {
        http.request(method.parse().unwrap(), format!("{}{path}", h.url))
            .bearer_auth(TOKEN)
            .send()
    };
    let r = send("DELETE", "/api/v1/incidents".into()).await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("allow").is_some());
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "method_not_allowed");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("DELETE is not allowed on /api/v1/incidents; allowed: "));
    // A path segment that is not UTF-8 once decoded.
    let r = send("GET", "/api/v1/incidents/%FF%FE".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "bad_request");
    assert!(!b["error"]["message"].as_str().unwrap().is_empty());
    // A URI far too long for any incident id.
    let r = send("GET", format!("/api/v1/incidents/{}", "a".repeat(20_000)))
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "uri_too_long");
}

#[tokio::test]
async fn pages_and_answers_say_how_they_may_be_used() {
    let h = host_opts(SlackKind::Off, false, false).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let http = reqwest::Client::new();
    for path in [
        format!("/incidents/{id}"),
        "/".to_string(),
        format!("/api/v1/incidents/{id}"),
        format!("/incidents/{id}/postmortem.md"),
    ] {
        let r = http
            .get(format!("{}{path}", h.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let hd = r.headers();
        let csp = hd["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(hd["x-frame-options"], "DENY", "{path}");
        assert_eq!(hd["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(hd["cache-control"], "no-store", "{path}");
    }
}

#[tokio::test]
async fn notices_and_the_text_timeline_escape_for_their_own_format() {
    let h = host_opts(SlackKind::Off, false, false).await;
    let id = h
        .declare_and_settle(json!({"tool": "<img src=x onerror=alert(1)>|Jasper*"}))
        .await;
    let (_, n) = h
        .call("GET", &format!("/api/v1/incidents/{id}/notices"), None)
        .await;
    let body = n["notices"][0]["body"].as_str().unwrap();
    // Markdown: the name is text, not a tag, a table cell or emphasis.
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt;\\|Jasper\\*"),
        "{body}"
    );
    assert!(!body.contains("<img"), "{body}");
    // As plain text it reads as typed.
    assert_eq!(
        quench::template::markdown_to_text(body)
            .matches("<img src=x onerror=alert(1)>|Jasper*")
            .count(),
        body.matches("&lt;img src=x onerror=alert(1)&gt;\\|Jasper\\*")
            .count()
    );
    // A terminal shows an escape sequence in a note; it does not obey it.
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/notes"),
            Some(json!({"text": "checked\u{1b}[2J\rforged line", "by": "U0LEGAL1"})),
        )
        .await;
    assert_eq!(s, 201);
    let (_, text) = h
        .call(
            "GET",
            &format!("/api/v1/incidents/{id}/timeline?format=text"),
            None,
        )
        .await;
    let text = text.as_str().unwrap();
    assert!(text.contains("checked\\u{1b}[2J\\rforged line"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\r'));
}

/// `quench serve` on port 0 in `dir`, no file it writes growing past
/// `max_file` bytes (RLIMIT_FSIZE: a write past it fails with EFBIG, as a
/// full disk fails one with ENOSPC); its URL.
async fn serve_limited(dir: &std::path::Path, max_file: u64) -> (std::process::Child, String) {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_quench"));
    cmd.current_dir(dir)
        .args(["--data-dir", "store", "serve", "--listen", "127.0.0.1:0"])
        .env("QUENCH_API_TOKEN", TOKEN)
        .env("MOCKP_TOKEN", crate::support::SECRET)
        .env("QUENCH_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: max_file,
                rlim_max: max_file,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let url = crate::server::listening(&mut child).await;
    (child, url)
}

#[tokio::test]
async fn a_store_that_cannot_write_fails_health_and_the_daemon_stops_for_its_supervisor() {
    crate::support::tls();
    let mock = crate::support::Mock::start().await;
    mock.on(
        "/a",
        vec![crate::support::Reply::json(200, json!({"ok": true}))],
    );
    mock.on(
        "/b",
        vec![crate::support::Reply::json(200, json!({"ok": true}))],
    );
    let dir = crate::server::project(&mock);
    let (child, url) = serve_limited(dir.path(), 3 << 20).await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let h: serde_json::Value = health.json().await.unwrap();
    assert_eq!(h["data_dir"], "store");
    // Declare until the store refuses a write: the refusal says why.
    let mut refused = None;
    for _ in 0..5_000 {
        let r = http
            .post(format!("{url}/api/v1/incidents"))
            .bearer_auth(TOKEN)
            .json(&json!({"runbook": "two"}))
            .send()
            .await;
        let Ok(r) = r else { break };
        if r.status().is_server_error() {
            refused = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        let h = http.get(format!("{url}/healthz")).send().await;
        if let Ok(h) = h {
            if h.status() == 503 {
                refused = Some(h.json::<serde_json::Value>().await.unwrap());
                break;
            }
        }
    }
    // A request that met the failure says why. (The incident's driver may
    // meet it first, in the background, and the daemon then stops before
    // any request sees it: the log below says it either way.)
    if let Some(refused) = refused {
        let msg = refused["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("cannot read or write its files") && msg.contains("File too large"),
            "{msg}"
        );
    }
    // It stops rather than answer 500 for ever: the supervisor restarts it.
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("error: the store at store failed: the store cannot read or write its files"),
        "{log}"
    );
}

#[tokio::test]
async fn a_corrupted_store_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let quench = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(dir.path())
            .args(["--data-dir", "store"])
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    let drill = quench(&["drill", "shadow-ai-exposure", "--input", "tool=ChatGPT"]);
    assert!(drill.status.success());
    // A block of the log overwritten, as a failing disk might.
    let db = dir.path().join("store/db");
    let len = std::fs::metadata(&db).unwrap().len();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start(len / 2)).unwrap();
        f.write_all(&[0xff; 4096]).unwrap();
    }
    let o = quench(&["incidents"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: the store at store cannot be used: its data is corrupted")
            && err.contains("restore it from a backup, or move it aside"),
        "{err}"
    );
}
