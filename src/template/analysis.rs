//! Static analysis of handlebars templates: syntax, variables and helpers.
//!
//! Handlebars reports syntax errors at compile time but unknown variables
//! only at render time, and an action's output has no schema to render
//! against. So templates are compiled once and their variable paths are
//! checked against what the context will hold (declared inputs, the step's
//! dependencies), which catches a typo before an incident does.

use handlebars::template::{Parameter, Template, TemplateElement, TemplateMapping};
use handlebars::Path;

/// Helpers a template may call: handlebars' built-ins plus quench's own.
pub const HELPERS: &[&str] = &[
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "log",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
    "json",
    "join",
    "upper",
    "lower",
    "default",
    "date",
    "verdict",
    "contains",
    "names",
    "same",
    "plus_days",
    "one_of",
    "after",
];

/// A variable the template reads, e.g. `inputs.tool` at line 1, column 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub path: Vec<String>,
    pub line: usize,
    pub col: usize,
    /// Inside `#each` / `#with`, where unqualified names are relative.
    pub scoped: bool,
}

impl VarRef {
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub message: String,
    pub hint: Option<String>,
    /// 1-based, at the `{{` of the tag at fault.
    pub line: usize,
    pub col: usize,
}

impl TemplateProblem {
    fn new(message: impl Into<String>, (line, col): (usize, usize)) -> Self {
        TemplateProblem {
            message: message.into(),
            hint: None,
            line,
            col,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[derive(Debug, Default)]
pub struct Analysis {
    pub vars: Vec<VarRef>,
    pub problems: Vec<TemplateProblem>,
    /// It also reads through `../`, `@root` or a top-level `this`, so not
    /// everything it reads is in `vars`.
    pub opaque: bool,
}

/// Compiles `src` and lists the variables it reads and the problems found.
pub fn analyse(src: &str) -> Analysis {
    let mut out = Analysis::default();
    match Template::compile(src) {
        Ok(t) => walk(&t.elements, &t.mapping, false, (1, 1), &mut out),
        Err(e) => out.problems = syntax_problems(src, &e),
    }
    out
}

fn walk(
    elements: &[TemplateElement],
    mapping: &[TemplateMapping],
    scoped: bool,
    at: (usize, usize),
    out: &mut Analysis,
) {
    for (i, el) in elements.iter().enumerate() {
        let pos = mapping.get(i).map(|m| (m.0, m.1)).unwrap_or(at);
        match el {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                let is_call = !h.params.is_empty() || !h.hash.is_empty();
                if is_call {
                    helper_name(&h.name, pos, out);
                } else {
                    param(&h.name, scoped, pos, out);
                }
                for p in h.params.iter().chain(h.hash.values()) {
                    param(p, scoped, pos, out);
                }
            }
            TemplateElement::HelperBlock(h) => {
                helper_name(&h.name, pos, out);
                for p in h.params.iter().chain(h.hash.values()) {
                    param(p, scoped, pos, out);
                }
                let name = name_of(&h.name).unwrap_or_default();
                let inner_scoped = scoped || name == "each" || name == "with";
                if let Some(inner) = &h.template {
                    walk(&inner.elements, &inner.mapping, inner_scoped, pos, out);
                }
                if let Some(inv) = &h.inverse {
                    walk(&inv.elements, &inv.mapping, scoped, pos, out);
                }
            }
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                out.problems.push(TemplateProblem::new(
                    "partials are not supported in quench templates",
                    pos,
                ));
            }
            _ => {}
        }
    }
}

fn name_of(p: &Parameter) -> Option<String> {
    match p {
        Parameter::Name(n) => Some(n.clone()),
        Parameter::Path(Path::Relative((_, raw))) => Some(raw.clone()),
        _ => None,
    }
}

fn helper_name(p: &Parameter, pos: (usize, usize), out: &mut Analysis) {
    if let Some(n) = name_of(p) {
        if !HELPERS.contains(&n.as_str()) {
            let hint = match crate::source::diagnostic::did_you_mean(&n, HELPERS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("helpers: {}", HELPERS.join(", ")),
            };
            out.problems
                .push(TemplateProblem::new(format!("unknown helper `{n}`"), pos).hint(hint));
        }
    }
}

fn param(p: &Parameter, scoped: bool, pos: (usize, usize), out: &mut Analysis) {
    match p {
        Parameter::Name(n) => push_var(n, scoped, pos, out),
        Parameter::Path(Path::Relative((_, raw))) => push_var(raw, scoped, pos, out),
        Parameter::Subexpression(sub) => {
            walk(std::slice::from_ref(&*sub.element), &[], scoped, pos, out);
        }
        _ => {}
    }
}

fn push_var(raw: &str, scoped: bool, pos: (usize, usize), out: &mut Analysis) {
    let this = raw == "this" || raw.starts_with("this.");
    if raw.starts_with("..") || raw.starts_with("@root") || (this && !scoped) {
        out.opaque = true;
    }
    if raw.starts_with('@') || raw.starts_with("..") || this {
        return;
    }
    let path: Vec<String> = raw
        .split(['.', '/'])
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string())
        .collect();
    if path.is_empty() {
        return;
    }
    out.vars.push(VarRef {
        path,
        line: pos.0,
        col: pos.1,
        scoped,
    });
}

