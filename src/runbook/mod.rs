//! Runbooks: the YAML format, its checked model, and validation with
//! `file:line:col` diagnostics.

pub mod graph;
pub mod inputs;
pub mod load;
pub mod model;

pub use crate::source::{Diagnostic, Diagnostics, Pos};
pub use load::{load, Known};
pub use model::*;
