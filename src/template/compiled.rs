//! Each template source compiled once per process. Runbooks, manifests
//! and notice templates hold a bounded set of them (the bundled ones about
//! 400), rendered again for every item of a fan-out and every call, so the
//! parse is paid once; past `MAX` distinct sources (a loader gone wrong)
//! templates are compiled per use rather than held forever.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use handlebars::{Template, TemplateError};

const MAX: usize = 16_384;

fn cache() -> &'static RwLock<HashMap<Box<str>, Arc<Template>>> {
    static CACHE: OnceLock<RwLock<HashMap<Box<str>, Arc<Template>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The compiled `src`. A template that does not compile is not cached:
/// it fails its render (each time) with the compile error.
pub(super) fn template(src: &str) -> Result<Arc<Template>, TemplateError> {
    // A poisoned lock only means a panic elsewhere while holding it; the
    // map itself is always whole (inserts are single calls).
    if let Some(t) = cache().read().unwrap_or_else(|p| p.into_inner()).get(src) {
        return Ok(t.clone());
    }
    let compiled = Arc::new(Template::compile(src)?);
    let mut map = cache().write().unwrap_or_else(|p| p.into_inner());
    if map.len() < MAX {
        map.entry(src.into()).or_insert_with(|| compiled.clone());
    }
    Ok(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_compiled_once_and_shared() {
        let src = "{{inputs.tool}} compiled once, test-only source";
        let a = template(src).unwrap();
        let b = template(src).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(template("{{#if}}").is_err());
    }
}
