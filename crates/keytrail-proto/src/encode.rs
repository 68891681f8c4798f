//! Protobuf bytes straight from a [`keytrail_core::Event`], and the feed's
//! outgoing frame built from them.
//!
//! The gRPC sink used to convert every event into a [`v1::Event`] (a copy
//! of every string) and prost encoded that; a batch kept for resending was
//! cloned again for every send. [`encode_event`] writes the same bytes
//! without the intermediate message. [`EventArena`] writes events one after
//! another into shared chunks and hands each out as a [`Bytes`] view: no
//! allocation per event, and a wire batch shares the bytes by reference
//! count. [`EncodedEvents`] encodes a whole batch at once into one buffer,
//! on the thread that made the events (the gRPC feed's `Prepare` step).
//!
//! The bytes are exactly those of `v1::Event::from(&event).encode_to_vec()`
//! (prost writes fields in number order and skips proto3 defaults; so does
//! this module). The tests compare the two byte for byte on events with every
//! field set, with none set, and with the awkward values (empty strings in
//! optional fields, zero and negative numbers, map entries with empty
//! keys or values).

use bytes::{BufMut, Bytes, BytesMut};
use keytrail_core::{Actor, Event, KeyFacts, Ocsf, Origin, Reason, Target, TkeFacts};
use prost::encoding::{DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint};

use crate::convert::{category_to_proto, outcome_to_proto, severity_to_proto, source_to_proto};
use crate::v1;

/// Appends the protobuf encoding of `event` as a `keytrail.v1.Event`
/// (without a length prefix) to `out`.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) {
    EventFields(event).write(out);
}

/// Room kept free for the next event: the protobuf form of a 2 KB JSON
/// event (the largest in the vendors' samples) is well under this.
const EVENT_BUFFER_BYTES: usize = 2048;

/// Encodes events one after another into chunks of memory and hands each
/// event out as a [`Bytes`] view of its chunk. An event costs no allocation
/// of its own (a fresh 2 KB buffer per event was the largest single cost of
/// the gRPC sink), and a chunk is freed when the last view into it is
/// dropped: the memory held is that of the events still held, give or take
/// a chunk.
#[derive(Debug)]
pub struct EventArena {
    chunk: BytesMut,
    chunk_bytes: usize,
}

impl EventArena {
    /// An arena allocating `chunk_bytes` at a time (at least 2 KB).
    pub fn new(chunk_bytes: usize) -> EventArena {
        EventArena {
            chunk: BytesMut::new(),
            chunk_bytes: chunk_bytes.max(EVENT_BUFFER_BYTES),
        }
    }

    /// The protobuf encoding of `event` as a `keytrail.v1.Event`.
    pub fn encode(&mut self, event: &Event) -> Bytes {
        self.encode_with(|chunk| EventFields(event).write(chunk))
    }

    /// What `write` appends to the chunk (another message than
    /// `keytrail.v1.Event`: the OTLP log record), as its own view.
    pub fn encode_with(&mut self, write: impl FnOnce(&mut BytesMut)) -> Bytes {
        if self.chunk.capacity() < EVENT_BUFFER_BYTES {
            // The earlier events keep the old chunk alive; this one starts
            // a new chunk.
            self.chunk.reserve(self.chunk_bytes);
        }
        write(&mut self.chunk);
        let bytes = self.chunk.split().freeze();
        if self.chunk.capacity() > self.chunk_bytes {
            // A large event grew the chunk: small events placed in the
            // rest would keep that whole buffer alive.
            self.chunk = BytesMut::new();
        }
        bytes
    }
}

impl Default for EventArena {
    /// Chunks of 64 KiB: a few dozen typical events each.
    fn default() -> EventArena {
        EventArena::new(64 * 1024)
    }
}

/// A batch's events encoded one after another in one buffer (as
/// `keytrail.v1.Event`s, or with [`EncodedEvents::encode_with`] as any
/// message, such as OTLP log records), each handed out as a [`Bytes`] view
/// of it. Made where the events were made (the gRPC protocols' preparation
/// on the transform threads), so that they are read while still in that
/// core's cache.
#[derive(Debug, Clone)]
pub struct EncodedEvents {
    bytes: Bytes,
    /// Where each event's encoding ends.
    ends: Vec<usize>,
}

