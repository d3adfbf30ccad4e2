//! Files compiled into the binary (see build.rs), and reading the
//! user's folders that extend or override them.

use std::path::Path;

use crate::runbook::{Diagnostic, Diagnostics, Pos};

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// `(path, contents)` of every `*.ext` file in `dir`, sorted. A missing
/// folder is not an error (the defaults are optional); an unreadable file is.
pub fn read_dir(dir: &Path, ext: &str, diags: &mut Diagnostics) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut paths: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let shown = p.display().to_string();
        match std::fs::read_to_string(&p) {
            Ok(s) => out.push((shown, s)),
            Err(e) => diags.push(Diagnostic::new(
                &shown,
                Pos::START,
                format!("cannot read: {e}"),
            )),
        }
    }
    out
}
