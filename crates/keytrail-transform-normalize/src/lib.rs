//! Normalize: the first transform, and keytrail's hot path.
//!
//! Turns raw bytes (one Kafka record or one file line) into
//! [`keytrail_core::Event`]s, whatever the vendor:
//!
//! - Securosys Key Manager UI JSON logs ([`securosys`](crate::securosys));
//! - IBM Cloud Activity Tracker CADF events: Hyper Protect Crypto Services,
//!   Key Protect, and other IBM services as `ibm_cloud`
//!   ([`ibm_cadf`](crate::ibm_cadf));
//! - wrapped in the envelopes real exports use, several per record
//!   (NDJSON), with the field drift of real events (see `envelope` and `de`).
//!
//! Guarantees:
//! - every non-blank line of a record yields exactly one event or one
//!   [`DeadLetter`] with a reason from the closed set of the contract; nothing
//!   panics on input and nothing is dropped silently;
//! - key material never reaches an event (`material`);
//! - parsing borrows from the input and builds no `serde_json::Value` tree
//!   except for the free-form `details`: an on-demand reader (`scan`) takes
//!   the fields the contract uses and skips the rest unbuilt, with
//!   serde_json as the reference path for any input it does not handle.
//!
//! Catalog facts, CRN splitting and severities are added later by the enrich
//! and classify stages.

mod de;
mod envelope;
mod ibm_cadf;
pub mod material;
mod raw;
mod scan;
mod securosys;

use keytrail_core::{Batch, DeadLetter, DeadLetterReason, Event, RecordMeta, Timestamp};
use serde::Deserialize;

/// Default largest event line, in bytes (1 MiB).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Default deepest JSON nesting accepted.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// The parser's own recursion limit; the configured depth may not exceed it.
const PARSER_DEPTH_LIMIT: usize = 120;

