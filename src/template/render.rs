//! Strict handlebars rendering of strings and JSON trees.
//!
//! Strict mode, so a missing variable is an error naming it instead of a
//! silently blank field in an API call or a notice. Every template is
//! compiled once per process (`compiled`), and a context is wrapped once
//! per render of a whole tree ([`Scope`]), so a fan-out's items reuse both.

use std::sync::{Arc, OnceLock};

use handlebars::{
    no_escape, Context, Handlebars, RenderContext, RenderErrorReason, Renderable, StringOutput,
};
use serde_json::Value as Json;

use super::{compiled, helpers, markdown};
use crate::registry::Registry;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// What templates read, wrapped for handlebars once.
pub struct Scope(Context);

impl Scope {
    pub fn new(data: Json) -> Scope {
        Scope(Context::from(data))
    }

    pub fn data(&self) -> &Json {
        self.0.data()
    }

    /// Sets a root (`item`, `parent`) in place: one context serves every
    /// item of a loop without a copy per item.
    pub fn insert(&mut self, key: &str, value: Json) {
        if let Json::Object(m) = self.0.data_mut() {
            m.insert(key.to_string(), value);
        }
    }
}

/// The registries a set of templates renders with: plain text (API
/// fields, `when:`, prompts) and Markdown (notices, whose values are
/// escaped), their helpers closing over the approved-tools registry.
pub struct Templates {
    plain: Handlebars<'static>,
    markdown: Handlebars<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

fn strict(escape: fn(&str) -> String, tools: Option<Arc<Registry>>) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(escape);
    helpers::register(&mut hb, tools);
    hb
}

impl Templates {
    /// `verdict` judges against `tools`.
    pub fn new(tools: Arc<Registry>) -> Templates {
        Templates::with(Some(tools))
    }

    fn with(tools: Option<Arc<Registry>>) -> Templates {
        Templates {
            plain: strict(no_escape, tools.clone()),
            markdown: strict(markdown::escape, tools),
        }
    }

