//! `keytrail normalize [FILE]`: the transforms over a file, for people and
//! scripts.
//!
//! Reads FILE (or stdin) line by line, writes one normalized event per line
//! to stdout in input order, and for each line that does not normalize
//! writes `{"error":"<reason>","line":<n>}` to stderr and goes on. The exit
//! status is 0 unless the input could not be read. Output is buffered and
//! never flushed per line; a closed stdout (`| head`) ends the run quietly.
//! Lines are read with a bound: a line longer than the event size limit is
//! skipped to its end without being held in memory, and reported as
//! `too_large`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use std::collections::BTreeMap;

use keytrail_core::{DeadLetterReason, Event, RecordMeta, Severity};

use crate::config::Config;
use crate::transforms::Transforms;

/// Arguments of `keytrail normalize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input file; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    /// Configuration file (for `[normalize]`, `[enrich]`, `[classify]`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// At the end, print a summary to stderr (lines starting with `#`):
    /// events by source and severity, actionable events, bad lines by
    /// reason, throughput.
    #[arg(long)]
    pub stats: bool,
}

const OUT_BUFFER_BYTES: usize = 1 << 18;

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let transforms = Transforms::build(&config)?;
    let limit = config.normalize.max_event_bytes;
    let input: Box<dyn BufRead> = match args.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        _ => Box::new(io::stdin().lock()),
    };
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    let started = std::time::Instant::now();
    let mut stats = Stats::default();
    let result = normalize_stream(input, stdout, stderr, &transforms, limit, &mut stats);
    if args.stats {
        stats.print(started.elapsed());
    }
    match result {
        Err(Failure::Read(err)) => Err(err).context("cannot read input"),
        Err(Failure::Write(err)) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(Failure::Write(err)) => Err(err).context("cannot write output"),
        Ok(()) => Ok(()),
    }
}

/// Where the stream broke.
#[derive(Debug)]
pub enum Failure {
    /// Reading the input.
    Read(io::Error),
    /// Writing stdout or stderr.
    Write(io::Error),
}

/// The command's loop, over any reader and writers.
pub fn normalize_stream(
    mut input: impl BufRead,
    out: impl Write,
    err: impl Write,
    transforms: &Transforms,
    limit: usize,
    stats: &mut Stats,
) -> Result<(), Failure> {
    let mut out = BufWriter::with_capacity(OUT_BUFFER_BYTES, out);
    let mut err = BufWriter::new(err);
    let meta = RecordMeta::default();
    let mut line = Vec::with_capacity(1 << 12);
    let mut json = Vec::with_capacity(1 << 12);
    let mut line_no: u64 = 0;
    loop {
        line.clear();
        let Some(too_long) = read_line(&mut input, &mut line, limit).map_err(Failure::Read)? else {
            break;
        };
        line_no += 1;
        stats.bytes += line.len() as u64;
        let text = line.trim_ascii();
        if too_long {
            stats.rejected(&DeadLetterReason::TooLarge);
            report(&mut err, &DeadLetterReason::TooLarge, line_no)?;
            continue;
        }
        if text.is_empty() {
            continue;
        }
        match transforms.line(text, &meta) {
            Ok(event) => {
                stats.event(&event);
                json.clear();
                event.write_json(&mut json);
                json.push(b'\n');
                out.write_all(&json).map_err(Failure::Write)?;
            }
            Err(rejection) => {
                stats.rejected(&rejection.reason);
                report(&mut err, &rejection.reason, line_no)?;
            }
        }
    }
    out.flush().map_err(Failure::Write)?;
    err.flush().map_err(Failure::Write)
}

/// Counts for `--stats`.
#[derive(Debug, Default)]
pub struct Stats {
    by_source: BTreeMap<&'static str, u64>,
    by_severity: BTreeMap<Severity, u64>,
    actionable: u64,
    rejected: BTreeMap<&'static str, u64>,
    bytes: u64,
}

impl Stats {
    fn event(&mut self, event: &Event) {
        *self.by_source.entry(event.source.as_str()).or_default() += 1;
        *self.by_severity.entry(event.severity).or_default() += 1;
        self.actionable += u64::from(event.actionable);
    }

    fn rejected(&mut self, reason: &DeadLetterReason) {
        *self.rejected.entry(reason.label()).or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.by_source.values().sum::<u64>() + self.rejected.values().sum::<u64>()
    }

