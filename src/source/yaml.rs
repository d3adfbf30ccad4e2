//! The one place that parses YAML.
//!
//! serde_yaml (frozen at 0.9.34) decides what a document *means*; it gives
//! positions only for syntax errors. Semantic checks (an unknown `needs`, a
//! cycle) must point at a node too, so a second, event-level pass with
//! saphyr-parser records where every key and value starts. Keeping both here
//! makes a later swap of YAML crates a one-file change.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_yaml::Value;

use crate::source::diagnostic::{Diagnostic, Pos};

/// A segment of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root, e.g. `steps[2].needs[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct YPath(pub Vec<Seg>);

impl YPath {
    pub fn root() -> Self {
        YPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.0.clone();
        p.push(Seg::Key(k.to_string()));
        YPath(p)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.0.clone();
        p.push(Seg::Index(i));
        YPath(p)
    }
}

impl std::fmt::Display for YPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a node starts: the value itself, and for map entries, its key.
#[derive(Debug, Clone, Copy, Default)]
struct NodeSpan {
    key: Option<Pos>,
    value: Pos,
    /// For scalars: how it is written, which decides where its text starts.
    style: Option<ScalarStyle>,
}

/// A parsed document plus the position of every node in it.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    pub file: String,
    pub value: Value,
    spans: HashMap<YPath, NodeSpan>,
}

/// Where serde_yaml says an error is (syntax and typed-deserialization
/// errors carry it).
pub fn error_pos(e: &serde_yaml::Error) -> Pos {
    e.location()
        .map(|l| Pos {
            line: l.line(),
            col: l.column(),
        })
        .unwrap_or(Pos::START)
}

/// A typed-deserialization error (config files): located, with serde_yaml's
/// own " at line L column C" suffix dropped since the prefix says where.
pub fn typed_error(file: &str, what: &str, e: &serde_yaml::Error) -> Diagnostic {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    Diagnostic::new(file, error_pos(e), format!("invalid {what}: {msg}"))
}

impl YamlDoc {
    /// Parses `src`. A syntax error comes back as one located diagnostic.
    pub fn parse(file: &str, src: &str) -> Result<YamlDoc, Diagnostic> {
        bounded(file, src)?;
        let value: Value = match serde_yaml::from_str(src) {
            Ok(v) => v,
            Err(e) => return Err(syntax_error(file, src, &e)),
        };
        let (spans, _) = spans_of(src);
        Ok(YamlDoc {
            file: file.to_string(),
            value,
            spans,
        })
    }

    /// Position of the value at `path`, or of its nearest located ancestor.
    pub fn pos(&self, path: &YPath) -> Pos {
        let mut p = path.0.clone();
        loop {
            if let Some(s) = self.spans.get(&YPath(p.clone())) {
                return s.value;
            }
            if p.pop().is_none() {
                return Pos::START;
            }
        }
    }

    /// Position of the key of the map entry at `path` (falls back to the value).
    pub fn key_pos(&self, path: &YPath) -> Pos {
        match self.spans.get(path) {
            Some(NodeSpan { key: Some(k), .. }) => *k,
            _ => self.pos(path),
        }
    }

    /// Position of (line, col) inside the string scalar at `path`, for
    /// errors found inside a template. Exact for plain and quoted scalars
    /// on one line (without escapes) and for literal block scalars (`|`),
    /// which start at their first content line and indent every line alike.
    /// Elsewhere (later lines of quoted or folded scalars) it is the right
    /// line at best.
    pub fn pos_in_scalar(&self, path: &YPath, line: usize, col: usize) -> Pos {
        let start = self.pos(path);
        let style = self.spans.get(path).and_then(|s| s.style);
        match style {
            Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) if line == 1 => Pos {
                line: start.line,
                col: start.col + col,
            },
            Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) => Pos {
                line: start.line + line - 1,
                col,
            },
            _ => Pos {
                line: start.line + line - 1,
                col: start.col + col - 1,
            },
        }
    }

    pub fn error(&self, path: &YPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.pos(path), message)
    }

    pub fn key_error(&self, path: &YPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.key_pos(path), message)
    }
}

