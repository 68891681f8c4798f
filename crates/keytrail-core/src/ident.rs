//! Identifier texts: UUIDs, account ids, fingerprints.
//!
//! An IBM event carries up to five ids of 32 to 40 bytes: the correlation
//! id, the service instance, the account, a key and its version, or a
//! certificate fingerprint. A [`CompactString`](compact_str::CompactString)
//! keeps at most 24 bytes in place, so each of these would be an
//! allocation in the normalizer and another in the reference receiver.
//! [`Ident`] keeps up to [`INLINE_CAPACITY`] bytes in place, and longer
//! texts on the heap. It is 48 bytes, against 24; only the fields that
//! hold ids use it.

use std::fmt;

use arrayvec::ArrayString;
use serde::{Deserialize, Deserializer};

/// The longest text kept in place: a UUID (36 bytes) and a SHA-1
/// fingerprint in hex (40) both fit. The size of [`Ident`] is the same
/// for any capacity from 33 to 40.
pub const INLINE_CAPACITY: usize = 40;

/// An identifier's text, in place up to [`INLINE_CAPACITY`] bytes.
/// Compared, hashed, ordered, printed and serialized as the text.
#[derive(Clone)]
pub struct Ident(Repr);

#[derive(Clone)]
enum Repr {
    Inline(ArrayString<INLINE_CAPACITY>),
    Heap(Box<str>),
}

impl Ident {
    /// The empty text.
    pub const fn new() -> Ident {
        Ident(Repr::Inline(ArrayString::new_const()))
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(text) => text.as_str(),
            Repr::Heap(text) => text,
        }
    }

    /// True when the text is kept in place, without an allocation.
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(_))
    }
}

impl Default for Ident {
    fn default() -> Ident {
        Ident::new()
    }
}

impl From<&str> for Ident {
    #[inline]
    fn from(text: &str) -> Ident {
        match ArrayString::from(text) {
            Ok(inline) => Ident(Repr::Inline(inline)),
            Err(_) => Ident(Repr::Heap(Box::from(text))),
        }
    }
}

impl From<String> for Ident {
    fn from(text: String) -> Ident {
        if text.len() <= INLINE_CAPACITY {
            Ident::from(text.as_str())
        } else {
            Ident(Repr::Heap(text.into_boxed_str()))
        }
    }
}

crate::as_text::as_text!(Ident);

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ident, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Ident;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Ident, E> {
                Ok(Ident::from(text))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Ident, E> {
                Ok(Ident::from(text))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ident_is_the_size_of_two_compact_strings() {
        assert_eq!(std::mem::size_of::<Ident>(), 48);
        assert_eq!(std::mem::size_of::<Option<Ident>>(), 48);
    }

    #[test]
    fn texts_up_to_the_capacity_stay_in_place_and_longer_ones_do_not() {
        for len in [
            0,
            1,
            24,
            25,
            32,
            36,
            INLINE_CAPACITY,
            INLINE_CAPACITY + 1,
            200,
        ] {
            let text = "a".repeat(len);
            for ident in [Ident::from(text.as_str()), Ident::from(text.clone())] {
                assert_eq!(ident.as_str(), text);
                assert_eq!(ident.is_inline(), len <= INLINE_CAPACITY, "{len} bytes");
            }
        }
        // A multi-byte character straddling the capacity goes to the heap
        // whole.
        let text = format!("{}é", "a".repeat(INLINE_CAPACITY - 1));
        let ident = Ident::from(text.as_str());
        assert!(!ident.is_inline());
        assert_eq!(ident, text.as_str());
    }

    #[test]
    fn compared_hashed_and_ordered_as_the_text() {
        use std::collections::BTreeSet;
        use std::collections::HashMap;

        let long = "x".repeat(INLINE_CAPACITY + 5);
        let mut counts: HashMap<Ident, u32> = HashMap::new();
        *counts.entry(Ident::from(long.as_str())).or_default() += 1;
        *counts.entry(Ident::from(long.clone())).or_default() += 1;
        *counts.entry(Ident::from("b3e8ea44")).or_default() += 1;
        assert_eq!(counts.get(long.as_str()), Some(&2));
        assert_eq!(counts.get("b3e8ea44"), Some(&1));

        let order: Vec<String> = [long.as_str(), "a", "b"]
            .into_iter()
            .map(Ident::from)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|ident| ident.to_string())
            .collect();
        assert_eq!(order, ["a", "b", long.as_str()]);
        assert_eq!(Ident::default(), "");
    }

    #[test]
    fn serialized_as_a_string() {
        let id = "760a2300-3709-affd-f4c0-94afe4023485";
        let json = serde_json::to_string(&Ident::from(id)).expect("serializes");
        assert_eq!(json, format!("\"{id}\""));
        let back: Ident = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, id);
        assert!(back.is_inline());
        let escaped: Ident = serde_json::from_str(r#""a\"b""#).expect("deserializes");
        assert_eq!(escaped, "a\"b");
        assert!(serde_json::from_str::<Ident>("7").is_err());
    }
}
