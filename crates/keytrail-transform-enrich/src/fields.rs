//! Field derivations: facts the enricher computes from fields the
//! normalizer filled in raw form.
//!
//! Runs in the enrich stage, after the catalog step. Each function here
//! reads what the event already holds and fills derived fields; none of
//! them panics on damaged input (a CRN without `crn:`, a TKE location with
//! a missing bracket, an unknown key state): what cannot be derived is left
//! as it was. Strings are allocated only for values the output must own
//! (a region cut out of a CRN); names from fixed sets are borrowed
//! constants.

use std::borrow::Cow;

use keytrail_core::crn::Crn;
use keytrail_core::{CompactString, Event};

/// What a KMIP-for-VMware initiator id starts with; the certificate
/// fingerprint follows it.
const CERTIFICATE_ID_PREFIX: &str = "CertificateID-";

/// The name of an IBM `keyState` integer: 0 `pre_activation`, 1 `active`,
/// 2 `suspended`, 3 `deactivated`, 5 `destroyed`, anything else `unknown`.
pub fn key_state_name(code: i64) -> &'static str {
    match code {
        0 => "pre_activation",
        1 => "active",
        2 => "suspended",
        3 => "deactivated",
        5 => "destroyed",
        _ => "unknown",
    }
}

/// The parts of a TKE crypto-unit location
/// `[region].[availability zone].[HSM index].[domain index]`.
///
/// A part is taken only when it is written in brackets and, for the two
/// indexes, is a number; anything else stays `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TkeLocation<'a> {
    /// First bracket: the region (`us-east`).
    pub region: Option<&'a str>,
    /// Second bracket (`AZ2-CSSTAG2`).
    pub availability_zone: Option<&'a str>,
    /// Third bracket as a number (`03` → 3).
    pub hsm_index: Option<u32>,
    /// Fourth bracket as a number.
    pub domain_index: Option<u32>,
}

