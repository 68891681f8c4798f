//! OTLP log records (`opentelemetry.proto.logs.v1.LogRecord`) straight
//! from a [`keytrail_core::Event`], and the export request built from them.
//!
//! The gRPC sink's OTLP protocol used to build each record as prost
//! messages: the contract JSON as a `serde_json::Value`, every attribute a
//! `KeyValue` with its own strings, and a `format!` per nested name. That
//! was about 79,000 instructions and a hundred allocations per event, 4.5
//! times the transforms (BENCHMARKS.md, twelfth round).
//! [`encode_log_record`] writes the same record's bytes from the event's
//! contract members ([`Event::write_contract`]); only `details` values
//! that are not plain strings or small integers are parsed.
//!
//! Mapping (the sink's module docs give it in full): time and observed
//! time in nanoseconds, the severity's number and name, `message` (else
//! `action`) as the body, `action` as the event name, and every member of
//! the JSON contract as an attribute, nested objects flattened with dots
//! (`actor.user`, `details.keyType`), values in their JSON type. The
//! attributes come in the contract's order; a decoder sees the same record
//! as the prost messages give, attribute order aside (the tests check
//! this).

use bytes::{BufMut, Bytes};
use keytrail_core::{ContractMembers, ContractObject, Details, Event, Member, Severity, json};
use prost::encoding::{DecodeContext, WireType, encoded_len_varint};
use serde_json::Value;

use crate::encode::{
    Fields, Out, delimited_len, key, message, plain_string, plain_varint, string, varint,
};

/// The OTLP severity number of a keytrail severity: informational → INFO
/// (9), low → INFO2 (10), medium → WARN (13), high → ERROR (17),
/// critical → FATAL (21).
pub fn severity_number(severity: Severity) -> i32 {
    match severity {
        Severity::Informational => 9,
        Severity::Low => 10,
        Severity::Medium => 13,
        Severity::High => 17,
        Severity::Critical => 21,
    }
}

/// Appends `event` as an encoded `LogRecord` (without a length prefix) to
/// `out`; `observed_unix_nanos` is when it was encoded.
pub fn encode_log_record(event: &Event, observed_unix_nanos: u64, out: &mut impl BufMut) {
    let e = event;
    let millis = u64::try_from(e.time.as_millis()).unwrap_or(0);
    fixed64(out, 1, millis.saturating_mul(1_000_000));
    plain_varint(out, 2, severity_number(e.severity) as u64);
    plain_string(out, 3, e.severity.as_str());
    let body = e.message.as_deref().unwrap_or(&e.action);
    message(out, 5, &Text(body));
    e.write_contract(Attributes {
        out: &mut *out,
        prefix: "",
    });
    fixed64(out, 11, observed_unix_nanos);
    plain_string(out, 12, &e.action);
}

/// A plain proto3 `fixed64`: zero is the default, not written.
fn fixed64<O: Out>(out: &mut O, tag: u32, value: u64) {
    if value != 0 {
        key(out, tag, WireType::SixtyFourBit);
        out.bytes(&value.to_le_bytes());
    }
}

/// `AnyValue { string_value }` (a oneof member: written even if empty).
struct Text<'a>(&'a str);

impl Fields for Text<'_> {
    fn write<O: Out>(&self, out: &mut O) {
        string(out, 1, self.0);
    }

    fn len(&self) -> usize {
        delimited_len(1, self.0.len())
    }
}

/// `AnyValue { bool_value }`.
struct Bool(bool);

impl Fields for Bool {
    fn write<O: Out>(&self, out: &mut O) {
        varint(out, 2, u64::from(self.0));
    }

    fn len(&self) -> usize {
        2
    }
}

/// `AnyValue { int_value }`.
struct Int(i64);

impl Fields for Int {
    fn write<O: Out>(&self, out: &mut O) {
        varint(out, 3, self.0 as u64);
    }

    fn len(&self) -> usize {
        1 + encoded_len_varint(self.0 as u64)
    }
}