impl EncodedEvents {
    /// Encodes every event of `events`.
    pub fn encode(events: &[Event]) -> EncodedEvents {
        EncodedEvents::encode_with(events, TYPICAL_EVENT_BYTES, |event, out| {
            EventFields(event).write(out);
        })
    }

    /// Every event of `events` as `write` appends it to the buffer, with
    /// `bytes_per_event` reserved for each at the start (another message
    /// than `keytrail.v1.Event`: the OTLP log record).
    pub fn encode_with(
        events: &[Event],
        bytes_per_event: usize,
        mut write: impl FnMut(&Event, &mut Vec<u8>),
    ) -> EncodedEvents {
        let mut out = Vec::with_capacity(events.len() * bytes_per_event);
        let mut ends = Vec::with_capacity(events.len());
        for event in events {
            write(event, &mut out);
            ends.push(out.len());
        }
        EncodedEvents {
            bytes: Bytes::from(out),
            ends,
        }
    }

    /// The encoding of the event at `index`.
    pub fn get(&self, index: usize) -> Option<Bytes> {
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(before) => *self.ends.get(before)?,
            None => 0,
        };
        Some(self.bytes.slice(start..end))
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// A little above an event's average protobuf size in the benches' corpus
/// (672 bytes), so that a usual batch fits without growing the buffer; a
/// batch of larger events grows it.
const TYPICAL_EVENT_BYTES: usize = 768;

/// An outgoing `keytrail.v1.ForwardRequest` of the feed whose events are
/// already encoded (by [`encode_event`]). It implements [`prost::Message`]
/// for encoding only, so that tonic's prost codec sends it as is; a
/// receiver decodes the same bytes as [`v1::ForwardRequest`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ForwardFrame {
    /// Nothing (the default a decoder would start from).
    #[default]
    Empty,
    /// The opening hello.
    Hello(v1::Hello),
    /// A sequenced batch of encoded events.
    Batch {
        /// The batch's sequence number.
        sequence: u64,
        /// Each event's encoding.
        events: Vec<Bytes>,
    },
}

/// Field numbers of `ForwardRequest` and `EventBatch`.
const REQUEST_HELLO: u32 = 1;
const REQUEST_BATCH: u32 = 2;
const BATCH_SEQUENCE: u32 = 1;
const BATCH_EVENTS: u32 = 2;

impl ForwardFrame {
    fn batch_body_len(sequence: u64, events: &[Bytes]) -> usize {
        let sequence = if sequence == 0 {
            0
        } else {
            key_len(BATCH_SEQUENCE) + encoded_len_varint(sequence)
        };
        sequence
            + events
                .iter()
                .map(|e| key_len(BATCH_EVENTS) + encoded_len_varint(e.len() as u64) + e.len())
                .sum::<usize>()
    }
}

impl prost::Message for ForwardFrame {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            ForwardFrame::Empty => {}
            ForwardFrame::Hello(hello) => {
                prost::encoding::message::encode(REQUEST_HELLO, hello, buf)
            }
            ForwardFrame::Batch { sequence, events } => {
                encode_key(REQUEST_BATCH, WireType::LengthDelimited, buf);
                encode_varint(ForwardFrame::batch_body_len(*sequence, events) as u64, buf);
                if *sequence != 0 {
                    encode_key(BATCH_SEQUENCE, WireType::Varint, buf);
                    encode_varint(*sequence, buf);
                }
                for event in events {
                    encode_key(BATCH_EVENTS, WireType::LengthDelimited, buf);
                    encode_varint(event.len() as u64, buf);
                    buf.put_slice(event);
                }
            }
        }
    }

    /// A frame is only ever sent: decoding skips every field (a receiver
    /// decodes [`v1::ForwardRequest`]).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl bytes::Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        match self {
            ForwardFrame::Empty => 0,
            ForwardFrame::Hello(hello) => {
                prost::encoding::message::encoded_len(REQUEST_HELLO, hello)
            }
            ForwardFrame::Batch { sequence, events } => {
                let body = ForwardFrame::batch_body_len(*sequence, events);
                key_len(REQUEST_BATCH) + encoded_len_varint(body as u64) + body
            }
        }
    }

    fn clear(&mut self) {
        *self = ForwardFrame::Empty;
    }
}

