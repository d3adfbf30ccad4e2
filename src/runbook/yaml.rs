//! The one place that parses YAML.
//!
//! serde_yaml (frozen at 0.9.34) decides what a document *means*; it gives
//! positions only for syntax errors. Semantic checks (an unknown `needs`, a
//! cycle) must point at a node too, so a second, event-level pass with
//! saphyr-parser records where every key and value starts. Keeping both here
//! makes a later swap of YAML crates a one-file change.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};
use serde_yaml::Value;

use super::diagnostic::{Diagnostic, Pos};

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
}

/// A parsed document plus the position of every node in it.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    pub file: String,
    pub value: Value,
    spans: HashMap<YPath, NodeSpan>,
    lines: Vec<String>,
}

impl YamlDoc {
    /// Parses `src`. A syntax error comes back as one located diagnostic.
    pub fn parse(file: &str, src: &str) -> Result<YamlDoc, Diagnostic> {
        let value: Value = match serde_yaml::from_str(src) {
            Ok(v) => v,
            Err(e) => {
                let pos = e
                    .location()
                    .map(|l| Pos {
                        line: l.line(),
                        col: l.column(),
                    })
                    .unwrap_or(Pos::START);
                let msg = e.to_string();
                // serde_yaml appends " at line L column C"; the prefix already says where.
                let msg = match msg.find(" at line ") {
                    Some(i) => msg[..i].to_string(),
                    None => msg,
                };
                return Err(Diagnostic::new(file, pos, format!("invalid YAML: {msg}")));
            }
        };
        Ok(YamlDoc {
            file: file.to_string(),
            value,
            spans: spans_of(src),
            lines: src.lines().map(str::to_string).collect(),
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
    /// errors found inside a template. Exact for one-line plain or quoted
    /// scalars and for block scalars (`|`, `>`); folded flow scalars fall
    /// back to the line the template's line is on.
    pub fn pos_in_scalar(&self, path: &YPath, line: usize, col: usize) -> Pos {
        let start = self.pos(path);
        let first = self
            .lines
            .get(start.line - 1)
            .and_then(|l| l.chars().nth(start.col - 1));
        match first {
            Some('|') | Some('>') => {
                let l = start.line + line;
                let indent = self
                    .lines
                    .get(l - 1)
                    .map(|s| s.len() - s.trim_start().len())
                    .unwrap_or(0);
                Pos {
                    line: l,
                    col: indent + col,
                }
            }
            Some('"') | Some('\'') if line == 1 => Pos {
                line: start.line,
                col: start.col + col,
            },
            _ if line == 1 => Pos {
                line: start.line,
                col: start.col + col - 1,
            },
            _ => Pos {
                line: start.line + line - 1,
                col,
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

/// Walks the event stream and records the start of every key and value.
/// Best effort: on a scan error the map is simply partial, since serde_yaml
/// has already accepted the document.
fn spans_of(src: &str) -> HashMap<YPath, NodeSpan> {
    let mut spans: HashMap<YPath, NodeSpan> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(src);
    let mut docs = 0;

    // The path the next node takes, given the innermost open container.
    // Returns None when the node is a map key (recorded when its value comes).
    fn place(
        stack: &mut [Frame],
        spans: &mut HashMap<YPath, NodeSpan>,
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
                    spans.insert(
                        p.clone(),
                        NodeSpan {
                            key: Some(kpos),
                            value: pos,
                        },
                    );
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
            Event::Scalar(text, ..) => {
                place(&mut stack, &mut spans, pos, Some(&text));
            }
            Event::Alias(_) => {
                place(&mut stack, &mut spans, pos, None);
            }
            Event::SequenceStart(..) => {
                let p = place(&mut stack, &mut spans, pos, None).unwrap_or_default();
                stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingStart(..) => {
                let p = place(&mut stack, &mut spans, pos, None).unwrap_or_default();
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
    spans
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
    fn syntax_error_is_located() {
        let err = YamlDoc::parse("f.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.file, "f.yaml");
        assert!(
            err.line >= 1 && err.message.starts_with("invalid YAML"),
            "{err}"
        );
    }
}
