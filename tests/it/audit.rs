//! `quench audit verify`: the chain over the timeline and the notice
//! hashes catch records edited or removed behind quench's back.

use serde_json::Value as Json;

use crate::cli::quench;

fn verify(dir: &std::path::Path, id: &str) -> (Option<i32>, Json) {
    let o = quench(dir, &["--json", "audit", "verify", id]);
    (o.status.code(), serde_json::from_slice(&o.stdout).unwrap())
}

/// Rewrites the first record of `tree` whose key `pick` accepts.
/// The store, opened behind quench's back. sled's background threads
/// hold the last database opened here (and its file lock) a moment past
/// its drop, with nothing to wait on: the next open here retries a while.
fn open_store(dir: &std::path::Path) -> sled::Db {
    let config = sled::Config::new()
        .path(dir.join("store"))
        .flush_every_ms(None);
    for _ in 0..200 {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked for 2 s after its last use here");
}

fn tamper(
    dir: &std::path::Path,
    tree: &str,
    pick: impl Fn(&[u8]) -> bool,
    edit: impl Fn(&mut Json),
) {
    let db = open_store(dir);
    let t = db.open_tree(tree).unwrap();
    let (k, v) = t
        .iter()
        .map(|r| r.unwrap())
        .find(|(k, _)| pick(k))
        .expect("a record to tamper with");
    let mut rec: Json = serde_json::from_slice(&v).unwrap();
    edit(&mut rec);
    t.insert(k, serde_json::to_vec(&rec).unwrap()).unwrap();
    db.flush().unwrap();
}

#[test]
fn audit_verify_finds_edited_and_removed_records() {
    let dir = tempfile::tempdir().unwrap();
    let o = quench(
        dir.path(),
        &[
            "--json",
            "drill",
            "shadow-ai-exposure",
            "--input",
            "tool=ChatGPT",
            "--max-wait",
            "1ms",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Json =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    let id = report["incident"].as_str().unwrap().to_string();

    let (code, r) = verify(dir.path(), &id);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["problems"], Json::Array(vec![]));
    assert!(r["events"].as_u64().unwrap() > 100);
    assert!(r["notices"].as_u64().unwrap() >= 4);
    let head = r["head"].as_str().unwrap().to_string();
    assert_eq!(head.len(), 64);
    let o = quench(dir.path(), &["audit", "verify", &id]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("head sha256:{head}")));

    // Someone softens what a responder did, in event #5.
    tamper(
        dir.path(),
        "events",
        |k| k.ends_with(b"000000000005"),
        |e| e["message"] = Json::String("nothing happened".into()),
    );
    // ... and rewords an approved notice.
    tamper(
        dir.path(),
        "notices",
        |_| true,
        |n| n["body"] = Json::String("We take your privacy seriously.".into()),
    );
    // ... and marks a revocation already done: a fan-out's items have no
    // event each, and their step's summary holds their records' digest.
    let summarised = {
        let db = open_store(dir.path());
        let events = db.open_tree("events").unwrap();
        let summary = events
            .iter()
            .map(|r| serde_json::from_slice::<Json>(&r.unwrap().1).unwrap())
            .find(|e| e["kind"] == "items.summary" && e["data"]["succeeded"].as_u64() > Some(0))
            .expect("a fan-out that changed something");
        assert!(summary["data"]["items_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        summary["step"].as_str().unwrap().to_string()
    };
    let item_of = format!("{id}\u{0}{summarised}\u{0}");
    tamper(
        dir.path(),
        "items",
        |k| k.starts_with(item_of.as_bytes()),
        |i| i["already_done"] = Json::Bool(true),
    );
    let (code, r) = verify(dir.path(), &id);
    assert_eq!(code, Some(1), "{r}");
    let problems: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("event #5 ("), "{problems:#?}");
    assert!(problems[0].contains("does not match its recorded hash"));
    assert!(
        problems[1].contains("text differs from what was drafted"),
        "{problems:#?}"
    );
    assert_eq!(
        problems[2],
        format!("step {summarised}'s item records differ from what its items.summary recorded: one was changed, added or removed")
    );

    // Removing the last events (the failure, say) shows too.
    {
        let db = open_store(dir.path());
        let t = db.open_tree("events").unwrap();
        let (k, _) = t.last().unwrap().unwrap();
        t.remove(k).unwrap();
        db.flush().unwrap();
    }
    let (code, r) = verify(dir.path(), &id);
    assert_eq!(code, Some(1));
    assert!(
        r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("removed from the end")),
        "{r}"
    );
}
