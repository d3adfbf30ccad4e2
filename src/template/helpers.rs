//! quench's handlebars helpers (the names `analysis::HELPERS` allows).
//! Each is a plain function but `verdict`, which holds the approved-tools
//! registry it judges against rather than reading it from the context.

use std::sync::Arc;

use handlebars::{
    handlebars_helper, Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext,
    RenderErrorReason,
};
use serde_json::Value as Json;

use super::plain;
use crate::registry::{Registry, Verdict};

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

/// Registers quench's helpers; `verdict` judges against `tools` (every
/// name is unknown without one).
pub(super) fn register(hb: &mut Handlebars, tools: Option<Arc<Registry>>) {
    hb.register_helper("upper", Box::new(upper));
    hb.register_helper("lower", Box::new(lower));
    hb.register_helper("json", Box::new(json));
    hb.register_helper("join", Box::new(join));
    hb.register_helper("default", Box::new(default));
    hb.register_helper("len", Box::new(len));
    hb.register_helper("verdict", Box::new(VerdictHelper(tools)));
    hb.register_helper("date", Box::new(date));
    hb.register_helper("contains", Box::new(contains));
    hb.register_helper("names", Box::new(names));
    hb.register_helper("same", Box::new(same));
    hb.register_helper("plus_days", Box::new(plus_days));
    hb.register_helper("one_of", Box::new(one_of));
    hb.register_helper("after", Box::new(after));
}

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
/// against the approved-tools registry the helper was built with.
struct VerdictHelper(Option<Arc<Registry>>);

impl HelperDef for VerdictHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
        let platform = h
            .param(1)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("verdict", 1))?;
        let verdict = match &self.0 {
            Some(tools) => tools.judge(platform, name).0,
            None => Verdict::Unknown,
        };
        out.write(match verdict {
            Verdict::Approved => "approved",
            Verdict::Unapproved => "unapproved",
            Verdict::Unknown => "unknown",
        })?;
        Ok(())
    }
}
