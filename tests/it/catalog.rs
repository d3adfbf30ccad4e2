//! The bundled integration catalog: the names DESIGN.md fixes, and every
//! action's method and path checked, vendor by vendor, against the vendors'
//! saved OpenAPI / Swagger descriptions.
//!
//! The specs live outside this repository (`../shared/specs/`). When they are
//! there, the operations the manifests use are extracted from them and must
//! equal the committed table `tests/fixtures/spec-operations.tsv`; the
//! manifests are always checked against that table, so CI (which clones only
//! this repository) still catches a path or method drifting from the spec.
//! Run with `QUENCH_WRITE_SPEC_TABLE=1` to rewrite the table from the specs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quench::integrations::manifest::Manifest;
use serde_json::{json, Value as Json};

/// DESIGN.md, "Integration manifests": what runbooks write before the dot.
const CATALOG: &[&str] = &[
    "hubspot",
    "mailchimp",
    "klaviyo",
    "sfmc",
    "marketo",
    "braze",
    "google-ads",
    "meta",
    "linkedin",
    "google-oauth",
    "google-workspace",
    "microsoft-graph",
    "salesforce",
    "slack",
    "openai",
    "anthropic",
];

/// Where each integration's saved specs are, under `../shared/specs/`.
/// `None`: the vendor publishes no spec (or none was saved), so every action
/// must name its documentation page.
pub(crate) fn spec_dir(integration: &str) -> Option<&'static str> {
    Some(match integration {
        "hubspot" => "hubspot",
        "mailchimp" => "mailchimp",
        "klaviyo" => "klaviyo",
        "sfmc" => "salesforce-marketing-cloud",
        "marketo" => "marketo",
        "braze" => "braze",
        "google-ads" => "google-ads",
        "linkedin" => "linkedin",
        "microsoft-graph" => "microsoft-graph",
        "slack" => "slack",
        "openai" => "openai",
        "anthropic" => "anthropic",
        // Meta, Salesforce core, Google OAuth revoke: no public spec.
        // Google Workspace: the Directory API conversion was not saved.
        "meta" | "salesforce" | "google-oauth" | "google-workspace" => return None,
        other => panic!("no spec mapping for integration {other}"),
    })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn table_path() -> PathBuf {
    root().join("tests/fixtures/spec-operations.tsv")
}

pub(crate) fn specs_root() -> PathBuf {
    root().join("../shared/specs")
}

pub(crate) fn library() -> quench::library::Library {
    quench::library::Library::load(&Default::default()).expect("bundled library loads")
}

