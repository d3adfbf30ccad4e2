//! `quench validate [PATH...]`

use std::path::PathBuf;

use std::process::ExitCode;

use super::{report_diagnostics, Env};
use crate::integrations::manifest;
use crate::runbook::{self, Diagnostic, Diagnostics, Pos};

pub(super) fn run(env: &Env, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => l,
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    if paths.is_empty() {
        if let Err(d) = crate::notices::clocks::RuleTable::bundled() {
            return Ok(report_diagnostics(&d));
        }
        return Ok(match lib.validate_runbooks() {
            Ok(n) => {
                println!(
                    "ok: {n} runbook(s), {} integration(s), {} notice template(s)",
                    lib.catalog.manifests().count(),
                    lib.notices.names().count()
                );
                ExitCode::SUCCESS
            }
            Err(d) => report_diagnostics(&d),
        });
    }
    let known = lib.known();
    let mut diags = Diagnostics::default();
    let mut checked = 0;
    for p in paths {
        let shown = p.display().to_string();
        let src = match std::fs::read_to_string(p) {
            Ok(s) => s,
            Err(e) => {
                diags.push(Diagnostic::new(
                    &shown,
                    Pos::START,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        checked += 1;
        let result = if shown.ends_with("rules.yaml") && src.contains("timezones:") {
            crate::notices::clocks::RuleTable::load(&shown, &src).map(|_| ())
        } else if is_manifest(p, &src) {
            manifest::load(&shown, &src).map(|_| ())
        } else if shown.ends_with(".hbs") {
            check_notice(&shown, &src)
        } else {
            runbook::load(&shown, &src, &known).map(|_| ())
        };
        if let Err(d) = result {
            diags.0.extend(d.0);
        }
    }
    if diags.is_empty() {
        println!("ok: {checked} file(s)");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(report_diagnostics(&diags.sorted()))
    }
}

/// A manifest lives in an integrations folder or has `base_url` at the top.
fn is_manifest(p: &std::path::Path, src: &str) -> bool {
    p.components().any(|c| c.as_os_str() == "integrations")
        || src.lines().any(|l| l.starts_with("base_url:"))
}

fn check_notice(file: &str, src: &str) -> Result<(), Diagnostics> {
    crate::notices::NoticeTemplates::check_file(file, src)
}
