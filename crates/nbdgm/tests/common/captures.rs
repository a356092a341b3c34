//! The capture files of a folder (pcap, pcapng, cap), sorted by name: shared by the
//! decode and watch sweeps over the bundled and shared captures (`#[path]`-included, so
//! those tests do not build the daemon harness of `common/mod.rs`).

use std::path::{Path, PathBuf};

pub fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "cap")
            )
        })
        .collect();
    v.sort();
    v
}
