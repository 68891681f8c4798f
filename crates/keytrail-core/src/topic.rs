//! Kafka topic names, which every event of a topic carries in its origin.
//!
//! The Kafka source interns the names it reads: one copy per name for the
//! life of the process, so that giving an event its topic costs neither an
//! allocation nor a reference count. A reference count was what it cost
//! before, and because every event of a topic shared one count, the
//! thread that reads records and the threads that free events wrote the
//! same cache line once per event each.
//!
//! Interning is bounded ([`MAX_INTERNED`] names, [`MAX_INTERNED_BYTES`]
//! bytes): past the bound, and for names that come from anywhere else (a
//! peer's request, configuration, tests), a name is reference counted as
//! before. A peer cannot grow the interned set.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde::{Deserialize, Deserializer};

/// At most this many names are interned; a subscription by pattern over a
/// cluster that keeps creating topics stops interning there.
pub const MAX_INTERNED: usize = 4096;

/// At most this many bytes of names are interned. Kafka's names are at most
/// 249 bytes, so with them the count binds first; this bound holds whatever
/// the names.
pub const MAX_INTERNED_BYTES: usize = 1 << 20;

/// A topic name: interned, or reference counted (see the module docs).
/// Compared, hashed, ordered, printed and serialized as the name.
#[derive(Clone)]
pub struct Topic(Repr);

#[derive(Clone)]
enum Repr {
    Interned(&'static str),
    Shared(Arc<str>),
}

/// The names interned so far, and their bytes, within bounds.
struct Interner {
    names: HashSet<&'static str>,
    bytes: usize,
    max_names: usize,
    max_bytes: usize,
}

impl Interner {
    fn new(max_names: usize, max_bytes: usize) -> Interner {
        Interner {
            names: HashSet::new(),
            bytes: 0,
            max_names,
            max_bytes,
        }
    }

    /// The kept copy of `name`; `None` past the bounds.
    fn intern(&mut self, name: &str) -> Option<&'static str> {
        if let Some(&kept) = self.names.get(name) {
            return Some(kept);
        }
        if self.names.len() >= self.max_names || self.bytes + name.len() > self.max_bytes {
            return None;
        }
        let kept: &'static str = String::from(name).leak();
        self.bytes += kept.len();
        self.names.insert(kept);
        Some(kept)
    }
}

static INTERNED: LazyLock<Mutex<Interner>> =
    LazyLock::new(|| Mutex::new(Interner::new(MAX_INTERNED, MAX_INTERNED_BYTES)));

impl Topic {
    /// A name known at compile time.
    pub const fn from_static(name: &'static str) -> Topic {
        Topic(Repr::Interned(name))
    }

    /// `name`, interned unless the bound is reached. Takes a lock: callers
    /// on a hot path keep the result (the Kafka source keeps one per topic
    /// it reads).
    pub fn interned(name: &str) -> Topic {
        let kept = INTERNED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .intern(name);
        match kept {
            Some(kept) => Topic(Repr::Interned(kept)),
            None => Topic::from(name),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Interned(name) => name,
            Repr::Shared(name) => name,
        }
    }

    /// True when both are the same copy of the name (not only equal).
    pub fn same_copy(a: &Topic, b: &Topic) -> bool {
        std::ptr::eq(a.as_str(), b.as_str())
    }

    /// True when the name is interned, or static ([`Topic::from_static`]):
    /// not reference counted.
    pub fn is_interned(&self) -> bool {
        matches!(self.0, Repr::Interned(_))
    }
}

crate::as_text::as_text!(Topic);

impl From<&str> for Topic {
    /// Reference counted, not interned.
    fn from(name: &str) -> Topic {
        Topic(Repr::Shared(Arc::from(name)))
    }
}

impl From<String> for Topic {
    /// Reference counted, not interned.
    fn from(name: String) -> Topic {
        Topic(Repr::Shared(Arc::from(name)))
    }
}

impl From<Arc<str>> for Topic {
    fn from(name: Arc<str>) -> Topic {
        Topic(Repr::Shared(name))
    }
}

impl<'de> Deserialize<'de> for Topic {
    /// Reference counted, not interned.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Topic, D::Error> {
        String::deserialize(deserializer).map(Topic::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn interned_names_are_one_copy_and_other_names_are_not_interned() {
        let a = Topic::interned("keytrail-topic-test-a");
        let b = Topic::interned(&String::from("keytrail-topic-test-a"));
        assert!(a.is_interned() && b.is_interned());
        assert!(
            Topic::same_copy(&a, &b),
            "the second lookup finds the first copy"
        );

        let shared = Topic::from("keytrail-topic-test-a");
        assert!(!shared.is_interned());
        assert!(!Topic::same_copy(&a, &shared));
        assert_eq!(a, shared, "equal by name whatever the storage");
        assert!(Topic::same_copy(&shared, &shared.clone()));

        let mut counts: HashMap<Topic, u32> = HashMap::new();
        *counts.entry(a.clone()).or_default() += 1;
        *counts.entry(shared).or_default() += 1;
        assert_eq!(
            counts.get("keytrail-topic-test-a"),
            Some(&2),
            "looked up by &str"
        );

        assert_eq!(
            format!("{a} {a:?}"),
            "keytrail-topic-test-a \"keytrail-topic-test-a\""
        );
        let json = serde_json::to_string(&a).expect("serializes");
        assert_eq!(json, "\"keytrail-topic-test-a\"");
        let back: Topic = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, a);
        let (x, y) = (Topic::from_static("x"), Topic::from("y"));
        assert_eq!(x.cmp(&y), std::cmp::Ordering::Less, "ordered by name");
    }

    #[test]
    fn interning_stops_at_its_bounds() {
        let mut interner = Interner::new(3, 20);
        let first = interner.intern("first").expect("room");
        assert!(std::ptr::eq(
            first,
            interner.intern("first").expect("known")
        ));
        assert!(interner.intern("second").is_some());
        assert_eq!(
            interner.intern("over-the-bytes-bound"),
            None,
            "5 + 6 + 20 > 20"
        );
        assert!(interner.intern("third").is_some());
        assert_eq!(interner.intern("x"), None, "three names already");
        assert!(
            interner.intern("second").is_some(),
            "known names still found"
        );
        assert_eq!((interner.names.len(), interner.bytes), (3, 16));
    }
}
