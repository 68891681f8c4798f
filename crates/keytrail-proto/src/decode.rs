//! The feed's incoming side: a `keytrail.v1.ForwardRequest` decoded
//! straight into core [`Event`]s.
//!
//! Decoding a batch as [`v1::ForwardRequest`] allocates a `String` for
//! every text field of every event, and [`convert`](crate::convert) then
//! copies each into the core event. [`ForwardMessage`] reads each field
//! once, from the received bytes into the event (texts of up to 24 bytes
//! need no allocation at all), and shares one topic name among the events
//! of a batch.
//!
//! What comes out is what prost's decoding followed by
//! `Event::try_from` gives, field for field, including protobuf's rules
//! for fields sent twice (the last value wins, nested messages merge) and
//! for unknown fields (skipped); the tests compare the two on the same
//! bytes. Two kinds of failure stay apart, as they were:
//! - bytes that are not protobuf, or not this schema's wire types, or a
//!   text that is not UTF-8: a [`prost::DecodeError`], so the stream fails;
//! - an event keytrail would never send (an unspecified or unknown enum
//!   value, a `details` value that is not JSON): the batch decodes and
//!   carries the [`Refused`] event, so a receiver rejects that batch for
//!   good and the stream goes on.

use std::borrow::Cow;

use bytes::{Buf, BufMut, Bytes};
use keytrail_core::{
    Actor, CompactString, Event, KeyFacts, Ocsf, Origin, Reason, Source, Target, Text, Timestamp,
    TkeFacts, Topic,
};
use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, decode_varint, merge_loop, skip_field,
};

use crate::convert::{
    ConvertError, category_from_proto, details_from_proto, outcome_from_proto, severity_from_proto,
    source_from_proto,
};
use crate::encode::{ForwardFrame, encode_event};
use crate::v1;

/// A `keytrail.v1.ForwardRequest` as a receiver reads it: the hello, or a
/// batch of core events.
///
/// It implements [`prost::Message`], so tonic's prost codec decodes the
/// feed's requests into it. Encoding writes the same bytes a sender would
/// (for tests and tools; a batch's refused event and the ones after it are
/// not kept, so they are not written).
#[derive(Debug, Default)]
pub enum ForwardMessage {
    /// A request without either (prost's `kind: None`).
    #[default]
    Empty,
    /// The opening hello.
    Hello(v1::Hello),
    /// A sequenced batch.
    Batch(IncomingBatch),
}

/// A batch of the feed, its events decoded.
#[derive(Debug, Default)]
pub struct IncomingBatch {
    /// The batch's sequence number.
    pub sequence: u64,
    /// The events, in the order sent (up to the refused one, if any).
    pub events: Vec<Event>,
    /// The first event that cannot become a core event.
    pub refused: Option<Refused>,
    /// Events on the wire so far, refused ones included.
    received: usize,
    /// The topic name of the last event with an origin.
    topic: Option<Topic>,
}

/// An event of a batch that keytrail would never send.
#[derive(Debug)]
pub struct Refused {
    /// Its position in the batch, from 0.
    pub index: usize,
    /// What is wrong with it.
    pub error: ConvertError,
}

/// The most events a batch makes room for at once (a request of tiny
/// events would otherwise reserve room for millions).
const MAX_RESERVED_EVENTS: usize = 1024;

/// Field numbers of `ForwardRequest` and `EventBatch`.
const REQUEST_HELLO: u32 = 1;
const REQUEST_BATCH: u32 = 2;
const BATCH_SEQUENCE: u32 = 1;
const BATCH_EVENTS: u32 = 2;

impl ForwardMessage {
    /// The same request as an outgoing frame.
    fn frame(&self) -> ForwardFrame {
        match self {
            ForwardMessage::Empty => ForwardFrame::Empty,
            ForwardMessage::Hello(hello) => ForwardFrame::Hello(hello.clone()),
            ForwardMessage::Batch(batch) => ForwardFrame::Batch {
                sequence: batch.sequence,
                events: batch
                    .events
                    .iter()
                    .map(|event| {
                        let mut bytes = Vec::new();
                        encode_event(event, &mut bytes);
                        Bytes::from(bytes)
                    })
                    .collect(),
            },
        }
    }
}

