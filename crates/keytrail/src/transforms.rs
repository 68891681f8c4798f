//! The synchronous part of the pipeline, built once from configuration:
//! normalize, then enrich, then classify. Shared by `normalize`, `run` and
//! the benches' view of the hot path.

use keytrail_core::{Batch, Event, RawBatch, RecordMeta, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::{Normalizer, Rejection, Texts};

use crate::config::Config;

/// Normalizer, enricher and classifier, in pipeline order.
pub struct Transforms {
    normalizer: Normalizer,
    enricher: Enricher,
    classifier: Classifier,
    /// The enricher and the classifier set plain texts only.
    adds_plain_texts: bool,
}

impl Transforms {
    /// Builds every stage from a validated configuration.
    pub fn build(config: &Config) -> anyhow::Result<Transforms> {
        let enricher = config.enrich.build()?;
        let classifier = config.classify.build()?;
        Ok(Transforms {
            normalizer: config.normalize.build()?,
            adds_plain_texts: enricher.adds_plain_texts() && classifier.adds_plain_texts(),
            enricher,
            classifier,
        })
    }

    /// A batch of raw records through every stage, in order: one event or
    /// one dead letter per non-blank line of each record.
    pub fn batch(&self, raw: RawBatch) -> Batch {
        let mut batch = Batch::new(raw.ack);
        batch.events.reserve(raw.records.len());
        for record in &raw.records {
            self.normalizer
                .normalize_record(&record.payload, &record.meta, &mut batch);
        }
        self.enricher.transform(&mut batch);
        self.classifier.transform(&mut batch);
        batch
    }

    /// One line through every stage, the event lent to `use_event` (not
    /// returned, so that its ~870 bytes are not moved again) with whether
    /// it may be written with [`Event::write_json_plain`]: the normalizer's
    /// texts are plain ([`Normalizer::normalize_line_texts`]) and the
    /// enricher and classifier add plain texts only. Or why the line is
    /// not an event.
    pub fn with_line<R>(
        &self,
        line: &[u8],
        meta: &RecordMeta,
        use_event: impl FnOnce(&Event, Texts) -> R,
    ) -> Result<R, Rejection> {
        let mut texts = Texts::Plain;
        // Bound by reference: the event stays where it was returned.
        match self.normalizer.normalize_line_texts(line, meta, &mut texts) {
            Ok(ref mut event) => {
                self.enricher.apply(event);
                self.classifier.apply(event);
                if !self.adds_plain_texts {
                    texts = Texts::MayNeedEscaping;
                }
                Ok(use_event(event, texts))
            }
            Err(rejection) => Err(rejection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transforms(config: &str) -> Transforms {
        Transforms::build(&toml::from_str::<Config>(config).expect("parses")).expect("builds")
    }

    /// Operator texts on the generator's commonest events, so that they
    /// are written too.
    fn operator_texts(text: &str) -> String {
        let text = toml::Value::String(text.to_owned());
        format!(
            "[[enrich.catalog]]\naction = \"KEY_CREATED\"\ndescription = {text}\n\
             [[enrich.catalog]]\naction = \"hs-crypto.secrets.read\"\ndescription = {text}\n\
             [[classify.actionable]]\npattern = \"*\"\nremediation = {text}\n"
        )
    }

    /// The event `transforms` make of `line`, written both ways: the
    /// escaped JSON, the plain JSON when the texts are plain (debug builds
    /// check every text on the way), and the event's remediation hint.
    fn both_ways(
        transforms: &Transforms,
        line: &[u8],
        meta: &RecordMeta,
    ) -> Option<(String, Option<String>, Option<String>)> {
        transforms
            .with_line(line, meta, |event, texts| {
                let mut json = Vec::new();
                event.write_json(&mut json);
                let plain = (texts == Texts::Plain).then(|| {
                    let mut plain = Vec::new();
                    event.write_json_plain(&mut plain);
                    String::from_utf8_lossy(&plain).into_owned()
                });
                let remediation = event.remediation.as_deref().map(str::to_owned);
                (
                    String::from_utf8_lossy(&json).into_owned(),
                    plain,
                    remediation,
                )
            })
            .ok()
    }

    #[test]
    fn plain_output_is_the_escaped_output_on_generated_events() {
        let records = crate::generate::mixed_records(11, 3000, 2.0);
        // Each line also with a quote put into a text the event keeps:
        // an IBM message or a Securosys user, as sent or inside a LogDNA
        // `_line` (where the quotes are escaped once more).
        let with_quote = |record: &Vec<u8>| {
            String::from_utf8_lossy(record)
                .replacen(r#""message":""#, r#""message":"\"x\" "#, 1)
                .replacen(r#""user":""#, r#""user":"\"x\" "#, 1)
                .replacen(r#"\"message\":\""#, r#"\"message\":\"\\\"x\\\" "#, 1)
                .replacen(r#"\"user\":\""#, r#"\"user\":\"\\\"x\\\" "#, 1)
                .into_bytes()
        };
        let meta = RecordMeta::default();
        // The built-in texts alone, then the operator's on top.
        for config in [
            String::new(),
            operator_texts("Ask the owner (see 'runbook' #7)."),
        ] {
            let transforms = transforms(&config);
            let (mut written_plain, mut plain_with_backslash) = (0, 0);
            for record in &records {
                let Some((json, plain, _)) = both_ways(&transforms, record, &meta) else {
                    continue;
                };
                // The generator's own texts have no escapes; its
                // JSON-encoded `requestData` and LogDNA lines are full of
                // backslashes, but their texts are read apart.
                assert_eq!(plain.as_ref(), Some(&json));
                written_plain += 1;
                plain_with_backslash += usize::from(record.contains(&b'\\'));
                let quoted = with_quote(record);
                let (json, plain, _) = both_ways(&transforms, &quoted, &meta).expect("normalizes");
                assert_eq!(plain, None, "{json}");
                assert!(json.contains(r#"\"x\""#), "{json}");
            }
            assert!(
                written_plain > 2900 && plain_with_backslash > 300,
                "{written_plain} {plain_with_backslash}"
            );
        }
    }

    #[test]
    fn lines_stripped_of_their_backslashes_write_plain_through_every_stage() {
        // Escapes gone, embedded JSON strings cut short: whatever the three
        // stages still make of a line is written plain, checked on the way.
        let plain = transforms("");
        let meta = RecordMeta::default();
        let mut written = 0;
        for record in crate::generate::mixed_records(12, 3000, 5.0) {
            let line: Vec<u8> = record.into_iter().filter(|&b| b != b'\\').collect();
            let Some((json, plain_json, _)) = both_ways(&plain, &line, &meta) else {
                continue;
            };
            assert_eq!(plain_json.as_ref(), Some(&json));
            written += 1;
        }
        assert!(written > 2000, "{written}");
    }

    #[test]
    fn an_operator_text_that_needs_escaping_turns_plain_writing_off() {
        let line = br#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.secrets.read"}"#;
        let meta = RecordMeta::default();
        let plain = |transforms: &Transforms, line: &[u8], meta: &RecordMeta| {
            both_ways(transforms, line, meta)
                .expect("normalizes")
                .1
                .is_some()
        };
        assert!(plain(&transforms(""), line, &meta));
        for text in ["Say \"stop\".", "C:\\keys", "two\nlines"] {
            let escaping = transforms(&operator_texts(text));
            let (_, plain_json, remediation) =
                both_ways(&escaping, line, &meta).expect("normalizes");
            assert_eq!(plain_json, None, "{text:?}");
            assert_eq!(remediation.as_deref(), Some(text));
        }
        // The normalizer's own verdict (its tests cover the region and
        // account headers) comes through.
        // An escape in a kept text; then in skipped fields and `details`.
        let kept = br#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.secrets.read","message":"a\/b"}"#;
        assert!(!plain(&transforms(""), kept, &meta));
        let skipped = br#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.secrets.read","x":"a\"b","y":{"z":["\\"]}}"#;
        assert!(plain(&transforms(""), skipped, &meta));
        // `\u` escapes go to serde_json, which does not say.
        assert!(!plain(&transforms(""), br#"{"action":"a\u0041"}"#, &meta));
        assert!(!plain(
            &transforms(""),
            br#"{"action":"a","x":"\u0041"}"#,
            &meta
        ));
    }
}
