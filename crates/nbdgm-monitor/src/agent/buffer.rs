//! The agent's bounded queue of cycles not yet accepted by the central monitor: capped in
//! cycles and in bytes (the JSON size); when full the oldest cycle is dropped and counted.
//! Saved to and loaded from the state directory across restarts.

use super::proto::Cycle;
use std::collections::VecDeque;
use std::path::Path;

/// Default most cycles kept.
pub const DEFAULT_CYCLES: usize = 10_000;
/// Default most bytes kept (JSON).
pub const DEFAULT_BYTES: usize = 64 << 20;

/// Cycles waiting for the central, oldest first.
#[derive(Debug)]
pub struct Buffer {
    items: VecDeque<(Cycle, usize)>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
    /// Cycles dropped because the buffer was full (since start).
    pub dropped: u64,
}

impl Buffer {
    pub fn new(max_items: usize, max_bytes: usize) -> Buffer {
        Buffer {
            items: VecDeque::new(),
            bytes: 0,
            max_items: max_items.max(1),
            max_bytes: max_bytes.max(1),
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Add a cycle at the end; drops the oldest ones while over a cap (a cycle larger
    /// than the byte cap alone is dropped itself). Returns the number dropped.
    pub fn push(&mut self, c: Cycle) -> u64 {
        let size = serde_json::to_vec(&c).map_or(usize::MAX, |v| v.len());
        if size > self.max_bytes {
            self.dropped += 1;
            return 1;
        }
        let mut n = 0;
        while self.items.len() >= self.max_items || self.bytes + size > self.max_bytes {
            let Some((_, s)) = self.items.pop_front() else {
                break;
            };
            self.bytes -= s;
            n += 1;
        }
        self.items.push_back((c, size));
        self.bytes += size;
        self.dropped += n;
        n
    }

    /// The oldest cycles, at most `n` and at most `bytes` together (at least one).
    pub fn front(&self, n: usize, bytes: usize) -> Vec<Cycle> {
        let mut out = Vec::new();
        let mut total = 0;
        for (c, s) in self.items.iter().take(n) {
            if !out.is_empty() && total + s > bytes {
                break;
            }
            total += s;
            out.push(c.clone());
        }
        out
    }

    /// Remove the `n` oldest cycles (after the central took them).
    pub fn pop(&mut self, n: usize) {
        for _ in 0..n {
            match self.items.pop_front() {
                Some((_, s)) => self.bytes -= s,
                None => break,
            }
        }
    }

    /// Write the cycles to `path` (JSON lines, via a temporary file).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for (c, _) in &self.items {
            serde_json::to_writer(&mut f, c)?;
            f.write_all(b"\n")?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(tmp, path)
    }

    /// Append the cycles saved at `path` (bad lines skipped, caps applied); the file is
    /// removed. Returns how many were read.
    pub fn load(&mut self, path: &Path) -> std::io::Result<usize> {
        use std::io::{BufRead, Read};
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let cap = (self.max_bytes as u64).saturating_mul(2);
        let mut n = 0;
        for line in std::io::BufReader::new(f.take(cap)).lines() {
            if let Ok(c) = serde_json::from_str::<Cycle>(&line?) {
                self.push(c);
                n += 1;
            }
        }
        std::fs::remove_file(path)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(i: u32) -> Cycle {
        Cycle {
            id: format!("{i:016x}"),
            check: "c".into(),
            started: chrono::Utc::now(),
            finished: chrono::Utc::now(),
            results: Vec::new(),
        }
    }

    #[test]
    fn caps_items_and_bytes_dropping_oldest() {
        let mut b = Buffer::new(3, 1 << 20);
        for i in 0..5 {
            b.push(cycle(i));
        }
        assert_eq!((b.len(), b.dropped), (3, 2));
        assert_eq!(b.front(10, usize::MAX)[0].id, format!("{:016x}", 2));
        let one = serde_json::to_vec(&cycle(0)).unwrap().len();
        let mut b = Buffer::new(100, one * 2 + 1);
        for i in 0..4 {
            b.push(cycle(i));
        }
        assert_eq!((b.len(), b.dropped), (2, 2));
        assert!(b.bytes() <= one * 2 + 1);
        assert_eq!(b.front(1, 0).len(), 1);
        b.pop(5);
        assert!(b.is_empty() && b.bytes() == 0);
        let mut tiny = Buffer::new(10, 10);
        assert_eq!(tiny.push(cycle(0)), 1);
        assert!(tiny.is_empty());
    }

    #[test]
    fn save_and_load_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("buffer.jsonl");
        let mut b = Buffer::new(10, 1 << 20);
        for i in 0..4 {
            b.push(cycle(i));
        }
        b.save(&p).unwrap();
        let mut c = Buffer::new(10, 1 << 20);
        assert_eq!(c.load(&p).unwrap(), 4);
        assert!(!p.exists());
        let ids: Vec<String> = c.front(10, usize::MAX).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, (0..4).map(|i| format!("{i:016x}")).collect::<Vec<_>>());
    }
}
