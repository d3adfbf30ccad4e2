//! Notice templates (runbooks/notices/*.hbs): loading, validation and
//! strict rendering. A template is named by its file stem, either
//! `<audience>` or `<audience>-<JURISDICTION>` (e.g. `customers-EU`).

pub mod clocks;
pub mod lifecycle;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

use crate::runbook::{Diagnostic, Diagnostics, Pos};
use crate::source::diagnostic::did_you_mean;
use crate::template::analyse;

/// Jurisdiction codes of DESIGN.md and their names.
pub const JURISDICTIONS: &[(&str, &str)] = &[
    ("EU", "European Union (GDPR)"),
    ("UK", "United Kingdom (UK GDPR)"),
    ("US-CA", "California"),
    ("US-NY", "New York"),
    ("US-TX", "Texas"),
    ("CA", "Canada (PIPEDA)"),
    ("BR", "Brazil (LGPD)"),
    ("CN", "China (PIPL)"),
    ("SG", "Singapore (PDPA)"),
    ("AU", "Australia (Privacy Act, NDB scheme)"),
    ("JP", "Japan (APPI)"),
    ("IN", "India (DPDP Act)"),
];

pub fn jurisdiction_name(code: &str) -> String {
    JURISDICTIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| code.to_string())
}

/// Roots a notice template may read.
pub const ROOTS: &[&str] = &[
    "incident",
    "inputs",
    "organization",
    "jurisdiction",
    "notice",
    "steps",
    // Moments recorded with `note --moment` (name -> RFC 3339 time).
    "moments",
    // What was done since the declaration, oldest first: [{at, text}].
    "chronology",
];

#[derive(Debug, Clone, Default)]
pub struct NoticeTemplates {
    /// name -> (file, source)
    templates: BTreeMap<String, (String, String)>,
}

#[derive(Debug, thiserror::Error)]
#[error("notice template {name} ({file}): {message}")]
pub struct DraftError {
    pub name: String,
    pub file: String,
    pub message: String,
}

impl NoticeTemplates {
    pub fn load(dir: Option<&Path>) -> Result<Self, Diagnostics> {
        let mut t = NoticeTemplates::default();
        crate::bundled::load_each(&crate::bundled::NOTICE_FILES, dir, |file, src, diags| {
            t.add(file, src, diags)
        })?;
        Ok(t)
    }

    /// Validates one template file on its own.
    pub fn check_file(file: &str, src: &str) -> Result<(), Diagnostics> {
        let mut diags = Diagnostics::default();
        NoticeTemplates::default().add(file, src, &mut diags);
        if diags.is_empty() {
            Ok(())
        } else {
            Err(diags.sorted())
        }
    }

    fn add(&mut self, file: &str, src: &str, diags: &mut Diagnostics) {
        let name = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let a = analyse(src);
        for p in a.problems {
            let mut d = Diagnostic::new(
                file,
                Pos {
                    line: p.line,
                    col: p.col,
                },
                p.message,
            );
            d.hint = p.hint;
            diags.push(d);
        }
        for v in a.vars {
            if !v.scoped && !ROOTS.contains(&v.path[0].as_str()) {
                diags.push(
                    Diagnostic::new(
                        file,
                        Pos {
                            line: v.line,
                            col: v.col,
                        },
                        format!("template reads unknown variable \"{}\"", v.dotted()),
                    )
                    .with_hint(
                        did_you_mean(&v.path[0], ROOTS.iter().copied())
                            .map(|m| format!("did you mean `{m}`?"))
                            .unwrap_or_else(|| {
                                format!("notice templates can read: {}", ROOTS.join(", "))
                            }),
                    ),
                );
            }
        }
        self.templates
            .insert(name, (file.to_string(), src.to_string()));
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.templates.keys()
    }

    /// The template for an audience in a jurisdiction: the specific one if
    /// it exists, else the audience's general one.
    pub fn pick(&self, audience: &str, jurisdiction: Option<&str>) -> Option<String> {
        if let Some(j) = jurisdiction {
            let specific = format!("{audience}-{j}");
            if self.templates.contains_key(&specific) {
                return Some(specific);
            }
        }
        self.templates
            .contains_key(audience)
            .then(|| audience.to_string())
    }

    /// Renders strictly: a missing variable is an error naming it.
    pub fn render(&self, name: &str, ctx: &Json) -> Result<String, DraftError> {
        self.render_with(crate::template::Templates::standard(), name, ctx)
    }

    /// `render` with an incident's helpers (its `verdict`).
    pub fn render_with(
        &self,
        with: &crate::template::Templates,
        name: &str,
        ctx: &Json,
    ) -> Result<String, DraftError> {
        let (file, src) = self.templates.get(name).ok_or_else(|| DraftError {
            name: name.into(),
            file: "-".into(),
            message: "no such template".into(),
        })?;
        // A notice is a Markdown document: a value such as a tool's name
        // stays text (no tag, table cell or emphasis nobody wrote).
        with.render_markdown(src, &crate::template::Scope::new(ctx.clone()))
            .map_err(|e| DraftError {
                name: name.into(),
                file: file.clone(),
                message: e.to_string(),
            })
    }
}