    /// Without an approved-tools registry (`verdict` says unknown): for
    /// what renders outside an incident's steps (requests, Slack).
    pub fn standard() -> &'static Templates {
        static T: OnceLock<Templates> = OnceLock::new();
        T.get_or_init(|| Templates::with(None))
    }

    /// Renders one template string.
    pub fn render_str(&self, src: &str, scope: &Scope) -> Result<String, RenderError> {
        if !src.contains("{{") {
            return Ok(src.to_string());
        }
        render_in(&self.plain, src, scope)
    }

    /// `render_str` for a Markdown document: values are escaped for Markdown.
    pub fn render_markdown(&self, src: &str, scope: &Scope) -> Result<String, RenderError> {
        render_in(&self.markdown, src, scope)
    }

    /// Renders every string leaf of a JSON tree. A leaf that is exactly one
    /// `{{path}}` takes the value's own type, so `ids: "{{steps.x.output.ids}}"`
    /// sends a JSON list, not its text.
    pub fn render_value(&self, v: &Json, scope: &Scope) -> Result<Json, RenderError> {
        Ok(match v {
            Json::String(s) => match single_path(s, scope.data()) {
                Some(found) => found.clone(),
                None => Json::String(self.render_str(s, scope)?),
            },
            Json::Array(a) => Json::Array(
                a.iter()
                    .map(|x| self.render_value(x, scope))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(m) => Json::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.render_value(x, scope)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// Renders `src`, compiled once per process, with `hb`'s helpers and escape.
fn render_in(hb: &Handlebars<'static>, src: &str, scope: &Scope) -> Result<String, RenderError> {
    let describe_err = |e: handlebars::RenderError| RenderError(describe(&e));
    let template =
        compiled::template(src).map_err(|e| describe_err(handlebars::RenderError::from(e)))?;
    let mut rc = RenderContext::new(None);
    let mut out = StringOutput::new();
    template
        .render(hb, &scope.0, &mut rc, &mut out)
        .map_err(describe_err)?;
    out.into_string()
        .map_err(|e| describe_err(handlebars::RenderError::from(e)))
}

/// A JSON value as text: strings bare, null empty, the rest as JSON.
pub fn plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// What the free render functions take: a [`Scope`] as it is, or a bare
/// JSON context, wrapped (a copy) for each render. A caller rendering
/// several fields from one context wraps it once.
pub trait AsScope {
    fn with_scope<R>(&self, f: impl FnOnce(&Scope) -> R) -> R;
}

impl AsScope for Json {
    fn with_scope<R>(&self, f: impl FnOnce(&Scope) -> R) -> R {
        f(&Scope::new(self.clone()))
    }
}

impl AsScope for Scope {
    fn with_scope<R>(&self, f: impl FnOnce(&Scope) -> R) -> R {
        f(self)
    }
}

/// Renders one template string without an approved-tools registry.
pub fn render_str(src: &str, ctx: &impl AsScope) -> Result<String, RenderError> {
    if !src.contains("{{") {
        return Ok(src.to_string());
    }
    ctx.with_scope(|s| Templates::standard().render_str(src, s))
}

/// `render_str` for a Markdown document: values are escaped for Markdown.
pub fn render_markdown(src: &str, ctx: &Json) -> Result<String, RenderError> {
    Templates::standard().render_markdown(src, &Scope::new(ctx.clone()))
}

/// `Templates::render_value` without an approved-tools registry; the
/// context is copied once for the whole tree.
pub fn render_value(v: &Json, ctx: &impl AsScope) -> Result<Json, RenderError> {
    ctx.with_scope(|s| Templates::standard().render_value(v, s))
}

fn describe(e: &handlebars::RenderError) -> String {
    let what = match e.reason() {
        RenderErrorReason::MissingVariable(Some(v)) => {
            format!("template variable `{v}` is missing")
        }
        other => other.to_string(),
    };
    match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!("{what} (template line {l}, column {c})"),
        (Some(l), None) => format!("{what} (template line {l})"),
        _ => what,
    }
}

/// If `src` is exactly one `{{path}}`, the value at that path (keeping its
/// JSON type: a list stays a list).
fn single_path<'a>(src: &str, ctx: &'a Json) -> Option<&'a Json> {
    let inner = src.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    if inner.is_empty() || inner.contains(|c: char| c.is_whitespace() || "{}#/()\"'".contains(c)) {
        return None;
    }
    lookup(ctx, inner)
}

/// Takes the value [`lookup`] finds at `path` out of `v`, leaving null.
pub fn take(v: &mut Json, path: &str) -> Option<Json> {
    let mut keys = Vec::new();
    locate(v, path, &mut keys)?;
    let at = keys.into_iter().try_fold(v, |at, k| match at {
        Json::Object(o) => o.get_mut(k),
        Json::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
        _ => None,
    })?;
    Some(at.take())
}

/// The keys [`lookup`] walks to reach `path`, in the same order of trial
/// (a key may itself contain dots).
fn locate<'p>(v: &Json, path: &'p str, keys: &mut Vec<&'p str>) -> Option<()> {
    if path.is_empty() {
        return Some(());
    }
    if v.as_object().is_some_and(|o| o.contains_key(path)) {
        keys.push(path);
        return Some(());
    }
    let mut cut = path.len();
    while let Some(i) = path[..cut].rfind('.') {
        let (head, tail) = (&path[..i], &path[i + 1..]);
        let inner = match v {
            Json::Object(o) => o.get(head),
            Json::Array(a) => head.parse::<usize>().ok().and_then(|n| a.get(n)),
            _ => None,
        };
        if let Some(inner) = inner {
            let depth = keys.len();
            keys.push(head);
            if locate(inner, tail, keys).is_some() {
                return Some(());
            }
            keys.truncate(depth);
        }
        cut = i;
    }
    match v {
        Json::Array(a) if path.parse::<usize>().is_ok_and(|n| n < a.len()) => {
            keys.push(path);
            Some(())
        }
        _ => None,
    }
}

/// Follows a dotted path (`steps.find.output.tokens`, `errors.0.code`)
/// through JSON; a key that itself contains dots (`@odata.nextLink`) is
/// tried whole first.
pub fn lookup<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    let mut keys = Vec::new();
    locate(v, path, &mut keys)?;
    keys.into_iter().try_fold(v, |at, k| match at {
        Json::Object(o) => o.get(k),
        Json::Array(a) => a.get(k.parse::<usize>().ok()?),
        _ => None,
    })
}

