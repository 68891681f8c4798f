//! `details`: the vendor fields outside the contract, as compact JSON text.
//!
//! Every stage after the normalizer only carries `details` along: the
//! contract JSON writes it as an object, the gRPC feed sends each value as
//! its JSON text, the OTLP mode flattens it. Keeping each value as the JSON
//! text it will be written as (instead of a `serde_json::Value` tree) costs
//! one buffer per event instead of an allocation per name, value and tree
//! node, and nothing has to be serialized again on the way out.
//!
//! Names are kept in order, each at most once (a later insert replaces the
//! value), as `serde_json::Map` would hold them, so the JSON output is the
//! same as a map's.

use std::fmt::{self, Write as _};

use serde::ser::{Error as _, Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{JsonOut, write_json_str};

/// Bytes of text reserved by the first insert.
const FIRST_TEXT: usize = 256;
/// Entries reserved by the first insert.
const FIRST_ENTRIES: usize = 8;

/// Names and their values' compact JSON text. See the module docs.
#[derive(Clone, Default)]
pub struct Details {
    /// Every name and value text, back to back; a replaced value's old
    /// text stays unused.
    text: String,
    /// One per name, ordered by name.
    entries: Vec<Entry>,
}

/// Where one name and its value are in `text`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: usize,
    name_len: usize,
    value_len: usize,
}

impl Details {
    /// No entries (and no allocation).
    pub const fn new() -> Details {
        Details {
            text: String::new(),
            entries: Vec::new(),
        }
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn name_of(&self, entry: &Entry) -> &str {
        self.text
            .get(entry.start..entry.start + entry.name_len)
            .unwrap_or_default()
    }

    fn value_of(&self, entry: &Entry) -> &str {
        let at = entry.start + entry.name_len;
        self.text.get(at..at + entry.value_len).unwrap_or_default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|entry| self.name_of(entry).cmp(name))
    }

    /// The JSON text of `name`'s value.
    pub fn get(&self, name: &str) -> Option<&str> {
        let at = self.find(name).ok()?;
        self.entries.get(at).map(|entry| self.value_of(entry))
    }

    /// `name`'s value, parsed.
    pub fn value(&self, name: &str) -> Option<Value> {
        serde_json::from_str(self.get(name)?).ok()
    }

    /// True when `name` has a value.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Every name with its value's JSON text, ordered by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|entry| (self.name_of(entry), self.value_of(entry)))
    }

    /// Appends `name` and the value `write` writes (exactly one JSON value)
    /// to the text; the entry is not placed yet.
    fn push_text(&mut self, name: &str, write: impl FnOnce(&mut String)) -> Entry {
        if self.entries.capacity() == 0 {
            // Room for a typical event's details at once: growing from
            // nothing would copy them several times.
            self.text.reserve(FIRST_TEXT);
            self.entries.reserve(FIRST_ENTRIES);
        }
        let start = self.text.len();
        self.text.push_str(name);
        write(&mut self.text);
        Entry {
            start,
            name_len: name.len(),
            value_len: self.text.len() - start - name.len(),
        }
    }

    /// Sets `name` to a value written by `write`. Names arriving in order
    /// are appended; any other is placed by binary search (a replaced
    /// value's text stays unused). [`DetailsBuilder`] takes names in any
    /// order in O(n log n).
    fn insert_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        let entry = self.push_text(name, write);
        let in_order = self
            .entries
            .last()
            .is_none_or(|last| self.name_of(last) < name);
        if in_order {
            self.entries.push(entry);
            return;
        }
        match self.find(name) {
            Ok(at) => {
                if let Some(slot) = self.entries.get_mut(at) {
                    *slot = entry;
                }
            }
            Err(at) => self.entries.insert(at, entry),
        }
    }

    /// Sets `name` to `json`, which must be one JSON value: it is written
    /// out as it is. (Debug builds check it.)
    pub fn insert_json(&mut self, name: &str, json: &str) {
        debug_assert!(
            serde_json::from_str::<&RawValue>(json).is_ok(),
            "details value of {name} is not JSON: {json}"
        );
        self.insert_with(name, |text| text.push_str(json));
    }

    /// Sets `name` to a JSON string.
    pub fn insert_str(&mut self, name: &str, value: &str) {
        self.insert_with(name, |text| write_json_str(text, value));
    }

    /// Sets `name` to an integer.
    pub fn insert_int(&mut self, name: &str, value: i64) {
        // Writing to a String cannot fail.
        self.insert_with(name, |text| {
            let _ = write!(text, "{value}");
        });
    }

    /// Sets `name` to `value`, written compactly as serde_json writes it.
    pub fn insert(&mut self, name: &str, value: &Value) {
        // `Value`'s Display is its compact JSON; writing to a String
        // cannot fail.
        self.insert_with(name, |text| {
            let _ = write!(text, "{value}");
        });
    }

    /// Writes the entries as one JSON object (`{}` when there is none).
    pub(crate) fn write_object<O: JsonOut>(&self, out: &mut O) {
        out.reserve_text(self.text.len() + 4 * self.entries.len() + 2);
        out.put("{");
        for (i, (name, json)) in self.iter().enumerate() {
            if i > 0 {
                out.put(",");
            }
            write_json_str(out, name);
            out.put(":");
            out.put(json);
        }
        out.put("}");
    }

    /// The entries as one JSON object's text.
    pub fn to_object_json(&self) -> String {
        let mut out = String::new();
        self.write_object(&mut out);
        out
    }

    /// The entries as a `serde_json` map.
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        self.iter()
            .filter_map(|(name, json)| Some((name.to_owned(), serde_json::from_str(json).ok()?)))
            .collect()
    }
}

