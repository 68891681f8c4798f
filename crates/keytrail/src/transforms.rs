//! The synchronous part of the pipeline, built once from configuration:
//! normalize, then enrich, then classify. Shared by `normalize`, `run` and
//! the benches' view of the hot path.

use keytrail_core::{Batch, Event, RawBatch, RecordMeta, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::{Normalizer, Rejection};

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

    /// True when the event [`Transforms::line`] makes of `line` and `meta`
    /// may be written with [`Event::write_json_plain`]: every text it holds
    /// is plain. The line has no backslash, so none of its strings holds a
    /// quote or a control byte (JSON writes those only as escapes, and both
    /// of the normalizer's parsers refuse a raw control byte in a string);
    /// every text the normalizer keeps is one of those strings, a part of
    /// one, or a number's digits; `meta`'s region and account are plain;
    /// and the enricher and classifier add plain texts only. One pass over
    /// the line, far cheaper than escaping each text of the event.
    pub fn gives_plain_texts(&self, line: &[u8], meta: &RecordMeta) -> bool {
        let plain =
            |text: &Option<String>| text.as_deref().is_none_or(keytrail_core::json::is_plain);
        self.adds_plain_texts
            && plain(&meta.region)
            && plain(&meta.account)
            && memchr::memchr(b'\\', line).is_none()
    }

    /// One line through every stage: the full contract event, or why not.
    pub fn line(&self, line: &[u8], meta: &RecordMeta) -> Result<Event, Rejection> {
        let mut event = self.normalizer.normalize_line(line, meta)?;
        self.enricher.apply(&mut event);
        self.classifier.apply(&mut event);
        Ok(event)
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

    #[test]
    fn plain_output_is_the_escaped_output_on_generated_events() {
        let records = crate::generate::mixed_records(11, 3000, 2.0);
        let meta = RecordMeta::default();
        // The built-in texts alone, then the operator's on top.
        for config in [
            String::new(),
            operator_texts("Ask the owner (see 'runbook' #7)."),
        ] {
            let plain = transforms(&config);
            let (mut written_plain, mut escaped) = (0, 0);
            for record in &records {
                let Ok(event) = plain.line(record, &meta) else {
                    continue;
                };
                let mut json = Vec::new();
                event.write_json(&mut json);
                if plain.gives_plain_texts(record, &meta) {
                    // Debug builds check every text on the way.
                    let mut plain_json = Vec::new();
                    event.write_json_plain(&mut plain_json);
                    assert_eq!(
                        String::from_utf8_lossy(&plain_json),
                        String::from_utf8_lossy(&json)
                    );
                    written_plain += 1;
                } else {
                    escaped += 1;
                }
            }
            // Most lines have no backslash; the embedded JSON strings do.
            assert!(
                written_plain > 2000 && escaped > 100,
                "{written_plain} {escaped}"
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
            let Ok(event) = plain.line(&line, &meta) else {
                continue;
            };
            assert!(plain.gives_plain_texts(&line, &meta));
            let (mut json, mut plain_json) = (Vec::new(), Vec::new());
            event.write_json(&mut json);
            event.write_json_plain(&mut plain_json);
            assert_eq!(plain_json, json);
            written += 1;
        }
        assert!(written > 2000, "{written}");
    }

    #[test]
    fn an_operator_text_that_needs_escaping_turns_plain_writing_off() {
        let line = br#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.secrets.read"}"#;
        let meta = RecordMeta::default();
        assert!(transforms("").gives_plain_texts(line, &meta));
        for text in ["Say \"stop\".", "C:\\keys", "two\nlines"] {
            let escaping = transforms(&operator_texts(text));
            assert!(!escaping.gives_plain_texts(line, &meta), "{text:?}");
            let event = escaping.line(line, &meta).expect("normalizes");
            assert_eq!(event.remediation.as_deref(), Some(text));
        }
        let region = RecordMeta {
            region: Some("us-\"south".to_owned()),
            ..RecordMeta::default()
        };
        let account = RecordMeta {
            account: Some("a\u{1}".to_owned()),
            ..RecordMeta::default()
        };
        for meta in [region, account] {
            assert!(!transforms("").gives_plain_texts(line, &meta), "{meta:?}");
        }
        assert!(!transforms("").gives_plain_texts(br#"{"action":"a\u0041"}"#, &meta));
    }
}