/// An `AnyValue` of any JSON value, as the sink's reference mapping makes
/// it: integers that fit an `i64` as `int_value`, other numbers as
/// `double_value`, arrays and objects as `array_value` and
/// `kvlist_value`, null as an empty value.
struct Json<'a>(&'a Value);

impl Fields for Json<'_> {
    fn write<O: Out>(&self, out: &mut O) {
        match self.0 {
            Value::Null => {}
            Value::Bool(b) => Bool(*b).write(out),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Int(i).write(out),
                (None, Some(f)) => {
                    key(out, 4, WireType::SixtyFourBit);
                    out.bytes(&f.to_bits().to_le_bytes());
                }
                (None, None) => {}
            },
            Value::String(s) => Text(s).write(out),
            Value::Array(items) => message(out, 5, &Array(items)),
            Value::Object(fields) => message(out, 6, &KeyValues(fields)),
        }
    }

    /// Counted from the children's lengths, never by writing: counting by
    /// writing would count each level's children again at every level
    /// above it, exponential in the depth of nested `details` values.
    fn len(&self) -> usize {
        match self.0 {
            Value::Null => 0,
            Value::Bool(b) => Bool(*b).len(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Int(i).len(),
                (None, Some(_)) => 9,
                (None, None) => 0,
            },
            Value::String(s) => Text(s).len(),
            Value::Array(items) => delimited_len(5, Array(items).len()),
            Value::Object(fields) => delimited_len(6, KeyValues(fields).len()),
        }
    }
}

/// `ArrayValue`.
struct Array<'a>(&'a [Value]);

impl Fields for Array<'_> {
    fn write<O: Out>(&self, out: &mut O) {
        for item in self.0 {
            message(out, 1, &Json(item));
        }
    }

    fn len(&self) -> usize {
        self.0
            .iter()
            .map(|item| delimited_len(1, Json(item).len()))
            .sum()
    }
}

/// `KeyValueList`.
struct KeyValues<'a>(&'a serde_json::Map<String, Value>);

impl KeyValues<'_> {
    fn each(&self) -> impl Iterator<Item = (&str, Json<'_>)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), Json(value)))
    }
}

impl Fields for KeyValues<'_> {
    fn write<O: Out>(&self, out: &mut O) {
        for (name, value) in self.each() {
            key_value(out, 1, "", name, &value);
        }
    }

    fn len(&self) -> usize {
        self.each()
            .map(|(name, value)| {
                let prefix = "";
                let value = &value;
                delimited_len(
                    1,
                    KeyValue {
                        prefix,
                        name,
                        value,
                    }
                    .len(),
                )
            })
            .sum()
    }
}

/// `KeyValue { key, value }`; the key is `prefix.name`, or `name` alone
/// when there is no prefix.
struct KeyValue<'a, V> {
    prefix: &'a str,
    name: &'a str,
    value: &'a V,
}

impl<V> KeyValue<'_, V> {
    fn key_len(&self) -> usize {
        if self.prefix.is_empty() {
            self.name.len()
        } else {
            self.prefix.len() + 1 + self.name.len()
        }
    }
}

impl<V: Fields> Fields for KeyValue<'_, V> {
    fn len(&self) -> usize {
        let key = match self.key_len() {
            0 => 0,
            len => delimited_len(1, len),
        };
        key + delimited_len(2, self.value.len())
    }

    fn write<O: Out>(&self, out: &mut O) {
        let len = self.key_len();
        // A plain proto3 string: an empty key is not written.
        if len > 0 {
            key(out, 1, WireType::LengthDelimited);
            out.varint(len as u64);
            if !self.prefix.is_empty() {
                out.bytes(self.prefix.as_bytes());
                out.bytes(b".");
            }
            out.bytes(self.name.as_bytes());
        }
        message(out, 2, self.value);
    }
}

/// The log record's attributes (field 6), one per contract member; the
/// members of a nested object carry its name as a prefix.
struct Attributes<'o, O> {
    out: &'o mut O,
    prefix: &'static str,
}

impl<O: Out> Attributes<'_, O> {
    fn put<V: Fields>(&mut self, name: &str, value: &V) {
        attribute(self.out, self.prefix, name, value);
    }
}

