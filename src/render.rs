//! Strict handlebars rendering of strings and JSON trees.
//!
//! One registry for the whole process (helpers registered once); strict
//! mode, so a missing variable is an error naming it instead of a silently
//! blank field in an API call or a notice.

use std::sync::OnceLock;

use handlebars::{
    handlebars_helper, no_escape, Context, Handlebars, Helper, HelperResult, Output, RenderContext,
    RenderErrorReason,
};
use serde_json::Value as Json;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

fn registry() -> &'static Handlebars<'static> {
    static HB: OnceLock<Handlebars<'static>> = OnceLock::new();
    HB.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(no_escape);
        register_helpers(&mut hb);
        hb
    })
}

/// The same helpers, for templates whose output is Markdown (notices):
/// `{{value}}` (helpers' text included) is escaped so a value stays text,
/// `{{{value}}}` inserts raw.
fn markdown_registry() -> &'static Handlebars<'static> {
    static HB: OnceLock<Handlebars<'static>> = OnceLock::new();
    HB.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(crate::timeline::postmortem::escape);
        register_helpers(&mut hb);
        hb
    })
}

/// Writes a helper's text the way `{{...}}` writes a value: through the
/// registry's escape, unless the helper was called with `{{{...}}}`.
fn emit(hb: &Handlebars, rc: &RenderContext, out: &mut dyn Output, text: &str) -> HelperResult {
    if rc.is_disable_escape() {
        out.write(text)?;
    } else {
        out.write(&hb.get_escape_fn()(text))?;
    }
    Ok(())
}

handlebars_helper!(upper: |s: str| s.to_uppercase());
handlebars_helper!(lower: |s: str| s.to_lowercase());
handlebars_helper!(json: |v: Json| serde_json::to_string(&v).unwrap_or_default());

fn join(
    h: &Helper,
    hb: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let arr = h
        .param(0)
        .and_then(|v| v.value().as_array())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("join", 0))?;
    let sep = h
        .hash_get("sep")
        .and_then(|v| v.value().as_str())
        .unwrap_or(", ");
    let text = arr
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join(sep);
    emit(hb, rc, out, &text)
}

fn default(
    h: &Helper,
    hb: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let v = h.param(0).map(|p| p.value().clone()).unwrap_or(Json::Null);
    let fallback = h.param(1).map(|p| p.value().clone()).unwrap_or(Json::Null);
    let pick = if v.is_null() || v == Json::String(String::new()) {
        fallback
    } else {
        v
    };
    emit(hb, rc, out, &plain(&pick))
}

fn len(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let n = match h.param(0).map(|p| p.value()) {
        Some(Json::Array(a)) => a.len(),
        Some(Json::Object(o)) => o.len(),
        Some(Json::String(s)) => s.chars().count(),
        _ => 0,
    };
    out.write(&n.to_string())?;
    Ok(())
}

/// Registers quench's helpers (see `runbook::template::HELPERS`).
pub fn register_helpers(hb: &mut Handlebars) {
    hb.register_helper("upper", Box::new(upper));
    hb.register_helper("lower", Box::new(lower));
    hb.register_helper("json", Box::new(json));
    hb.register_helper("join", Box::new(join));
    hb.register_helper("default", Box::new(default));
    hb.register_helper("len", Box::new(len));
    hb.register_helper("verdict", Box::new(verdict));
    hb.register_helper("date", Box::new(date));
    hb.register_helper("contains", Box::new(contains));
    hb.register_helper("names", Box::new(names));
    hb.register_helper("same", Box::new(same));
    hb.register_helper("plus_days", Box::new(plus_days));
    hb.register_helper("one_of", Box::new(one_of));
    hb.register_helper("after", Box::new(after));
}

/// `{{after item.startDate incident.declared_at}}`: true when the first
/// instant is later than the second. A missing first value is false (a
/// send with no schedule is not scheduled later); text that is no instant
/// fails the render, so a vendor's new format is an explained failure, not
/// a silent "no".
fn after(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = |i: usize| {
        h.param(i)
            .map(|p| p.value().clone())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("after", i))
    };
    let (a, b) = (value(0)?, value(1)?);
    let later = match (&a, &b) {
        (Json::Null, _) => false,
        _ => {
            let (a, b) = (instant(&a, "after")?, instant(&b, "after")?);
            a > b
        }
    };
    out.write(if later { "true" } else { "false" })?;
    Ok(())
}