fn key_len(tag: u32) -> usize {
    prost::encoding::key_len(tag)
}

/// Where encoded fields go: a buffer, or a counter of their length (a
/// nested message's length comes before its fields).
pub(crate) trait Out {
    fn varint(&mut self, value: u64);
    fn bytes(&mut self, bytes: &[u8]);
}

impl<B: BufMut> Out for B {
    /// Keys and most lengths are below 128: one byte, written in line.
    #[inline(always)]
    fn varint(&mut self, value: u64) {
        if value < 0x80 {
            self.put_u8(value as u8);
        } else {
            long_varint(value, self);
        }
    }
    #[inline(always)]
    fn bytes(&mut self, bytes: &[u8]) {
        self.put_slice(bytes);
    }
}

/// A varint of two bytes or more.
#[inline(never)]
fn long_varint(value: u64, out: &mut impl BufMut) {
    encode_varint(value, out);
}

/// Counts what would be written.
pub(crate) struct Len(pub(crate) usize);

impl Out for Len {
    fn varint(&mut self, value: u64) {
        self.0 += encoded_len_varint(value);
    }
    fn bytes(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// A message whose fields can be written to any [`Out`].
pub(crate) trait Fields {
    fn write<O: Out>(&self, out: &mut O);

    /// The length of what [`Fields::write`] writes: by writing it to a
    /// counter, unless a message knows better.
    fn len(&self) -> usize {
        let mut len = Len(0);
        self.write(&mut len);
        len.0
    }
}

pub(crate) fn key<O: Out>(out: &mut O, tag: u32, wire_type: WireType) {
    out.varint((u64::from(tag) << 3) | wire_type as u64);
}

/// A string field present in the message (`optional`, or a map entry's
/// non-empty key or value).
pub(crate) fn string<O: Out>(out: &mut O, tag: u32, value: &str) {
    key(out, tag, WireType::LengthDelimited);
    out.varint(value.len() as u64);
    out.bytes(value.as_bytes());
}

/// `optional string`: written when set, even if empty.
fn optional_string<O: Out>(out: &mut O, tag: u32, value: Option<&str>) {
    if let Some(value) = value {
        string(out, tag, value);
    }
}

/// A plain proto3 `string`: the empty string is the default, not written.
pub(crate) fn plain_string<O: Out>(out: &mut O, tag: u32, value: &str) {
    if !value.is_empty() {
        string(out, tag, value);
    }
}

/// A varint field (`int32` sign-extended, `int64`, `uint32`, `uint64`,
/// `bool`, enum) that is present.
pub(crate) fn varint<O: Out>(out: &mut O, tag: u32, value: u64) {
    key(out, tag, WireType::Varint);
    out.varint(value);
}

/// A plain proto3 varint field: zero is the default, not written.
pub(crate) fn plain_varint<O: Out>(out: &mut O, tag: u32, value: u64) {
    if value != 0 {
        varint(out, tag, value);
    }
}

fn int32(value: i32) -> u64 {
    i64::from(value) as u64
}

fn int64(value: i64) -> u64 {
    value as u64
}

/// A nested message, length first.
pub(crate) fn message<O: Out, M: Fields>(out: &mut O, tag: u32, value: &M) {
    let len = value.len();
    key(out, tag, WireType::LengthDelimited);
    out.varint(len as u64);
    value.write(out);
}

/// The length of a length-delimited field of `len` bytes, key included
/// (tags below 16 take one byte).
pub(crate) fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// One entry of a `map<string, string>` (prost leaves out an empty key or
/// value).
struct Entry<'a>(&'a [u8], &'a [u8]);

impl Fields for Entry<'_> {
    fn write<O: Out>(&self, out: &mut O) {
        for (tag, text) in [(1, self.0), (2, self.1)] {
            if !text.is_empty() {
                key(out, tag, WireType::LengthDelimited);
                out.varint(text.len() as u64);
                out.bytes(text);
            }
        }
    }
}

struct EventFields<'a>(&'a Event);