/// Turns a compile error into problems a person can act on.
///
/// handlebars (through pest) reports where parsing gave up, which for an
/// unclosed `{{` or block is the end of the template, with a list of
/// grammar rules as the reason. So the tags are scanned here to point at
/// the `{{` at fault; handlebars' own position is the fallback.
fn syntax_problems(src: &str, e: &handlebars::TemplateError) -> Vec<TemplateProblem> {
    let tags = match scan_tags(src) {
        Ok(tags) => tags,
        Err(p) => return vec![p],
    };
    let mut problems = Vec::new();
    let mut open: Vec<(&str, usize)> = Vec::new();
    for tag in tags.iter().filter(|t| !t.comment) {
        let inner = tag.inner.trim_matches('~').trim();
        let opens =
            inner.starts_with('#') || (inner.starts_with('^') && !inner[1..].trim().is_empty());
        if opens {
            open.push((inner, tag.start));
        } else if let Some(rest) = inner.strip_prefix('/') {
            let closing = rest.trim();
            match open.pop() {
                None => problems.push(
                    TemplateProblem::new(
                        format!("`{{{{/{closing}}}}}` closes no open block"),
                        line_col(src, tag.start),
                    )
                    .hint(format!(
                        "remove it, or open the block with `{{{{#{closing} ...}}}}`"
                    )),
                ),
                Some((opener, _)) => {
                    let opened = name_of_block(opener);
                    if opened != closing {
                        problems.push(
                            TemplateProblem::new(
                                format!("`{{{{/{closing}}}}}` does not close `{{{{{opener}}}}}`"),
                                line_col(src, tag.start),
                            )
                            .hint(format!(
                                "close `{{{{{opener}}}}}` with `{{{{/{opened}}}}}` first"
                            )),
                        );
                        return problems;
                    }
                }
            }
        }
    }
    for (opener, at) in open {
        let opened = name_of_block(opener);
        problems.push(
            TemplateProblem::new(
                format!("`{{{{{opener}}}}}` is never closed"),
                line_col(src, at),
            )
            .hint(format!("end the block with `{{{{/{opened}}}}}`")),
        );
    }
    if problems.is_empty() {
        // Something inside one tag: point at that tag's `{{`.
        let (line, col) = e.pos().unwrap_or((1, 1));
        let at = offset_of(src, line, col);
        let tag = tags
            .iter()
            .rev()
            .find(|t| t.start <= at)
            .filter(|t| at <= t.end);
        let reason = match e.reason() {
            handlebars::TemplateErrorReason::InvalidSyntax(_) => None,
            other => Some(other.to_string()),
        };
        let p = match tag {
            Some(t) => TemplateProblem::new(
                format!("template syntax error in `{}`", &src[t.start..t.end]),
                line_col(src, t.start),
            ),
            None => TemplateProblem::new("template syntax error", (line, col)),
        };
        problems.push(match reason {
            Some(r) => p.hint(r),
            None => p,
        });
    }
    problems
}

