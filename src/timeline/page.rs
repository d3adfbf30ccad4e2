//! The pages for people, rendered with handlebars from templates compiled
//! into the binary (no external assets: the pages work offline, from a
//! saved file, and with JavaScript off). Every value is HTML-escaped by the
//! registry; only the stylesheet and the refresh script, both ours, are
//! written raw.

use std::sync::OnceLock;

use handlebars::Handlebars;
use serde::Serialize;

use super::review::Review;

pub const STYLE: &str = include_str!("templates/style.css");
pub const SCRIPT: &str = include_str!("templates/refresh.js");

const TEMPLATES: &[(&str, &str)] = &[
    ("incident", include_str!("templates/incident.hbs")),
    ("index", include_str!("templates/index.hbs")),
    ("gantt", include_str!("templates/gantt.hbs")),
    ("when", include_str!("templates/when.hbs")),
];

/// Compiled once; the templates are part of the binary and a test renders
/// each, so a failure here is a broken build, not bad input.
fn registry() -> &'static Handlebars<'static> {
    static R: OnceLock<Handlebars<'static>> = OnceLock::new();
    R.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.set_prevent_indent(true);
        for (name, src) in TEMPLATES {
            hb.register_template_string(name, src.trim_end_matches('\n'))
                .unwrap_or_else(|e| panic!("bundled page template {name} is invalid: {e}"));
        }
        hb
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageMode {
    /// Refresh in place while the incident runs (the daemon's page).
    pub refresh: bool,
    /// A file for people without access to the daemon: no links into it.
    pub standalone: bool,
}

impl PageMode {
    /// The daemon's page.
    pub const LIVE: PageMode = PageMode {
        refresh: true,
        standalone: false,
    };
    /// A file: `timeline --format html`, the download link.
    pub const STANDALONE: PageMode = PageMode {
        refresh: false,
        standalone: true,
    };
}

fn render(name: &str, data: &impl Serialize) -> Result<String, handlebars::RenderError> {
    registry().render(name, data)
}

/// One incident's review page.
pub fn incident(review: &Review, mode: PageMode) -> Result<String, handlebars::RenderError> {
    #[derive(Serialize)]
    struct Page<'a> {
        #[serde(flatten)]
        review: &'a Review,
        refresh: bool,
        standalone: bool,
        style: &'static str,
        script: &'static str,
    }
    render(
        "incident",
        &Page {
            review,
            refresh: mode.refresh && review.incident.open,
            standalone: mode.standalone,
            style: STYLE,
            script: SCRIPT,
        },
    )
}

/// The index: incidents and the KPI chart, from what `index` prepared.
pub fn index(data: &super::overview::Overview) -> Result<String, handlebars::RenderError> {
    #[derive(Serialize)]
    struct Page<'a> {
        #[serde(flatten)]
        overview: &'a super::overview::Overview,
        style: &'static str,
    }
    render(
        "index",
        &Page {
            overview: data,
            style: STYLE,
        },
    )
}