/// A diagnostic for a document serde_yaml rejects.
fn syntax_error(file: &str, src: &str, e: &serde_yaml::Error) -> Diagnostic {
    let msg = e.to_string();
    // serde_yaml: "[PATH: ]duplicate entry with key \"k\"", located at the map, not the key.
    if let Some((_, key)) = msg.split_once("duplicate entry with key ") {
        if let (_, Some(dup)) = spans_of(src) {
            let key = key.split(" at line ").next().unwrap_or(key);
            return Diagnostic::new(
                file,
                dup.second,
                format!("invalid YAML: duplicate key {key}"),
            )
            .with_hint(format!(
                "first defined on line {}; a key may appear once in a map",
                dup.first.line
            ));
        }
    }
    let pos = error_pos(e);
    // libyaml: "PROBLEM at line L column C[, CONTEXT[ at line L2 column C2]]".
    // The prefix already says where the problem is; the context says what
    // was open, often where the real mistake is (an unclosed quote or bracket).
    let (problem, context) = match msg.split_once(" at line ") {
        Some((problem, rest)) => (problem, rest.split_once(", ").map(|(_, c)| c)),
        None => (msg.as_str(), None),
    };
    let d = Diagnostic::new(file, pos, format!("invalid YAML: {problem}"));
    match context {
        Some(c) => d.with_hint(c),
        None => d,
    }
}

/// The first key that appears twice in one map.
struct Duplicate {
    first: Pos,
    second: Pos,
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

enum Frame {
    Seq {
        path: YPath,
        next: usize,
    },
    Map {
        path: YPath,
        pending_key: Option<(String, Pos)>,
    },
}

/// The largest file quench reads: a runbook, manifest or rule table is a
/// few dozen KiB; past this, parsing is a way to tie up the daemon.
pub const MAX_BYTES: usize = 1 << 20;
/// The deepest nesting of maps and lists: a runbook needs about six.
/// Parsing a document nested 100,000 deep takes minutes (every path is as
/// long as the nesting), so deeper ones are refused before they are parsed.
pub const MAX_DEPTH: usize = 64;

/// Refuses a source too large or too deeply nested to parse, naming where.
/// The depth scan stops at the first node past the limit, so it costs
/// little however deep the document goes.
fn bounded(file: &str, src: &str) -> Result<(), Diagnostic> {
    if src.len() > MAX_BYTES {
        return Err(Diagnostic::new(
            file,
            Pos::START,
            format!(
                "the file is {} bytes; at most {MAX_BYTES} (1 MiB)",
                src.len()
            ),
        )
        .with_hint("split it: one runbook per file, one integration per manifest"));
    }
    let too_deep = |pos: Pos| {
        Diagnostic::new(
            file,
            pos,
            format!("nested more than {MAX_DEPTH} levels deep"),
        )
        .with_hint("runbooks and manifests need a handful of levels; flatten this value")
    };
    let mut parser = Parser::new_from_str(src);
    let mut depth = 0usize;
    loop {
        match parser.next_event() {
            Some(Ok((event, span))) => match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(too_deep(pos_of(&span)));
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
                _ => {}
            },
            // The scanner has a nesting limit of its own, met while it
            // reads ahead in a flow collection.
            Some(Err(e)) if e.info().contains("recursion limit") => {
                let m = e.marker();
                return Err(too_deep(Pos {
                    line: m.line(),
                    col: m.col() + 1,
                }));
            }
            // Other syntax errors are serde_yaml's to explain.
            Some(Err(_)) | None => return Ok(()),
        }
    }
}

