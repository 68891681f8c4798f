//! `keytrail normalize [FILE]`: the transforms over a file, for people and
//! scripts.
//!
//! Reads FILE (or stdin) line by line, writes one normalized event per line
//! to stdout in input order, and for each line that does not normalize
//! writes `{"error":"<reason>","line":<n>}` to stderr and goes on. The exit
//! status is 0 unless the input could not be read, the output could not be
//! written (a closed stdout aside, below), or a worker thread panicked (a
//! bug). Output is buffered and
//! never flushed per line; a closed stdout (`| head`) ends the run quietly.
//! Lines are read with a bound: a line longer than the event size limit is
//! skipped to its end without being held in memory whole, and reported as
//! `too_large`.
//!
//! With more than one thread (`--threads`, by default one per core) each
//! worker in turn reads the next chunk of lines and normalizes it, and the
//! chunks are written back in input order: stdout and stderr read exactly
//! as with one thread.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

use keytrail_core::{DeadLetterReason, Event, RecordMeta, Severity, Source};

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
    /// Worker threads; 0 (the default) means one per core. With 1, lines
    /// are read, normalized and written by a single thread.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
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
    // Not stdin's lock: the workers share the input.
    let input: Box<dyn Read + Send> = match args.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        _ => Box::new(io::stdin()),
    };
    let started = std::time::Instant::now();
    let mut stats = Stats::default();
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let result = if threads > 1 {
        // Not the locks: the workers write.
        normalize_parallel(
            input,
            io::stdout(),
            io::stderr(),
            &transforms,
            limit,
            threads,
            &mut stats,
        )
    } else {
        normalize_stream(
            BufReader::with_capacity(1 << 16, input),
            io::stdout().lock(),
            io::stderr().lock(),
            &transforms,
            limit,
            &mut stats,
        )
    };
    if args.stats {
        eprintln!("{}", stats.summary(started.elapsed()));
    }
    match result {
        Err(Failure::Read(err)) => Err(err).context("cannot read input"),
        Err(Failure::Write(err)) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(Failure::Write(err)) => Err(err).context("cannot write output"),
        Err(Failure::Panic(_)) => anyhow::bail!(
            "a worker thread panicked, which is a bug (its message is above); the output stops before the lines it was normalizing"
        ),
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
    /// A worker panicked (the panic's payload); its message is already on
    /// stderr.
    Panic(Box<dyn std::any::Any + Send>),
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
        json.clear();
        let mut errors = Vec::new();
        one_line(
            transforms,
            &line,
            too_long,
            line_no,
            stats,
            &mut json,
            &mut errors,
        );
        out.write_all(&json).map_err(Failure::Write)?;
        err.write_all(&errors).map_err(Failure::Write)?;
    }
    out.flush().map_err(Failure::Write)?;
    err.flush().map_err(Failure::Write)
}

/// One input line: its event appended to `out`, or its error to `err`.
fn one_line(
    transforms: &Transforms,
    line: &[u8],
    too_long: bool,
    line_no: u64,
    stats: &mut Stats,
    out: &mut Vec<u8>,
    err: &mut Vec<u8>,
) {
    if too_long {
        stats.rejected(&DeadLetterReason::TooLarge);
        report(err, &DeadLetterReason::TooLarge, line_no);
        return;
    }
    let text = line.trim_ascii();
    if text.is_empty() {
        return;
    }
    let written = transforms.with_line(text, &RecordMeta::default(), |event, texts| {
        stats.event(event);
        texts.write_json(event, out);
        out.push(b'\n');
    });
    if let Err(rejection) = written {
        stats.rejected(&rejection.reason);
        report(err, &rejection.reason, line_no);
    }
}

/// Input bytes per chunk handed to a worker.
const CHUNK_BYTES: usize = 1 << 18;
/// Lines per chunk at most, which bounds a chunk's error output. Only
/// lines under 16 bytes on average end a chunk by their count; what was
/// read past them goes to the next chunk.
const CHUNK_LINES: usize = CHUNK_BYTES / 16;
/// A chunk buffer's first size: a full chunk, and one read past it for a
/// line longer than a chunk.
const CHUNK_ROOM: usize = CHUNK_BYTES + READ_MORE;
/// Bytes asked of a read once a chunk is full but holds no whole line yet
/// (its only line is longer than a chunk).
const READ_MORE: usize = 1 << 16;
/// The output room kept for a chunk: its events come out a little larger
/// than they went in (an estimate; a chunk of very short lines grows it).
const OUT_ROOM: usize = CHUNK_ROOM / 2 * 3;

/// A run of consecutive input lines, read straight into the chunk's
/// buffer (no copy through a reader's buffer).
struct Chunk {
    /// Holds input up to `filled`: the lines with their `\n`s, and
    /// between them perhaps the unused bytes of a line over the limit.
    /// Initialized to its length, so that reads go straight into it; its
    /// length only grows.
    data: Vec<u8>,
    /// How much of `data` holds input read for this chunk.
    filled: usize,
    /// The lines, in order.
    lines: Vec<Line>,
}

/// One line of a chunk: where its bytes are (without the `\n`; none for a
/// line over the limit), its number in the input, and whether it was over
/// the limit.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    number: u64,
    too_long: bool,
}