impl prost::Message for ForwardMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.frame().encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // A oneof: a second occurrence of the same member merges into it,
        // the other member replaces it.
        match tag {
            REQUEST_HELLO => {
                let mut hello = match std::mem::take(self) {
                    ForwardMessage::Hello(hello) => hello,
                    _ => v1::Hello::default(),
                };
                prost::encoding::message::merge(wire_type, &mut hello, buf, ctx)?;
                *self = ForwardMessage::Hello(hello);
            }
            REQUEST_BATCH => {
                let mut batch = match std::mem::take(self) {
                    ForwardMessage::Batch(batch) => batch,
                    _ => IncomingBatch::default(),
                };
                check_wire_type(WireType::LengthDelimited, wire_type)?;
                merge_loop(&mut batch, buf, ctx, |batch, buf, ctx| {
                    let (tag, wire_type) = decode_key(buf)?;
                    batch.merge_field(tag, wire_type, buf, ctx)
                })?;
                *self = ForwardMessage::Batch(batch);
            }
            _ => skip_field(wire_type, tag, buf, ctx)?,
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.frame().encoded_len()
    }

    fn clear(&mut self) {
        *self = ForwardMessage::Empty;
    }
}

impl IncomingBatch {
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            BATCH_SEQUENCE => {
                prost::encoding::uint64::merge(wire_type, &mut self.sequence, buf, ctx)
            }
            BATCH_EVENTS => {
                check_wire_type(WireType::LengthDelimited, wire_type)?;
                let len = decode_varint(buf)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= buf.remaining())
                    .ok_or_else(|| malformed("buffer underflow"))?;
                let index = self.received;
                self.received += 1;
                // The event is decoded where it is kept: moving an `Event`
                // (about 800 bytes) out through each layer of results cost
                // five copies of it. After a refused event the rest are
                // decoded for their errors only.
                let mut spare;
                let event = if self.refused.is_none() {
                    if self.events.len() == self.events.capacity() {
                        // Room for as many more events of this size as the
                        // rest of the request could hold, instead of
                        // growing (and moving) one by one.
                        let more = (buf.remaining() - len) / (len + 2) + 1;
                        self.events.reserve(more.min(MAX_RESERVED_EVENTS));
                    }
                    let at = self.events.len();
                    self.events.push(blank_event());
                    &mut self.events[at]
                } else {
                    spare = blank_event();
                    &mut spare
                };
                // On a decoding error the half-decoded event stays, but the
                // whole batch is thrown away (`ForwardMessage::merge_field`).
                let outcome = if buf.chunk().len() >= len {
                    let outcome = decode_event(event, &mut self.topic, &buf.chunk()[..len])?;
                    buf.advance(len);
                    outcome
                } else {
                    // The bytes are not contiguous (never so with tonic).
                    let bytes = buf.copy_to_bytes(len);
                    decode_event(event, &mut self.topic, &bytes)?
                };
                if let Err(error) = outcome
                    && self.refused.is_none()
                {
                    self.events.pop();
                    self.refused = Some(Refused { index, error });
                }
                Ok(())
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }
}

/// An event with nothing set yet; decoding replaces the source with the
/// one received (or refuses the event).
fn blank_event() -> Event {
    Event::new(
        Timestamp::from_millis(0),
        Source::SecurosysKm,
        CompactString::default(),
    )
}

/// One encoded `keytrail.v1.Event`, into `event` (blank); `last_topic` is
/// the topic name of the batch's last event with an origin.
fn decode_event(
    event: &mut Event,
    last_topic: &mut Option<Topic>,
    mut buf: &[u8],
) -> Result<Result<(), ConvertError>, DecodeError> {
    let mut draft = Draft::new(event);
    while !buf.is_empty() {
        let (tag, wire_type) = read_key(&mut buf)?;
        draft.field(tag, wire_type, &mut buf)?;
    }
    Ok(draft.finish(last_topic))
}

/// The topic of an origin until the event's own is known: static, so that
/// holding the place costs no allocation.
const NO_TOPIC: Topic = Topic::from_static("");

/// An event being decoded: the enum numbers and `details` are checked at
/// the end, when the last occurrence of each is known.
struct Draft<'a, 'e> {
    event: &'e mut Event,
    source: i32,
    category: i32,
    outcome: i32,
    severity: i32,
    details: Vec<(&'a str, &'a str)>,
    topic: Option<&'a str>,
}

