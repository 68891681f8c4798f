//! What the benches and the measuring programs share: the bench corpus,
//! and the passes of group `normalize` that the paired ratios repeat.
//!
//! The corpus is `benches/data/corpus.jsonl`, written by `make bench` with
//! `keytrail gen --seed 1` (not committed); set `KEYTRAIL_BENCH_CORPUS` to
//! use another file. Every bench reads the same bytes, so every figure in
//! `BENCHMARKS.md` is a ratio over the same input.

use std::hint::black_box;
use std::path::PathBuf;

use keytrail_core::{RecordMeta, Transform as _};
use keytrail_transform_normalize::Texts;

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

/// Criterion's options that take a value as the next argument, so that the
/// value is not read as a filter when `cargo bench` hands the same
/// arguments to every bench.
const VALUED_OPTIONS: [&str; 16] = [
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--color",
    "--output-format",
];

/// For the benches with their own `main`: whether the bench `name` runs
/// with the process's arguments. It runs under `cargo bench` (which passes
/// `--bench`) when no filter is given or `name` contains the filter (the
/// first argument that is neither an option nor an option's value), as
/// criterion's benches do; `--list` prints its name instead.
pub fn selected(name: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return false;
    }
    if args.iter().any(|a| a == "--list") {
        println!("{name}: bench");
        return false;
    }
    let mut filter = "";
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if VALUED_OPTIONS.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filter = arg;
            break;
        }
    }
    name.contains(filter)
}

/// One pass of the baseline: each line parsed into a `serde_json::Value`
/// and dropped, what a generic pipeline does first.
pub fn value_parse_pass(lines: &[Vec<u8>]) {
    for line in lines {
        let _ = black_box(serde_json::from_slice::<serde_json::Value>(line));
    }
}

/// One pass of the fastest validating parser we found: each line into a
/// `sonic_rs::Value`, dropped.
pub fn sonic_parse_pass(lines: &[Vec<u8>]) {
    for line in lines {
        let _ = black_box(sonic_rs::from_slice::<sonic_rs::Value>(line));
    }
}

/// keytrail's three transforms with their default settings, as `keytrail
/// run` builds them.
pub struct Transforms {
    normalizer: keytrail_transform_normalize::Normalizer,
    enricher: keytrail_transform_enrich::Enricher,
    classifier: keytrail_transform_classify::Classifier,
    meta: RecordMeta,
    /// The enricher and classifier set plain texts only.
    adds_plain_texts: bool,
}

impl Default for Transforms {
    fn default() -> Transforms {
        Transforms::new()
    }
}

impl Transforms {
    /// The transforms.
    pub fn new() -> Transforms {
        let enricher = keytrail_transform_enrich::Enricher::new();
        let classifier = keytrail_transform_classify::Classifier::new();
        Transforms {
            normalizer: keytrail_transform_normalize::Normalizer::default(),
            adds_plain_texts: enricher.adds_plain_texts() && classifier.adds_plain_texts(),
            enricher,
            classifier,
            meta: RecordMeta::default(),
        }
    }

    /// Normalizes, enriches and classifies one line and hands the event to
    /// `use_event`, with whether it may be written with
    /// `Event::write_json_plain` as `keytrail normalize` decides it (the
    /// normalizer's texts plain, transforms that add plain texts only);
    /// `None` for a line the normalizer refuses. The event is lent, not
    /// returned, so its ~870 bytes are not moved again.
    #[inline(always)]
    pub fn with_event<R>(
        &self,
        line: &[u8],
        use_event: impl FnOnce(&keytrail_core::Event, Texts) -> R,
    ) -> Option<R> {
        let mut texts = Texts::Plain;
        // Bound by reference: the event stays where it was returned.
        if let Ok(ref mut event) = self
            .normalizer
            .normalize_line_texts(line, &self.meta, &mut texts)
        {
            self.enricher.apply(event);
            self.classifier.apply(event);
            if !self.adds_plain_texts {
                texts = Texts::MayNeedEscaping;
            }
            Some(use_event(event, texts))
        } else {
            None
        }
    }

    /// True when the normalizer's reader can walk `line` (UTF-8, one JSON
    /// value), with nothing built: the floor under [`Transforms::with_event`].
    pub fn walk(&self, line: &[u8]) -> bool {
        self.normalizer.walk_line(line)
    }

