//! IBM Cloud Activity Tracker events (CADF): Hyper Protect Crypto Services,
//! Key Protect, and the other IBM services that share the topic.
//!
//! The source is decided by the service segment of a CRN (`target.id`, else
//! `logSourceCRN`), because HPCS also emits `kms.`-prefixed actions; with no
//! CRN of either service, by the action prefix; anything else is
//! `ibm_cloud`. Every field is read as sent: catalog translation, CRN
//! splitting and state names are the enricher's work.

use keytrail_core::{CompactString, DetailsBuilder, Event, Outcome, Reason, Source};

use crate::de::Embedded;
use crate::raw::{Data, KeyState, Top};
use crate::{Context, Rejection, Texts, scan};

/// Decides the IBM source (see the module docs).
pub(crate) fn source(
    target_id: Option<&str>,
    log_source_crn: Option<&str>,
    action: &str,
) -> Source {
    for crn in [target_id, log_source_crn].into_iter().flatten() {
        match crn_service(crn) {
            Some("hs-crypto") => return Source::IbmHpcs,
            Some("kms") => return Source::IbmKeyProtect,
            _ => {}
        }
    }
    if action.starts_with("hs-crypto.") {
        Source::IbmHpcs
    } else if action.starts_with("kms.") {
        Source::IbmKeyProtect
    } else {
        Source::IbmCloud
    }
}

/// The service segment of a CRN, exactly as [`Crn::parse`] reads it, in
/// one pass over the first four segments (the source is decided per event;
/// the full split is the enricher's).
///
/// [`Crn::parse`]: keytrail_core::crn::Crn::parse
pub(crate) fn crn_service(text: &str) -> Option<&str> {
    let text = keytrail_core::trim(text);
    let body = text.strip_prefix("crn:").unwrap_or(text);
    let mut segment = 0;
    let mut start = 0;
    for at in memchr::memchr_iter(b':', body.as_bytes()) {
        if segment == 0 && !body.starts_with('v') {
            return None;
        }
        if segment == 3 {
            return usable_service(&body[start..at]);
        }
        segment += 1;
        start = at + 1;
    }
    // The service runs to the end (a CRN cut after it).
    (segment == 3)
        .then(|| usable_service(&body[start..]))
        .flatten()
}

/// [`Crn`]'s rule for a usable segment.
///
/// [`Crn`]: keytrail_core::crn::Crn
fn usable_service(segment: &str) -> Option<&str> {
    (!segment.is_empty() && segment != "undefined" && !segment.starts_with('<')).then_some(segment)
}

/// Maps an IBM `outcome` and status code: failures answered 401 or 403 are
/// denials.
pub(crate) fn outcome(outcome: Option<&str>, status: Option<u32>) -> Outcome {
    match outcome.map(keytrail_core::trim) {
        Some(o) if o.eq_ignore_ascii_case("success") => Outcome::Success,
        Some(o) if o.eq_ignore_ascii_case("failure") => match status {
            Some(401 | 403) => Outcome::Denied,
            _ => Outcome::Failure,
        },
        Some(o) if o.eq_ignore_ascii_case("pending") => Outcome::Pending,
        _ => Outcome::Unknown,
    }
}