impl<'a, 'e> Draft<'a, 'e> {
    fn new(event: &'e mut Event) -> Draft<'a, 'e> {
        Draft {
            event,
            source: 0,
            category: 0,
            outcome: 0,
            severity: 0,
            details: Vec::new(),
            topic: None,
        }
    }

    /// One field of `keytrail.v1.Event`.
    fn field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut &'a [u8],
    ) -> Result<(), DecodeError> {
        let event = &mut *self.event;
        match tag {
            1 => event.time = Timestamp::from_millis(varint(wire_type, buf)? as i64),
            2 => event.time_inferred = varint(wire_type, buf)? != 0,
            3 => self.source = varint(wire_type, buf)? as i32,
            4 => event.action = text(wire_type, buf)?.into(),
            5 => set_text(&mut event.legacy_action, wire_type, buf)?,
            6 => set_long_text(&mut event.description, wire_type, buf)?,
            7 => self.category = varint(wire_type, buf)? as i32,
            8 => self.outcome = varint(wire_type, buf)? as i32,
            9 => event.status_code = Some(varint(wire_type, buf)? as u32),
            10 => self.severity = varint(wire_type, buf)? as i32,
            11 => set_text(&mut event.vendor_severity, wire_type, buf)?,
            12 => event.actionable = varint(wire_type, buf)? != 0,
            13 => set_long_text(&mut event.remediation, wire_type, buf)?,
            14 => set_text(&mut event.correlation_id, wire_type, buf)?,
            15 => set_text(&mut event.request_uri, wire_type, buf)?,
            16 => set_text(&mut event.instance_id, wire_type, buf)?,
            17 => set_text(&mut event.region, wire_type, buf)?,
            18 => set_text(&mut event.account_id, wire_type, buf)?,
            19 => set_text(&mut event.message, wire_type, buf)?,
            20 => set_text(&mut event.event_id, wire_type, buf)?,
            21 => event.data_event = Some(varint(wire_type, buf)? != 0),
            22 => nested(wire_type, buf, &mut event.actor, actor_field)?,
            23 => nested(wire_type, buf, &mut event.target, target_field)?,
            24 => nested(
                wire_type,
                buf,
                event.key.get_or_insert_default().as_mut(),
                key_field,
            )?,
            25 => nested(
                wire_type,
                buf,
                event.tke.get_or_insert_default().as_mut(),
                tke_field,
            )?,
            26 => nested(
                wire_type,
                buf,
                event.reason.get_or_insert_default(),
                reason_field,
            )?,
            27 => self.details.push(entry(wire_type, buf)?),
            28 => {
                let (name, value) = entry(wire_type, buf)?;
                event
                    .labels
                    .get_or_insert_default()
                    .insert(name.to_owned(), value.to_owned());
            }
            29 => nested(
                wire_type,
                buf,
                event.ocsf.get_or_insert(Ocsf {
                    class_uid: 0,
                    category_uid: 0,
                    activity_id: 0,
                    status_id: 0,
                }),
                ocsf_field,
            )?,
            30 => {
                // The topic is set at the end, shared with the event before
                // when it is the same.
                let origin = event.origin.get_or_insert(Origin {
                    topic: NO_TOPIC,
                    partition: 0,
                    offset: 0,
                });
                let topic = &mut self.topic;
                nested(wire_type, buf, origin, |origin, tag, wire_type, buf| {
                    match tag {
                        1 => *topic = Some(text(wire_type, buf)?),
                        2 => origin.partition = varint(wire_type, buf)? as i32,
                        3 => origin.offset = varint(wire_type, buf)? as i64,
                        _ => skip(tag, wire_type, buf)?,
                    }
                    Ok(())
                })?;
            }
            _ => skip(tag, wire_type, buf)?,
        }
        Ok(())
    }

    /// Completes the event in place, or says why keytrail would never have
    /// sent it (checked in the order `Event::try_from` checks).
    fn finish(mut self, last_topic: &mut Option<Topic>) -> Result<(), ConvertError> {
        let event = &mut *self.event;
        event.source = source_from_proto(self.source)?;
        event.category = category_from_proto(self.category)?;
        event.outcome = outcome_from_proto(self.outcome)?;
        event.severity = severity_from_proto(self.severity)?;
        if !self.details.is_empty() {
            // A map: of equal names the last one counts, so an earlier
            // value is never checked.
            self.details.sort_by(|a, b| a.0.cmp(b.0));
            self.details.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    *kept = *later;
                }
                same
            });
            event.details = details_from_proto(self.details)?;
        }
        if let (Some(origin), Some(topic)) = (&mut event.origin, self.topic) {
            origin.topic = match last_topic {
                Some(last) if *last == *topic => last.clone(),
                _ => last_topic.insert(Topic::from(topic)).clone(),
            };
        }
        Ok(())
    }
}

