//! Input that could not become an event, and why.
//!
//! Nothing is dropped silently: every record the normalizer refuses becomes
//! a [`DeadLetter`] carrying its original bytes, its origin and one reason
//! from a closed set, so it can be counted by reason and written to the
//! dead-letter output.

use std::fmt;

use crate::event::Origin;

/// Why a record was dead-lettered. The [`fmt::Display`] form is the
/// contract text (`invalid_json`, `missing_field:action`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// The text is not JSON.
    InvalidJson,
    /// The JSON is not an object.
    NotAnObject,
    /// The JSON nests deeper than the limit.
    TooDeep,
    /// The record is larger than the limit.
    TooLarge,
    /// An object of no known vendor shape.
    UnknownFormat,
    /// A vendor shape without a field it cannot do without.
    MissingField(&'static str),
    /// A time that is not one of the accepted forms.
    BadTime,
    /// A sink refused the event for good (the receiver's reason is kept
    /// in [`DeadLetter::detail`]).
    Rejected,
}

impl DeadLetterReason {
    /// The contract text.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeadLetterReason::InvalidUtf8 => "invalid_utf8",
            DeadLetterReason::InvalidJson => "invalid_json",
            DeadLetterReason::NotAnObject => "not_an_object",
            DeadLetterReason::TooDeep => "too_deep",
            DeadLetterReason::TooLarge => "too_large",
            DeadLetterReason::UnknownFormat => "unknown_format",
            DeadLetterReason::MissingField("action") => "missing_field:action",
            DeadLetterReason::MissingField("event") => "missing_field:event",
            DeadLetterReason::MissingField(_) => "missing_field",
            DeadLetterReason::BadTime => "bad_time",
            DeadLetterReason::Rejected => "rejected",
        }
    }

    /// A label value from a closed set, for metrics (`missing_field` without
    /// the field name).
    pub fn label(&self) -> &'static str {
        match self {
            DeadLetterReason::MissingField(_) => "missing_field",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadLetterReason::MissingField(name) => write!(f, "missing_field:{name}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A record, or one line of a multi-line record, that did not normalize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why.
    pub reason: DeadLetterReason,
    /// A human-readable explanation (parser position, receiver message).
    /// Never contains the input itself.
    pub detail: Option<String>,
    /// The Kafka record it came from.
    pub origin: Option<Origin>,
    /// 1-based line within the record (NDJSON records have several).
    pub line: u32,
    /// The original bytes of that line.
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_print_as_the_contract_says() {
        assert_eq!(DeadLetterReason::TooDeep.to_string(), "too_deep");
        assert_eq!(
            DeadLetterReason::MissingField("action").to_string(),
            "missing_field:action"
        );
        assert_eq!(DeadLetterReason::MissingField("x").label(), "missing_field");
    }
}