impl Fields for EventFields<'_> {
    fn write<O: Out>(&self, out: &mut O) {
        let e = self.0;
        plain_varint(out, 1, int64(e.time.as_millis()));
        plain_varint(out, 2, u64::from(e.time_inferred));
        plain_varint(out, 3, int32(source_to_proto(e.source) as i32));
        plain_string(out, 4, &e.action);
        optional_string(out, 5, e.legacy_action.as_deref());
        optional_string(out, 6, e.description.as_deref());
        plain_varint(out, 7, int32(category_to_proto(e.category) as i32));
        plain_varint(out, 8, int32(outcome_to_proto(e.outcome) as i32));
        if let Some(code) = e.status_code {
            varint(out, 9, u64::from(code));
        }
        plain_varint(out, 10, int32(severity_to_proto(e.severity) as i32));
        optional_string(out, 11, e.vendor_severity.as_deref());
        plain_varint(out, 12, u64::from(e.actionable));
        optional_string(out, 13, e.remediation.as_deref());
        optional_string(out, 14, e.correlation_id.as_deref());
        optional_string(out, 15, e.request_uri.as_deref());
        optional_string(out, 16, e.instance_id.as_deref());
        optional_string(out, 17, e.region.as_deref());
        optional_string(out, 18, e.account_id.as_deref());
        optional_string(out, 19, e.message.as_deref());
        optional_string(out, 20, e.event_id.as_deref());
        if let Some(data_event) = e.data_event {
            varint(out, 21, u64::from(data_event));
        }
        if !e.actor.is_empty() {
            message(out, 22, &e.actor);
        }
        if !e.target.is_empty() {
            message(out, 23, &e.target);
        }
        if let Some(key) = &e.key {
            message(out, 24, key.as_ref());
        }
        if let Some(tke) = &e.tke {
            message(out, 25, tke.as_ref());
        }
        if let Some(reason) = &e.reason {
            message(out, 26, reason);
        }
        // Ordered by name, as the protobuf's BTreeMap; each value travels
        // as its compact JSON text, which is how `Details` keeps it.
        for (name, json) in e.details.iter() {
            message(out, 27, &Entry(name.as_bytes(), json.as_bytes()));
        }
        if let Some(labels) = &e.labels {
            for (name, value) in labels.iter() {
                message(out, 28, &Entry(name.as_bytes(), value.as_bytes()));
            }
        }
        if let Some(ocsf) = &e.ocsf {
            message(out, 29, ocsf);
        }
        if let Some(origin) = &e.origin {
            message(out, 30, origin);
        }
    }
}

impl Fields for Actor {
    fn write<O: Out>(&self, out: &mut O) {
        optional_string(out, 1, self.user.as_deref());
        optional_string(out, 2, self.id.as_deref());
        optional_string(out, 3, self.role.as_deref());
        optional_string(out, 4, self.provider.as_deref());
        optional_string(out, 5, self.ip.as_deref());
        optional_string(out, 6, self.user_agent.as_deref());
        optional_string(out, 7, self.session_id.as_deref());
        optional_string(out, 8, self.cert_fingerprint.as_deref());
    }
}

impl Fields for Target {
    fn write<O: Out>(&self, out: &mut O) {
        optional_string(out, 1, self.id.as_deref());
        optional_string(out, 2, self.name.as_deref());
        optional_string(out, 3, self.kind.as_deref());
        optional_string(out, 4, self.api_url.as_deref());
    }
}

impl Fields for KeyFacts {
    fn write<O: Out>(&self, out: &mut O) {
        optional_string(out, 1, self.id.as_deref());
        optional_string(out, 2, self.kind.as_deref());
        optional_string(out, 3, self.state.as_deref());
        if let Some(code) = self.state_code {
            varint(out, 4, int64(code));
        }
        optional_string(out, 5, self.previous_state.as_deref());
        if let Some(code) = self.previous_state_code {
            varint(out, 6, int64(code));
        }
        optional_string(out, 7, self.version_id.as_deref());
        optional_string(out, 8, self.rewrapped_version_id.as_deref());
        optional_string(out, 9, self.version_created.as_deref());
        optional_string(out, 10, self.key_ring_id.as_deref());
        optional_string(out, 11, self.previous_key_ring_id.as_deref());
    }
}