impl Chunk {
    /// Room for a full chunk, so that filling it does not grow it.
    fn new() -> Chunk {
        Chunk {
            data: vec![0; CHUNK_ROOM],
            filled: 0,
            lines: Vec::with_capacity(CHUNK_BYTES / 256),
        }
    }

    /// The room `data[filled..end]` to read into, grown (zeroed) if need be.
    fn room(&mut self, end: usize) -> &mut [u8] {
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data.get_mut(self.filled..end).unwrap_or_default()
    }
}

/// A normalized chunk: what goes to stdout and stderr, and its counts.
struct Done {
    out: Vec<u8>,
    err: Vec<u8>,
    stats: Stats,
}

/// The command's loop on `threads` workers; output in input order.
///
/// Each worker in turn reads the next chunk of lines itself (one at a
/// time, under a lock) into buffers it keeps, and normalizes it on its own
/// thread while the others read or work, so a line is read and normalized
/// by the same thread. A finished chunk is written by whichever worker
/// finds it next in line: the one that finished it, or the one writing the
/// chunks before it, which goes on with it. No thread waits to be woken
/// for each chunk (the calling thread is one of the workers), and a worker
/// whose chunk is written at once keeps its output buffer.
///
/// A worker that panics (a bug: no input should make one) ends the run
/// with [`Failure::Panic`]: the chunks before its own are written, none
/// after it. The run returns when every worker has stopped, so a worker
/// waiting inside a read of an input that stays open (a pipe with no
/// writer activity) holds it until that read returns, as after a failed
/// output.
pub fn normalize_parallel(
    input: impl Read + Send,
    out: impl Write + Send,
    err: impl Write + Send,
    transforms: &Transforms,
    limit: usize,
    threads: usize,
    stats: &mut Stats,
) -> Result<(), Failure> {
    let normalize = |chunk: &Chunk, out: Vec<u8>| normalize_chunk(transforms, chunk, out);
    chunks_in_order(input, out, err, &normalize, limit, threads, stats)
}

/// [`normalize_parallel`] with `normalize` for the work on each chunk.
fn chunks_in_order(
    input: impl Read + Send,
    out: impl Write + Send,
    err: impl Write + Send,
    normalize: &(impl Fn(&Chunk, Vec<u8>) -> Done + Sync),
    limit: usize,
    threads: usize,
    stats: &mut Stats,
) -> Result<(), Failure> {
    let threads = threads.max(1);
    // Chunks between their read and their written output: a slow chunk
    // holds back at most this many finished ones, not the rest of the
    // input, and bounds the buffers in use.
    let in_flight = threads * 2;
    let (permit_tx, permit_rx) = std::sync::mpsc::sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = permit_tx.send(());
    }
    let stopped = AtomicBool::new(false);
    let input = Mutex::new(Input {
        reader: input,
        carry: Vec::new(),
        skipping: false,
        at_end: false,
        seq: 0,
        line_no: 0,
        ended: false,
        error: None,
        stopped: &stopped,
        permits: permit_rx,
    });
    let order = Mutex::new(Order {
        waiting: BTreeMap::new(),
        next: 0,
        sink: Some(Sink {
            out: BufWriter::with_capacity(OUT_BUFFER_BYTES, out),
            err: BufWriter::new(err),
        }),
        spare: Vec::new(),
        stats: Stats::default(),
        result: Ok(()),
        permits: permit_tx,
        stopped: &stopped,
    });
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|| work(&input, &order, normalize, limit));
        }
        work(&input, &order, normalize, limit);
    });
    let order = order.into_inner().unwrap_or_else(PoisonError::into_inner);
    // What was written is counted even when the run stopped early.
    stats.merge(order.stats);
    let written = order.result.and_then(|()| match order.sink {
        Some(mut sink) => {
            sink.out.flush().map_err(Failure::Write)?;
            sink.err.flush().map_err(Failure::Write)
        }
        // Every writer puts the sink back, even after a panic in it.
        None => Ok(()),
    });
    let read = input
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .error;
    match (read, written) {
        (Some(error), _) => Err(Failure::Read(error)),
        (None, written) => written,
    }
}

/// The input of the parallel loop, shared by its workers.
struct Input<'s, R> {
    reader: R,
    /// Input read past the last line handed out: the start of the next
    /// chunk.
    carry: Vec<u8>,
    /// Inside a line over the limit, whose bytes are dropped as they come.
    skipping: bool,
    /// The reader has reported the end of the input.
    at_end: bool,
    /// The next chunk's sequence number.
    seq: u64,
    /// The number of the last line read.
    line_no: u64,
    /// Nothing more to hand out: the input and `carry` are used up, a read
    /// failed, or the run stopped.
    ended: bool,
    /// The read error that ended the input, for the caller.
    error: Option<io::Error>,
    /// One per chunk that may be read before the written output catches
    /// up; each comes back when its chunk is written or dropped.
    permits: Receiver<()>,
    /// Set when the output failed or a worker panicked.
    stopped: &'s AtomicBool,
}

/// Why a chunk's reading stopped.
enum Filled {
    /// It holds enough; the unfinished line goes to the next chunk.
    Full,
    /// The input ended; an unfinished line is its last line.
    End,
    /// A read failed or the run stopped; an unfinished line is dropped.
    Cut,
}

