//! Headless Chromium driven over the DevTools protocol: load a page (with a
//! bearer token, at a given window size, optionally with JavaScript off),
//! then read the DOM it built. The page tests read what a person's browser
//! shows, not the HTML quench meant to send.
//!
//! Chromium is found as `$QUENCH_CHROMIUM`, else `chromium`,
//! `chromium-browser` or `google-chrome` on the PATH; `.ci/run` installs
//! Debian's `chromium`. Without one the tests fail and say so: a page test
//! that skips itself would pass without checking anything.

use std::collections::VecDeque;
use std::process::Stdio;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) fn chromium() -> String {
    if let Ok(p) = std::env::var("QUENCH_CHROMIUM") {
        return p;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
            .unwrap_or(false);
        if found {
            return name.to_string();
        }
    }
    panic!(
        "the page tests need headless Chromium: install it (`apt-get install chromium`, as .ci/run does) or set QUENCH_CHROMIUM to its path"
    );
}

/// The flags every run uses (the list), with a throwaway profile.
pub(crate) fn flags(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

pub(crate) struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    ws: Socket,
    next: u64,
    session: Option<String>,
    events: VecDeque<Json>,
}

/// How a page is loaded.
#[derive(Clone, Default)]
pub(crate) struct Load {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) mobile: bool,
    pub(crate) bearer: Option<String>,
    pub(crate) no_script: bool,
}

impl Load {
    pub(crate) fn laptop(bearer: &str) -> Load {
        Load {
            width: 1280,
            height: 800,
            mobile: false,
            bearer: Some(bearer.to_string()),
            no_script: false,
        }
    }

    pub(crate) fn phone(bearer: &str) -> Load {
        Load {
            width: 390,
            height: 844,
            mobile: true,
            ..Load::laptop(bearer)
        }
    }
}

impl Browser {
    pub(crate) async fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(chromium())
            .args(flags(profile.path()))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromium()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let url = loop {
            match lines.next_line().await.unwrap() {
                Some(l) => match l.split_once("DevTools listening on ") {
                    Some((_, url)) => break url.trim().to_string(),
                    None => seen.push(l),
                },
                None => panic!("chromium exited before listening:\n{}", seen.join("\n")),
            }
        };
        // Keep reading its stderr, or a chatty Chromium blocks on the pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        let mut b = Browser {
            _child: child,
            _profile: profile,
            ws,
            next: 0,
            session: None,
            events: VecDeque::new(),
        };
        let target = b
            .send("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = b
            .send(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        b.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        b.send("Page.enable", json!({})).await;
        b.send("Network.enable", json!({})).await;
        b
    }

    /// One command; events that arrive meanwhile are kept for `event`.
    pub(crate) async fn send(&mut self, method: &str, params: Json) -> Json {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let m = self.read().await;
            if m["id"] == id {
                if let Some(e) = m.get("error") {
                    panic!("{method}: {e}");
                }
                return m["result"].clone();
            }
            self.events.push_back(m);
        }
    }

    async fn read(&mut self) -> Json {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("DevTools connection ended: {other:?}"),
            }
        }
    }

    /// Waits for the next event called `method` (kept ones first).
    async fn event(&mut self, method: &str) -> Json {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(i).unwrap();
        }
        loop {
            let m = self.read().await;
            if m["method"] == method {
                return m;
            }
        }
    }

    /// Loads `url` the way `load` says and waits for its load event.
    pub(crate) async fn open(&mut self, url: &str, load: &Load) {
        self.send(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": load.width, "height": load.height, "deviceScaleFactor": 1, "mobile": load.mobile}),
        )
        .await;
        self.send(
            "Emulation.setScriptExecutionDisabled",
            json!({"value": load.no_script}),
        )
        .await;
        let headers = match &load.bearer {
            Some(t) => json!({"Authorization": format!("Bearer {t}")}),
            None => json!({}),
        };
        self.send("Network.setExtraHTTPHeaders", json!({"headers": headers}))
            .await;
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let nav = self.send("Page.navigate", json!({"url": url})).await;
        assert!(nav.get("errorText").is_none(), "loading {url}: {nav}");
        self.event("Page.loadEventFired").await;
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value.
    pub(crate) async fn eval(&mut self, js: &str) -> Json {
        let r = self
            .send(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(x) = r.get("exceptionDetails") {
            panic!("{js}\nthrew: {x}");
        }
        r["result"]["value"].clone()
    }

    /// A PNG of the whole page, for people to look at.
    pub(crate) async fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self
            .send(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}
