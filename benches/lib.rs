//! What the benches and the measuring programs share: the bench corpus.
//!
//! The corpus is `benches/data/corpus.jsonl`, written by `make bench` with
//! `keytrail gen --seed 1` (not committed); set `KEYTRAIL_BENCH_CORPUS` to
//! use another file. Every bench reads the same bytes, so every figure in
//! `BENCHMARKS.md` is a ratio over the same input.

use std::path::PathBuf;

/// Where the corpus is.
pub fn corpus_path() -> PathBuf {
    match std::env::var_os("KEYTRAIL_BENCH_CORPUS") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/corpus.jsonl")),
    }
}

/// The corpus, one record per non-empty line (without the newline).
///
/// # Panics
/// When the file cannot be read: run `make bench` first.
pub fn corpus() -> Vec<Vec<u8>> {
    let path = corpus_path();
    let text = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the bench corpus {} ({e}); run `make bench`",
            path.display()
        )
    });
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Total bytes of the lines.
pub fn total_bytes(lines: &[Vec<u8>]) -> usize {
    lines.iter().map(Vec::len).sum()
}