/// An instant as vendors write one: RFC 3339, ISO 8601 with a `+0000`
/// offset, Marketo's `2026-12-05T15:00:00Z+0000`, or Unix seconds.
fn instant(
    v: &Json,
    helper: &'static str,
) -> Result<chrono::DateTime<chrono::FixedOffset>, RenderErrorReason> {
    let bad = || RenderErrorReason::Other(format!("{helper}: {v} is not a timestamp"));
    match v {
        Json::Number(n) => n
            .as_i64()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.fixed_offset())
            .ok_or_else(bad),
        Json::String(raw) => chrono::DateTime::parse_from_rfc3339(raw)
            .or_else(|_| chrono::DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%z"))
            .or_else(|_| chrono::DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%SZ%z"))
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// `{{one_of item.state "SCHEDULED" "SCHEDULED_AB"}}`: true when the first
/// value equals any of the others (a vendor's states that all mean "sends").
fn one_of(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("one_of", 0))?
        .value();
    let hit = h.params().iter().skip(1).any(|p| p.value() == value);
    out.write(if hit { "true" } else { "false" })?;
    Ok(())
}

/// Lower-case words (runs of letters and digits).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

// `{{names text tool}}`: the tool's words appear together, in order, among
// the text's words ("ChatGPT export" names ChatGPT; "ChatGPTZero" does not,
// and a tool called "AI" does not match "Mailchimp"). For reversible
// actions; irreversible ones match with `same`.
handlebars_helper!(names: |text: str, tool: str| {
    let (t, w) = (words(text), words(tool));
    !w.is_empty() && t.windows(w.len()).any(|win| win == w.as_slice())
});

// `{{same a b}}`: the same name, ignoring case and surrounding spaces.
handlebars_helper!(same: |a: str, b: str| {
    let (a, b) = (a.trim().to_lowercase(), b.trim().to_lowercase());
    !a.is_empty() && a == b
});

/// `{{plus_days ts n}}`: an RFC 3339 timestamp `n` days later, in UTC
/// (how far ahead to look for scheduled sends).
fn plus_days(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let at = timestamp_param(h, "plus_days")?;
    let n = h
        .param(1)
        .and_then(|p| p.value().as_i64())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("plus_days", 1))?;
    let later = chrono::Duration::try_days(n)
        .and_then(|d| at.with_timezone(&chrono::Utc).checked_add_signed(d))
        .ok_or_else(|| RenderErrorReason::Other(format!("plus_days: {n} days is out of range")))?;
    out.write(&later.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))?;
    Ok(())
}

// `{{contains haystack needle}}`: case-insensitive; a substring of a text
// (a tool's name inside app, grant and key names) or an element of a list
// (`{{contains inputs.jurisdictions "US-NY"}}`).
handlebars_helper!(contains: |hay: Json, needle: Json| {
    let text = |v: &Json| match v { Json::String(s) => s.to_lowercase(), Json::Null => String::new(), other => other.to_string().to_lowercase() };
    let n = text(needle);
    match hay {
        Json::Array(items) => items.iter().any(|i| text(i) == n),
        other => !n.is_empty() && text(other).contains(&n),
    }
});

/// A helper's first parameter, an RFC 3339 timestamp.
fn timestamp_param(
    h: &Helper,
    helper: &'static str,
) -> Result<chrono::DateTime<chrono::FixedOffset>, RenderErrorReason> {
    let raw = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, 0))?;
    chrono::DateTime::parse_from_rfc3339(raw).map_err(|_| {
        RenderErrorReason::Other(format!("{helper}: \"{raw}\" is not an RFC 3339 timestamp"))
    })
}

