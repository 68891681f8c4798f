//! IBM Cloud resource names.
//!
//! `crn:v1:bluemix:public:hs-crypto:us-south:a/<account>:<instance>:key:<id>`.
//! Real events carry damaged CRNs: no `crn:` prefix, empty segments
//! (`crn:v1::public:is::a/…`), placeholders (`<ATR_CRN>`, `undefined`).
//! [`Crn::parse`] takes what is usable and leaves the rest `None`; it never
//! fails on a string that has at least the service segment.

use crate::lanes;

/// The parts of a CRN that keytrail uses, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crn<'a> {
    /// Service name (`hs-crypto`, `kms`, `is`).
    pub service: &'a str,
    /// Location: a region (`us-south`), a zone or `global`.
    pub location: Option<&'a str>,
    /// Account from an `a/<account>` scope.
    pub account: Option<&'a str>,
    /// Service instance.
    pub instance: Option<&'a str>,
    /// Resource type (`key`).
    pub resource_type: Option<&'a str>,
    /// Resource (the key id).
    pub resource: Option<&'a str>,
}

impl<'a> Crn<'a> {
    /// Parses a CRN, with or without its `crn:` prefix; `None` when it has
    /// no service segment.
    pub fn parse(text: &'a str) -> Option<Crn<'a>> {
        let text = crate::trim(text);
        let body = text.strip_prefix("crn:").unwrap_or(text);
        let segments = Segments::split(body);
        let version = segments.get(0)?;
        if !version.starts_with('v') {
            return None;
        }
        let service = usable(segments.get(3))?;
        let location = usable(segments.get(4));
        let account = usable(segments.get(5))
            .and_then(|scope| scope.strip_prefix("a/"))
            .and_then(|a| usable(Some(a)));
        let instance = usable(segments.get(6));
        let resource_type = usable(segments.get(7));
        let resource = usable(segments.get(8));
        Some(Crn {
            service,
            location,
            account,
            instance,
            resource_type,
            resource,
        })
    }
}

/// The first nine `:`-separated segments; the ninth keeps any further
/// colons (a resource may hold them).
struct Segments<'a> {
    parts: [&'a str; 9],
    count: usize,
}

impl<'a> Segments<'a> {
    /// Splits at the first eight colons, sixteen bytes at a time
    /// ([`crate::lanes`]): a CRN is about a hundred bytes with nine
    /// segments, and one bit scan per colon is cheaper than a search call
    /// per colon.
    fn split(body: &'a str) -> Segments<'a> {
        let bytes = body.as_bytes();
        let mut parts = [""; 9];
        let mut count = 0;
        let mut start = 0;
        // `:` is ASCII, so every slice below ends on a character boundary.
        let mut cut = |at: usize| {
            parts[count] = body.get(start..at).unwrap_or_default();
            count += 1;
            start = at + 1;
            count == 8
        };
        // Cuts at each mark of `marks` (bit `i` standing for `base + i`)
        // until the eighth; true then.
        let mut cut_all = |base: usize, mut marks: u32| {
            while marks != 0 {
                if cut(base + marks.trailing_zeros() as usize) {
                    return true;
                }
                marks &= marks - 1;
            }
            false
        };
        let colons = |chunk| lanes::eq(chunk, b':');
        let mut base = 0;
        let mut done = false;
        while !done && let Some(chunk) = lanes::chunk(bytes, base) {
            done = cut_all(base, colons(chunk));
            base += 16;
        }
        if !done {
            let rest = lanes::rest(bytes, base, colons).unwrap_or_else(|| {
                // A text under sixteen bytes.
                bytes
                    .iter()
                    .skip(base)
                    .enumerate()
                    .filter(|&(_, &b)| b == b':')
                    .fold(0, |marks, (i, _)| marks | 1 << i)
            });
            cut_all(base, rest);
        }
        parts[count] = body.get(start..).unwrap_or_default();
        Segments {
            parts,
            count: count + 1,
        }
    }

    fn get(&self, index: usize) -> Option<&'a str> {
        (index < self.count).then(|| self.parts[index])
    }
}

fn usable(segment: Option<&str>) -> Option<&str> {
    segment.filter(|s| !s.is_empty() && *s != "undefined" && !s.starts_with('<'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_key_crn() {
        let crn = Crn::parse("crn:v1:bluemix:public:hs-crypto:us-south:a/b3e8:dd24:key:d68b")
            .expect("parses");
        assert_eq!(crn.service, "hs-crypto");
        assert_eq!(crn.location, Some("us-south"));
        assert_eq!(crn.account, Some("b3e8"));
        assert_eq!(crn.instance, Some("dd24"));
        assert_eq!(crn.resource_type, Some("key"));
        assert_eq!(crn.resource, Some("d68b"));
    }

    #[test]
    fn tolerates_the_damage_seen_in_real_events() {
        let no_prefix = Crn::parse("v1:bluemix:public:kms:us-south:a/b3e8:dd24::").expect("parses");
        assert_eq!(
            (no_prefix.service, no_prefix.instance),
            ("kms", Some("dd24"))
        );
        assert_eq!(no_prefix.resource, None);

        let empty = Crn::parse("crn:v1::public:is::a/67db::vpc:").expect("parses");
        assert_eq!(empty.location, None);
        assert_eq!(empty.account, Some("67db"));
        assert_eq!(empty.instance, None);

        let undefined = Crn::parse(
            "crn:v1:production:public:bss-metering-test:undefined:s/undefined:1234:event:1",
        )
        .expect("parses");
        assert_eq!(undefined.location, None);
        assert_eq!(undefined.account, None);

        assert_eq!(Crn::parse("<ATR_CRN>"), None);
        assert_eq!(Crn::parse(""), None);
        assert_eq!(Crn::parse("crn:v1:bluemix:public"), None);
        assert_eq!(Crn::parse("crn:x1:bluemix:public:kms"), None);
        assert_eq!(
            Crn::parse(" crn:v1:bluemix:public:kms\t").map(|c| c.service),
            Some("kms")
        );
    }

    #[test]
    fn the_last_segment_keeps_its_colons() {
        let crn = Crn::parse("crn:v1:bluemix:public:kms:eu-de:a/1:2:key:a:b:c").expect("parses");
        assert_eq!(crn.resource_type, Some("key"));
        assert_eq!(crn.resource, Some("a:b:c"));
        let short = Crn::parse("crn:v1:bluemix:public:kms").expect("parses");
        assert_eq!((short.location, short.resource), (None, None));
    }

    #[test]
    fn segments_split_as_splitn_does() {
        // Colons at every offset of a chunk and across chunks, runs of
        // them, multi-byte characters, more than eight.
        let texts = [
            "",
            ":",
            "::::::::::",
            "a",
            "abcdefgh:",
            "abcdefg:h",
            ":abcdefgh",
            "v1:bluemix:public:kms:jp-tok:a/67db3d7f:0d86b31a-5b37::",
            "v1:bluemix:public:kms:us-south:a/1:2:key:a:b:c:d",
            "é:ü:ß:東京:a/1:2:3:4:5",
            "1234567:12345678:123456789:",
            // A byte one above `:` right after one: a borrowing zero-byte
            // test would mark it too.
            "a:;b:;:;c:;;:;d",
        ];
        for text in texts {
            for cut in 0..=text.len() {
                let Some(text) = text.get(cut..) else {
                    continue;
                };
                let expected: Vec<&str> = text.splitn(9, ':').collect();
                let segments = Segments::split(text);
                let got: Vec<&str> = (0..9).map_while(|i| segments.get(i)).collect();
                assert_eq!(got, expected, "{text:?}");
            }
        }
    }
}