impl<R: Read> Input<'_, R> {
    /// Reads the next lines into `chunk` until it is full or the input
    /// ends; the chunk's sequence number when it holds a line. Reads go
    /// straight into the chunk: each asks for the rest of its
    /// `CHUNK_BYTES`, then for `READ_MORE` at a time while its only line
    /// goes on. The lines read before an error are kept, the part of a
    /// line read before it is not.
    fn next_chunk(&mut self, chunk: &mut Chunk, limit: usize) -> Option<u64> {
        chunk.lines.clear();
        chunk.filled = 0;
        let carried = self.carry.len();
        chunk.room(carried).copy_from_slice(&self.carry);
        chunk.filled = carried;
        self.carry.clear();
        // The unfinished line starts at `start`; `data[searched..filled]`
        // is still to be searched for line ends.
        let (mut start, mut searched) = (0, 0);
        let filled = loop {
            let mut full = false;
            while let Some(at) = memchr::memchr(
                b'\n',
                chunk.data.get(searched..chunk.filled).unwrap_or_default(),
            ) {
                let end = searched + at;
                self.line_no += 1;
                let too_long = self.skipping || end - start > limit;
                chunk.lines.push(Line {
                    start,
                    end: if too_long { start } else { end },
                    number: self.line_no,
                    too_long,
                });
                self.skipping = false;
                start = end + 1;
                searched = start;
                if chunk.lines.len() >= CHUNK_LINES {
                    full = true;
                    break;
                }
            }
            if full || (chunk.filled >= CHUNK_BYTES && !chunk.lines.is_empty()) {
                break Filled::Full;
            }
            searched = chunk.filled;
            // A line past the limit keeps no bytes: what follows is read
            // over them until its end.
            if self.skipping || chunk.filled - start > limit {
                self.skipping = true;
                chunk.filled = start;
                searched = start;
            }
            if self.at_end {
                break Filled::End;
            }
            if self.stopped.load(Ordering::Relaxed) {
                break Filled::Cut;
            }
            let end = if chunk.filled < CHUNK_BYTES {
                CHUNK_BYTES
            } else {
                chunk.filled + READ_MORE
            };
            match self.reader.read(chunk.room(end)) {
                Ok(0) => self.at_end = true,
                Ok(n) => chunk.filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.error = Some(error);
                    break Filled::Cut;
                }
            }
        };
        match filled {
            Filled::Full => {
                // What follows the last line goes to the next chunk, unless
                // it is the dropped part of a line over the limit (with no
                // line end in it). After a chunk's last line by count, it
                // may hold more lines.
                if !self.skipping {
                    let rest = chunk.data.get(start..chunk.filled).unwrap_or_default();
                    self.carry.extend_from_slice(rest);
                }
                chunk.filled = start;
            }
            Filled::End => {
                if self.skipping || chunk.filled > start {
                    self.line_no += 1;
                    chunk.lines.push(Line {
                        start,
                        end: if self.skipping { start } else { chunk.filled },
                        number: self.line_no,
                        too_long: self.skipping,
                    });
                    self.skipping = false;
                }
                self.ended = true;
            }
            Filled::Cut => {
                chunk.filled = start;
                self.ended = true;
            }
        }
        if chunk.lines.is_empty() {
            return None;
        }
        let seq = self.seq;
        self.seq += 1;
        Some(seq)
    }
}

/// A normalized chunk, or the panic that normalizing it ended in.
type Finished = std::thread::Result<Done>;

/// The output side of the parallel loop, shared by its workers: finished
/// chunks waiting for their turn, and the writers.
struct Order<'s, W: Write, E: Write> {
    /// Finished chunks by sequence number, until they are next in line.
    waiting: BTreeMap<u64, Finished>,
    /// The sequence number of the next chunk to write.
    next: u64,
    /// stdout and stderr; taken by the worker that is writing.
    sink: Option<Sink<W, E>>,
    /// Output buffers of written chunks, for the next chunks.
    spare: Vec<Vec<u8>>,
    /// The counts of what was written.
    stats: Stats,
    /// The first failure; the chunks after it are dropped, not written.
    result: Result<(), Failure>,
    /// Gives a chunk's permit back.
    permits: SyncSender<()>,
    /// Set on the first failure, so that the workers stop reading.
    stopped: &'s AtomicBool,
}

/// Where the chunks are written.
struct Sink<W: Write, E: Write> {
    out: BufWriter<W>,
    err: BufWriter<E>,
}

impl<W: Write, E: Write> Sink<W, E> {
    /// Writes a finished chunk; gives it back for its counts and buffer.
    fn write(&mut self, finished: Finished) -> Result<Done, Failure> {
        let done = finished.map_err(Failure::Panic)?;
        self.out.write_all(&done.out).map_err(Failure::Write)?;
        self.err.write_all(&done.err).map_err(Failure::Write)?;
        Ok(done)
    }
}

