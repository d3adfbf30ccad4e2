//! The runbooks the engine has parsed, kept by their source.
//!
//! Every drive of an incident (its first run, each resume, each decision
//! that runs it on) starts from the runbook stored with it. Parsing and
//! validating it again took 150 to 320 us of the 0.9 ms between a
//! declaration's 201 and its first call (`bench declare`). The same file
//! and source against the same library always give the same runbook, so
//! a few recent ones are kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::runbook::Runbook;

/// How many runbooks are kept: a deployment runs a handful.
const KEPT: usize = 16;

#[derive(Default)]
pub(crate) struct Parsed {
    recent: Mutex<VecDeque<Entry>>,
}

struct Entry {
    file: String,
    source: String,
    runbook: Arc<Runbook>,
}

impl Entry {
    fn is(&self, file: &str, source: &str) -> bool {
        self.file == file && self.source == source
    }
}

impl Parsed {
    /// The runbook parsed from `file` holding `source`, if one is kept.
    pub(crate) fn get(&self, file: &str, source: &str) -> Option<Arc<Runbook>> {
        let recent = self.recent.lock().expect("parsed runbooks");
        recent
            .iter()
            .find(|e| e.is(file, source))
            .map(|e| e.runbook.clone())
    }

    /// Keeps `runbook`, parsed from `file` holding `source`, forgetting the
    /// oldest beyond `KEPT`.
    pub(crate) fn keep(&self, file: &str, source: &str, runbook: Arc<Runbook>) {
        let mut recent = self.recent.lock().expect("parsed runbooks");
        if recent.iter().any(|e| e.is(file, source)) {
            return;
        }
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(Entry {
            file: file.to_string(),
            source: source.to_string(),
            runbook,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook(name: &str) -> Arc<Runbook> {
        let src = format!("version: 1\nname: {name}\nsteps:\n  - id: a\n    wait: 1s\n");
        Arc::new(crate::runbook::load(&format!("{name}.yaml"), &src, &Default::default()).unwrap())
    }

    #[test]
    fn a_runbook_is_found_by_its_file_and_whole_source_and_the_oldest_goes() {
        let p = Parsed::default();
        p.keep("a.yaml", "source a", runbook("a"));
        assert_eq!(p.get("a.yaml", "source a").unwrap().name, "a");
        assert!(p.get("b.yaml", "source a").is_none(), "another file");
        assert!(p.get("a.yaml", "source b").is_none(), "another source");
        assert!(p.get("a.yaml", "source ").is_none(), "a prefix of it");
        for i in 0..KEPT {
            p.keep(&format!("{i}.yaml"), "s", runbook(&format!("r{i}")));
        }
        assert!(
            p.get("a.yaml", "source a").is_none(),
            "the oldest is forgotten"
        );
        assert_eq!(p.get("0.yaml", "s").unwrap().name, "r0");
        assert_eq!(p.recent.lock().unwrap().len(), KEPT);
    }
}