fn actor_field(
    actor: &mut Actor,
    tag: u32,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    let slot = match tag {
        1 => &mut actor.user,
        2 => &mut actor.id,
        3 => &mut actor.role,
        4 => &mut actor.provider,
        5 => &mut actor.ip,
        6 => &mut actor.user_agent,
        7 => &mut actor.session_id,
        8 => return set_text(&mut actor.cert_fingerprint, wire_type, buf),
        _ => return skip(tag, wire_type, buf),
    };
    set_text(slot, wire_type, buf)
}

fn target_field(
    target: &mut Target,
    tag: u32,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    let slot = match tag {
        1 => &mut target.id,
        2 => &mut target.name,
        3 => &mut target.kind,
        4 => &mut target.api_url,
        _ => return skip(tag, wire_type, buf),
    };
    set_text(slot, wire_type, buf)
}

fn key_field(
    key: &mut KeyFacts,
    tag: u32,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    let slot = match tag {
        1 => &mut key.id,
        2 => return set_text(&mut key.kind, wire_type, buf),
        3 => return set_long_text(&mut key.state, wire_type, buf),
        4 => return set_int64(&mut key.state_code, wire_type, buf),
        5 => return set_long_text(&mut key.previous_state, wire_type, buf),
        6 => return set_int64(&mut key.previous_state_code, wire_type, buf),
        7 => &mut key.version_id,
        8 => &mut key.rewrapped_version_id,
        9 => return set_text(&mut key.version_created, wire_type, buf),
        10 => &mut key.key_ring_id,
        11 => &mut key.previous_key_ring_id,
        _ => return skip(tag, wire_type, buf),
    };
    set_text(slot, wire_type, buf)
}

fn tke_field(
    tke: &mut TkeFacts,
    tag: u32,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    let slot = match tag {
        1 => &mut tke.location,
        2 => &mut tke.availability_zone,
        3 => return set_uint32(&mut tke.hsm_index, wire_type, buf),
        4 => return set_uint32(&mut tke.domain_index, wire_type, buf),
        5 => &mut tke.admin_id,
        6 => return set_int64(&mut tke.signature_threshold, wire_type, buf),
        7 => return set_int64(&mut tke.revocation_signature_threshold, wire_type, buf),
        8 => &mut tke.verification_pattern,
        _ => return skip(tag, wire_type, buf),
    };
    set_text(slot, wire_type, buf)
}

fn reason_field(
    reason: &mut Reason,
    tag: u32,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    let slot = match tag {
        1 => &mut reason.kind,
        2 => &mut reason.failure,
        _ => return skip(tag, wire_type, buf),
    };
    set_text(slot, wire_type, buf)
}

fn ocsf_field(
    ocsf: &mut Ocsf,
    tag: u32,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    let slot = match tag {
        1 => &mut ocsf.class_uid,
        2 => &mut ocsf.category_uid,
        3 => &mut ocsf.activity_id,
        4 => &mut ocsf.status_id,
        _ => return skip(tag, wire_type, buf),
    };
    *slot = varint(wire_type, buf)? as u32;
    Ok(())
}

/// A nested message, merged into `value` field by field.
fn nested<'a, T>(
    wire_type: WireType,
    buf: &mut &'a [u8],
    value: &mut T,
    mut field: impl FnMut(&mut T, u32, WireType, &mut &'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut inner = delimited(wire_type, buf)?;
    while !inner.is_empty() {
        let (tag, wire_type) = read_key(&mut inner)?;
        field(value, tag, wire_type, &mut inner)?;
    }
    Ok(())
}

