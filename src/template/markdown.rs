//! Markdown as a target: values escaped so they stay text, and the
//! escapes undone for plain-text exports.

/// Text from a runbook, an input or a platform stays text: no table cell
/// ends early, no emphasis, link or HTML tag appears that nobody wrote.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Markdown document rendered by `render_markdown` as plain text: the
/// escapes its values got are undone (for text, e-mail and HTML `<pre>`).
pub fn markdown_to_text(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut chars = md.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| "\\`*_[]|#~".contains(*n)) => {
                out.extend(chars.next());
            }
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