/// `when:` semantics: false when it renders empty, "false" or "0".
pub fn truthy(rendered: &str) -> bool {
    let t = rendered.trim();
    !(t.is_empty() || t.eq_ignore_ascii_case("false") || t == "0" || t == "[]" || t == "null")
}

fn path_registry() -> &'static Handlebars<'static> {
    static HB: OnceLock<Handlebars<'static>> = OnceLock::new();
    HB.get_or_init(|| strict(encode_segment, None))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so an id
/// holding `/` or `?` cannot change which endpoint a request reaches.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Renders a URL path template; `{{x}}` values are percent-encoded,
/// `{{{x}}}` are inserted raw.
pub fn render_path(src: &str, ctx: &impl AsScope) -> Result<String, RenderError> {
    if !src.contains("{{") {
        return Ok(src.to_string());
    }
    ctx.with_scope(|s| render_in(path_registry(), src, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn take_removes_what_lookup_finds_and_leaves_the_rest() {
        let doc = || {
            json!({
                "steps": {"list": {"output": [{"id": 1}, {"id": 2}], "status": "succeeded"}},
                "a.b": {"c": 3},
                "a": {"x": 4},
            })
        };
        for path in [
            "steps.list.output",
            "steps.list.output.1",
            "a.b.c",
            "a.x",
            "steps",
        ] {
            let mut v = doc();
            let found = lookup(&doc(), path).cloned();
            assert!(found.is_some(), "{path}");
            assert_eq!(take(&mut v, path), found, "{path}");
            assert_eq!(lookup(&v, path), Some(&Json::Null), "{path}");
        }
        let mut v = doc();
        take(&mut v, "steps.list.output");
        assert_eq!(v["steps"]["list"]["status"], "succeeded");
        assert_eq!(v["a.b"], json!({"c": 3}));
        for missing in ["steps.nope", "steps.list.output.7", "a.b.d", ""] {
            if missing.is_empty() {
                assert_eq!(lookup(&v, missing), Some(&v));
                continue;
            }
            assert_eq!(lookup(&v, missing), None, "{missing}");
            assert_eq!(take(&mut v.clone(), missing), None, "{missing}");
        }
    }

    #[test]
    fn verdict_judges_against_the_registry_it_was_built_with_not_the_context() {
        let tools = Registry::parse(
            "approved-tools.yaml",
            "tools:\n  - name: Jasper\n    match: [jasper]\n    allowed_platforms: [hubspot]\n",
        )
        .unwrap();
        let t = Templates::new(Arc::new(tools));
        let scope = Scope::new(json!({"n": "Jasper AI"}));
        let v = |t: &Templates, p: &str| {
            t.render_str(&format!("{{{{verdict n \"{p}\"}}}}"), &scope)
                .unwrap()
        };
        assert_eq!(v(&t, "hubspot"), "approved");
        assert_eq!(v(&t, "klaviyo"), "unapproved");
        // Without a registry nothing is known, and a context root named
        // `registry` is data like any other, not the helper's.
        let forged = Scope::new(
            json!({"n": "Jasper AI", "registry": {"tools": [{"name": "Jasper", "matches": ["jasper"]}]}}),
        );
        assert_eq!(
            Templates::standard()
                .render_str("{{verdict n \"hubspot\"}}", &forged)
                .unwrap(),
            "unknown"
        );
        // Markdown notices get the same helper.
        assert_eq!(
            t.render_markdown("{{verdict n \"hubspot\"}}", &scope)
                .unwrap(),
            "approved"
        );
    }

    #[test]
    fn one_scope_serves_a_loop_of_items() {
        let t = Templates::standard();
        let mut scope = Scope::new(json!({"inputs": {"tool": "X"}}));
        let out: Vec<String> = (0..3)
            .map(|i| {
                scope.insert("item", json!({"id": i}));
                t.render_str("{{inputs.tool}}-{{item.id}}", &scope).unwrap()
            })
            .collect();
        assert_eq!(out, ["X-0", "X-1", "X-2"]);
        let typed = t
            .render_value(&json!({"id": "{{item.id}}", "s": "n{{item.id}}"}), &scope)
            .unwrap();
        assert_eq!(typed, json!({"id": 2, "s": "n2"}));
    }

    #[test]
    fn names_matches_whole_words_and_same_whole_names() {
        let r = |t: &str, n: &str| render_str("{{names t n}}", &json!({"t": t, "n": n})).unwrap();
        assert_eq!(r("ChatGPT export", "ChatGPT"), "true");
        assert_eq!(r("ChatGPT for Klaviyo", "chatgpt"), "true");
        assert_eq!(r("Jasper AI (Chat)", "Jasper AI"), "true");
        assert_eq!(r("ChatGPTZero detector", "ChatGPT"), "false");
        assert_eq!(r("Mailchimp", "AI"), "false");
        assert_eq!(r("anything", ""), "false");
        let eq = |a: &str, b: &str| render_str("{{same a b}}", &json!({"a": a, "b": b})).unwrap();
        assert_eq!(eq(" ChatGPT ", "chatgpt"), "true");
        assert_eq!(eq("ChatGPT for Slack", "ChatGPT"), "false");
        // A field the vendor does not send is an error, never a silent "no".
        assert!(render_str("{{names t.label n}}", &json!({"t": {}, "n": "x"})).is_err());
        assert_eq!(
            render_str(
                "{{plus_days at 90}}",
                &json!({"at": "2026-12-01T10:00:00+00:00"})
            )
            .unwrap(),
            "2027-03-01T10:00:00Z"
        );
    }

    #[test]
    fn after_compares_instants_as_vendors_write_them() {
        let r = |a: Json, b: Json| render_str("{{after a b}}", &json!({"a": a, "b": b}));
        let declared = json!("2026-12-01T12:00:00+00:00");
        // Marketo's own format, a later and an earlier send.
        assert_eq!(
            r(json!("2026-12-05T15:00:00Z+0000"), declared.clone()).unwrap(),
            "true"
        );
        assert_eq!(
            r(json!("2026-11-30T15:00:00Z+0000"), declared.clone()).unwrap(),
            "false"
        );
        assert_eq!(
            r(json!("2026-12-01T13:00:00+0100"), declared.clone()).unwrap(),
            "false"
        );
        assert_eq!(r(json!(1_800_000_000), declared.clone()).unwrap(), "true");
        assert_eq!(
            r(Json::Null, declared.clone()).unwrap(),
            "false",
            "no schedule"
        );
        let e = r(json!("next Tuesday"), declared).unwrap_err();
        assert!(e.0.contains("is not a timestamp"), "{e}");
        // `#if` guards a field the vendor may leave out.
        assert_eq!(
            render_str("{{#if a.startDate}}x{{else}}none{{/if}}", &json!({"a": {}})).unwrap(),
            "none"
        );
    }

    #[test]
    fn strict_and_typed() {
        let ctx = json!({"inputs": {"tool": "ChatGPT", "ids": [1, 2]}, "steps": {"a-b": {"output": {"n": 3}}}});
        assert_eq!(
            render_str("tool {{inputs.tool}}", &ctx).unwrap(),
            "tool ChatGPT"
        );
        assert_eq!(render_str("{{steps.a-b.output.n}}", &ctx).unwrap(), "3");
        let e = render_str("{{inputs.nope}}", &ctx).unwrap_err();
        assert!(e.0.contains("inputs.nope"), "{e}");
        assert_eq!(
            render_value(&json!({"x": "{{inputs.ids}}"}), &ctx).unwrap(),
            json!({"x": [1, 2]})
        );
        assert_eq!(
            render_str("{{join inputs.ids sep=\"|\"}}", &ctx).unwrap(),
            "1|2"
        );
        assert!(!truthy("0") && !truthy(" false ") && !truthy("") && truthy("12"));
        let t = json!({"at": "2026-11-29T09:00:00.123456+00:00"});
        assert_eq!(
            render_str("{{date at}}", &t).unwrap(),
            "2026-11-29 09:00 UTC"
        );
        assert_eq!(
            render_str("{{date at \"%-d %B %Y\"}}", &t).unwrap(),
            "29 November 2026"
        );
        let e = render_str("line one\n{{inputs.nope}}", &ctx).unwrap_err();
        assert!(e.0.contains("template line 2"), "{e}");
    }
}