/// `{{date ts}}` or `{{date ts "%-d %B %Y"}}`: an RFC 3339 timestamp for
/// people (default `2026-11-29 09:00 UTC`), in UTC, or with `zone="Asia/Singapore"`
/// in that zone (default `2026-11-29 17:00 +08`, the zone's abbreviation).
fn date(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let at = timestamp_param(h, "date")?;
    let zone = match h.hash_get("zone").and_then(|v| v.value().as_str()) {
        None => None,
        Some(z) => Some(z.parse::<chrono_tz::Tz>().map_err(|_| {
            RenderErrorReason::Other(format!(
                "date: unknown time zone \"{z}\" (write an IANA name such as Asia/Singapore)"
            ))
        })?),
    };
    let fmt = h
        .param(1)
        .and_then(|p| p.value().as_str())
        .unwrap_or(if zone.is_some() {
            "%Y-%m-%d %H:%M %Z"
        } else {
            "%Y-%m-%d %H:%M UTC"
        });

    let mut text = String::new();
    use std::fmt::Write as _;
    let written = match zone {
        Some(z) => write!(text, "{}", at.with_timezone(&z).format(fmt)),
        None => write!(text, "{}", at.with_timezone(&chrono::Utc).format(fmt)),
    };
    written.map_err(|_| RenderErrorReason::Other(format!("date: invalid format \"{fmt}\"")))?;
    out.write(&text)?;
    Ok(())
}

/// `{{verdict NAME PLATFORM}}`: approved, unapproved or unknown, judged
/// against the approved-tools registry the engine puts in the context
/// (hidden root `registry`); unknown when there is none.
fn verdict(
    h: &Helper,
    _: &Handlebars,
    ctx: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let name = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
    let platform = h
        .param(1)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("verdict", 1))?;
    let registry: crate::integrations::inventory::Registry = ctx
        .data()
        .get("registry")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    let v = match registry.judge(platform, name).0 {
        crate::integrations::inventory::Verdict::Approved => "approved",
        crate::integrations::inventory::Verdict::Unapproved => "unapproved",
        crate::integrations::inventory::Verdict::Unknown => "unknown",
    };
    out.write(v)?;
    Ok(())
}

/// A JSON value as text: strings bare, null empty, the rest as JSON.
pub fn plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders one template string.
pub fn render_str(src: &str, ctx: &Json) -> Result<String, RenderError> {
    if !src.contains("{{") {
        return Ok(src.to_string());
    }
    registry()
        .render_template(src, ctx)
        .map_err(|e| RenderError(describe(&e)))
}

/// `render_str` for a Markdown document: values are escaped for Markdown.
pub fn render_markdown(src: &str, ctx: &Json) -> Result<String, RenderError> {
    markdown_registry()
        .render_template(src, ctx)
        .map_err(|e| RenderError(describe(&e)))
}

/// A Markdown document rendered by `render_markdown` as plain text: the
/// escapes its values got are undone (for text, e-mail and HTML `<pre>`).
pub fn markdown_to_text(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut chars = md.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| "\\`*_[]|#~".contains(*n)) => {
                out.extend(chars.next());
            }
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
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

/// Follows a dotted path (`steps.find.output.tokens`, `errors.0.code`)
/// through JSON; a key that itself contains dots (`@odata.nextLink`) is
/// tried whole first.
pub fn lookup<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    if path.is_empty() {
        return Some(v);
    }
    if let Some(found) = v.as_object().and_then(|o| o.get(path)) {
        return Some(found);
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
            if let Some(found) = lookup(inner, tail) {
                return Some(found);
            }
        }
        cut = i;
    }
    match v {
        Json::Array(a) => path.parse::<usize>().ok().and_then(|n| a.get(n)),
        _ => None,
    }
}

/// Renders every string leaf of a JSON tree. A leaf that is exactly one
/// `{{path}}` takes the value's own type, so `ids: "{{steps.x.output.ids}}"`
/// sends a JSON list, not its text.
pub fn render_value(v: &Json, ctx: &Json) -> Result<Json, RenderError> {
    Ok(match v {
        Json::String(s) => match single_path(s, ctx) {
            Some(found) => found.clone(),
            None => Json::String(render_str(s, ctx)?),
        },
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|x| render_value(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render_value(x, ctx)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// `when:` semantics: false when it renders empty, "false" or "0".
pub fn truthy(rendered: &str) -> bool {
    let t = rendered.trim();
    !(t.is_empty() || t.eq_ignore_ascii_case("false") || t == "0" || t == "[]" || t == "null")
}

fn path_registry() -> &'static Handlebars<'static> {
    static HB: OnceLock<Handlebars<'static>> = OnceLock::new();
    HB.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(encode_segment);
        register_helpers(&mut hb);
        hb
    })
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
pub fn render_path(src: &str, ctx: &Json) -> Result<String, RenderError> {
    if !src.contains("{{") {
        return Ok(src.to_string());
    }
    path_registry()
        .render_template(src, ctx)
        .map_err(|e| RenderError(describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
