//! Runbooks: the YAML format, its checked model, and validation with
//! `file:line:col` diagnostics.

pub mod check;
pub mod diagnostic;
pub mod graph;
pub mod inputs;
pub mod load;
pub mod model;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Pos};
pub use load::{load, Known};
pub use model::*;