/// Settings of the normalize stage (`[normalize]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Largest event (one line of a record) accepted, in bytes; larger ones
    /// are dead-lettered as `too_large`.
    pub max_event_bytes: usize,
    /// Deepest JSON nesting accepted (objects and arrays); deeper input is
    /// dead-lettered as `too_deep`.
    pub max_depth: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why a [`NormalizeConfig`] cannot build a [`Normalizer`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NormalizeBuildError {
    /// `max_event_bytes` is zero.
    #[error("normalize.max_event_bytes must be at least 1")]
    ZeroEventBytes,
    /// `max_depth` out of range.
    #[error("normalize.max_depth must be between 1 and {PARSER_DEPTH_LIMIT}, got {0}")]
    Depth(usize),
}

impl NormalizeConfig {
    /// Validates the settings and builds the stage.
    pub fn build(&self) -> Result<Normalizer, NormalizeBuildError> {
        if self.max_event_bytes == 0 {
            return Err(NormalizeBuildError::ZeroEventBytes);
        }
        if !(1..=PARSER_DEPTH_LIMIT).contains(&self.max_depth) {
            return Err(NormalizeBuildError::Depth(self.max_depth));
        }
        Ok(Normalizer {
            max_event_bytes: self.max_event_bytes,
            max_depth: self.max_depth,
        })
    }
}

/// The normalize stage, built from a [`NormalizeConfig`].
#[derive(Debug, Clone)]
pub struct Normalizer {
    max_event_bytes: usize,
    max_depth: usize,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why one line did not normalize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The contract reason.
    pub reason: DeadLetterReason,
    /// A human-readable explanation; never contains the input.
    pub detail: Option<String>,
}

impl Rejection {
    fn new(reason: DeadLetterReason) -> Rejection {
        Rejection {
            reason,
            detail: None,
        }
    }

    fn with_detail(mut self, detail: String) -> Rejection {
        self.detail = Some(detail);
        self
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Whether the texts a normalized event holds can go into JSON as they are
/// ([`Event::write_json_plain`](keytrail_core::Event::write_json_plain)):
/// what [`Normalizer::normalize_line_texts`] says of the texts it put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texts {
    /// None holds a quote, a backslash or a control byte. Each text is a
    /// JSON string read without an escape by the fast reader (which gives
    /// up on a raw control byte in a string), a part of one, a number's
    /// digits, or a plain region or account from the record's metadata.
    Plain,
    /// Some may: a text had an escape, or the line took the serde_json
    /// path, which does not say.
    MayNeedEscaping,
}

impl Texts {
    /// Plain when both are.
    #[must_use]
    pub fn and(self, other: Texts) -> Texts {
        if self == Texts::Plain { other } else { self }
    }

    /// `event`'s contract JSON onto `out`: its texts copied as they are
    /// when these, which must cover every stage that set a text, are
    /// plain; escaped otherwise.
    pub fn write_json(self, event: &Event, out: &mut Vec<u8>) {
        match self {
            Texts::Plain => event.write_json_plain(out),
            Texts::MayNeedEscaping => event.write_json(out),
        }
    }

    /// Plain when `text` is absent or plain.
    fn of(text: Option<&str>) -> Texts {
        if text.is_none_or(keytrail_core::json::is_plain) {
            Texts::Plain
        } else {
            Texts::MayNeedEscaping
        }
    }
}

/// What a parser needs besides the vendor object.
pub(crate) struct Context<'m> {
    normalizer: &'m Normalizer,
    meta: &'m RecordMeta,
    /// `logSourceCRN` found on a `payload` envelope, for the event inside.
    outer_log_source: Option<keytrail_core::CompactString>,
    /// What [`Normalizer::normalize_line_texts`] will say of the texts
    /// kept so far: set to [`Texts::MayNeedEscaping`] on the first that
    /// may need it.
    texts: &'m mut Texts,
}

impl<'m> Context<'m> {
    fn new(normalizer: &'m Normalizer, meta: &'m RecordMeta, texts: &'m mut Texts) -> Context<'m> {
        Context {
            normalizer,
            meta,
            outer_log_source: None,
            texts,
        }
    }

    /// Notes texts kept from the input.
    fn keep(&mut self, texts: Texts) {
        *self.texts = self.texts.and(texts);
    }
}

impl Context<'_> {
    /// The event time, or an inferred one (Kafka timestamp, else now) with
    /// the inferred flag set.
    fn time(&self, text: Option<&str>) -> Result<(Timestamp, bool), Rejection> {
        match text {
            Some(text) => Timestamp::parse_vendor(text)
                .map(|t| (t, false))
                .map_err(|_| Rejection::new(DeadLetterReason::BadTime)),
            None => Ok((self.meta.timestamp.unwrap_or_else(Timestamp::now), true)),
        }
    }

    /// Origin and the Kafka header fallbacks (the enricher prefers what the
    /// event itself says).
    fn apply_meta(&self, event: &mut Event) {
        event.origin.clone_from(&self.meta.origin);
        if event.region.is_none() {
            event.region = self.meta.region.as_deref().map(Into::into);
        }
        if event.account_id.is_none() {
            event.account_id = self.meta.account.as_deref().map(Into::into);
        }
    }
}

impl Normalizer {
    /// Normalizes one line: exactly one event, or the reason it is not one.
    pub fn normalize_line(&self, line: &[u8], meta: &RecordMeta) -> Result<Event, Rejection> {
        self.event_from_line(line, &mut Context::new(self, meta, &mut Texts::Plain))
    }

    /// [`Normalizer::normalize_line`], and in `texts` whether the event's
    /// texts can be written as they are. The fast reader notes an escape in
    /// any string it keeps, which costs nothing next to a search of the
    /// line; so a line whose backslashes are all in fields the contract
    /// skips, in `details`, or in JSON text read apart (a JSON-encoded
    /// `requestData`, a LogDNA `_line`) is still [`Texts::Plain`]. (`texts`
    /// is an out-parameter so that the large event is returned in place.)
    pub fn normalize_line_texts(
        &self,
        line: &[u8],
        meta: &RecordMeta,
        texts: &mut Texts,
    ) -> Result<Event, Rejection> {
        *texts = Texts::of(meta.region.as_deref()).and(Texts::of(meta.account.as_deref()));
        self.event_from_line(line, &mut Context::new(self, meta, texts))
    }

    /// True when `line` is UTF-8 and one JSON value of any type that the
    /// fast reader can walk: no `\u` escape, no control byte inside a
    /// string, nested at most `max_depth` deep. The UTF-8 check and the
    /// walk alone, with nothing decoded or kept, so the benches time it as
    /// the floor under [`Normalizer::normalize_line`] (`hotpath walk`). It
    /// takes lines the normalizer still hands to serde_json (a value other
    /// than an object, a duplicate field, a key with escapes).
    pub fn walk_line(&self, line: &[u8]) -> bool {
        simdutf8::basic::from_utf8(line).is_ok_and(|text| scan::walk(text, self.max_depth).is_ok())
    }

    /// Normalizes a whole record (one or more newline-separated events) into
    /// `batch`: one event or one dead letter per non-blank line, in order.
    pub fn normalize_record(&self, record: &[u8], meta: &RecordMeta, batch: &mut Batch) {
        for (line_no, line) in envelope::lines(record) {
            match self.normalize_line(line, meta) {
                Ok(event) => batch.events.push(event),
                Err(rejection) => batch.dead_letters.push(DeadLetter {
                    reason: rejection.reason,
                    detail: rejection.detail,
                    origin: meta.origin.clone(),
                    line: line_no,
                    payload: line.to_vec(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
