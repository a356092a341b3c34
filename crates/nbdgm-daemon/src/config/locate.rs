//! A tree of the document's values with their byte spans, deserialised from the
//! same text through `toml`'s span support (the protocol behind `toml::Spanned`).
//! Tables without a span of their own (implicit `[a]` of `[a.b]`, arrays of
//! tables) are accepted too, which `toml::Spanned` itself refuses.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::Range;

// The names `serde_spanned` (toml 0.8) uses to ask for a span.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";
const FIELDS: &[&str] = &[START, END, VALUE];
const DATETIME: &str = "$__toml_private_datetime";

pub(super) struct Node {
    span: Option<Range<usize>>,
    kind: Kind,
}

enum Kind {
    Table(Vec<(String, Node)>),
    Array(Vec<Node>),
    Leaf,
}

/// The document root.
pub(super) struct Root(Kind);

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Seg::Key(key.to_owned()));
        }
        while let Some((idx, r)) = rest.split_once(']') {
            if let Ok(i) = idx.parse() {
                out.push(Seg::Index(i));
            }
            rest = r.strip_prefix('[').unwrap_or(r);
        }
    }
    out
}

fn fmt_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Node {
    fn child(&self, seg: &Seg) -> Option<&Node> {
        match (&self.kind, seg) {
            (Kind::Table(t), Seg::Key(k)) => t.iter().find(|(n, _)| n == k).map(|(_, v)| v),
            (Kind::Array(a), Seg::Index(i)) => a.get(*i),
            _ => None,
        }
    }

    /// This node's span, else the first span below it.
    fn any_span(&self) -> Option<Range<usize>> {
        if let Some(s) = &self.span {
            return Some(s.clone());
        }
        match &self.kind {
            Kind::Table(t) => t.iter().find_map(|(_, v)| v.any_span()),
            Kind::Array(a) => a.iter().find_map(Node::any_span),
            Kind::Leaf => None,
        }
    }

    /// Deepest node whose span holds `pos`.
    fn containing(&self, pos: usize, path: &mut Vec<Seg>) -> bool {
        let children: Vec<(Seg, &Node)> = match &self.kind {
            Kind::Table(t) => t.iter().map(|(k, v)| (Seg::Key(k.clone()), v)).collect(),
            Kind::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), v))
                .collect(),
            Kind::Leaf => Vec::new(),
        };
        for (seg, child) in children {
            path.push(seg);
            if child.containing(pos, path) {
                return true;
            }
            path.pop();
        }
        self.span
            .as_ref()
            .is_some_and(|s| s.start <= pos && (pos < s.end || s.is_empty()))
    }

    /// The first value starting at or after `pos` on the same line (the value
    /// of a key whose name is at `pos`).
    fn after_on_line(
        &self,
        text: &str,
        pos: usize,
        path: &mut Vec<Seg>,
        best: &mut Option<(usize, Vec<Seg>)>,
    ) {
        if let Some(s) = &self.span {
            let same_line = s.start >= pos
                && text
                    .get(pos..s.start)
                    .is_some_and(|between| !between.contains('\n'));
            if same_line && best.as_ref().is_none_or(|(b, _)| s.start < *b) {
                *best = Some((s.start, path.clone()));
            }
        }
        match &self.kind {
            Kind::Table(t) => {
                for (k, v) in t {
                    path.push(Seg::Key(k.clone()));
                    v.after_on_line(text, pos, path, best);
                    path.pop();
                }
            }
            Kind::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    v.after_on_line(text, pos, path, best);
                    path.pop();
                }
            }
            Kind::Leaf => {}
        }
    }
}

impl Root {
    fn children(&self) -> &[(String, Node)] {
        match &self.0 {
            Kind::Table(t) => t,
            _ => &[],
        }
    }

    /// Span of the value at `path`, else of its nearest ancestor that is in the
    /// document.
    pub(super) fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let segs = parse_path(path);
        let Some((Seg::Key(first), rest)) = segs.split_first() else {
            return None;
        };
        let (_, top) = self.children().iter().find(|(k, _)| k == first)?;
        let mut cur: &Node = top;
        let mut found = cur.any_span();
        for seg in rest {
            match cur.child(seg) {
                Some(next) => {
                    cur = next;
                    found = cur.any_span().or(found);
                }
                None => break,
            }
        }
        found
    }

    /// Key path of the value at byte `pos`, or of the key written at `pos`.
    pub(super) fn path_at(&self, text: &str, pos: usize) -> Option<String> {
        let mut path = Vec::new();
        for (k, v) in self.children() {
            path.push(Seg::Key(k.clone()));
            if v.containing(pos, &mut path) {
                return Some(fmt_path(&path));
            }
            path.pop();
        }
        let mut best = None;
        for (k, v) in self.children() {
            path.push(Seg::Key(k.clone()));
            v.after_on_line(text, pos, &mut path, &mut best);
            path.pop();
        }
        best.map(|(_, p)| fmt_path(&p))
    }
}

/// For text that is not TOML: the last `[table]` header before `pos`, plus the
/// `key =` on the error's line, if any.
pub(super) fn guess_key(text: &str, pos: usize) -> String {
    let before = text.get(..pos.min(text.len())).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let table = before
        .get(..line_start)
        .unwrap_or_default()
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
        .filter(|t| !t.contains(['"', '\'']))
        .unwrap_or_default();
    let line = text
        .get(line_start..)
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        })
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key.to_owned(),
        (false, false) => format!("{table}.{key}"),
    }
}

// --- deserialisation -------------------------------------------------

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, FIELDS, NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor).map(Root)
    }
}

struct KindDe(Kind);

impl<'de> Deserialize<'de> for KindDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor).map(KindDe)
    }
}

fn table_rest<'de, A: MapAccess<'de>>(first: String, mut map: A) -> Result<Kind, A::Error> {
    if first == DATETIME {
        map.next_value::<IgnoredAny>()?;
        return Ok(Kind::Leaf);
    }
    let mut entries = vec![(first, map.next_value::<Node>()?)];
    while let Some(k) = map.next_key::<String>()? {
        let v = map.next_value::<Node>()?;
        entries.push((k, v));
    }
    Ok(Kind::Table(entries))
}

macro_rules! leaves {
    ($out:expr; $($f:ident: $t:ty),*) => {
        $(fn $f<E: de::Error>(self, _: $t) -> Result<Self::Value, E> { Ok($out) })*
    };
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    leaves!(Node { span: None, kind: Kind::Leaf };
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Node {
                span: None,
                kind: Kind::Table(Vec::new()),
            });
        };
        if first != START {
            return table_rest(first, map).map(|kind| Node { span: None, kind });
        }
        let start: usize = map.next_value()?;
        let (mut end, mut kind) = (start, Kind::Leaf);
        while let Some(k) = map.next_key::<String>()? {
            if k == END {
                end = map.next_value()?;
            } else if k == VALUE {
                kind = map.next_value::<KindDe>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Node {
            span: Some(start..end.max(start)),
            kind,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
        KindVisitor
            .visit_seq(seq)
            .map(|kind| Node { span: None, kind })
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    leaves!(Kind::Leaf;
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        match map.next_key::<String>()? {
            Some(first) => table_rest(first, map),
            None => Ok(Kind::Table(Vec::new())),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Array(items))
    }
}