/// Locks `mutex`, whether or not a thread panicked holding it (the parts
/// of the loop stay consistent between their statements).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A worker: takes a permit, reads a chunk, normalizes it and hands it on
/// to be written, until the input ends or the run stops. A panic in the
/// work on a chunk is handed on in the chunk's place, else the chunks
/// after it would wait for it for ever.
fn work<R: Read, W: Write, E: Write>(
    input: &Mutex<Input<'_, R>>,
    order: &Mutex<Order<'_, W, E>>,
    normalize: &impl Fn(&Chunk, Vec<u8>) -> Done,
    limit: usize,
) {
    let mut chunk = Chunk::new();
    let mut out = Vec::new();
    loop {
        let seq = {
            let mut input = lock(input);
            // Permits come back as chunks are written or, once the run
            // has stopped, dropped; the loop then ends in `next_chunk`.
            // (Their sender lives until the run ends, so `recv` fails only
            // if a bug dropped it.)
            if input.ended || input.permits.recv().is_err() {
                return;
            }
            let Some(seq) = input.next_chunk(&mut chunk, limit) else {
                return;
            };
            seq
        };
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            normalize(&chunk, std::mem::take(&mut out))
        }));
        let panicked = finished.is_err();
        out = write_in_order(order, seq, finished);
        if panicked {
            return;
        }
    }
}

/// The chunk's output, written into `out` (an empty buffer, perhaps one
/// used before).
fn normalize_chunk(transforms: &Transforms, chunk: &Chunk, mut out: Vec<u8>) -> Done {
    // The estimated room, at least that of a usual chunk, so that a used
    // buffer fits the next chunk too; a buffer with less is replaced, not
    // grown, since growing copies its whole old capacity.
    let room = OUT_ROOM.max(chunk.filled / 2 * 3);
    if out.capacity() < room {
        out = Vec::with_capacity(room);
    }
    let mut done = Done {
        out,
        err: Vec::new(),
        stats: Stats::default(),
    };
    for line in &chunk.lines {
        let bytes = chunk.data.get(line.start..line.end).unwrap_or_default();
        done.stats.bytes += bytes.len() as u64;
        one_line(
            transforms,
            bytes,
            line.too_long,
            line.number,
            &mut done.stats,
            &mut done.out,
            &mut done.err,
        );
    }
    done
}

/// Hands in chunk `seq`. When no other worker is writing, writes the
/// finished chunks that are next in line, in order (this one once its turn
/// has come); else leaves them to the worker that is, which looks for them
/// before it stops writing. The lock is not held while writing, so that
/// other workers hand in chunks meanwhile. Returns an output buffer for the
/// next chunk.
fn write_in_order<W: Write, E: Write>(
    order: &Mutex<Order<'_, W, E>>,
    seq: u64,
    finished: Finished,
) -> Vec<u8> {
    let mut state = lock(order);
    state.waiting.insert(seq, finished);
    // Without the sink, another worker is writing.
    while let Some(mut sink) = state.sink.take() {
        let next = state.next;
        let Some(finished) = state.waiting.remove(&next) else {
            state.sink = Some(sink);
            break;
        };
        state.next += 1;
        let written = if state.result.is_ok() {
            drop(state);
            // A writer that panics fails the run like a worker's panic,
            // and the sink comes back: else the chunks after this one
            // would wait for it for ever.
            let written =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.write(finished)))
                    .unwrap_or_else(|panic| Err(Failure::Panic(panic)));
            state = lock(order);
            Some(written)
        } else {
            None
        };
        state.sink = Some(sink);
        match written {
            // The run failed before this chunk: dropped.
            None => {}
            Some(Ok(done)) => {
                state.stats.merge(done.stats);
                // A buffer grown for long lines is dropped, not kept.
                let mut buffer = done.out;
                if buffer.capacity() <= 2 * OUT_ROOM {
                    buffer.clear();
                    state.spare.push(buffer);
                }
            }
            Some(Err(failure)) => {
                state.result = Err(failure);
                state.stopped.store(true, Ordering::Relaxed);
            }
        }
        // After the stop flag, so that a reader woken by this permit sees
        // it. One permit per chunk read, so there is always room.
        let _ = state.permits.try_send(());
    }
    state.spare.pop().unwrap_or_default()
}

/// Counts for `--stats`. Events are counted by source and severity in
/// arrays indexed by the enums (no map lookup per event), whose variants
/// are in the order of `Source::ALL` and `Severity::ALL` (a test checks).
#[derive(Debug, Default)]
pub struct Stats {
    by_source: [u64; Source::ALL.len()],
    by_severity: [u64; Severity::ALL.len()],
    actionable: u64,
    rejected: BTreeMap<&'static str, u64>,
    bytes: u64,
}

impl Stats {
    fn event(&mut self, event: &Event) {
        if let Some(n) = self.by_source.get_mut(event.source as usize) {
            *n += 1;
        }
        if let Some(n) = self.by_severity.get_mut(event.severity as usize) {
            *n += 1;
        }
        self.actionable += u64::from(event.actionable);
    }

    fn rejected(&mut self, reason: &DeadLetterReason) {
        *self.rejected.entry(reason.label()).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        for (n, other) in self.by_source.iter_mut().zip(other.by_source) {
            *n += other;
        }
        for (n, other) in self.by_severity.iter_mut().zip(other.by_severity) {
            *n += other;
        }
        for (reason, n) in other.rejected {
            *self.rejected.entry(reason).or_default() += n;
        }
        self.actionable += other.actionable;
        self.bytes += other.bytes;
    }

    fn total(&self) -> u64 {
        self.by_source.iter().sum::<u64>() + self.rejected.values().sum::<u64>()
    }

