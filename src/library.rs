//! What this installation knows: runbooks, integration manifests and
//! notice templates, bundled and from the configured folders, all validated
//! together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::integrations::Catalog;
use crate::notices::NoticeTemplates;
use crate::runbook::{self, Diagnostic, Diagnostics, Known, Pos, Runbook};

#[derive(Debug, Clone)]
pub struct Library {
    pub catalog: Catalog,
    pub notices: NoticeTemplates,
    /// name -> (file, source); folder files override bundled ones.
    pub runbooks: BTreeMap<String, (String, String)>,
}

/// A runbook ready to declare.
#[derive(Debug, Clone)]
pub struct LoadedRunbook {
    pub file: String,
    pub source: String,
    pub runbook: Runbook,
}

#[derive(Debug, Clone, Default)]
pub struct Folders {
    pub runbooks: Option<PathBuf>,
    pub integrations: Option<PathBuf>,
}

impl Library {
    /// Loads manifests and templates (any problem is fatal: a runbook could
    /// not be checked against a broken catalog). Runbooks are only indexed
    /// here; `validate_runbooks` checks them.
    pub fn load(folders: &Folders) -> Result<Library, Diagnostics> {
        let catalog = Catalog::load(folders.integrations.as_deref());
        let notices = NoticeTemplates::load(
            folders
                .runbooks
                .as_ref()
                .map(|r| r.join("notices"))
                .as_deref(),
        );
        let (catalog, notices) = match (catalog, notices) {
            (Ok(c), Ok(n)) => (c, n),
            (c, n) => {
                let mut all = Diagnostics::default();
                if let Err(d) = c {
                    all.0.extend(d.0);
                }
                if let Err(d) = n {
                    all.0.extend(d.0);
                }
                return Err(all.sorted());
            }
        };
        let mut runbooks = BTreeMap::new();
        // Indexed only: `validate_runbooks` reports their problems.
        crate::bundled::load_each(
            &crate::bundled::RUNBOOK_FILES,
            folders.runbooks.as_deref(),
            |file, src, _| {
                runbooks.insert(stem(file), (file.to_string(), src.to_string()));
            },
        )?;
        Ok(Library {
            catalog,
            notices,
            runbooks,
        })
    }

    pub fn known(&self) -> Known {
        let mut k = Known::default();
        self.catalog.known(&mut k);
        k.notice_templates = self.notices.names().cloned().collect();
        let codes = crate::notices::JURISDICTIONS
            .iter()
            .map(|(c, _)| c.to_string());
        k.vocabularies
            .insert("jurisdictions".into(), codes.collect());
        let elements = crate::notices::clocks::DATA_ELEMENTS
            .iter()
            .map(|e| e.to_string());
        k.vocabularies
            .insert("data_elements".into(), elements.collect());
        k
    }

    /// Validates every indexed runbook; all problems together.
    pub fn validate_runbooks(&self) -> Result<usize, Diagnostics> {
        let known = self.known();
        let mut diags = Diagnostics::default();
        for (file, src) in self.runbooks.values() {
            if let Err(d) = runbook::load(file, src, &known) {
                diags.0.extend(d.0);
            }
        }
        if diags.is_empty() {
            Ok(self.runbooks.len())
        } else {
            Err(diags.sorted())
        }
    }

    /// The names of the runbooks it knows, sorted.
    pub fn runbook_names(&self) -> Vec<String> {
        self.runbooks.keys().cloned().collect()
    }

    /// A runbook by path (anything with a `/` or ending in .yaml that
    /// exists) or by name.
    pub fn runbook(&self, name_or_path: &str) -> Result<LoadedRunbook, Diagnostics> {
        self.find(name_or_path, true)
    }

    /// A runbook by name only: what remote callers (REST, Slack) may ask
    /// for, so a request cannot make the daemon read an arbitrary file.
    pub fn named_runbook(&self, name: &str) -> Result<LoadedRunbook, Diagnostics> {
        self.find(name, false)
    }

    fn find(&self, name_or_path: &str, paths: bool) -> Result<LoadedRunbook, Diagnostics> {
        let p = Path::new(name_or_path);
        let (file, source) = if paths && p.is_file() {
            let src = std::fs::read_to_string(p).map_err(|e| {
                Diagnostics(vec![Diagnostic::new(
                    name_or_path,
                    Pos::START,
                    format!("cannot read the runbook: {e}"),
                )])
            })?;
            (name_or_path.to_string(), src)
        } else if let Some((f, s)) = self.runbooks.get(name_or_path) {
            (f.clone(), s.clone())
        } else {
            let known: Vec<&str> = self.runbooks.keys().map(String::as_str).collect();
            let mut hint = format!("known runbooks: {}", known.join(", "));
            if let Some(m) =
                crate::source::diagnostic::did_you_mean(name_or_path, known.iter().copied())
            {
                hint.push_str(&format!("; did you mean `{m}`?"));
            }
            return Err(Diagnostics(vec![Diagnostic::new(
                name_or_path,
                Pos::START,
                if paths {
                    format!("no runbook file or runbook named \"{name_or_path}\"")
                } else {
                    format!("no runbook named \"{name_or_path}\"")
                },
            )
            .with_hint(hint)]));
        };
        let runbook = runbook::load(&file, &source, &self.known())?;
        Ok(LoadedRunbook {
            file,
            source,
            runbook,
        })
    }
}

fn stem(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file)
        .to_string()
}
