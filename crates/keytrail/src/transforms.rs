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
}

impl Transforms {
    /// Builds every stage from a validated configuration.
    pub fn build(config: &Config) -> anyhow::Result<Transforms> {
        Ok(Transforms {
            normalizer: config.normalize.build()?,
            enricher: config.enrich.build()?,
            classifier: config.classify.build()?,
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

    /// One line through every stage: the full contract event, or why not.
    pub fn line(&self, line: &[u8], meta: &RecordMeta) -> Result<Event, Rejection> {
        let mut event = self.normalizer.normalize_line(line, meta)?;
        self.enricher.apply(&mut event);
        self.classifier.apply(&mut event);
        Ok(event)
    }
}