/// One attribute (`LogRecord` field 6) named `prefix.name`, or `name`
/// without a prefix.
fn attribute<O: Out, V: Fields>(out: &mut O, prefix: &str, name: &str, value: &V) {
    key_value(out, 6, prefix, name, value);
}

/// A `KeyValue` as field `tag`.
fn key_value<O: Out, V: Fields>(out: &mut O, tag: u32, prefix: &str, name: &str, value: &V) {
    message(
        out,
        tag,
        &KeyValue {
            prefix,
            name,
            value,
        },
    );
}

impl<O: Out> ContractMembers for Attributes<'_, O> {
    fn str(&mut self, member: Member, value: &str) {
        self.put(member.name(), &Text(value));
    }

    fn dynamic_str(&mut self, name: &str, value: &str) {
        self.put(name, &Text(value));
    }

    fn int(&mut self, member: Member, value: i64) {
        self.put(member.name(), &Int(value));
    }

    fn bool(&mut self, member: Member, value: bool) {
        self.put(member.name(), &Bool(value));
    }

    fn close(self) {}
}

impl<O: Out> ContractObject for Attributes<'_, O> {
    type Nested<'n>
        = Attributes<'n, O>
    where
        Self: 'n;

    fn object(&mut self, member: Member) -> Attributes<'_, O> {
        Attributes {
            out: &mut *self.out,
            prefix: member.name(),
        }
    }

    /// Each value is compact JSON text: a string without escapes and a
    /// small integer are taken as they are, anything else is
    /// parsed (a value that does not parse, which `Details` never holds,
    /// is left out).
    fn details(&mut self, member: Member, details: &Details) {
        let prefix = member.name();
        for (name, value) in details.iter() {
            if let Some(text) = json::plain_string(value) {
                attribute(self.out, prefix, name, &Text(text));
            } else if let Some(int) = small_json_int(value) {
                attribute(self.out, prefix, name, &Int(int));
            } else if let Ok(parsed) = serde_json::from_str::<Value>(value) {
                attribute(self.out, prefix, name, &Json(&parsed));
            }
        }
    }
}

/// A JSON integer of up to 18 digits, which serde_json reads as an
/// integer that fits an `i64`; `-0` is left to the parser, which reads it
/// as a float.
fn small_json_int(json: &str) -> Option<i64> {
    let digits = json.strip_prefix('-').unwrap_or(json);
    if !json::is_integer(json) || digits.len() > 18 || json == "-0" {
        return None;
    }
    json.parse().ok()
}

/// The length a `LogRecord` adds to a repeated field: key, length, bytes.
fn framed_len(record: &[u8]) -> usize {
    1 + encoded_len_varint(record.len() as u64) + record.len()
}

/// An `ExportLogsServiceRequest` whose log records are already encoded
/// (by [`encode_log_record`]): one `ResourceLogs` with the resource, one
/// `ScopeLogs` with the scope and the records. `resource` and `scope` are
/// the encoded `Resource` and `InstrumentationScope`. It implements
/// [`prost::Message`] for encoding only, so that tonic's prost codec sends
/// it as is; a receiver decodes the same bytes as the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogsFrame {
    /// The encoded `Resource`.
    pub resource: Bytes,
    /// The encoded `InstrumentationScope`.
    pub scope: Bytes,
    /// The encoded `LogRecord`s.
    pub records: Vec<Bytes>,
}

impl LogsFrame {
    fn scope_logs_len(&self) -> usize {
        let scope = 1 + encoded_len_varint(self.scope.len() as u64) + self.scope.len();
        scope + self.records.iter().map(|r| framed_len(r)).sum::<usize>()
    }

    fn resource_logs_len(&self) -> usize {
        let resource = 1 + encoded_len_varint(self.resource.len() as u64) + self.resource.len();
        let scope_logs = self.scope_logs_len();
        resource + 1 + encoded_len_varint(scope_logs as u64) + scope_logs
    }
}

/// A length-delimited field whose bytes are already encoded.
fn encoded_message(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    key(buf, tag, WireType::LengthDelimited);
    buf.varint(bytes.len() as u64);
    buf.put_slice(bytes);
}