/// A `map<string, string>` entry; a missing key or value is empty.
fn entry<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<(&'a str, &'a str), DecodeError> {
    let mut pair = ("", "");
    nested(wire_type, buf, &mut pair, |pair, tag, wire_type, buf| {
        match tag {
            1 => pair.0 = text(wire_type, buf)?,
            2 => pair.1 = text(wire_type, buf)?,
            _ => skip(tag, wire_type, buf)?,
        }
        Ok(())
    })?;
    Ok(pair)
}

/// The bytes of a length-delimited field.
fn delimited<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    check_wire_type(WireType::LengthDelimited, wire_type)?;
    let len = read_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= buf.len())
        .ok_or_else(|| malformed("buffer underflow"))?;
    let (bytes, rest) = buf.split_at(len);
    *buf = rest;
    Ok(bytes)
}

/// A string field, borrowed from the received bytes.
fn text<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(delimited(wire_type, buf)?)
        .map_err(|_| malformed("invalid string value: data is not UTF-8 encoded"))
}

/// Sets a text field: a [`CompactString`], or an [`Ident`] for the ids.
fn set_text<T: for<'a> From<&'a str>>(
    slot: &mut Option<T>,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    *slot = Some(T::from(text(wire_type, buf)?));
    Ok(())
}

fn set_long_text(
    slot: &mut Option<Text>,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    *slot = Some(Cow::Owned(text(wire_type, buf)?.to_owned()));
    Ok(())
}

fn varint(wire_type: WireType, buf: &mut &[u8]) -> Result<u64, DecodeError> {
    check_wire_type(WireType::Varint, wire_type)?;
    read_varint(buf)
}

/// A varint of an event's bytes. One-byte varints (every key, most lengths
/// and numbers) are read in line; longer ones, and errors, by prost.
#[inline(always)]
fn read_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    match buf.split_first() {
        Some((&byte, rest)) if byte < 0x80 => {
            *buf = rest;
            Ok(u64::from(byte))
        }
        _ => decode_varint(buf),
    }
}

/// A field key of an event's bytes: a one-byte key (every field number
/// below 16) with a valid wire type and a non-zero number is read in line;
/// any other, valid or not, by prost, with its errors.
#[inline(always)]
fn read_key(buf: &mut &[u8]) -> Result<(u32, WireType), DecodeError> {
    if let Some((&byte, rest)) = buf.split_first()
        && (0x08..0x80).contains(&byte)
    {
        let wire_type = match byte & 0x07 {
            0 => Some(WireType::Varint),
            1 => Some(WireType::SixtyFourBit),
            2 => Some(WireType::LengthDelimited),
            3 => Some(WireType::StartGroup),
            4 => Some(WireType::EndGroup),
            5 => Some(WireType::ThirtyTwoBit),
            _ => None,
        };
        if let Some(wire_type) = wire_type {
            *buf = rest;
            return Ok((u32::from(byte >> 3), wire_type));
        }
    }
    decode_key(buf)
}

fn set_int64(
    slot: &mut Option<i64>,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    *slot = Some(varint(wire_type, buf)? as i64);
    Ok(())
}

fn set_uint32(
    slot: &mut Option<u32>,
    wire_type: WireType,
    buf: &mut &[u8],
) -> Result<(), DecodeError> {
    *slot = Some(varint(wire_type, buf)? as u32);
    Ok(())
}

fn skip(tag: u32, wire_type: WireType, buf: &mut &[u8]) -> Result<(), DecodeError> {
    skip_field(wire_type, tag, buf, DecodeContext::default())
}