/// Walks the event stream and records the start of every key and value.
/// Best effort: on a scan error the map is simply partial, since serde_yaml
/// has already accepted the document.
fn spans_of(src: &str) -> (HashMap<YPath, NodeSpan>, Option<Duplicate>) {
    let mut spans: HashMap<YPath, NodeSpan> = HashMap::new();
    let mut dup: Option<Duplicate> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(src);
    let mut docs = 0;

    // The path the next node takes, given the innermost open container.
    // Returns None when the node is a map key (recorded when its value comes).
    fn place(
        stack: &mut [Frame],
        spans: &mut HashMap<YPath, NodeSpan>,
        dup: &mut Option<Duplicate>,
        pos: Pos,
        scalar: Option<&str>,
    ) -> Option<YPath> {
        match stack.last_mut() {
            None => {
                spans.insert(
                    YPath::root(),
                    NodeSpan {
                        key: None,
                        value: pos,
                        style: None,
                    },
                );
                Some(YPath::root())
            }
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                spans.insert(
                    p.clone(),
                    NodeSpan {
                        key: None,
                        value: pos,
                        style: None,
                    },
                );
                Some(p)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                None => {
                    // A key. Complex (non-scalar) keys get a placeholder name.
                    *pending_key = Some((scalar.unwrap_or("?").to_string(), pos));
                    None
                }
                Some((k, kpos)) => {
                    let p = path.key(&k);
                    let old = spans.insert(
                        p.clone(),
                        NodeSpan {
                            key: Some(kpos),
                            value: pos,
                            style: None,
                        },
                    );
                    if let (
                        Some(NodeSpan {
                            key: Some(first), ..
                        }),
                        None,
                    ) = (old, &dup)
                    {
                        *dup = Some(Duplicate {
                            first,
                            second: kpos,
                        });
                    }
                    Some(p)
                }
            },
        }
    }

    while let Some(Ok((event, span))) = parser.next_event() {
        let pos = pos_of(&span);
        match event {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    break;
                }
            }
            Event::Scalar(text, style, ..) => {
                let p = place(&mut stack, &mut spans, &mut dup, pos, Some(&text));
                if let Some(span) = p.and_then(|p| spans.get_mut(&p)) {
                    span.style = Some(style);
                }
            }
            Event::Alias(_) => {
                place(&mut stack, &mut spans, &mut dup, pos, None);
            }
            Event::SequenceStart(..) => {
                let p = place(&mut stack, &mut spans, &mut dup, pos, None).unwrap_or_default();
                stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingStart(..) => {
                let p = place(&mut stack, &mut spans, &mut dup, pos, None).unwrap_or_default();
                stack.push(Frame::Map {
                    path: p,
                    pending_key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    (spans, dup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_block_and_flow_positions() {
        let src = "a: 1\nsteps:\n  - id: x\n    with: { k: v, n: [1, 2] }\n";
        let doc = YamlDoc::parse("f.yaml", src).unwrap();
        let steps = YPath::root().key("steps");
        assert_eq!(doc.key_pos(&steps), Pos { line: 2, col: 1 });
        let id = steps.index(0).key("id");
        assert_eq!(doc.key_pos(&id), Pos { line: 3, col: 5 });
        assert_eq!(doc.pos(&id), Pos { line: 3, col: 9 });
        let k = steps.index(0).key("with").key("k");
        assert_eq!(doc.pos(&k), Pos { line: 4, col: 16 });
        let n1 = steps.index(0).key("with").key("n").index(1);
        assert_eq!(doc.pos(&n1), Pos { line: 4, col: 26 });
    }

    #[test]
    fn positions_inside_scalars() {
        // A block scalar whose text starts with a quote or a bar is still a block.
        let src =
            "a:\n  block: |\n    \"Hello\"\n      {{x}}\n  b: 1\n  q: 'x {{y}}'\n  p: x {{y}}\n";
        let doc = YamlDoc::parse("f.yaml", src).unwrap();
        let a = YPath::root().key("a");
        let block = a.key("block");
        assert_eq!(doc.pos_in_scalar(&block, 1, 2), Pos { line: 3, col: 6 });
        assert_eq!(doc.pos_in_scalar(&block, 2, 3), Pos { line: 4, col: 7 });
        assert_eq!(
            doc.pos_in_scalar(&a.key("q"), 1, 3),
            Pos { line: 6, col: 9 }
        );
        assert_eq!(
            doc.pos_in_scalar(&a.key("p"), 1, 3),
            Pos { line: 7, col: 8 }
        );
    }

    #[test]
    fn syntax_error_is_located() {
        let err = YamlDoc::parse("f.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.file, "f.yaml");
        assert!(
            err.line >= 1 && err.message.starts_with("invalid YAML"),
            "{err}"
        );
    }
}