impl Fields for TkeFacts {
    fn write<O: Out>(&self, out: &mut O) {
        optional_string(out, 1, self.location.as_deref());
        optional_string(out, 2, self.availability_zone.as_deref());
        if let Some(index) = self.hsm_index {
            varint(out, 3, u64::from(index));
        }
        if let Some(index) = self.domain_index {
            varint(out, 4, u64::from(index));
        }
        optional_string(out, 5, self.admin_id.as_deref());
        if let Some(threshold) = self.signature_threshold {
            varint(out, 6, int64(threshold));
        }
        if let Some(threshold) = self.revocation_signature_threshold {
            varint(out, 7, int64(threshold));
        }
        optional_string(out, 8, self.verification_pattern.as_deref());
    }
}

impl Fields for Reason {
    fn write<O: Out>(&self, out: &mut O) {
        optional_string(out, 1, self.kind.as_deref());
        optional_string(out, 2, self.failure.as_deref());
    }
}

impl Fields for Ocsf {
    fn write<O: Out>(&self, out: &mut O) {
        plain_varint(out, 1, u64::from(self.class_uid));
        plain_varint(out, 2, u64::from(self.category_uid));
        plain_varint(out, 3, u64::from(self.activity_id));
        plain_varint(out, 4, u64::from(self.status_id));
    }
}

