//! `json_roundtrip FILE`: the plain serde_json baseline of
//! `keytrail normalize FILE`, for hyperfine.
//!
//! Each non-blank line is parsed into a `serde_json::Value` and written back
//! compactly to stdout, one per line; a line that does not parse is
//! reported on stderr as `{"error":"invalid_json","line":N}`, as
//! `keytrail normalize` does. Same buffer sizes as `keytrail normalize`
//! (64 KiB in, 256 KiB out), so the two differ only in what they do per
//! line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};

fn main() -> io::Result<()> {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: json_roundtrip FILE");
        std::process::exit(2);
    };
    let mut input = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut out = BufWriter::with_capacity(1 << 18, io::stdout().lock());
    let mut err = BufWriter::new(io::stderr().lock());
    let mut line = Vec::with_capacity(1 << 12);
    let mut line_no = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(value) => {
                serde_json::to_writer(&mut out, &value)?;
                out.write_all(b"\n")?;
            }
            Err(_) => writeln!(err, r#"{{"error":"invalid_json","line":{line_no}}}"#)?,
        }
    }
    out.flush()?;
    err.flush()
}
