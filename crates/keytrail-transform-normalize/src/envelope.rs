//! From a record's bytes to vendor objects: line splitting, limits, and the
//! envelopes that wrap an event.
//!
//! A record (a Kafka message or a file line) holds one event or several
//! newline-separated ones. Each line is checked against the size and depth
//! limits, parsed once into [`Top`] (by the on-demand reader of `scan`,
//! with serde_json as the reference for what it leaves), and unwrapped when
//! it is an envelope:
//! the IBM log-analysis export (`{"_source": {"_line": "<event JSON>"}}` or
//! `{"_line": "…"}`) and the older `{"payload": {…event…}, "meta": {…}}`
//! wrapper. Envelopes may nest a few levels; deeper nesting is refused as an
//! unknown format.

use keytrail_core::{DeadLetterReason, Event};
use serde::de::IgnoredAny;

use crate::raw::Top;
use crate::{Context, Normalizer, Rejection, Texts, ibm_cadf, scan, securosys};

/// How many envelopes may wrap one event.
const MAX_ENVELOPES: u8 = 4;

/// The non-blank lines of a record, with their 1-based line numbers. A
/// pretty-printed object (first non-blank line is a lone `{`) is one line.
pub(crate) fn lines(record: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let pretty = raw_lines(record)
        .map(|(_, line)| line.trim_ascii())
        .find(|line| !line.is_empty())
        .is_some_and(|first| first == b"{");
    let whole = pretty.then_some((1u32, record.trim_ascii()));
    let split = (!pretty).then(|| {
        raw_lines(record)
            .map(|(n, line)| (n, line.trim_ascii()))
            .filter(|(_, line)| !line.is_empty())
    });
    whole.into_iter().chain(split.into_iter().flatten())
}

/// Every line of a record, blank ones included, numbered from 1; `memchr`
/// finds the newlines (a record is usually one line of about a kilobyte).
fn raw_lines(record: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut rest = Some(record);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr::memchr(b'\n', text) {
            Some(end) => {
                rest = Some(&text[end + 1..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
    .zip(1u32..)
    .map(|(line, n)| (n, line))
}

impl Normalizer {
    /// Size, UTF-8 and depth checks, then the parse.
    pub(crate) fn event_from_line(
        &self,
        line: &[u8],
        ctx: &mut Context<'_>,
    ) -> Result<Event, Rejection> {
        if line.len() > self.max_event_bytes {
            return Err(
                Rejection::new(DeadLetterReason::TooLarge).with_detail(format!(
                    "{} bytes, limit {}",
                    line.len(),
                    self.max_event_bytes
                )),
            );
        }
        // The vectorized check first; the standard one says where it broke.
        let text = simdutf8::basic::from_utf8(line).map_err(|_| {
            let at = std::str::from_utf8(line)
                .err()
                .map_or(0, |e| e.valid_up_to());
            Rejection::new(DeadLetterReason::InvalidUtf8)
                .with_detail(format!("invalid byte at {at}"))
        })?;
        self.event_from_text(text, ctx, 0)
    }

    /// The on-demand reader first (`scan`); serde_json, after the depth
    /// check, for what it leaves. Both give the same [`Top`].
    fn event_from_text(
        &self,
        text: &str,
        ctx: &mut Context<'_>,
        nesting: u8,
    ) -> Result<Event, Rejection> {
        // Filled in place: the struct is large, and moving it costs.
        let mut top = Top::default();
        match scan::read_top(text, self.max_depth, &mut top) {
            Ok(texts) => ctx.keep(texts),
            Err(scan::Fallback) => {
                ctx.keep(Texts::MayNeedEscaping);
                self.check_depth(text.as_bytes())?;
                top = parse_top(text)?;
            }
        }
        self.event_from_top(&mut top, ctx, nesting)
    }

    pub(crate) fn event_from_top(
        &self,
        top: &mut Top<'_>,
        ctx: &mut Context<'_>,
        nesting: u8,
    ) -> Result<Event, Rejection> {
        if top.action.is_present() {
            return ibm_cadf::build(top, ctx);
        }
        if top.event.is_present() {
            return securosys::build(top, ctx);
        }
        let missing = if top.looks_ibm() {
            DeadLetterReason::MissingField("action")
        } else if top.looks_securosys() {
            DeadLetterReason::MissingField("event")
        } else {
            DeadLetterReason::UnknownFormat
        };
        if nesting >= MAX_ENVELOPES {
            return Err(Rejection::new(missing).with_detail("too many nested envelopes".into()));
        }
        let line = top
            .line
            .0
            .take()
            .or_else(|| top.source.0.as_mut().and_then(|s| s.line.0.take()));
        if let Some(line) = line.filter(|l| !l.trim().is_empty()) {
            return self.event_from_text(&line, ctx, nesting + 1);
        }
        if let Some(inner) = top.payload.0.as_mut() {
            if ctx.outer_log_source.is_none() {
                ctx.outer_log_source = top.log_source_crn.trimmed();
            }
            return self.event_from_top(inner, ctx, nesting + 1);
        }
        Err(Rejection::new(missing))
    }

    /// Refuses text nested deeper than the limit. Counting the openers first
    /// keeps the common case to one fast pass.
    pub(crate) fn check_depth(&self, bytes: &[u8]) -> Result<(), Rejection> {
        if memchr::memchr2_iter(b'{', b'[', bytes).count() <= self.max_depth {
            return Ok(());
        }
        if keytrail_core::json::layout(bytes, self.max_depth).deepest > self.max_depth {
            return Err(Rejection::new(DeadLetterReason::TooDeep)
                .with_detail(format!("nesting deeper than {}", self.max_depth)));
        }
        Ok(())
    }
}

/// Parses one object; tells "not JSON" from "JSON but not an object".
fn parse_top(text: &str) -> Result<Top<'_>, Rejection> {
    if !text.trim_start().starts_with('{') {
        let reason = if serde_json::from_str::<IgnoredAny>(text).is_ok() {
            DeadLetterReason::NotAnObject
        } else {
            DeadLetterReason::InvalidJson
        };
        return Err(Rejection::new(reason));
    }
    serde_json::from_str::<Top<'_>>(text).map_err(|e| {
        let rejection = Rejection::new(DeadLetterReason::InvalidJson);
        // Syntax messages name a position, never the input itself.
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                rejection.with_detail(e.to_string())
            }
            _ => rejection,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(record: &[u8]) -> Vec<(u32, String)> {
        lines(record)
            .map(|(n, l)| (n, String::from_utf8_lossy(l).into_owned()))
            .collect()
    }

    #[test]
    fn splits_ndjson_and_skips_blank_lines() {
        assert_eq!(
            collect(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n"),
            vec![(1, "{\"a\":1}".to_owned()), (4, "{\"b\":2}".to_owned())]
        );
        assert!(collect(b" \n\n").is_empty());
    }

    #[test]
    fn keeps_a_pretty_printed_object_whole() {
        let record = b"\n{\n  \"a\": 1\n}\n";
        assert_eq!(collect(record), vec![(1, "{\n  \"a\": 1\n}".to_owned())]);
    }
}