impl<'a> TkeLocation<'a> {
    /// Splits a location at the dots that are outside brackets.
    pub fn parse(text: &'a str) -> TkeLocation<'a> {
        let mut parts = TopLevelParts {
            rest: Some(keytrail_core::trim(text)),
        }
        .map(bracketed);
        let region = parts.next().flatten();
        let availability_zone = parts.next().flatten();
        let hsm_index = parts.next().flatten().and_then(|p| p.parse().ok());
        let domain_index = parts.next().flatten().and_then(|p| p.parse().ok());
        TkeLocation {
            region,
            availability_zone,
            hsm_index,
            domain_index,
        }
    }
}

/// Iterates over the `.`-separated parts of a string, ignoring dots that
/// sit inside `[…]`.
struct TopLevelParts<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for TopLevelParts<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self.rest?;
        let mut depth = 0usize;
        // The marks are ASCII, so every cut is on a character boundary.
        for (i, b) in text.bytes().enumerate() {
            match b {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'.' if depth == 0 => {
                    self.rest = Some(&text[i + 1..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(text)
    }
}

/// The inside of `[…]`, trimmed, when the part is bracketed and not empty.
fn bracketed(part: &str) -> Option<&str> {
    keytrail_core::trim(part)
        .strip_prefix('[')?
        .strip_suffix(']')
        .map(keytrail_core::trim)
        .filter(|inner| !inner.is_empty())
}

/// Sets `slot` to `value`, reusing the buffer already there.
fn set_text(slot: &mut Option<CompactString>, value: &str) {
    match slot {
        Some(existing) if existing == value => {}
        Some(existing) => {
            existing.clear();
            existing.push_str(value);
        }
        None => *slot = Some(value.into()),
    }
}

/// Region, account and instance of an IBM event.
///
/// - `region`: the first bracket of the TKE location, else the location of
///   the `target.id` CRN, else that of `logSourceCRN`, else the value
///   already there (the Kafka header).
/// - `account_id`: the account of the `target.id` CRN, else of
///   `logSourceCRN`, else the value already there.
/// - `instance_id`: the value already there (`requestData.instanceID`),
///   else the instance of the `target.id` CRN, else of `logSourceCRN`.
///
/// Also splits the TKE location into its parts.
pub(crate) fn derive_ibm_places(event: &mut Event) {
    let target = event.target.id.as_deref().and_then(Crn::parse);
    // The log source's CRN only fills what the target's lacks: most target
    // CRNs have every part, and then it is not parsed at all.
    let complete = target.is_some_and(|crn| {
        crn.location.is_some() && crn.account.is_some() && crn.instance.is_some()
    });
    let crns = [
        target,
        event
            .log_source_crn
            .as_deref()
            .filter(|_| !complete)
            .and_then(Crn::parse),
    ];

    let mut tke_region = None;
    if let Some(facts) = event.tke.as_deref_mut()
        && let Some(location) = facts.location.as_deref().map(TkeLocation::parse)
    {
        tke_region = location.region;
        if let Some(zone) = location.availability_zone {
            set_text(&mut facts.availability_zone, zone);
        }
        if location.hsm_index.is_some() {
            facts.hsm_index = location.hsm_index;
        }
        if location.domain_index.is_some() {
            facts.domain_index = location.domain_index;
        }
    }

    if let Some(region) = tke_region.or_else(|| first_of(&crns, |crn| crn.location)) {
        set_text(&mut event.region, region);
    }
    if let Some(account) = first_of(&crns, |crn| crn.account)
        && event.account_id.as_deref() != Some(account)
    {
        event.account_id = Some(account.into());
    }
    if event.instance_id.is_none() {
        event.instance_id = first_of(&crns, |crn| crn.instance).map(Into::into);
    }
}

/// The first CRN, in order, that has the wanted part.
fn first_of<'a>(crns: &[Option<Crn<'a>>], part: fn(Crn<'a>) -> Option<&'a str>) -> Option<&'a str> {
    crns.iter().flatten().find_map(|&crn| part(crn))
}

/// Fills `key.state` and `key.previous_state` from their integer codes when
/// the normalizer left them empty (a state sent as text is kept).
pub(crate) fn name_key_states(event: &mut Event) {
    let Some(key) = event.key.as_deref_mut() else {
        return;
    };
    if key.state.is_none() {
        key.state = key.state_code.map(|c| Cow::Borrowed(key_state_name(c)));
    }
    if key.previous_state.is_none() {
        key.previous_state = key
            .previous_state_code
            .map(|c| Cow::Borrowed(key_state_name(c)));
    }
}

/// Copies the certificate fingerprint out of a KMIP-for-VMware initiator id
/// (`CertificateID-<fingerprint>`), as sent, unless one is already set.
pub(crate) fn extract_cert_fingerprint(event: &mut Event) {
    if event.actor.cert_fingerprint.is_some() {
        return;
    }
    let fingerprint = event
        .actor
        .id
        .as_deref()
        .and_then(|id| id.strip_prefix(CERTIFICATE_ID_PREFIX))
        .filter(|fp| !fp.is_empty());
    if let Some(fingerprint) = fingerprint {
        event.actor.cert_fingerprint = Some(fingerprint.into());
    }
}

#[cfg(test)]
mod tests {
    use keytrail_core::{Source, Timestamp};

    use super::*;

    fn ibm_event() -> Event {
        Event::new(
            Timestamp::from_millis(0),
            Source::IbmKeyProtect,
            "kms.secrets.create".into(),
        )
    }

    #[test]
    fn tke_locations_split_and_tolerate_damage() {
        let full = |region, zone, hsm, domain| TkeLocation {
            region,
            availability_zone: zone,
            hsm_index: hsm,
            domain_index: domain,
        };
        let cases: &[(&str, TkeLocation<'_>)] = &[
            (
                "[us-east].[AZ2-CSSTAG2].[03].[22]",
                full(Some("us-east"), Some("AZ2-CSSTAG2"), Some(3), Some(22)),
            ),
            (
                " [eu-de] . [AZ1] . [0] . [7] ",
                full(Some("eu-de"), Some("AZ1"), Some(0), Some(7)),
            ),
            (
                "[us-east].[AZ2-CSSTAG2].[x3].[22]",
                full(Some("us-east"), Some("AZ2-CSSTAG2"), None, Some(22)),
            ),
            (
                "[us-east].AZ2-CSSTAG2.[03].[22]",
                full(Some("us-east"), None, Some(3), Some(22)),
            ),
            (
                "[us-east].[AZ2-CSSTAG2].[03].[22",
                full(Some("us-east"), Some("AZ2-CSSTAG2"), Some(3), None),
            ),
            (
                "[us-east].[AZ2-CSSTAG2]",
                full(Some("us-east"), Some("AZ2-CSSTAG2"), None, None),
            ),
            (
                "[a.b].[zone.1].[4].[5]",
                full(Some("a.b"), Some("zone.1"), Some(4), Some(5)),
            ),
            ("us-east.AZ2-CSSTAG2.03.22", full(None, None, None, None)),
            ("[].[].[].[]", full(None, None, None, None)),
            (
                "[-1].[[]].[99999999999].[+4]",
                full(Some("-1"), Some("[]"), None, Some(4)),
            ),
            ("", full(None, None, None, None)),
            ("...]]][[[", full(None, None, None, None)),
            ("[", full(None, None, None, None)),
            (
                "[é].[ü].[1].[2]",
                full(Some("é"), Some("ü"), Some(1), Some(2)),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(TkeLocation::parse(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn key_state_names_follow_ibm_codes() {
        let cases = [
            (0, "pre_activation"),
            (1, "active"),
            (2, "suspended"),
            (3, "deactivated"),
            (4, "unknown"),
            (5, "destroyed"),
            (6, "unknown"),
            (-1, "unknown"),
            (i64::MAX, "unknown"),
        ];
        for (code, name) in cases {
            assert_eq!(key_state_name(code), name, "{code}");
        }
    }

    #[test]
    fn key_states_fill_only_what_is_missing() {
        let mut event = ibm_event();
        event.key_mut().state_code = Some(1);
        event.key_mut().previous_state_code = Some(3);
        name_key_states(&mut event);
        let key = event.key.as_deref().expect("key facts");
        assert_eq!(key.state.as_deref(), Some("active"));
        assert_eq!(key.previous_state.as_deref(), Some("deactivated"));

        let mut text = ibm_event();
        text.key_mut().state = Some(Cow::Borrowed("dek_enabled"));
        text.key_mut().state_code = Some(5);
        name_key_states(&mut text);
        let key = text.key.as_deref().expect("key facts");
        assert_eq!(key.state.as_deref(), Some("dek_enabled"));
        assert_eq!(key.previous_state, None);

        let mut none = ibm_event();
        name_key_states(&mut none);
        assert!(none.key.is_none(), "no key facts are invented");
    }

    #[test]
    fn fingerprint_comes_from_certificate_ids_only() {
        let cases = [
            (Some("CertificateID-ab:cd:EF:01"), Some("ab:cd:EF:01")),
            (Some("CertificateID-"), None),
            (Some("certificateid-abcd"), None),
            (Some("IBMid-550006"), None),
            (None, None),
        ];
        for (id, fingerprint) in cases {
            let mut event = ibm_event();
            event.actor.id = id.map(Into::into);
            extract_cert_fingerprint(&mut event);
            assert_eq!(
                event.actor.cert_fingerprint.as_deref(),
                fingerprint,
                "{id:?}"
            );
        }
    }

    /// Region, account and instance precedence, with CRNs as they appear in
    /// `samples/real` (no `crn:` prefix, empty segments, placeholders).
    #[test]
    fn places_follow_the_documented_precedence() {
        #[derive(Clone, Copy)]
        struct Case {
            name: &'static str,
            tke_location: Option<&'static str>,
            target: Option<&'static str>,
            log_source: Option<&'static str>,
            header_region: Option<&'static str>,
            header_account: Option<&'static str>,
            request_instance: Option<&'static str>,
            region: Option<&'static str>,
            account: Option<&'static str>,
            instance: Option<&'static str>,
        }
        const HPCS_KEY: &str = "crn:v1:bluemix:public:hs-crypto:us-south:a/b3e8ea4428c24cefa34454bd8acccc:dd24cdc0-2c77-40a7-8680-53ccd41d9888:key:d68bf025-e21d-4569-92c0-47bc22aadddd";
        const KMS_NO_PREFIX: &str = "v1:bluemix:public:kms:us-south:a/b3e8ea4428c24cefa34454bd8acccc:dd24cdc0-2c77-40a7-8680-53ccd41d9888::";
        const VPC_EMPTY: &str = "crn:v1::public:is::a/67db3d7ff3f34220b40e2d81480754c9::vpc:";
        const VPC_AU: &str =
            "crn:v1:bluemix:public:is:au-syd:a/67db3d7ff3f34220b40e2d81480754c9::vpc:";
        const UNDEFINED: &str = "crn:v1:production:public:bss-metering-test:undefined:s/undefined:1234-5678-9012-3456:event:1";
        const PLACEHOLDER_ACCOUNT: &str =
            "crn:v1:staging:public:is:eu-gb:a/<ACCOUNT_ID>::load-balancer:4633518f";
        let blank = Case {
            name: "",
            tke_location: None,
            target: None,
            log_source: None,
            header_region: None,
            header_account: None,
            request_instance: None,
            region: None,
            account: None,
            instance: None,
        };
        let cases = [
            Case {
                name: "full target crn wins over headers",
                target: Some(HPCS_KEY),
                log_source: Some(KMS_NO_PREFIX),
                header_region: Some("eu-de"),
                header_account: Some("header-account"),
                region: Some("us-south"),
                account: Some("b3e8ea4428c24cefa34454bd8acccc"),
                instance: Some("dd24cdc0-2c77-40a7-8680-53ccd41d9888"),
                ..blank
            },
            Case {
                name: "log source crn without crn: prefix",
                target: Some("<ATR_CRN>"),
                log_source: Some(KMS_NO_PREFIX),
                region: Some("us-south"),
                account: Some("b3e8ea4428c24cefa34454bd8acccc"),
                instance: Some("dd24cdc0-2c77-40a7-8680-53ccd41d9888"),
                ..blank
            },
            Case {
                name: "empty location falls through to log source",
                target: Some(VPC_EMPTY),
                log_source: Some(VPC_AU),
                region: Some("au-syd"),
                account: Some("67db3d7ff3f34220b40e2d81480754c9"),
                ..blank
            },
            Case {
                name: "empty location falls through to header",
                target: Some(VPC_EMPTY),
                header_region: Some("us-east"),
                header_account: Some("header-account"),
                region: Some("us-east"),
                account: Some("67db3d7ff3f34220b40e2d81480754c9"),
                ..blank
            },
            Case {
                name: "undefined segments are not values",
                target: Some(UNDEFINED),
                log_source: Some("<ATR_CRN>"),
                header_region: Some("us-south"),
                header_account: Some("header-account"),
                region: Some("us-south"),
                account: Some("header-account"),
                instance: Some("1234-5678-9012-3456"),
                ..blank
            },
            Case {
                name: "placeholder account is not a value",
                target: Some(PLACEHOLDER_ACCOUNT),
                header_account: Some("header-account"),
                region: Some("eu-gb"),
                account: Some("header-account"),
                ..blank
            },
            Case {
                name: "tke location wins for the region",
                tke_location: Some("[us-east].[AZ2-CSSTAG2].[03].[22]"),
                target: Some(HPCS_KEY),
                header_region: Some("eu-gb"),
                region: Some("us-east"),
                account: Some("b3e8ea4428c24cefa34454bd8acccc"),
                instance: Some("dd24cdc0-2c77-40a7-8680-53ccd41d9888"),
                ..blank
            },
            Case {
                name: "damaged tke location falls back to the crn",
                tke_location: Some("us-east.AZ2.03.22"),
                target: Some(HPCS_KEY),
                region: Some("us-south"),
                account: Some("b3e8ea4428c24cefa34454bd8acccc"),
                instance: Some("dd24cdc0-2c77-40a7-8680-53ccd41d9888"),
                ..blank
            },
            Case {
                name: "request instance is kept",
                target: Some(HPCS_KEY),
                request_instance: Some("from-request-data"),
                region: Some("us-south"),
                account: Some("b3e8ea4428c24cefa34454bd8acccc"),
                instance: Some("from-request-data"),
                ..blank
            },
            Case {
                name: "nothing usable keeps the headers",
                target: Some("not a crn"),
                log_source: Some(""),
                header_region: Some("jp-tok"),
                header_account: Some("header-account"),
                region: Some("jp-tok"),
                account: Some("header-account"),
                ..blank
            },
            Case {
                name: "nothing at all",
                ..blank
            },
        ];
        for case in cases {
            let mut event = ibm_event();
            if let Some(location) = case.tke_location {
                event.tke_mut().location = Some(location.into());
            }
            event.target.id = case.target.map(Into::into);
            event.log_source_crn = case.log_source.map(Into::into);
            event.region = case.header_region.map(Into::into);
            event.account_id = case.header_account.map(Into::into);
            event.instance_id = case.request_instance.map(Into::into);
            derive_ibm_places(&mut event);
            assert_eq!(
                event.region.as_deref(),
                case.region,
                "region: {}",
                case.name
            );
            assert_eq!(
                event.account_id.as_deref(),
                case.account,
                "account: {}",
                case.name
            );
            assert_eq!(
                event.instance_id.as_deref(),
                case.instance,
                "instance: {}",
                case.name
            );
        }
    }

    #[test]
    fn tke_facts_are_filled_from_the_location() {
        let mut event = ibm_event();
        event.tke_mut().location = Some("[us-east].[AZ2-CSSTAG2].[03].[22]".into());
        derive_ibm_places(&mut event);
        let tke = event.tke.as_deref().expect("tke facts");
        assert_eq!(tke.availability_zone.as_deref(), Some("AZ2-CSSTAG2"));
        assert_eq!((tke.hsm_index, tke.domain_index), (Some(3), Some(22)));
        assert_eq!(
            tke.location.as_deref(),
            Some("[us-east].[AZ2-CSSTAG2].[03].[22]")
        );

        let mut damaged = ibm_event();
        damaged.tke_mut().location = Some("[us-east].[AZ2].[three].[22]".into());
        derive_ibm_places(&mut damaged);
        let tke = damaged.tke.as_deref().expect("tke facts");
        assert_eq!(tke.availability_zone.as_deref(), Some("AZ2"));
        assert_eq!((tke.hsm_index, tke.domain_index), (None, Some(22)));
    }
}