/// Builds the event. `top.action` is known to be present.
pub(crate) fn build(top: &mut Top<'_>, ctx: &mut Context<'_>) -> Result<Event, Rejection> {
    let (time, inferred) = ctx.time(top.event_time.get())?;
    let action: CompactString = top.action.trimmed().unwrap_or_default();
    let initiator = top.initiator.0.take().unwrap_or_default();
    let target = top.target.0.take().unwrap_or_default();
    let reason = top.reason.0.take().unwrap_or_default();

    let target_id = target.id.trimmed();
    let log_source_crn = top
        .log_source_crn
        .trimmed()
        .or_else(|| ctx.outer_log_source.clone());
    let source = source(target_id.as_deref(), log_source_crn.as_deref(), &action);
    let status = reason.code.0.and_then(|c| u32::try_from(c).ok());

    let mut event = Event::new(time, source, action);
    event.time_inferred = inferred;
    event.status_code = status;
    event.outcome = outcome(top.outcome.get(), status);
    event.vendor_severity = top.severity.trimmed();
    event.message = top.message.trimmed();
    event.event_id = top.id.trimmed();
    event.data_event = top.data_event.0;
    event.log_source_crn = log_source_crn;

    let user_id = initiator.id.trimmed();
    event.actor.user = initiator.name.trimmed().or_else(|| user_id.clone());
    event.actor.id = user_id;
    event.actor.provider = initiator.credential.0.and_then(|c| c.kind.trimmed());
    if let Some(host) = initiator.host.0 {
        event.actor.ip = host.address.trimmed();
        event.actor.user_agent = host.agent.trimmed();
    }
    event.target.id = target_id;
    event.target.name = target.name.trimmed();
    event.target.kind = target.type_uri.trimmed();

    let reason = Reason {
        kind: reason.kind.trimmed(),
        failure: reason.failure.trimmed(),
    };
    event.reason = (!reason.is_empty()).then_some(reason);

    // The objects stay in `top`: they are large, and moving them costs.
    let mut request = ctx.embedded(&mut top.request_data)?;
    let mut response = match ctx.embedded(&mut top.response_data)? {
        Some(data) => Some(data),
        None => ctx.embedded(&mut top.response_body)?,
    };
    event.correlation_id = top
        .correlation_id
        .trimmed()
        .or_else(|| top.correlation_id_upper.trimmed())
        .or_else(|| response.as_mut().and_then(|r| r.correlation_id.take()));
    event.request_uri = request
        .as_mut()
        .and_then(|r| r.request_uri.take())
        .or_else(|| response.as_mut().and_then(|r| r.request_uri.take()))
        .or_else(|| top.request_path.trimmed());
    ctx.apply_meta(&mut event);
    if let Some(instance) = request.as_mut().and_then(|r| r.instance_id.take()) {
        event.instance_id = Some(instance);
    }

    let mut details = DetailsBuilder::new();
    if let Some(request) = request {
        take_request(&mut event, request, &mut details);
    }
    if let Some(response) = response {
        take_response(&mut event, response, &mut details);
    }
    event.details = details.build();
    Ok(event)
}

/// Contract fields of `requestData`; the rest goes to `details`.
fn take_request(event: &mut Event, data: &mut Data, details: &mut DetailsBuilder) {
    if let Some(kind) = data.key_type.take() {
        event.key_mut().kind = Some(kind);
    }
    if let Some(ring) = data.new_value.as_mut().and_then(|v| v.key_ring_id.take()) {
        event.key_mut().key_ring_id = Some(ring);
    }
    if let Some(ring) = data
        .initial_value
        .as_mut()
        .and_then(|v| v.key_ring_id.take())
    {
        event.key_mut().previous_key_ring_id = Some(ring);
    }
    if data.location.is_some()
        || data.admin_id.is_some()
        || data.signature_threshold.is_some()
        || data.revocation_signature_threshold.is_some()
    {
        let tke = event.tke_mut();
        tke.location = data.location.take();
        tke.admin_id = data.admin_id.take();
        tke.signature_threshold = data.signature_threshold.take();
        tke.revocation_signature_threshold = data.revocation_signature_threshold.take();
    }
    data.take_details(details);
}

/// Contract fields of `responseData`; the rest goes to `details`.
fn take_response(event: &mut Event, data: &mut Data, details: &mut DetailsBuilder) {
    let state = data
        .key_state
        .take()
        .or_else(|| data.new_value.as_mut().and_then(|v| v.key_state.take()))
        .or_else(|| data.event_ack.as_mut().and_then(|v| v.key_state.take()));
    let previous = data.initial_value.as_mut().and_then(|v| v.key_state.take());
    if data.key_id.is_some()
        || state.is_some()
        || previous.is_some()
        || data.key_version_id.is_some()
        || data.rewrapped_key_version_id.is_some()
        || data.key_version_created.is_some()
    {
        let key = event.key_mut();
        key.id = data.key_id.take();
        key.version_id = data.key_version_id.take();
        key.rewrapped_version_id = data.rewrapped_key_version_id.take();
        key.version_created = data.key_version_created.take();
        match state {
            Some(KeyState::Code(code)) => key.state_code = Some(code),
            Some(KeyState::Name(name)) => key.state = Some(name.into()),
            None => {}
        }
        match previous {
            Some(KeyState::Code(code)) => key.previous_state_code = Some(code),
            Some(KeyState::Name(name)) => key.previous_state = Some(name.into()),
            None => {}
        }
    }
    if let Some(pattern) = data.verification_pattern.take() {
        event.tke_mut().verification_pattern = Some(pattern);
    }
    data.take_details(details);
}