    fn print(&self, elapsed: std::time::Duration) {
        let events: u64 = self.by_source.values().sum();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut lines = vec![format!(
            "# {events} events, {} bad lines, {:.0} lines/s, {:.1} MB/s",
            self.total() - events,
            self.total() as f64 / secs,
            self.bytes as f64 / secs / 1e6
        )];
        let join = |m: Vec<(String, u64)>| {
            m.into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let by_source = self
            .by_source
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        lines.push(format!("# by source: {}", join(by_source)));
        let by_severity = self
            .by_severity
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect();
        lines.push(format!("# by severity: {}", join(by_severity)));
        lines.push(format!("# actionable: {}", self.actionable));
        let rejected = self
            .rejected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        lines.push(format!("# bad lines by reason: {}", join(rejected)));
        eprintln!("{}", lines.join("\n"));
    }
}

fn report(err: &mut impl Write, reason: &DeadLetterReason, line: u64) -> Result<(), Failure> {
    writeln!(err, r#"{{"error":"{reason}","line":{line}}}"#).map_err(Failure::Write)
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `limit + 1`
/// bytes. `None` at the end of input; `Some(true)` when the line was longer
/// than `limit` (the rest of it was read and dropped).
fn read_line(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<bool>> {
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(seen_any.then_some(too_long));
        }
        seen_any = true;
        let (piece, done) = match memchr::memchr(b'\n', chunk) {
            Some(at) => (&chunk[..at], Some(at + 1)),
            None => (chunk, None),
        };
        if !too_long {
            let room = (limit + 1).saturating_sub(buf.len());
            buf.extend_from_slice(&piece[..piece.len().min(room)]);
            if buf.len() > limit {
                too_long = true;
                buf.clear();
            }
        }
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        if done.is_some() {
            return Ok(Some(too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(input: &str, limit: usize) -> (Vec<serde_json::Value>, String) {
        let transforms = Transforms::build(&Config::default()).expect("default config builds");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        normalize_stream(
            input.as_bytes(),
            &mut out,
            &mut err,
            &transforms,
            limit,
            &mut Stats::default(),
        )
        .expect("runs");
        let events = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
            .collect();
        (events, String::from_utf8(err).expect("utf-8"))
    }

    #[test]
    fn events_in_order_and_errors_with_line_numbers() {
        let input = concat!(
            r#"{"timestamp":"2026-03-24T18:00:18.936Z","level":"ERROR","event":"SSL_ERROR","category":"SYSTEM","result":"ERROR"}"#,
            "\n\nnot json\n",
            r#"{"eventTime":"2024-01-01T00:00:00Z","action":"kms.secrets.read","outcome":"success"}"#,
            "\n[1]"
        );
        let (events, err) = run_on(input, 1 << 20);
        let actions: Vec<&str> = events
            .iter()
            .map(|e| e["action"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(actions, ["SSL_ERROR", "kms.secrets.read"]);
        assert_eq!(
            err,
            "{\"error\":\"invalid_json\",\"line\":3}\n{\"error\":\"not_an_object\",\"line\":5}\n"
        );
    }

    #[test]
    fn over_long_lines_are_skipped_without_being_kept() {
        let long = format!("{{\"event\":\"X\",\"pad\":\"{}\"}}", "y".repeat(500));
        let ok = r#"{"timestamp":"2026-03-24T18:00:18.936Z","event":"LOGIN_SUCCESS"}"#;
        let (events, err) = run_on(&format!("{long}\n{ok}\n"), 100);
        assert_eq!(events.len(), 1);
        assert_eq!(err, "{\"error\":\"too_large\",\"line\":1}\n");
    }

    #[test]
    fn read_line_bounds_memory_across_chunks() {
        let data = format!("{}\nabc\n", "z".repeat(10_000));
        let mut reader = BufReader::with_capacity(7, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut buf, 16).expect("reads"),
            Some(true)
        );
        assert!(buf.capacity() < 64, "kept at most limit + 1 bytes");
        buf.clear();
        assert_eq!(
            read_line(&mut reader, &mut buf, 16).expect("reads"),
            Some(false)
        );
        assert_eq!(buf, b"abc");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf, 16).expect("reads"), None);
    }
}