fn name_of_block(opener: &str) -> String {
    opener[1..]
        .trim_start_matches(['>', '*'])
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A `{{...}}` tag: byte offsets of its first `{` and one past its last `}`.
struct Tag<'a> {
    start: usize,
    end: usize,
    inner: &'a str,
    comment: bool,
}

/// Every tag in `src`, or the first `{{` that is never closed.
fn scan_tags(src: &str) -> Result<Vec<Tag<'_>>, TemplateProblem> {
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find("{{") {
        let start = i + off;
        if start > 0 && src.as_bytes()[start - 1] == b'\\' {
            i = start + 2;
            continue;
        }
        let rest = &src[start..];
        let (open, close) = if rest.starts_with("{{!--") {
            ("{{!--", "--}}")
        } else if rest.starts_with("{{{{") {
            ("{{{{", "}}}}")
        } else if rest.starts_with("{{{") {
            ("{{{", "}}}")
        } else {
            ("{{", "}}")
        };
        let body = start + open.len();
        let comment = rest.starts_with("{{!");
        let unclosed = || {
            TemplateProblem::new(format!("`{open}` is never closed"), line_col(src, start))
                .hint(format!("close it with `{close}`"))
        };
        let Some(k) = src[body..].find(close) else {
            return Err(unclosed());
        };
        let inner = &src[body..body + k];
        if !comment && inner.contains("{{") {
            // The next tag starts before this one ends.
            return Err(unclosed());
        }
        let end = body + k + close.len();
        tags.push(Tag {
            start,
            end,
            inner: if open == "{{!--" { "" } else { inner },
            comment,
        });
        i = end;
    }
    Ok(tags)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of a 1-based line and column (in characters).
fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match src[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return src.len(),
        }
    }
    src[start..]
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(src.len(), |(i, _)| start + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_in_expressions_helpers_and_blocks() {
        let a = analyse("Tool {{inputs.tool}}: {{join steps.find-grants.output.ids sep=\", \"}}\n{{#each inputs.list}}{{name}}{{/each}}");
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        let names: Vec<String> = a.vars.iter().map(|v| v.dotted()).collect();
        assert_eq!(
            names,
            [
                "inputs.tool",
                "steps.find-grants.output.ids",
                "inputs.list",
                "name"
            ]
        );
        assert_eq!((a.vars[0].line, a.vars[0].col), (1, 6));
        assert!(a.vars[3].scoped);
    }

    #[test]
    fn reports_syntax_errors_and_unknown_helpers() {
        let a = analyse("hello {{#if x}} no close");
        assert_eq!(a.problems.len(), 1);
        assert_eq!(a.problems[0].message, "`{{#if x}}` is never closed");
        assert_eq!((a.problems[0].line, a.problems[0].col), (1, 7));
        let a = analyse("{{uper inputs.tool}}");
        assert_eq!(a.problems[0].message, "unknown helper `uper`");
        assert_eq!(a.problems[0].hint.as_deref(), Some("did you mean `upper`?"));
    }

    #[test]
    fn syntax_errors_point_at_the_tag_at_fault() {
        let at = |src: &str| {
            let a = analyse(src);
            assert_eq!(a.problems.len(), 1, "{src}: {:?}", a.problems);
            let p = &a.problems[0];
            (p.line, p.col, p.message.clone())
        };
        let unclosed = "`{{` is never closed".to_string();
        assert_eq!(at("a {{x} b"), (1, 3, unclosed.clone()));
        assert_eq!(at("a {{x} b {{y}}"), (1, 3, unclosed));
        assert_eq!(at("é\n  {{{x}}"), (2, 3, "`{{{` is never closed".into()));
        assert_eq!(
            at("{{#each xs}}\n{{/if}}"),
            (2, 1, "`{{/if}}` does not close `{{#each xs}}`".into())
        );
        assert_eq!(
            at("x {{/if}}"),
            (1, 3, "`{{/if}}` closes no open block".into())
        );
        assert_eq!(
            at("ok {{!-- {{ --}} {{x y=}}"),
            (1, 18, "template syntax error in `{{x y=}}`".into())
        );
        // Escaped braces and comments are not tags.
        assert!(analyse("\\{{x} {{! {{ }}").problems.is_empty());
    }
}