impl Context<'_> {
    /// An embedded object, the string form decoded in its place.
    fn embedded<'d>(
        &mut self,
        data: &'d mut Embedded<Data>,
    ) -> Result<Option<&'d mut Data>, Rejection> {
        if let Embedded::Text(text) = data {
            let parsed = match scan::data(text, self.normalizer.max_depth) {
                Ok((parsed, texts)) => {
                    self.keep(texts);
                    Some(parsed)
                }
                Err(scan::Fallback) => {
                    self.keep(Texts::MayNeedEscaping);
                    self.normalizer.check_depth(text.as_bytes())?;
                    // A string that is not an object of the expected shape
                    // is not worth the event: keep the event, drop the
                    // field.
                    serde_json::from_str::<Data>(text).ok()
                }
            };
            *data = parsed.map_or(Embedded::Absent, Embedded::Parsed);
        }
        Ok(match data {
            Embedded::Parsed(data) => Some(data),
            Embedded::Absent | Embedded::Text(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use keytrail_core::crn::Crn;

    use super::*;

    #[test]
    fn crn_service_beats_the_action_prefix() {
        let hpcs = "crn:v1:bluemix:public:hs-crypto:us-south:a/1:2:key:3";
        let kms = "v1:bluemix:public:kms:us-south:a/1:2::";
        assert_eq!(
            source(Some(hpcs), Some(kms), "kms.secrets.ack-rotate"),
            Source::IbmHpcs
        );
        assert_eq!(
            source(None, Some(kms), "hs-crypto.secrets.create"),
            Source::IbmKeyProtect
        );
        assert_eq!(
            source(Some("<ATR_CRN>"), None, "hs-crypto.secrets.create"),
            Source::IbmHpcs
        );
        assert_eq!(
            source(None, None, "kms.secrets.create"),
            Source::IbmKeyProtect
        );
        let vpc = "crn:v1:bluemix:public:is:au-syd:a/1::vpc:";
        assert_eq!(
            source(Some(vpc), Some(vpc), "is.vpc.vpc.create"),
            Source::IbmCloud
        );
    }

    #[test]
    fn crn_service_reads_as_crn_parse() {
        let texts = [
            "crn:v1:bluemix:public:hs-crypto:us-south:a/1:2:key:3",
            "v1:bluemix:public:kms:us-south:a/1:2::",
            " crn:v1:bluemix:public:kms ",
            "crn:v1:bluemix:public:kms:",
            "crn:v1:bluemix:public",
            "crn:v1:bluemix:public:",
            "crn:v1::public:is::a/67db::vpc:",
            "crn:x1:bluemix:public:kms:us",
            "crn:v1:a:b:undefined:c",
            "crn:v1:a:b:<svc>:c",
            "crn:crn:v1:a:b:kms",
            "<ATR_CRN>",
            "",
            ":::",
            "v:::",
            "v::::",
            "v:::s",
        ];
        for text in texts {
            assert_eq!(
                crn_service(text),
                Crn::parse(text).map(|c| c.service),
                "{text:?}"
            );
        }
    }

    #[test]
    fn failures_with_401_or_403_are_denials() {
        assert_eq!(outcome(Some("failure"), Some(403)), Outcome::Denied);
        assert_eq!(outcome(Some("failure"), Some(401)), Outcome::Denied);
        assert_eq!(outcome(Some("failure"), Some(409)), Outcome::Failure);
        assert_eq!(outcome(Some("Success"), Some(200)), Outcome::Success);
        assert_eq!(outcome(Some("pending"), None), Outcome::Pending);
        assert_eq!(outcome(Some("maybe"), None), Outcome::Unknown);
        assert_eq!(outcome(None, Some(200)), Outcome::Unknown);
    }
}