    /// One batch of records through the three stages, as `keytrail run`
    /// does it: each stage over the whole batch before the next.
    pub fn batch(&self, records: &[Vec<u8>]) -> keytrail_core::Batch {
        let mut batch = keytrail_core::Batch::new(keytrail_core::AckToken::detached());
        batch.events.reserve(records.len());
        for record in records {
            self.normalizer
                .normalize_record(record, &self.meta, &mut batch);
        }
        self.enricher.transform(&mut batch);
        self.classifier.transform(&mut batch);
        batch
    }

    /// One pass over the lines, each event kept until the next line.
    pub fn pass(&self, lines: &[Vec<u8>]) {
        for line in lines {
            self.with_event(line, |event, _| {
                black_box(event);
            });
        }
    }
}

/// Records per batch from the source (`kafka.batch_max_records` default).
pub const RECORDS_PER_BATCH: usize = 1000;
/// Events per gRPC batch (`grpc.batch_max_events` default).
pub const EVENTS_PER_REQUEST: usize = 500;

/// Partitions of the topic the feed's records come from.
const FEED_PARTITIONS: usize = 32;

/// The corpus as the gRPC feed sends it: each valid line normalized,
/// enriched and classified, in `keytrail.v1.ForwardRequest` batches of
/// [`EVENTS_PER_REQUEST`] events, encoded. What a receiver decodes. Each
/// event has a Kafka origin, as in `keytrail run`: topic `audit`, the lines
/// dealt round [`FEED_PARTITIONS`] partitions.
pub fn feed_requests(lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
    use keytrail_core::{AckToken, Batch, Origin, RecordMeta, Transform as _};
    use prost::Message as _;

    let normalizer = keytrail_transform_normalize::Normalizer::default();
    let enricher = keytrail_transform_enrich::Enricher::new();
    let classifier = keytrail_transform_classify::Classifier::new();
    let mut arena = keytrail_proto::EventArena::default();
    let mut batch = Batch::new(AckToken::detached());
    let topic = keytrail_core::Topic::interned("audit");
    for (n, line) in lines.iter().enumerate() {
        let meta = RecordMeta {
            origin: Some(Origin {
                topic: topic.clone(),
                partition: (n % FEED_PARTITIONS) as i32,
                offset: (n / FEED_PARTITIONS) as i64,
            }),
            ..RecordMeta::default()
        };
        normalizer.normalize_record(line, &meta, &mut batch);
    }
    enricher.transform(&mut batch);
    classifier.transform(&mut batch);
    batch
        .events
        .chunks(EVENTS_PER_REQUEST)
        .zip(1..)
        .map(|(events, sequence)| {
            keytrail_proto::ForwardFrame::Batch {
                sequence,
                events: events.iter().map(|e| arena.encode(e)).collect(),
            }
            .encode_to_vec()
        })
        .collect()
}

/// What the reference receiver does with each request: decode it straight
/// into core events ([`keytrail_proto::ForwardMessage`]) and write their
/// contract JSON lines into `out` (cleared first). Returns the events.
pub fn receive(requests: &[Vec<u8>], out: &mut Vec<u8>) -> u64 {
    use prost::Message as _;

    let mut events = 0;
    out.clear();
    for request in requests {
        if let Ok(keytrail_proto::ForwardMessage::Batch(batch)) =
            keytrail_proto::ForwardMessage::decode(request.as_slice())
        {
            for event in &batch.events {
                event.write_json(out);
                out.push(b'\n');
            }
            events += batch.events.len() as u64;
        }
    }
    events
}

/// [`receive`] as the receiver did it before: prost's generated
/// `ForwardRequest`, then `Event::try_from` for each event.
pub fn receive_via_message(requests: &[Vec<u8>], out: &mut Vec<u8>) -> u64 {
    use keytrail_proto::v1;
    use prost::Message as _;

    let mut events = 0;
    out.clear();
    for request in requests {
        let Ok(v1::ForwardRequest {
            kind: Some(v1::forward_request::Kind::Batch(batch)),
        }) = v1::ForwardRequest::decode(request.as_slice())
        else {
            continue;
        };
        for event in batch.events {
            if let Ok(event) = keytrail_core::Event::try_from(event) {
                event.write_json(out);
                out.push(b'\n');
                events += 1;
            }
        }
    }
    events
}
