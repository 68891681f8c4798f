//! Securosys Key Manager UI JSON log lines.
//!
//! `{"timestamp": …, "level": "INFO", "event": "DATA_OBJECT_UPDATED",
//! "category": "DATA_OBJECT", "user": …, "role": …, "provider": …,
//! "resource": …, "details": {…}, "result": "SUCCESS", "api_url": …,
//! "session_id": …}`. The event name is the action as sent; the category is
//! kept, lower-cased; `details` is kept whole minus key material.

use keytrail_core::{Category, Event, Outcome, Source};

use crate::raw::Top;
use crate::{Context, Rejection};

/// Maps a Securosys `result` to the outcome.
pub(crate) fn outcome(result: Option<&str>) -> Outcome {
    match result.map(keytrail_core::trim) {
        Some(r) if r.eq_ignore_ascii_case("SUCCESS") => Outcome::Success,
        Some(r) if r.eq_ignore_ascii_case("DENIED") => Outcome::Denied,
        Some(r) if r.eq_ignore_ascii_case("ERROR") => Outcome::Failure,
        _ => Outcome::Unknown,
    }
}

/// Builds the event. `top.event` is known to be present.
pub(crate) fn build(top: &mut Top<'_>, ctx: &Context<'_>) -> Result<Event, Rejection> {
    let (time, inferred) = ctx.time(top.timestamp.get())?;
    let action = top.event.trimmed().unwrap_or_default();
    let mut event = Event::new(time, Source::SecurosysKm, action);
    event.time_inferred = inferred;
    event.category = top
        .category
        .get()
        .and_then(|c| Category::from_name(keytrail_core::trim(c)))
        .unwrap_or(Category::Other);
    event.outcome = outcome(top.result.get());
    event.vendor_severity = top.level.trimmed();
    event.actor.user = top.user.owned();
    event.actor.role = top.role.owned();
    event.actor.provider = top.provider.owned();
    event.actor.session_id = top.session_id.owned();
    event.target.id = top.resource.owned();
    event.target.api_url = top.api_url.owned();
    event.event_id = top.id.trimmed();
    if let Some(details) = top.details.0.take() {
        event.details = details.0.build();
    }
    ctx.apply_meta(&mut event);
    Ok(event)
}
