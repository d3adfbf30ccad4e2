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
    "if", "unless", "each", "with", "lookup", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and",
    "or", "not", "len", "json", "join", "upper", "lower", "default", "date",
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
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Default)]
pub struct Analysis {
    pub vars: Vec<VarRef>,
    pub problems: Vec<TemplateProblem>,
}

/// Compiles `src` and lists the variables it reads and the problems found.
pub fn analyse(src: &str) -> Analysis {
    let mut out = Analysis::default();
    match Template::compile(src) {
        Ok(t) => walk(&t.elements, &t.mapping, false, (1, 1), &mut out),
        Err(e) => {
            let (line, col) = e.pos().unwrap_or((1, 1));
            out.problems.push(TemplateProblem {
                message: format!("template syntax error: {}", e.reason()),
                line,
                col,
            });
        }
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
                out.problems.push(TemplateProblem {
                    message: "partials are not supported in quench templates".into(),
                    line: pos.0,
                    col: pos.1,
                });
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
            let hint = super::diagnostic::did_you_mean(&n, HELPERS.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            out.problems.push(TemplateProblem {
                message: format!("unknown helper `{n}`{hint}"),
                line: pos.0,
                col: pos.1,
            });
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
    if raw.starts_with('@') || raw.starts_with("..") || raw == "this" || raw.starts_with("this.") {
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
        assert!(a.problems[0].message.contains("syntax"), "{:?}", a.problems);
        let a = analyse("{{uper inputs.tool}}");
        assert_eq!(
            a.problems[0].message,
            "unknown helper `uper` (did you mean `upper`?)"
        );
    }
}
