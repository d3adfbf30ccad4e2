//! Templates, in one place: what a template reads and calls, checked at
//! load (`analysis`); compiling each source once and rendering strictly
//! (`render`, `compiled`); quench's helpers, `verdict` holding the
//! approved-tools registry it judges against (`helpers`); Markdown as a
//! target (`markdown`).

pub mod analysis;
mod compiled;
mod helpers;
pub mod markdown;
mod render;

pub use analysis::{analyse, Analysis, VarRef, HELPERS};
pub use markdown::markdown_to_text;
pub use render::{
    encode_segment, lookup, plain, render_markdown, render_path, render_str, render_value, take,
    truthy, AsScope, RenderError, Scope, Templates,
};
