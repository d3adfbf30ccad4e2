//! What every answer says about itself: the pages' Content-Security-Policy
//! (only our own stylesheet and refresh script run, pinned by hash; no
//! framing; fetches only back to this daemon), `nosniff`, and
//! `no-store`, since every page and answer carries incident data that
//! must not linger in a shared cache or a browser's history.

use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;

fn hash(source: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, source.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let plan_style = crate::timeline::PAGE_STYLE
        .trim_start_matches("<style>")
        .trim_end_matches("</style>");
    let policy = format!(
        "default-src 'none'; style-src {} {}; script-src {}; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        hash(crate::timeline::page::STYLE),
        hash(plan_style),
        hash(crate::timeline::page::SCRIPT),
    );
    HeaderValue::from_str(&policy).expect("a CSP is ASCII")
});

pub(super) async fn security(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_pins_the_inline_style_and_script_it_serves() {
        let csp = super::CSP.to_str().unwrap();
        assert!(csp.contains(&super::hash(crate::timeline::page::SCRIPT)));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    }
}
