//! Where a key is written in the configuration text, from `toml_edit`'s spans (an
//! [`ImDocument`] keeps the byte span of every key and table header): a key path such as
//! `check[1].ports` to its line, and a byte position (of a `toml` error) to its key path.

use toml_edit::{ImDocument, Item, Table};

/// Longest run of lines dropped, from the end, to find a prefix of a text with a syntax
/// error that parses (the tables in effect before the error).
const MAX_BACKOFF_LINES: usize = 64;

/// The 1-based line of byte `pos`.
pub(super) fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `check[1]` → (`check`, Some(1)).
fn step(s: &str) -> (&str, Option<usize>) {
    match s.strip_suffix(']').and_then(|r| r.split_once('[')) {
        Some((name, n)) => match n.parse() {
            Ok(n) => (name, Some(n)),
            Err(_) => (s, None),
        },
        None => (s, None),
    }
}

/// The line of a key path such as `check[1].ports` or `http.listen`: the key's own line,
/// else the header line of the deepest table of the path that is written (0 = unknown).
pub(super) fn line_of_key(text: &str, path: &str) -> usize {
    let Ok(doc) = ImDocument::parse(text) else {
        return 0;
    };
    let mut table: &Table = doc.as_table();
    let mut line = 0;
    for part in path.split('.') {
        let (name, index) = step(part);
        let Some((key, item)) = table.get_key_value(name) else {
            return line;
        };
        let next = match (item, index) {
            (Item::Table(t), None) => Some(t),
            (Item::ArrayOfTables(a), Some(n)) => a.get(n),
            _ => None,
        };
        match next {
            Some(t) => {
                table = t;
                if let Some(span) = t.span() {
                    line = line_of(text, span.start);
                }
            }
            None => return key.span().map_or(line, |s| line_of(text, s.start)),
        }
    }
    line
}

/// Every written table header of `table` and below: (byte offset, key path, table).
fn headers<'a>(table: &'a Table, path: &str, out: &mut Vec<(usize, String, &'a Table)>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    for (k, item) in table.iter() {
        match item {
            Item::Table(t) => {
                let p = join(k);
                if let Some(span) = t.span() {
                    out.push((span.start, p.clone(), t));
                }
                headers(t, &p, out);
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let p = format!("{}[{i}]", join(k));
                    if let Some(span) = t.span() {
                        out.push((span.start, p.clone(), t));
                    }
                    headers(t, &p, out);
                }
            }
            _ => {}
        }
    }
}

/// The key path at byte `pos` of `doc`'s text: the table whose header comes last before
/// `pos`, and the key of that table written on the line of `pos` (if any).
fn path_at(doc: &ImDocument<&str>, text: &str, pos: usize) -> String {
    let line_no = line_of(text, pos);
    let mut all = vec![(0, String::new(), doc.as_table())];
    headers(doc.as_table(), "", &mut all);
    let (_, table_path, table) = all
        .into_iter()
        .filter(|(start, _, _)| *start <= pos)
        .max_by_key(|(start, _, _)| *start)
        .unwrap_or((0, String::new(), doc.as_table()));
    let key = table.iter().find_map(|(k, _)| {
        let (key, _) = table.get_key_value(k)?;
        let span = key.span()?;
        (line_of(text, span.start) == line_no).then(|| k.to_owned())
    });
    match key {
        Some(k) if table_path.is_empty() => k,
        Some(k) => format!("{table_path}.{k}"),
        None => table_path,
    }
}

/// The line of `pos` and the key path there (`check[1].interval`). A text that does not
/// parse (a syntax error at `pos`) is read up to a line before the error: the path is then
/// that of the table in effect there.
pub(super) fn key_at(text: &str, pos: usize) -> (usize, String) {
    let line_no = line_of(text, pos);
    if let Ok(doc) = ImDocument::parse(text) {
        return (line_no, path_at(&doc, text, pos));
    }
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .filter(|&s| s <= pos.min(text.len()))
        .collect();
    for &end in starts.iter().rev().take(MAX_BACKOFF_LINES) {
        let Some(prefix) = text.get(..end) else {
            continue;
        };
        if let Ok(doc) = ImDocument::parse(prefix) {
            let table = path_at(&doc, prefix, end);
            let path = match key_written_on(text, line_no) {
                Some(k) if table.is_empty() => k,
                Some(k) => format!("{table}.{k}"),
                None => table,
            };
            return (line_no, path);
        }
    }
    (line_no, String::new())
}

/// The key of a `key = value` line (`toml_edit`'s key grammar; dotted keys joined).
fn key_written_on(text: &str, line_no: usize) -> Option<String> {
    let line = text.lines().nth(line_no.checked_sub(1)?)?;
    let (k, _) = line.split_once('=')?;
    let keys = toml_edit::Key::parse(k.trim()).ok()?;
    let names: Vec<&str> = keys.iter().map(|k| k.get()).collect();
    (!names.is_empty()).then(|| names.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[store]\nurl = \"x\"\n\n[[check]]\nname = \"a\"\n[[check]]\nname = \"b\"\nports = [\"1/x\"]\n\n[[check.maintenance]]\nstart = \"25:00\"\n";

    #[test]
    fn key_paths_to_lines() {
        assert_eq!(line_of_key(TEXT, "check[1].ports"), 8);
        assert_eq!(line_of_key(TEXT, "store.url"), 2);
        assert_eq!(line_of_key(TEXT, "check[1].maintenance[0].start"), 11);
        // A key not written: the line of its table's header.
        assert_eq!(line_of_key(TEXT, "check[0].interval"), 4);
        assert_eq!(line_of_key(TEXT, "check[1]"), 6);
        assert_eq!(line_of_key(TEXT, "sink[0].type"), 0);
        assert_eq!(line_of_key("not toml [", "store.url"), 0);
    }

    #[test]
    fn positions_to_key_paths() {
        let at = |needle: &str| key_at(TEXT, TEXT.find(needle).unwrap());
        assert_eq!(at("ports"), (8, "check[1].ports".into()));
        assert_eq!(at("url"), (2, "store.url".into()));
        assert_eq!(
            at("\"25:00\""),
            (11, "check[1].maintenance[0].start".into())
        );
        assert_eq!(
            at("[[check.maintenance]]"),
            (10, "check[1].maintenance[0]".into())
        );
        // A syntax error: the table in effect before it.
        let bad = "[[check]]\nname = \"a\"\ntargets = [\"198.51.100.0/16\"\n";
        let (line, path) = key_at(bad, bad.len());
        assert_eq!((line, path.as_str()), (4, "check[0]"));
        let bad = "[[check]]\nname = \"a\"\ninterval = 5x\n";
        let (line, path) = key_at(bad, bad.find("5x").unwrap());
        assert_eq!((line, path.as_str()), (3, "check[0].interval"));
    }
}