/// A decoding error of this module's own (prost makes its own errors for
/// everything else).
#[cold]
fn malformed(description: &'static str) -> DecodeError {
    // prost 0.14 has no other constructor for a hand-written message's
    // errors; the description reads as prost's own.
    #[allow(deprecated)]
    DecodeError::new(description)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost::encoding::{encode_key, encode_varint};

    use super::*;
    use crate::convert::tests::full_event;
    use crate::encode::tests::awkward_event;

    /// A batch's events, or the first refused one (its index and why), or
    /// the decoding error: what a receiver acts on.
    type Outcome = Result<Result<(u64, Vec<Event>), (usize, String)>, DecodeError>;

    /// `bytes` as prost's `ForwardRequest` followed by `Event::try_from`.
    fn through_prost(bytes: &[u8]) -> Outcome {
        let request = v1::ForwardRequest::decode(bytes)?;
        let Some(v1::forward_request::Kind::Batch(batch)) = request.kind else {
            panic!("not a batch: {request:?}");
        };
        let mut events = Vec::new();
        for (index, event) in batch.events.into_iter().enumerate() {
            match Event::try_from(event) {
                Ok(event) => events.push(event),
                Err(error) => return Ok(Err((index, error.to_string()))),
            }
        }
        Ok(Ok((batch.sequence, events)))
    }

    /// `bytes` as a [`ForwardMessage`].
    fn direct(bytes: &[u8]) -> Outcome {
        let ForwardMessage::Batch(batch) = ForwardMessage::decode(bytes)? else {
            panic!("not a batch");
        };
        Ok(match batch.refused {
            Some(Refused { index, error }) => Err((index, error.to_string())),
            None => Ok((batch.sequence, batch.events)),
        })
    }

    /// Decodes `bytes` both ways and requires the same outcome (for
    /// malformed bytes: both fail).
    fn assert_same(bytes: &[u8]) -> Outcome {
        let expected = through_prost(bytes);
        let actual = direct(bytes);
        match (&expected, &actual) {
            (Ok(expected), Ok(actual)) => assert_eq!(actual, expected),
            (Err(_), Err(_)) => {}
            _ => panic!("prost: {expected:?}\ndirect: {actual:?}"),
        }
        actual
    }

    /// A `ForwardRequest` with batch `sequence` of the given encoded events.
    fn batch(sequence: u64, events: &[Vec<u8>]) -> Vec<u8> {
        ForwardFrame::Batch {
            sequence,
            events: events.iter().cloned().map(Bytes::from).collect(),
        }
        .encode_to_vec()
    }

    fn encoded(event: &Event) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_event(event, &mut bytes);
        bytes
    }

    fn varint_field(out: &mut Vec<u8>, tag: u32, value: u64) {
        encode_key(tag, WireType::Varint, out);
        encode_varint(value, out);
    }

    fn bytes_field(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    fn event_json(event: &Event) -> String {
        let mut json = Vec::new();
        event.write_json(&mut json);
        String::from_utf8(json).expect("utf-8")
    }

    #[test]
    fn events_decode_as_prost_and_the_conversion_give_them() {
        let events = [
            full_event(),
            awkward_event(),
            Event::new(Timestamp::from_millis(0), Source::SecurosysKm, "".into()),
        ];
        let bytes = batch(42, &events.iter().map(encoded).collect::<Vec<_>>());
        let (sequence, decoded) = assert_same(&bytes).expect("decodes").expect("accepted");
        assert_eq!(sequence, 42);
        assert_eq!(decoded.len(), 3);
        for (decoded, sent) in decoded.iter().zip(&events) {
            assert_eq!(event_json(decoded), event_json(sent));
        }
    }

    #[test]
    fn fields_sent_twice_merge_as_protobuf_says() {
        // Two encodings back to back are one message: scalars and texts of
        // the second win, nested messages and maps merge.
        let mut second = awkward_event();
        second.actor.user = Some("bob".into());
        second.details.insert("a", &serde_json::json!({"x": 1}));
        second.details.insert("b", &serde_json::json!("second"));
        let mut first = full_event();
        first.details.insert("b", &serde_json::json!("first"));
        let mut merged = encoded(&first);
        merged.extend(encoded(&second));
        // And details entries of one name, an invalid value before the
        // valid one that counts.
        bytes_field(&mut merged, 27, b"\n\x01c\x12\x03{x}");
        bytes_field(&mut merged, 27, b"\n\x01c\x12\x02[]");
        let (_, decoded) = assert_same(&batch(1, &[merged]))
            .expect("decodes")
            .expect("accepted");
        let event = &decoded[0];
        assert_eq!(event.actor.user.as_deref(), Some("bob"));
        assert_eq!(
            event.actor.id.as_deref(),
            Some("IBMid-1"),
            "merged, not replaced"
        );
        assert_eq!(event.details.get("b"), Some("\"second\""));
        assert_eq!(event.details.get("c"), Some("[]"));
        assert_eq!(event.source, Source::IbmCloud);
    }

    #[test]
    fn unknown_fields_are_skipped_at_every_level() {
        let mut bytes = encoded(&full_event());
        varint_field(&mut bytes, 99, 7);
        bytes_field(&mut bytes, 100, b"anything");
        let mut actor = Vec::new();
        varint_field(&mut actor, 50, 1);
        bytes_field(&mut actor, 1, b"carol");
        bytes_field(&mut bytes, 22, &actor);
        let (_, decoded) = assert_same(&batch(1, &[bytes]))
            .expect("decodes")
            .expect("accepted");
        assert_eq!(decoded[0].actor.user.as_deref(), Some("carol"));
    }

    #[test]
    fn an_event_keytrail_never_sends_refuses_the_batch_by_index() {
        let good = encoded(&full_event());
        for (field, value) in [(3u32, 0u64), (7, 99), (8, 0), (10, 1 << 20)] {
            let mut bad = good.clone();
            varint_field(&mut bad, field, value);
            let outcome = assert_same(&batch(3, &[good.clone(), bad, good.clone()]));
            let (index, reason) = outcome.expect("decodes").expect_err("refused");
            assert_eq!(index, 1);
            assert!(reason.contains(&format!("{value}")), "{reason}");
        }
        let mut bad = good.clone();
        bytes_field(&mut bad, 27, b"\n\x04oops\x12\x03{x}");
        let (index, reason) = assert_same(&batch(3, &[good.clone(), good, bad]))
            .expect("decodes")
            .expect_err("refused");
        assert_eq!(index, 2);
        assert!(reason.contains("oops"), "{reason}");
    }

    #[test]
    fn details_values_are_refused_exactly_when_serde_json_refuses_them() {
        // Plain strings and integers are recognized without the parser:
        // the edges of those forms must still go the parser's way.
        for text in [
            r#""plain""#,
            r#""""#,
            "\"caf\u{e9}\"",
            "\"tab\there\"",
            "\"nul\u{0}\"",
            "\"unit separator\u{1f}\"",
            "\"delete\u{7f}\"",
            r#""a b""#,
            r#""a\"b""#,
            r#""a\\""#,
            r#""open"#,
            "0",
            "-0",
            "-7",
            "01",
            "-01",
            "00",
            "-",
            "1.5",
            "1e3",
            "+1",
            " 1",
            "123456789012345678901234567890",
            "[1,2]",
            "x",
        ] {
            let mut entry = Vec::new();
            bytes_field(&mut entry, 1, b"v");
            bytes_field(&mut entry, 2, text.as_bytes());
            let mut bytes = encoded(&full_event());
            bytes_field(&mut bytes, 27, &entry);
            let outcome = direct(&batch(1, &[bytes])).expect("decodes");
            match serde_json::from_str::<&serde_json::value::RawValue>(text) {
                Ok(raw) => {
                    let (_, events) = outcome.expect(text);
                    assert_eq!(events[0].details.get("v"), Some(raw.get()), "{text:?}");
                }
                Err(_) => {
                    outcome.expect_err(text);
                }
            }
        }
    }

    #[test]
    fn malformed_bytes_fail_the_decoding_as_prost_does() {
        let good = encoded(&full_event());
        let mut not_utf8 = good.clone();
        bytes_field(&mut not_utf8, 4, &[0x61, 0xff]);
        let mut wrong_wire_type = good.clone();
        varint_field(&mut wrong_wire_type, 4, 1);
        let mut nested_overrun = good.clone();
        bytes_field(&mut nested_overrun, 22, &[0x0a, 0x05, b'a']);
        // Texts that are not UTF-8 in the event and in a nested message,
        // and a character split between two texts: valid in the two put
        // together, but in neither alone.
        let mut not_utf8_message = good.clone();
        bytes_field(&mut not_utf8_message, 19, &[0x61, 0xff]);
        let mut not_utf8_actor = good.clone();
        bytes_field(&mut not_utf8_actor, 22, &[0x0a, 0x02, 0x61, 0xff]);
        let mut split_in_actor = good.clone();
        bytes_field(
            &mut split_in_actor,
            22,
            &[0x0a, 0x01, 0xc3, 0x12, 0x01, 0xa9],
        );
        let mut split_in_event = good.clone();
        bytes_field(&mut split_in_event, 19, &[0xe2, 0x82]);
        bytes_field(&mut split_in_event, 20, &[0xac]);
        let mut truncated = batch(1, std::slice::from_ref(&good));
        truncated.pop();
        let mut bad_keys = Vec::new();
        // Field number 0 with a varint, and field 15 (unknown to the actor)
        // with wire types 6 and 7 and four bytes after it: each would be
        // skipped as an unknown field if the key were taken as valid. In the
        // event, and in a nested message (the actor, field 22).
        for field in [&[0x00, 0x01][..], &[0x7e, 1, 2, 3, 4], &[0x7f, 1, 2, 3, 4]] {
            let mut event = good.clone();
            event.extend_from_slice(field);
            bad_keys.push(batch(1, &[event]));
            let mut event = good.clone();
            bytes_field(&mut event, 22, field);
            bad_keys.push(batch(1, &[event]));
        }
        for bytes in [
            batch(1, &[not_utf8]),
            batch(1, &[not_utf8_message]),
            batch(1, &[not_utf8_actor]),
            batch(1, &[split_in_actor]),
            batch(1, &[split_in_event]),
            batch(1, &[wrong_wire_type]),
            batch(1, &[nested_overrun]),
            truncated,
        ]
        .into_iter()
        .chain(bad_keys)
        {
            assert!(assert_same(&bytes).is_err());
        }
    }

    #[test]
    fn texts_of_several_bytes_per_character_decode_whole() {
        // Characters of two, three and four bytes at the start and end of
        // texts that follow each other.
        let mut bytes = encoded(&full_event());
        bytes_field(&mut bytes, 19, "é caf€".as_bytes());
        bytes_field(&mut bytes, 20, "€-🔑".as_bytes());
        bytes_field(
            &mut bytes,
            22,
            &[&[0x0a, 0x02][..], "é".as_bytes()].concat(),
        );
        let (_, decoded) = assert_same(&batch(1, &[bytes]))
            .expect("decodes")
            .expect("accepted");
        assert_eq!(decoded[0].message.as_deref(), Some("é caf€"));
        assert_eq!(decoded[0].event_id.as_deref(), Some("€-🔑"));
        assert_eq!(decoded[0].actor.user.as_deref(), Some("é"));
    }

    #[test]
    fn large_batches_of_small_events_keep_every_event_in_order() {
        let events: Vec<Vec<u8>> = (0..2_500)
            .map(|i| {
                encoded(&Event::new(
                    Timestamp::from_millis(i),
                    Source::IbmHpcs,
                    "a".into(),
                ))
            })
            .collect();
        let (_, decoded) = assert_same(&batch(1, &events))
            .expect("decodes")
            .expect("accepted");
        let times: Vec<i64> = decoded.iter().map(|e| e.time.as_millis()).collect();
        assert_eq!(times, (0..2_500).collect::<Vec<i64>>());
    }

    #[test]
    fn events_of_one_topic_share_its_name() {
        let event = full_event();
        let bytes = batch(1, &[encoded(&event), encoded(&event)]);
        let (_, decoded) = assert_same(&bytes).expect("decodes").expect("accepted");
        let topic = |e: &Event| e.origin.as_ref().expect("origin").topic.clone();
        assert!(Topic::same_copy(&topic(&decoded[0]), &topic(&decoded[1])));
        assert_eq!(topic(&decoded[0]), event.origin.expect("origin").topic);
    }

    #[test]
    fn hellos_and_batches_encode_back_to_the_same_bytes() {
        let hello = v1::ForwardRequest {
            kind: Some(v1::forward_request::Kind::Hello(v1::Hello {
                sender_id: "s".into(),
                first_sequence: 9,
                agent: "a".into(),
            })),
        }
        .encode_to_vec();
        let batch = batch(5, &[encoded(&full_event()), encoded(&awkward_event())]);
        for bytes in [hello, batch] {
            let message = ForwardMessage::decode(bytes.as_slice()).expect("decodes");
            assert_eq!(message.encode_to_vec(), bytes);
            assert_eq!(message.encoded_len(), bytes.len());
        }
        assert!(matches!(
            ForwardMessage::decode(&[][..]),
            Ok(ForwardMessage::Empty)
        ));
    }
}
