//! Lenient, borrowing field types for the vendor parsers.
//!
//! Real audit events drift: a reason code arrives as `401` or `"401"`, a flag
//! as `true` or `"true"`, a nested object as an object or as a JSON-encoded
//! string, and now and then a field has a type nobody expected. These types
//! take what they can and quietly become `None` for the rest, so one odd
//! field never costs the whole event. Strings borrow from the input whenever
//! it has no escapes; nothing here builds a `serde_json::Value` tree.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use keytrail_core::{CompactString, trim};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A text field: strings (borrowed when possible) and numbers (as their
/// text); any other JSON type, `null` and `""` read as absent.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Str<'a>(pub(crate) Option<Cow<'a, str>>);

impl<'a> Str<'a> {
    /// The text, when present and not blank.
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !trim(s).is_empty())
    }

    /// An owned copy of the text, when present and not blank.
    pub(crate) fn owned(&self) -> Option<CompactString> {
        self.get().map(CompactString::from)
    }

    /// An owned, trimmed copy, when something is left after trimming: a
    /// [`CompactString`], or an [`Ident`](keytrail_core::Ident) for the ids.
    pub(crate) fn trimmed<T: for<'t> From<&'t str>>(&self) -> Option<T> {
        let text = trim(self.0.as_deref()?);
        (!text.is_empty()).then(|| T::from(text))
    }

    pub(crate) fn is_present(&self) -> bool {
        self.get().is_some()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
        }
        deserializer.deserialize_any(StrVisitor)
    }
}

/// An integer field: JSON integers, integral floats and numeric strings
/// (`"401"`, `" 3 "`); anything else reads as absent.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Int(pub(crate) Option<i64>);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl<'de> Visitor<'de> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a numeric string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Int, E> {
                Ok(Int(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Int, E> {
                Ok(Int(i64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Int, E> {
                let integral = v.fract() == 0.0 && v.abs() < 9.0e15;
                #[allow(clippy::cast_possible_truncation)]
                Ok(Int(integral.then_some(v as i64)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Int, E> {
                Ok(Int(v.trim().parse().ok()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Int, E> {
                Ok(Int(None))
            }
            fn visit_unit<E>(self) -> Result<Int, E> {
                Ok(Int(None))
            }
            fn visit_none<E>(self) -> Result<Int, E> {
                Ok(Int(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Int, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Int(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Int, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Int(None))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

/// A flag: `true`/`false` or the strings `"true"`/`"false"` (any case).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Flag(pub(crate) Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Flag, E> {
                let v = v.trim();
                Ok(Flag(if v.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_unit<E>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_none<E>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Flag, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Flag(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flag, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Flag(None))
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// A nested object that is read only when it is an object; any other JSON
/// value reads as absent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Obj<T>(pub(crate) Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Obj<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Obj(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_none<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
        }
        deserializer.deserialize_any(ObjVisitor(PhantomData))
    }
}

/// A nested object sent either as an object or as a JSON-encoded string
/// (IBM `requestData` / `responseData`). The string form is kept and parsed
/// later, once its nesting depth has been checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Embedded<T> {
    /// Not there, or of another type.
    #[default]
    Absent,
    /// Sent as an object.
    Parsed(T),
    /// Sent as a string holding JSON text.
    Text(String),
}

impl<T: Default> Embedded<T> {
    /// The object form, made empty if it was not that: for filling in
    /// place.
    pub(crate) fn parsed(&mut self) -> &mut T {
        if !matches!(self, Embedded::Parsed(_)) {
            *self = Embedded::Parsed(T::default());
        }
        match self {
            Embedded::Parsed(value) => value,
            // Made the object form just above.
            Embedded::Absent | Embedded::Text(_) => unreachable!("set to Parsed above"),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Embedded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EmbeddedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EmbeddedVisitor<T> {
            type Value = Embedded<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or a JSON-encoded object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Embedded<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Embedded::Parsed)
            }
            fn visit_str<E>(self, v: &str) -> Result<Embedded<T>, E> {
                Ok(if v.trim_start().starts_with('{') {
                    Embedded::Text(v.to_owned())
                } else {
                    Embedded::Absent
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Embedded<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Embedded::Absent)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Embedded<T>, E> {
                Ok(Embedded::Absent)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Embedded<T>, E> {
                Ok(Embedded::Absent)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Embedded<T>, E> {
                Ok(Embedded::Absent)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Embedded<T>, E> {
                Ok(Embedded::Absent)
            }
            fn visit_unit<E>(self) -> Result<Embedded<T>, E> {
                Ok(Embedded::Absent)
            }
            fn visit_none<E>(self) -> Result<Embedded<T>, E> {
                Ok(Embedded::Absent)
            }
        }
        deserializer.deserialize_any(EmbeddedVisitor(PhantomData))
    }
}

/// An object key, borrowed when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Probe<'a> {
        #[serde(borrow)]
        s: Str<'a>,
        i: Int,
        f: Flag,
        o: Obj<std::collections::BTreeMap<String, i64>>,
        e: Embedded<std::collections::BTreeMap<String, i64>>,
    }

    fn probe(json: &str) -> Probe<'_> {
        serde_json::from_str(json).expect("probe parses")
    }

    #[test]
    fn text_borrows_without_escapes_and_takes_numbers() {
        assert!(matches!(
            probe(r#"{"s":"abc"}"#).s.0,
            Some(Cow::Borrowed("abc"))
        ));
        assert_eq!(probe(r#"{"s":"a\"b"}"#).s.get(), Some("a\"b"));
        assert_eq!(probe(r#"{"s":42}"#).s.get(), Some("42"));
        assert_eq!(probe(r#"{"s":"  "}"#).s.get(), None);
        assert_eq!(probe(r#"{"s":{"x":[1]}}"#).s.get(), None);
        assert_eq!(probe(r#"{"s":null}"#).s.get(), None);
    }

    #[test]
    fn integers_accept_numeric_strings() {
        assert_eq!(probe(r#"{"i":401}"#).i.0, Some(401));
        assert_eq!(probe(r#"{"i":"401"}"#).i.0, Some(401));
        assert_eq!(probe(r#"{"i":" 7 "}"#).i.0, Some(7));
        assert_eq!(probe(r#"{"i":200.0}"#).i.0, Some(200));
        assert_eq!(probe(r#"{"i":"OK"}"#).i.0, None);
        assert_eq!(probe(r#"{"i":1.5}"#).i.0, None);
        assert_eq!(probe(r#"{"i":[1]}"#).i.0, None);
    }

    #[test]
    fn flags_accept_strings() {
        assert_eq!(probe(r#"{"f":true}"#).f.0, Some(true));
        assert_eq!(probe(r#"{"f":"TRUE"}"#).f.0, Some(true));
        assert_eq!(probe(r#"{"f":"no"}"#).f.0, None);
    }

    #[test]
    fn objects_of_another_type_are_absent() {
        assert_eq!(probe(r#"{"o":{"a":1}}"#).o.0.map(|m| m["a"]), Some(1));
        assert_eq!(probe(r#"{"o":"text"}"#).o.0, None);
        assert_eq!(probe(r#"{"o":[1,2]}"#).o.0, None);
    }

    #[test]
    fn embedded_keeps_json_text_for_later() {
        assert!(matches!(probe(r#"{"e":{"a":1}}"#).e, Embedded::Parsed(_)));
        assert_eq!(
            probe(r#"{"e":"{\"a\":1}"}"#).e,
            Embedded::Text(r#"{"a":1}"#.to_owned())
        );
        assert_eq!(probe(r#"{"e":"plain"}"#).e, Embedded::Absent);
    }
}
