//! Located YAML for every file kind quench reads (runbooks, manifests,
//! the rule table, the config, the approved-tools registry): parsing with
//! positions and limits (`yaml`), checked reading that collects every
//! problem (`check`), and diagnostics that name `file:line:col` and the
//! fix (`diagnostic`), and the duration syntax they share (`duration`).

pub mod check;
pub mod diagnostic;
pub mod duration;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Pos};