impl prost::Message for LogsFrame {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        // ExportLogsServiceRequest.resource_logs (1)
        key(buf, 1, WireType::LengthDelimited);
        buf.varint(self.resource_logs_len() as u64);
        // ResourceLogs.resource (1), ResourceLogs.scope_logs (2)
        encoded_message(1, &self.resource, buf);
        key(buf, 2, WireType::LengthDelimited);
        buf.varint(self.scope_logs_len() as u64);
        // ScopeLogs.scope (1), ScopeLogs.log_records (2)
        encoded_message(1, &self.scope, buf);
        for record in &self.records {
            encoded_message(2, record, buf);
        }
    }

    /// A frame is only ever sent: decoding skips every field.
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
        let resource_logs = self.resource_logs_len();
        1 + encoded_len_varint(resource_logs as u64) + resource_logs
    }

    fn clear(&mut self) {
        *self = LogsFrame::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Len;

    #[test]
    fn small_integers_are_read_as_serde_json_would() {
        assert_eq!(small_json_int("12"), Some(12));
        assert_eq!(small_json_int("0"), Some(0));
        assert_eq!(small_json_int("-7"), Some(-7));
        assert_eq!(small_json_int("-"), None);
        assert_eq!(small_json_int("-0"), None);
        assert_eq!(small_json_int("1234567890123456789"), None);
        assert_eq!(small_json_int("1.5"), None);
        assert_eq!(small_json_int(""), None);
    }

    #[test]
    fn lengths_are_counted_as_written() {
        let frame = LogsFrame {
            resource: Bytes::from_static(b"r"),
            scope: Bytes::from(vec![7u8; 200]),
            records: vec![Bytes::from(vec![1u8; 130]), Bytes::new()],
        };
        let bytes = prost::Message::encode_to_vec(&frame);
        assert_eq!(bytes.len(), prost::Message::encoded_len(&frame));
    }

    #[test]
    fn lengths_known_without_writing_are_those_written() {
        let long = "x".repeat(300);
        let with_long_key = KeyValue {
            prefix: "p",
            name: &long,
            value: &Int(300),
        };
        let without_key = KeyValue {
            prefix: "",
            name: "",
            value: &Text(""),
        };
        let json = serde_json::json!([null, -0.0, 1.5, i64::MIN, u64::MAX, "ü", {"a": [true, {}]}]);
        let lengths = [
            (Json(&json).len(), counted(&Json(&json))),
            (Text(&long).len(), counted(&Text(&long))),
            (Int(-1).len(), counted(&Int(-1))),
            (Int(0).len(), counted(&Int(0))),
            (Bool(true).len(), counted(&Bool(true))),
            (with_long_key.len(), counted(&with_long_key)),
            (without_key.len(), counted(&without_key)),
        ];
        for (known, written) in lengths {
            assert_eq!(known, written);
        }
    }

    #[test]
    fn deeply_nested_values_cost_in_proportion_to_their_size() {
        // Each level once as an array and once as an object; counting
        // lengths by writing visited the innermost value about 4^depth
        // times.
        let depth = 60;
        let mut value = serde_json::json!(1);
        for level in 0..depth {
            value = if level % 2 == 0 {
                serde_json::json!([value])
            } else {
                serde_json::json!({ "n": value })
            };
        }
        let mut out = Vec::new();
        message(&mut out, 6, &Json(&value));
        // Four bytes of tags and lengths per array level (the array value
        // and its item), nine per object level (the list value, its
        // key-value, the key `n` and the value), one more per length past
        // 127: linear in the depth.
        assert!(out.len() < 12 * depth, "{} bytes", out.len());
        let len = counted(&Json(&value));
        assert_eq!(Json(&value).len(), len);
        assert_eq!(out.len(), 1 + encoded_len_varint(len as u64) + len);
    }

    /// What `value` writes, counted.
    fn counted(value: &impl Fields) -> usize {
        let mut len = Len(0);
        value.write(&mut len);
        len.0
    }
}
