//! Files compiled into the binary (see build.rs), and reading the
//! user's folders that extend or override them.

use std::path::Path;

use crate::source::{Diagnostic, Diagnostics, Pos};

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// One kind of file quench ships and lets a folder extend: the copies
/// compiled in, the path they are shown under, and the extension of the
/// folder's files.
pub struct Files {
    bundled: &'static [(&'static str, &'static str)],
    shown_under: &'static str,
    ext: &'static str,
}

pub const MANIFESTS: Files = Files {
    bundled: INTEGRATIONS,
    shown_under: "integrations",
    ext: "yaml",
};
pub const RUNBOOK_FILES: Files = Files {
    bundled: RUNBOOKS,
    shown_under: "runbooks",
    ext: "yaml",
};
pub const NOTICE_FILES: Files = Files {
    bundled: NOTICES,
    shown_under: "runbooks/notices",
    ext: "hbs",
};

/// Hands `add` every file of a kind: the bundled ones, then `dir`'s in
/// name order, so a folder's file overrides the bundled one it shares a
/// name with when `add` keys by name. Every problem (an unreadable file,
/// whatever `add` reports) is collected, and all of them returned together.
pub fn load_each(
    files: &Files,
    dir: Option<&Path>,
    mut add: impl FnMut(&str, &str, &mut Diagnostics),
) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::default();
    for (file, src) in files.bundled {
        add(&format!("{}/{file}", files.shown_under), src, &mut diags);
    }
    if let Some(dir) = dir {
        for (path, src) in read_dir(dir, files.ext, &mut diags) {
            add(&path, &src, &mut diags);
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags.sorted())
    }
}

/// `(path, contents)` of every `*.ext` file in `dir`, sorted. A missing
/// folder is not an error (the defaults are optional); an unreadable file is.
fn read_dir(dir: &Path, ext: &str, diags: &mut Diagnostics) -> Vec<(String, String)> {
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