    /// The `--stats` lines.
    fn summary(&self, elapsed: std::time::Duration) -> String {
        let events: u64 = self.by_source.iter().sum();
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
        // Sources by name, severities least severe first; only those seen.
        let mut by_source: Vec<(String, u64)> = Source::ALL
            .iter()
            .zip(self.by_source)
            .filter(|&(_, n)| n > 0)
            .map(|(source, n)| (source.as_str().to_owned(), n))
            .collect();
        by_source.sort();
        lines.push(format!("# by source: {}", join(by_source)));
        let by_severity = Severity::ALL
            .iter()
            .zip(self.by_severity)
            .filter(|&(_, n)| n > 0)
            .map(|(severity, n)| (severity.as_str().to_owned(), n))
            .collect();
        lines.push(format!("# by severity: {}", join(by_severity)));
        lines.push(format!("# actionable: {}", self.actionable));
        let rejected = self
            .rejected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        lines.push(format!("# bad lines by reason: {}", join(rejected)));
        lines.join("\n")
    }
}

fn report(err: &mut Vec<u8>, reason: &DeadLetterReason, line: u64) {
    // Writing into a Vec cannot fail.
    let _ = writeln!(err, r#"{{"error":"{reason}","line":{line}}}"#);
}

/// Reads one line (without its `\n`) onto the end of `buf`, keeping at
/// most `limit + 1` of its bytes. `None` at the end of input; `Some(true)`
/// when the line was longer than `limit` (the rest of it was read and
/// dropped, and `buf` is as it was). On an error, the part of the line
/// read before it stays in `buf`.
fn read_line(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<bool>> {
    let start = buf.len();
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
            let room = (limit + 1).saturating_sub(buf.len() - start);
            buf.extend_from_slice(&piece[..piece.len().min(room)]);
            if buf.len() - start > limit {
                too_long = true;
                buf.truncate(start);
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
    use std::io::Read;

    #[test]
    fn the_enums_index_the_stats_arrays_in_the_order_of_all() {
        for (i, source) in Source::ALL.into_iter().enumerate() {
            assert_eq!(source as usize, i, "{source:?}");
        }
        for (i, severity) in Severity::ALL.into_iter().enumerate() {
            assert_eq!(severity as usize, i, "{severity:?}");
        }
    }

    #[test]
    fn stats_count_events_by_source_and_severity() {
        let mut stats = Stats::default();
        let mut other = Stats::default();
        for (source, severity, into_other) in [
            (Source::SecurosysKm, Severity::High, false),
            (Source::IbmHpcs, Severity::Informational, false),
            (Source::SecurosysKm, Severity::Informational, true),
            (Source::IbmCloud, Severity::Critical, true),
        ] {
            let mut event =
                Event::new(keytrail_core::Timestamp::from_millis(0), source, "x".into());
            event.severity = severity;
            if into_other { &mut other } else { &mut stats }.event(&event);
        }
        stats.merge(other);
        let summary = stats.summary(std::time::Duration::from_secs(1));
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(
            lines.get(1..3),
            Some(
                &[
                    "# by source: ibm_cloud=1 ibm_hpcs=1 securosys_km=2",
                    "# by severity: informational=2 high=1 critical=1",
                ][..]
            ),
            "{summary}"
        );
        assert!(lines[0].starts_with("# 4 events, 0 bad lines"), "{summary}");
    }

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
    fn threads_give_the_bytes_and_counts_of_one_thread() {
        let args = crate::generate::Args {
            events: 0,
            seed: 7,
            ibm_percent: 70.0,
            malformed_percent: 3.0,
            rate: 0.0,
            kafka: None,
            topic: String::new(),
        };
        // About 2 MB: several chunks, so workers finish out of order.
        let mut input = Vec::new();
        for (i, record) in crate::generate::Generator::new(&args)
            .records(2000)
            .into_iter()
            .enumerate()
        {
            input.extend_from_slice(&record);
            input.push(b'\n');
            if i % 97 == 0 {
                input.extend_from_slice(b"   \n");
            }
            if i % 501 == 0 {
                input.extend_from_slice(&[b'x'; 3000]);
                input.push(b'\n');
            }
        }
        assert!(input.len() > 4 * CHUNK_BYTES, "spans several chunks");
        let transforms = Transforms::build(&Config::default()).expect("default config builds");
        let limit = 2048;
        let (mut out1, mut err1, mut stats1) = (Vec::new(), Vec::new(), Stats::default());
        normalize_stream(
            &input[..],
            &mut out1,
            &mut err1,
            &transforms,
            limit,
            &mut stats1,
        )
        .expect("runs");
        let (mut out3, mut err3, mut stats3) = (Vec::new(), Vec::new(), Stats::default());
        normalize_parallel(
            &input[..],
            &mut out3,
            &mut err3,
            &transforms,
            limit,
            3,
            &mut stats3,
        )
        .expect("runs");
        assert!(out1.len() > 1_000_000, "events written");
        assert!(String::from_utf8_lossy(&err1).contains("too_large"));
        assert!(out1 == out3, "stdout differs");
        assert_eq!(
            String::from_utf8_lossy(&err1),
            String::from_utf8_lossy(&err3)
        );
        assert_eq!(format!("{stats1:?}"), format!("{stats3:?}"));
    }

    /// Hands out 1 to 5,000 bytes per read, a different number each time,
    /// as a pipe may.
    struct Trickle<'a> {
        data: &'a [u8],
        state: u64,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.state = self
                .state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let most = 1 + (self.state >> 33) as usize % 5_000;
            let n = most.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Runs both loops over `input` and checks that they agree; returns
    /// the bad-lines report.
    fn same_as_one_thread(input: &[u8], limit: usize) -> String {
        let transforms = Transforms::build(&Config::default()).expect("default config builds");
        let (mut out1, mut err1, mut stats1) = (Vec::new(), Vec::new(), Stats::default());
        normalize_stream(input, &mut out1, &mut err1, &transforms, limit, &mut stats1)
            .expect("runs");
        let (mut out2, mut err2, mut stats2) = (Vec::new(), Vec::new(), Stats::default());
        let trickle = Trickle {
            data: input,
            state: input.len() as u64,
        };
        normalize_parallel(
            trickle,
            &mut out2,
            &mut err2,
            &transforms,
            limit,
            2,
            &mut stats2,
        )
        .expect("runs");
        assert!(
            out1 == out2,
            "stdout differs: {} against {} bytes",
            out1.len(),
            out2.len()
        );
        let err1 = String::from_utf8(err1).expect("utf-8");
        assert_eq!(err1, String::from_utf8(err2).expect("utf-8"));
        assert_eq!(format!("{stats1:?}"), format!("{stats2:?}"));
        err1
    }

    #[test]
    fn parallel_matches_one_thread_on_uneven_reads() {
        let event = r#"{"timestamp":"2026-03-24T18:00:18.936Z","level":"ERROR","event":"SSL_ERROR","category":"SYSTEM","result":"ERROR"}"#;
        let limit = 1000;
        // Lines of exactly the limit, one byte over it and over two chunks
        // long, empty lines and CRLF, mixed so that read boundaries fall
        // inside each kind somewhere. (A chunk's unfinished line goes on in
        // the next chunk; the reader skips a line over the limit.) Lines of
        // exactly the limit and one byte over it are also checked by
        // `a_line_of_exactly_the_limit_is_read` (one thread) and by
        // `lines_longer_than_a_chunk_are_read_whole_up_to_the_limit`.
        let kinds: [Vec<u8>; 8] = [
            event.as_bytes().to_vec(),
            format!("{event}\r").into_bytes(),
            Vec::new(),
            vec![b'x'; limit],
            vec![b'y'; limit + 1],
            vec![b'z'; 2 * CHUNK_BYTES + 17],
            b"not json".to_vec(),
            format!(
                "{{\"timestamp\":\"2026-03-24T18:00:18Z\",\"event\":\"X\",\"pad\":\"{}\"}}",
                "p".repeat(limit - 70)
            )
            .into_bytes(),
        ];
        let mut state = 11u64;
        let mut input = Vec::new();
        for _ in 0..8000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            // The huge line only now and then.
            let kind = (state >> 33) as usize % 64;
            let kind = if kind == 5 || kind >= kinds.len() {
                kind % 5
            } else {
                kind
            };
            input.extend_from_slice(&kinds[kind]);
            input.push(b'\n');
            if state.is_multiple_of(1000) {
                input.extend_from_slice(&kinds[5]);
                input.push(b'\n');
            }
        }
        let err = same_as_one_thread(&input, limit);
        assert!(err.contains("too_large") && err.contains("invalid_json"));
        // Whatever the input ends with, with and without a final `\n`.
        for last in &kinds {
            let mut ending = input.clone();
            ending.extend_from_slice(last);
            same_as_one_thread(&ending, limit);
            ending.push(b'\n');
            same_as_one_thread(&ending, limit);
        }
        same_as_one_thread(b"", limit);
        same_as_one_thread(b"\n", limit);
    }

    #[test]
    fn lines_longer_than_a_chunk_are_read_whole_up_to_the_limit() {
        let limit = 3 * CHUNK_BYTES;
        let long = format!(
            "{{\"timestamp\":\"2026-03-24T18:00:18Z\",\"event\":\"X\",\"pad\":\"{}\"}}",
            "p".repeat(2 * CHUNK_BYTES)
        );
        let over = "q".repeat(limit + 1);
        let input = format!("{SSL_ERROR}\n{long}\n{SSL_ERROR}\n{over}\n{SSL_ERROR}\n{long}");
        // The long lines are events; the one over the limit is the only
        // bad line.
        let err = same_as_one_thread(input.as_bytes(), limit);
        assert_eq!(err, "{\"error\":\"too_large\",\"line\":4}\n");
        let (events, _) = run_on(&input, limit);
        assert_eq!(events.len(), 5);
    }

    /// Hands out its bytes, then fails.
    struct Broken<'a>(&'a [u8]);

    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Takes `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A Securosys event that normalizes.
    const SSL_ERROR: &str = r#"{"timestamp":"2026-03-24T18:00:18.936Z","level":"ERROR","event":"SSL_ERROR","category":"SYSTEM","result":"ERROR"}"#;

    /// Copies of one event, each on its line, for `chunks` chunks or more.
    fn many_events(chunks: usize) -> Vec<u8> {
        let mut input = Vec::new();
        while input.len() < chunks * CHUNK_BYTES {
            input.extend_from_slice(SSL_ERROR.as_bytes());
            input.push(b'\n');
        }
        input
    }

    /// The stdout of one thread over `input`, with the default transforms.
    fn one_thread_output(input: &[u8]) -> Vec<u8> {
        let transforms = Transforms::build(&Config::default()).expect("default config builds");
        let mut out = Vec::new();
        normalize_stream(
            input,
            &mut out,
            Vec::new(),
            &transforms,
            1 << 20,
            &mut Stats::default(),
        )
        .expect("runs");
        out
    }

    /// How a run ended, its stdout and its stderr.
    type Ran = (Result<(), Failure>, Vec<u8>, Vec<u8>);

    /// What one thread and then two workers make of the input `reader`
    /// gives, with the default transforms.
    fn both_loops<R: BufRead + Send>(reader: impl Fn() -> R) -> [Ran; 2] {
        let transforms = Transforms::build(&Config::default()).expect("default config builds");
        let (mut out1, mut err1) = (Vec::new(), Vec::new());
        let one = normalize_stream(
            reader(),
            &mut out1,
            &mut err1,
            &transforms,
            1 << 20,
            &mut Stats::default(),
        );
        let (mut out2, mut err2) = (Vec::new(), Vec::new());
        let two = normalize_parallel(
            reader(),
            &mut out2,
            &mut err2,
            &transforms,
            1 << 20,
            2,
            &mut Stats::default(),
        );
        [(one, out1, err1), (two, out2, err2)]
    }

    #[test]
    fn a_read_error_ends_the_run_after_the_lines_before_it() {
        let input = many_events(3);
        // The error comes inside a line: that line is not an event.
        let cut = &input[..2 * CHUNK_BYTES + 40];
        let whole_lines = cut.iter().filter(|&&b| b == b'\n').count();
        let [(one, out1, _), (two, out2, err2)] = both_loops(|| BufReader::new(Broken(cut)));
        assert!(matches!(one, Err(Failure::Read(_))), "{one:?}");
        assert!(matches!(two, Err(Failure::Read(_))), "{two:?}");
        let events = out2.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(events, whole_lines);
        assert!(out1 == out2, "the same events either way");
        assert!(err2.is_empty());
    }

    #[test]
    fn a_worker_that_panics_ends_the_run_after_the_chunks_before_it() {
        let input = many_events(8);
        let whole = one_thread_output(&input);
        let doomed_line = (input.iter().filter(|&&b| b == b'\n').count() / 2) as u64;
        for threads in [2, 3] {
            let input = input.clone();
            let (result, out, first) = within_two_minutes(move || {
                let transforms =
                    Transforms::build(&Config::default()).expect("default config builds");
                // The first line of the chunk that panics, once it has.
                let first_of_doomed = std::sync::OnceLock::new();
                let normalize = |chunk: &Chunk, out: Vec<u8>| {
                    let first = chunk.lines.first().map_or(0, |line| line.number);
                    let last = chunk.lines.last().map_or(0, |line| line.number);
                    if (first..=last).contains(&doomed_line) {
                        let _ = first_of_doomed.set(first);
                        panic!("planted in the chunk of line {doomed_line}");
                    }
                    normalize_chunk(&transforms, chunk, out)
                };
                let mut out = Vec::new();
                let result = chunks_in_order(
                    input.as_slice(),
                    &mut out,
                    Vec::new(),
                    &normalize,
                    1 << 20,
                    threads,
                    &mut Stats::default(),
                );
                (result, out, first_of_doomed.get().copied())
            });
            assert!(matches!(result, Err(Failure::Panic(_))), "{result:?}");
            let first = first.expect("the planted panic ran");
            let events = out.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(events, first - 1, "{threads} threads");
            assert!(whole.starts_with(&out), "the events before it, in order");
        }
    }

    /// Holds its first write until `release` says so (or 20 s have
    /// passed), then takes everything.
    struct Held {
        out: Vec<u8>,
        release: Option<Receiver<()>>,
        /// Whether the first write was released, not timed out.
        released: bool,
    }

    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(release) = self.release.take() {
                self.released = release
                    .recv_timeout(std::time::Duration::from_secs(20))
                    .is_ok();
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `run` on a thread of its own and waits for what it returns,
    /// for two minutes at most: a run that hangs fails the test instead of
    /// holding up the suite.
    fn within_two_minutes<T: Send + 'static>(run: impl FnOnce() -> T + Send + 'static) -> T {
        let (ran_tx, ran_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = ran_tx.send(run());
        });
        // Not a wait for the run, which sends when it ends.
        ran_rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the run ends")
    }

    #[test]
    fn chunks_finished_while_another_is_written_are_written_in_order() {
        let input = many_events(16);
        let whole = one_thread_output(&input);
        // A chunk's events pass the output's buffer, so the first chunk's
        // write reaches the output at once.
        assert!(whole.len() * CHUNK_BYTES / input.len() > OUT_BUFFER_BYTES);
        for threads in [2, 3] {
            let input = input.clone();
            let (held, stats) = within_two_minutes(move || {
                let transforms =
                    Transforms::build(&Config::default()).expect("default config builds");
                // The first write waits until every permit's chunk has been
                // normalized: the others are handed in while it is held, and
                // its writer has to go on with them.
                let in_flight = threads * 2;
                let normalized = std::sync::atomic::AtomicUsize::new(0);
                let (release_tx, release_rx) = std::sync::mpsc::sync_channel(1);
                let normalize = |chunk: &Chunk, out: Vec<u8>| {
                    let done = normalize_chunk(&transforms, chunk, out);
                    if normalized.fetch_add(1, Ordering::Relaxed) + 1 == in_flight {
                        let _ = release_tx.try_send(());
                    }
                    done
                };
                let mut held = Held {
                    out: Vec::new(),
                    release: Some(release_rx),
                    released: false,
                };
                let mut stats = Stats::default();
                chunks_in_order(
                    input.as_slice(),
                    &mut held,
                    Vec::new(),
                    &normalize,
                    1 << 20,
                    threads,
                    &mut stats,
                )
                .expect("runs");
                (held, stats)
            });
            assert!(
                held.released,
                "{threads} threads: chunks were handed in during the write"
            );
            assert!(held.out == whole, "{threads} threads: the events in order");
            assert_eq!(
                stats.total(),
                whole.iter().filter(|&&b| b == b'\n').count() as u64
            );
        }
    }

    /// Panics when written to.
    struct Panics;

    impl Write for Panics {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            panic!("planted in the output");
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_output_that_panics_ends_the_run() {
        // More chunks than may be in flight.
        let input = many_events(20);
        for threads in [2, 3] {
            let input = input.clone();
            let result = within_two_minutes(move || {
                let transforms =
                    Transforms::build(&Config::default()).expect("default config builds");
                normalize_parallel(
                    input.as_slice(),
                    Panics,
                    Vec::new(),
                    &transforms,
                    1 << 20,
                    threads,
                    &mut Stats::default(),
                )
            });
            assert!(matches!(result, Err(Failure::Panic(_))), "{result:?}");
        }
    }

    /// Counts the bytes read through it.
    struct Counted<'a> {
        data: &'a [u8],
        read: &'a std::sync::atomic::AtomicUsize,
    }

    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.read(buf)?;
            self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
    }

    #[test]
    fn a_failed_output_stops_the_workers() {
        // More chunks than may be in flight, so that workers wait for
        // permits when the output fails on its first write.
        let input = many_events(20);
        let transforms = Transforms::build(&Config::default()).expect("default config builds");
        for threads in [2, 3] {
            let read = std::sync::atomic::AtomicUsize::new(0);
            let result = normalize_parallel(
                BufReader::with_capacity(
                    1 << 16,
                    Counted {
                        data: &input,
                        read: &read,
                    },
                ),
                Full { room: 0 },
                Vec::new(),
                &transforms,
                1 << 20,
                threads,
                &mut Stats::default(),
            );
            assert!(
                matches!(&result, Err(Failure::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe),
                "{result:?}"
            );
            // The chunks in flight and the one each worker was reading,
            // and the reader's buffer: far from the whole input.
            let most = 3 * threads * (CHUNK_BYTES + SSL_ERROR.len() + 1) + (1 << 16);
            let read = read.into_inner();
            assert!(read <= most, "{threads} threads read {read} bytes");
            assert!(read < input.len());
        }
    }

    #[test]
    fn a_chunk_of_short_lines_ends_by_their_count() {
        let input = "\n".repeat(2 * CHUNK_LINES + 5);
        let (_permit_tx, permits) = std::sync::mpsc::sync_channel(1);
        let stopped = AtomicBool::new(false);
        let mut input = Input {
            reader: input.as_bytes(),
            carry: Vec::new(),
            skipping: false,
            at_end: false,
            seq: 0,
            line_no: 0,
            ended: false,
            error: None,
            permits,
            stopped: &stopped,
        };
        let mut chunk = Chunk::new();
        let mut sizes = Vec::new();
        while let Some(seq) = input.next_chunk(&mut chunk, 100) {
            assert_eq!(seq, sizes.len() as u64);
            sizes.push(chunk.lines.len());
        }
        assert_eq!(sizes, [CHUNK_LINES, CHUNK_LINES, 5]);
        assert_eq!(input.line_no, 2 * CHUNK_LINES as u64 + 5);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_read() {
        let input = format!("{}\n{}\n", "x".repeat(100), "y".repeat(101));
        let (events, err) = run_on(&input, 100);
        assert!(events.is_empty());
        assert_eq!(
            err,
            "{\"error\":\"invalid_json\",\"line\":1}\n{\"error\":\"too_large\",\"line\":2}\n"
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

    #[test]
    fn read_line_appends_and_a_long_line_leaves_the_buffer_as_it_was() {
        let data = format!("{}\nabc\n{}\n", "z".repeat(17), "q".repeat(16));
        let mut reader = BufReader::with_capacity(5, data.as_bytes());
        let mut buf = b"kept".to_vec();
        assert_eq!(
            read_line(&mut reader, &mut buf, 16).expect("reads"),
            Some(true)
        );
        assert_eq!(buf, b"kept");
        assert_eq!(
            read_line(&mut reader, &mut buf, 16).expect("reads"),
            Some(false)
        );
        assert_eq!(buf, b"keptabc");
        // The limit counts the line's own bytes, not what came before.
        assert_eq!(
            read_line(&mut reader, &mut buf, 16).expect("reads"),
            Some(false)
        );
        assert_eq!(buf.len(), 7 + 16);
    }
}
