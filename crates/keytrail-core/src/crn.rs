//! IBM Cloud resource names.
//!
//! `crn:v1:bluemix:public:hs-crypto:us-south:a/<account>:<instance>:key:<id>`.
//! Real events carry damaged CRNs: no `crn:` prefix, empty segments
//! (`crn:v1::public:is::a/…`), placeholders (`<ATR_CRN>`, `undefined`).
//! [`Crn::parse`] takes what is usable and leaves the rest `None`; it never
//! fails on a string that has at least the service segment.

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
        let text = text.trim();
        let body = text.strip_prefix("crn:").unwrap_or(text);
        let mut parts = body.splitn(9, ':');
        let version = parts.next()?;
        if !version.starts_with('v') {
            return None;
        }
        let _cname = parts.next()?;
        let _ctype = parts.next()?;
        let service = usable(parts.next())?;
        let location = usable(parts.next());
        let account = usable(parts.next())
            .and_then(|scope| scope.strip_prefix("a/"))
            .and_then(|a| usable(Some(a)));
        let instance = usable(parts.next());
        let resource_type = usable(parts.next());
        let resource = usable(parts.next());
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
    }
}
