//! Bundles runbooks, notice templates and integration manifests into the
//! binary, so a fresh install can drill without any files beside it.

use std::fmt::Write as _;
use std::path::Path;

fn bundle(out: &mut String, name: &str, dir: &str, ext: &str) {
    println!("cargo:rerun-if-changed={dir}");
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut files: Vec<String> = std::fs::read_dir(Path::new(&root).join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(ext))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    writeln!(out, "pub static {name}: &[(&str, &str)] = &[").unwrap();
    for f in files {
        println!("cargo:rerun-if-changed={dir}/{f}");
        writeln!(
            out,
            "    ({f:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{dir}/{f}\"))),"
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
}

fn main() {
    let mut out = String::new();
    bundle(&mut out, "RUNBOOKS", "runbooks", ".yaml");
    bundle(&mut out, "NOTICES", "runbooks/notices", ".hbs");
    bundle(&mut out, "INTEGRATIONS", "integrations", ".yaml");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(dest, out).unwrap();
}