#[test]
fn every_bundled_manifest_loads_and_the_catalog_has_exactly_the_design_names() {
    let lib = library();
    let names: BTreeSet<&str> = lib.catalog.manifests().map(|m| m.name.as_str()).collect();
    let want: BTreeSet<&str> = CATALOG.iter().copied().collect();
    assert_eq!(names, want);
    for m in lib.catalog.manifests() {
        assert!(!m.actions.is_empty(), "{} has no actions", m.name);
        for (name, a) in &m.actions {
            if a.manual.is_some() {
                assert!(
                    a.manual.as_deref().is_some_and(|p| p.contains('›')),
                    "{}.{name}: a manual action names the UI path (A › B › C)",
                    m.name
                );
            } else {
                // A realistic simulated answer: lists hand for_each steps items.
                let s = &a.simulate;
                assert!(
                    a.ok.contains(&s.status) || a.already_done.contains(&s.status),
                    "{}.{name}: simulate.status {} is not a success",
                    m.name,
                    s.status
                );
                if let Some(e) = &a.simulate.effect {
                    assert!(
                        m.tenant.get(&e.collection).is_some_and(|c| !c.is_empty()),
                        "{}.{name}: simulates tenant collection {} with nothing in it",
                        m.name,
                        e.collection
                    );
                } else if a.paginate.is_some() || a.output.is_some() {
                    let body = s.body.as_ref().unwrap_or(&Json::Null);
                    let items = match (&a.paginate, &a.output) {
                        (Some(p), _) => quench::template::lookup(body, &p.items),
                        (None, Some(o)) => quench::template::lookup(body, o),
                        _ => None,
                    };
                    assert!(
                        items.is_some_and(
                            |v| v.as_array().is_some_and(|l| !l.is_empty()) || v.is_object()
                        ),
                        "{}.{name}: simulate.body has nothing at the list/output path",
                        m.name
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------ spec matching

/// `{{with.x}}`, `{{{with.x}}}` and `{param}` all become `{}`; the query,
/// doubled and trailing slashes go.
fn normalise(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let open = rest[i..].chars().take_while(|c| *c == '{').count();
        let after = &rest[i + open..];
        let close = after.find('}').unwrap_or(after.len());
        let mut end = close;
        while after[end..].starts_with('}') {
            end += 1;
        }
        out.push_str("{}");
        rest = &after[end.min(after.len())..];
    }
    out.push_str(rest);
    while out.contains("//") {
        out = out.replace("//", "/");
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// The path part of a URL (templated host allowed): `https://h/3.0` -> `/3.0`.
pub(crate) fn url_path(url: &str) -> &str {
    let no_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    match no_scheme.find('/') {
        Some(i) => &no_scheme[i..],
        None => "",
    }
}

/// Vendor quirks of the comparison, each one stated.
pub(crate) fn vendor_key(integration: &str, path: &str) -> String {
    let p = normalise(path);
    if integration == "google-ads" {
        // The only saved Google Ads spec is a third-party v18 snapshot and v18
        // is sunset; the REST paths are the same in every version, so the
        // version segment is compared as a wildcard.
        if let Some(rest) = p.strip_prefix("/v") {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 && rest[digits..].starts_with('/') {
                return format!("/v{{}}{}", &rest[digits..]);
            }
        }
    }
    p
}

/// What an action calls: `(METHOD, normalised full path)`.
pub(crate) fn action_key(
    m: &Manifest,
    a: &quench::integrations::manifest::Action,
) -> (String, String) {
    let full = format!("{}{}", url_path(&m.base_url), a.path);
    (a.method.as_str().to_string(), vendor_key(&m.name, &full))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Row {
    pub(crate) vendor: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) spec_file: String,
    pub(crate) operation_id: String,
}

impl Row {
    fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.vendor, self.method, self.path, self.spec_file, self.operation_id
        )
    }
}

const TABLE_HEADER: &str = "\
# Operations of ../shared/specs/ that the bundled manifests call, one row per
# spec file that defines it: integration, method, path (server/basePath
# prefix + spec path; {param} and {{with.x}} normalised to {}), spec file
# (under ../shared/specs/), operationId (- when the spec has none).
# Generated by tests/it/catalog.rs; rewrite with QUENCH_WRITE_SPEC_TABLE=1.
";

pub(crate) fn read_table() -> BTreeSet<Row> {
    let text = std::fs::read_to_string(table_path()).expect("tests/fixtures/spec-operations.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "bad table row: {l:?}");
            Row {
                vendor: f[0].into(),
                method: f[1].into(),
                path: f[2].into(),
                spec_file: f[3].into(),
                operation_id: f[4].into(),
            }
        })
        .collect()
}

fn spec_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            spec_files(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "yml" | "yaml")
        ) {
            out.push(p);
        }
    }
}

/// Only what the check needs of an OpenAPI 3 / Swagger 2 document; the rest
/// (schemas with integers beyond i64 in OpenAI's, for one) is skipped.
#[derive(serde::Deserialize)]
struct SpecDoc {
    #[serde(default, rename = "basePath")]
    base_path: Option<String>,
    #[serde(default)]
    servers: Vec<Server>,
    #[serde(default)]
    paths: BTreeMap<String, PathItem>,
}

#[derive(serde::Deserialize)]
struct Server {
    url: String,
}

#[derive(serde::Deserialize)]
struct PathItem {
    get: Option<Op>,
    post: Option<Op>,
    put: Option<Op>,
    patch: Option<Op>,
    delete: Option<Op>,
}

#[derive(serde::Deserialize)]
struct Op {
    #[serde(rename = "operationId")]
    operation_id: Option<String>,
}

/// Every operation of one spec file: `(METHOD, full path, operationId)`.
fn operations(file: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: SpecDoc = if file.extension().and_then(|e| e.to_str()) == Some("json") {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    } else {
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    };
    // Swagger 2 puts the base path in `basePath`, OpenAPI 3 in the server URL.
    let prefix = match (&doc.base_path, doc.servers.first()) {
        (Some(b), _) => b.clone(),
        (None, Some(s)) => url_path(&s.url).to_string(),
        (None, None) => String::new(),
    };
    let mut out = vec![];
    for (path, item) in doc.paths {
        let ops = [
            ("GET", item.get),
            ("POST", item.post),
            ("PUT", item.put),
            ("PATCH", item.patch),
            ("DELETE", item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                let id = op.operation_id.unwrap_or_else(|| "-".into());
                out.push((method.to_string(), format!("{prefix}/{path}"), id));
            }
        }
    }
    out
}

/// The table the saved specs give for what the manifests call.
fn table_from_specs(lib: &quench::library::Library, specs: &Path) -> BTreeSet<Row> {
    let mut rows = BTreeSet::new();
    for m in lib.catalog.manifests() {
        let Some(dir) = spec_dir(&m.name) else {
            continue;
        };
        let mut files = vec![];
        spec_files(&specs.join(dir), &mut files);
        assert!(!files.is_empty(), "no spec files for {} in {dir}", m.name);
        let mut index: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for f in &files {
            let rel = f
                .strip_prefix(specs)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            for (method, path, id) in operations(f) {
                index
                    .entry((method, vendor_key(&m.name, &path)))
                    .or_default()
                    .push((rel.clone(), id));
            }
        }
        for a in m.actions.values().filter(|a| a.manual.is_none()) {
            let key = action_key(m, a);
            for (file, id) in index.get(&key).into_iter().flatten() {
                rows.insert(Row {
                    vendor: m.name.clone(),
                    method: key.0.clone(),
                    path: key.1.clone(),
                    spec_file: file.clone(),
                    operation_id: id.clone(),
                });
            }
        }
    }
    rows
}

#[test]
fn every_action_matches_its_vendors_spec_or_names_its_docs() {
    let lib = library();
    let specs = specs_root();
    let table = if specs.is_dir() {
        let fresh = table_from_specs(&lib, &specs);
        if std::env::var_os("QUENCH_WRITE_SPEC_TABLE").is_some() {
            let mut text = TABLE_HEADER.to_string();
            for r in &fresh {
                text.push_str(&r.line());
                text.push('\n');
            }
            std::fs::create_dir_all(table_path().parent().unwrap()).unwrap();
            std::fs::write(table_path(), text).unwrap();
        }
        let committed = read_table();
        let shown =
            |rows: &BTreeSet<Row>| rows.iter().map(Row::line).collect::<Vec<_>>().join("\n");
        assert!(
            fresh == committed,
            "tests/fixtures/spec-operations.tsv differs from what ../shared/specs gives \
             (rewrite it with QUENCH_WRITE_SPEC_TABLE=1)\nonly in the specs:\n{}\nonly in the table:\n{}",
            shown(&fresh.difference(&committed).cloned().collect()),
            shown(&committed.difference(&fresh).cloned().collect()),
        );
        fresh
    } else {
        println!(
            "note: {} is not here (CI clones only this repository); checking the manifests \
             against the committed tests/fixtures/spec-operations.tsv only",
            specs.display()
        );
        read_table()
    };

    let known: BTreeSet<(String, String, String)> = table
        .iter()
        .map(|r| (r.vendor.clone(), r.method.clone(), r.path.clone()))
        .collect();
    let mut used = BTreeSet::new();
    let mut problems = vec![];
    let (mut in_spec, mut by_docs) = (0, 0);
    for m in lib.catalog.manifests() {
        for (name, a) in m.actions.iter().filter(|(_, a)| a.manual.is_none()) {
            let (method, path) = action_key(m, a);
            let key = (m.name.clone(), method.clone(), path.clone());
            let docs = a.docs.as_deref().filter(|d| d.starts_with("https://"));
            if known.contains(&key) {
                in_spec += 1;
                used.insert(key);
            } else if spec_dir(&m.name).is_none() {
                // No spec for this vendor: the documentation is the reference.
                match docs {
                    Some(_) => by_docs += 1,
                    None => problems.push(format!(
                        "{}.{name}: {method} {path}: {} has no saved spec, so the action needs `docs:`",
                        m.name, m.name
                    )),
                }
            } else {
                // Newer than the saved spec: allowed only with its documentation.
                match docs {
                    Some(_) => by_docs += 1,
                    None => problems.push(format!(
                        "{}.{name}: {method} {path} is in none of ../shared/specs/{}/ and has no `docs:`",
                        m.name,
                        spec_dir(&m.name).unwrap_or_default()
                    )),
                }
            }
        }
    }
    let stale: Vec<_> = known.difference(&used).collect();
    assert!(
        stale.is_empty(),
        "table rows no manifest action uses: {stale:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(in_spec >= 60, "only {in_spec} actions matched a spec");
    println!("{in_spec} actions match their vendor's spec; {by_docs} name their documentation");
}

#[test]
fn normalising_paths() {
    assert_eq!(
        normalise("/3.0/campaigns/{{with.campaign_id}}/actions/pause"),
        "/3.0/campaigns/{}/actions/pause"
    );
    assert_eq!(
        normalise("/3.0/campaigns/{campaign_id}/actions/pause"),
        "/3.0/campaigns/{}/actions/pause"
    );
    assert_eq!(
        normalise("/rest/asset/v1/program/{{{with.id}}}.json"),
        "/rest/asset/v1/program/{}.json"
    );
    assert_eq!(normalise("//marketing/v3/emails/"), "/marketing/v3/emails");
    assert_eq!(
        normalise("/servicePrincipals(appId='{appId}')"),
        "/servicePrincipals(appId='{}')"
    );
    assert_eq!(
        url_path("https://{{secrets.DC}}.api.mailchimp.com/3.0"),
        "/3.0"
    );
    assert_eq!(url_path("https://{{secrets.HOST}}"), "");
    assert_eq!(
        vendor_key(
            "google-ads",
            "/v23/customers/{{secrets.X}}/campaigns:mutate"
        ),
        "/v{}/customers/{}/campaigns:mutate"
    );
    assert_eq!(
        vendor_key("openai", "/v1/organization/projects"),
        "/v1/organization/projects"
    );
}

// ---------------------------------------------------------- simulator input

/// A `with` object that renders every template of `manifest.action`: the
/// values runbooks pass, plus a placeholder for any other `with.*` path the
/// action reads (so a newly added action cannot slip past the simulator test).
pub(crate) fn sample_with(a: &quench::integrations::manifest::Action) -> Json {
    let mut with = json!({
        "campaign_id": "c1", "email_id": "e1", "token": "t1", "workflow_id": "w1", "flow_id": "f1",
        "name": "ChatGPT", "service_principal_id": "sp1", "grant_id": "g1", "user_id": "u1",
        "user": "u@x", "client_id": "c", "until": "2026-12-01T00:00:00Z",
        "schedule_time": "2026-12-02T09:00:00Z", "schedule_id": "s1", "canvas_id": "cv1",
        "journey_id": "j1", "version": 3, "program_id": "p1", "ad_group_id": "ag1", "adset_id": "as1",
        "campaign_group_id": "cg1", "app_id": "A1", "key_id": "k1", "project_id": "proj1",
        "api_key_id": "ak1", "service_account_id": "sa1", "install_id": "app:acct",
        "flow": { "id": "585051946", "type": "CONTACT_FLOW", "revisionId": "7", "actions": [],
                  "blockedDates": [], "timeWindows": [], "customProperties": {},
                  "suppressionListIds": [], "canEnrollFromSalesforce": false },
    });
    let mut texts: Vec<String> = vec![a.path.clone()];
    texts.extend(a.headers.values().cloned());
    texts.extend(a.query.values().cloned());
    texts.extend(a.form.values().cloned());
    if let Some(b) = &a.body {
        texts.push(b.to_string());
    }
    for t in texts {
        let mut rest = t.as_str();
        while let Some(i) = rest.find("with.") {
            let tail = &rest[i + 5..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
                .unwrap_or(tail.len());
            let dotted = tail[..end].trim_end_matches('.');
            let mut at = &mut with;
            let segs: Vec<&str> = dotted.split('.').collect();
            for (n, seg) in segs.iter().enumerate() {
                let obj = at.as_object_mut().expect("with paths go through objects");
                let last = n + 1 == segs.len();
                at = obj.entry(seg.to_string()).or_insert_with(|| {
                    if last {
                        json!("x1")
                    } else {
                        json!({})
                    }
                });
                if !at.is_object() {
                    break;
                }
            }
            rest = &tail[end..];
        }
    }
    with
}