impl Fields for Origin {
    fn write<O: Out>(&self, out: &mut O) {
        plain_string(out, 1, &self.topic);
        plain_varint(out, 2, int32(self.partition));
        plain_varint(out, 3, int64(self.offset));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use keytrail_core::{CompactString, Source, Timestamp};
    use prost::Message as _;

    use super::*;
    use crate::convert::tests::full_event;

    /// One event's encoding in a buffer of its own.
    fn event_bytes(event: &Event) -> Bytes {
        let mut out = Vec::new();
        encode_event(event, &mut out);
        Bytes::from(out)
    }

    fn assert_same_bytes(event: &Event) {
        let expected = v1::Event::from(event).encode_to_vec();
        let mut direct = Vec::new();
        encode_event(event, &mut direct);
        assert_eq!(direct, expected, "direct encoding differs from prost's");
        let mut len = Len(0);
        EventFields(event).write(&mut len);
        assert_eq!(len.0, expected.len(), "counted length");
    }

    #[test]
    fn every_field_set_encodes_as_prost_does() {
        assert_same_bytes(&full_event());
    }

    #[test]
    fn a_bare_event_encodes_as_prost_does() {
        assert_same_bytes(&Event::new(
            Timestamp::from_millis(0),
            Source::SecurosysKm,
            CompactString::default(),
        ));
    }

    #[test]
    fn defaults_empties_and_negatives_encode_as_prost_does() {
        assert_same_bytes(&awkward_event());
    }

    /// An event of defaults, empty texts in optional fields, zero and
    /// negative numbers, and map entries with empty names or values.
    pub(crate) fn awkward_event() -> Event {
        let mut event = Event::new(Timestamp::from_millis(-1), Source::IbmCloud, "x".into());
        event.legacy_action = Some(CompactString::default());
        event.status_code = Some(0);
        event.data_event = Some(false);
        event.actor.ip = Some(CompactString::default());
        event.reason = Some(Reason {
            kind: None,
            failure: None,
        });
        event.key = Some(Box::new(KeyFacts {
            state_code: Some(-3),
            previous_state_code: Some(0),
            ..KeyFacts::default()
        }));
        event.tke = Some(Box::new(TkeFacts {
            hsm_index: Some(0),
            signature_threshold: Some(i64::MIN),
            ..TkeFacts::default()
        }));
        event.labels = Some(Box::new(BTreeMap::from([
            (String::new(), "v".into()),
            ("k".into(), String::new()),
        ])));
        event.details.insert("", &serde_json::json!(""));
        event.details.insert("z", &serde_json::json!([]));
        event.ocsf = Some(Ocsf {
            class_uid: 0,
            category_uid: 0,
            activity_id: 0,
            status_id: 99,
        });
        event.origin = Some(Origin {
            topic: keytrail_core::Topic::from(""),
            partition: -1,
            offset: 0,
        });
        event
    }

    /// `count` events: every field set, a bare one, the awkward values, and
    /// one with a 10 KB message, in turn.
    fn assorted(count: i64) -> Vec<Event> {
        let mut big = full_event();
        big.message = Some("m".repeat(10_000).into());
        (0..count)
            .map(|i| match i % 4 {
                0 => full_event(),
                1 => Event::new(Timestamp::from_millis(i), Source::IbmHpcs, "a".into()),
                2 => awkward_event(),
                _ => big.clone(),
            })
            .collect()
    }

    #[test]
    fn arena_views_hold_each_events_own_bytes() {
        let events = assorted(200);
        // Small chunks, so events cross chunk ends and outgrow a chunk.
        let mut arena = EventArena::new(4096);
        let views: Vec<Bytes> = events.iter().map(|e| arena.encode(e)).collect();
        for (event, view) in events.iter().zip(&views) {
            assert_eq!(view.as_ref(), v1::Event::from(event).encode_to_vec());
        }
        // After an event larger than a chunk, the next starts a fresh one.
        assert!(arena.chunk.capacity() <= 4096);
        // Views outlive the arena and each other.
        drop(arena);
        let last = views.last().cloned().expect("views");
        drop(views);
        assert_eq!(last.as_ref(), event_bytes(events.last().expect("events")));
    }

    #[test]
    fn a_batch_encoded_at_once_hands_out_each_events_own_bytes() {
        let events = assorted(50);
        let encoded = EncodedEvents::encode(&events);
        assert_eq!(encoded.len(), events.len());
        let views: Vec<Bytes> = (0..events.len())
            .map(|i| encoded.get(i).expect("every event is there"))
            .collect();
        for (event, view) in events.iter().zip(&views) {
            assert_eq!(view.as_ref(), v1::Event::from(event).encode_to_vec());
        }
        assert_eq!(encoded.get(events.len()), None, "past the end");
        // Views outlive the batch and each other.
        drop(encoded);
        let last = views.last().cloned().expect("views");
        drop(views);
        assert_eq!(last.as_ref(), event_bytes(events.last().expect("events")));
        let none = EncodedEvents::encode(&[]);
        assert!(none.is_empty());
        assert_eq!(none.get(0), None);
    }

    #[test]
    fn a_batch_frame_decodes_as_the_forward_request() {
        let events = [
            full_event(),
            Event::new(Timestamp::from_millis(5), Source::IbmHpcs, "a".into()),
        ];
        let frame = ForwardFrame::Batch {
            sequence: 7,
            events: events.iter().map(event_bytes).collect(),
        };
        let bytes = frame.encode_to_vec();
        assert_eq!(bytes.len(), frame.encoded_len());
        let expected = v1::ForwardRequest {
            kind: Some(v1::forward_request::Kind::Batch(v1::EventBatch {
                sequence: 7,
                events: events.iter().map(v1::Event::from).collect(),
            })),
        };
        assert_eq!(bytes, expected.encode_to_vec());
        assert_eq!(
            v1::ForwardRequest::decode(bytes.as_slice()).expect("decodes"),
            expected
        );
    }

    #[test]
    fn a_hello_frame_decodes_as_the_forward_request() {
        let hello = v1::Hello {
            sender_id: "keytrail-1".into(),
            first_sequence: 3,
            agent: "keytrail/test".into(),
        };
        let frame = ForwardFrame::Hello(hello.clone());
        let expected = v1::ForwardRequest {
            kind: Some(v1::forward_request::Kind::Hello(hello)),
        };
        assert_eq!(frame.encode_to_vec(), expected.encode_to_vec());
        assert_eq!(frame.encoded_len(), expected.encoded_len());
    }
}