/// Builds [`Details`] from names in any order (the normalizer's input):
/// entries are appended as they come and ordered once, by [`build`], in
/// O(n log n); of equal names the last inserted wins.
///
/// [`build`]: DetailsBuilder::build
#[derive(Debug, Clone, Default)]
pub struct DetailsBuilder {
    details: Details,
    /// True while every name so far came after the one before it.
    ordered: bool,
}

impl DetailsBuilder {
    /// Nothing yet.
    pub const fn new() -> DetailsBuilder {
        DetailsBuilder {
            details: Details::new(),
            ordered: true,
        }
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    fn push(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        let details = &mut self.details;
        let entry = details.push_text(name, write);
        if let Some(last) = details.entries.last() {
            self.ordered &= details.name_of(last) < name;
        }
        details.entries.push(entry);
    }

    /// Sets `name` to `json`, one JSON value written out as it is (see
    /// [`Details::insert_json`]).
    pub fn insert_json(&mut self, name: &str, json: &str) {
        debug_assert!(
            serde_json::from_str::<&RawValue>(json).is_ok(),
            "details value of {name} is not JSON: {json}"
        );
        self.push(name, |text| text.push_str(json));
    }

    /// Sets `name` to a JSON string.
    pub fn insert_str(&mut self, name: &str, value: &str) {
        self.push(name, |text| write_json_str(text, value));
    }

    /// Sets `name` to an integer.
    pub fn insert_int(&mut self, name: &str, value: i64) {
        self.push(name, |text| {
            let _ = write!(text, "{value}");
        });
    }

    /// Sets `name` to `value`, written compactly.
    pub fn insert(&mut self, name: &str, value: &Value) {
        self.push(name, |text| {
            let _ = write!(text, "{value}");
        });
    }

    /// Inserts everything of `other` after what is here (so its values
    /// win); takes `other` whole when nothing is here yet.
    pub fn append(&mut self, other: DetailsBuilder) {
        if self.is_empty() {
            *self = other;
            return;
        }
        for (name, json) in other
            .details
            .entries
            .iter()
            .map(|entry| (other.details.name_of(entry), other.details.value_of(entry)))
        {
            self.push(name, |text| text.push_str(json));
        }
    }

    /// The details, ordered by name, the last value of each name kept.
    pub fn build(self) -> Details {
        let mut details = self.details;
        if self.ordered {
            return details;
        }
        let text = &details.text;
        let name = |entry: &Entry| {
            text.get(entry.start..entry.start + entry.name_len)
                .unwrap_or_default()
        };
        // Text is appended, so `start` is the insertion order: equal names
        // end up oldest first without a stable sort's scratch buffer.
        details
            .entries
            .sort_unstable_by(|a, b| name(a).cmp(name(b)).then(a.start.cmp(&b.start)));
        let before = details.entries.len();
        // Of each run of equal names keep one slot, holding the latest.
        details.entries.dedup_by(|later, kept| {
            let same = name(later) == name(kept);
            if same {
                *kept = *later;
            }
            same
        });
        if details.entries.len() == before {
            return details;
        }
        // Replaced values: keep only the live text.
        let mut compact = Details::new();
        for entry in &details.entries {
            let json = details.value_of(entry);
            let placed = compact.push_text(name(entry), |text| text.push_str(json));
            compact.entries.push(placed);
        }
        compact
    }
}

impl PartialEq for DetailsBuilder {
    /// Equal when they build equal details.
    fn eq(&self, other: &DetailsBuilder) -> bool {
        self.clone().build() == other.clone().build()
    }
}

impl PartialEq for Details {
    fn eq(&self, other: &Details) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Details {}

impl fmt::Debug for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<N: AsRef<str>> FromIterator<(N, Value)> for Details {
    fn from_iter<I: IntoIterator<Item = (N, Value)>>(iter: I) -> Details {
        let mut details = Details::new();
        for (name, value) in iter {
            details.insert(name.as_ref(), &value);
        }
        details
    }
}

impl From<serde_json::Map<String, Value>> for Details {
    fn from(map: serde_json::Map<String, Value>) -> Details {
        map.into_iter().collect()
    }
}

impl Serialize for Details {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, json) in self.iter() {
            let raw: &RawValue = serde_json::from_str(json).map_err(S::Error::custom)?;
            map.serialize_entry(name, raw)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_ordered_and_unique_with_the_last_value() {
        let mut details = Details::new();
        details.insert_int("zeta", 3);
        details.insert_str("alpha", "one");
        details.insert_json("mid", r#"{"a":[1,2]}"#);
        details.insert_str("alpha", "two");
        let pairs: Vec<_> = details.iter().collect();
        assert_eq!(
            pairs,
            [
                ("alpha", r#""two""#),
                ("mid", r#"{"a":[1,2]}"#),
                ("zeta", "3")
            ]
        );
        assert_eq!(details.get("alpha"), Some(r#""two""#));
        assert_eq!(details.value("mid"), Some(json!({"a": [1, 2]})));
        assert!(details.get("beta").is_none());
    }

    #[test]
    fn object_text_is_what_a_serde_json_map_writes() {
        let map = json!({
            "b\"ackslash\\": "tab\there \u{1} \u{7f} é",
            "count": -12,
            "nested": {"list": [true, null, 1.5]},
            "": "",
        });
        let serde_json::Value::Object(map) = map else {
            unreachable!()
        };
        let details = Details::from(map.clone());
        assert_eq!(
            details.to_object_json(),
            serde_json::to_string(&map).expect("json")
        );
        assert_eq!(
            serde_json::to_string(&details).expect("json"),
            serde_json::to_string(&map).expect("json")
        );
        assert_eq!(details.to_map(), map);
    }

    #[test]
    fn equality_ignores_replaced_text() {
        let mut a = Details::new();
        a.insert_str("k", "old");
        a.insert_str("k", "new");
        let mut b = Details::new();
        b.insert_str("k", "new");
        assert_eq!(a, b);
        b.insert_int("n", 1);
        assert_ne!(a, b);
    }

    #[test]
    fn a_builder_orders_names_and_keeps_the_last_value() {
        let mut builder = DetailsBuilder::new();
        builder.insert_int("b", 1);
        builder.insert_str("a", "x");
        builder.insert_json("c", "[1]");
        builder.insert_int("b", 2);
        builder.insert_str("a", "y");
        let mut later = DetailsBuilder::new();
        later.insert_int("c", 3);
        later.insert(&"d".repeat(3), &json!(null));
        builder.append(later);
        let details = builder.build();
        let pairs: Vec<_> = details.iter().collect();
        assert_eq!(
            pairs,
            [("a", r#""y""#), ("b", "2"), ("c", "3"), ("ddd", "null")]
        );
        // The replaced values' text is gone.
        assert_eq!(details.text.len(), "a\"y\"b2c3dddnull".len());

        let mut ordered = DetailsBuilder::new();
        ordered.insert_int("a", 1);
        ordered.insert_int("b", 2);
        let mut empty = DetailsBuilder::new();
        empty.append(ordered.clone());
        assert_eq!(empty.build(), ordered.build());
    }

    #[test]
    fn names_in_reverse_order_come_out_ordered() {
        let mut builder = DetailsBuilder::new();
        for i in (0..1000).rev() {
            builder.insert_int(&format!("k{i:06}"), i);
        }
        let details = builder.build();
        assert_eq!(details.len(), 1000);
        assert_eq!(details.get("k000000"), Some("0"));
        assert!(
            details
                .iter()
                .zip(details.iter().skip(1))
                .all(|(a, b)| a.0 < b.0)
        );
    }
}
