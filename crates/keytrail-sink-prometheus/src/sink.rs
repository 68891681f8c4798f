//! The counter sink: audit events become Prometheus counters.
//!
//! Where: one of the pipeline's sinks, beside the gRPC forwarder, after
//! classify. The topology hands it every batch's events with a share of
//! the batch's acknowledgement.
//!
//! What it guarantees:
//! - every event is counted once in `keytrail_events_total`, and once more
//!   in `keytrail_actionable_events_total` when it is actionable, with the
//!   labels of [`crate::labels`];
//! - the number of series with a catalog action label (both counters
//!   together, pre-registered ones included) never exceeds
//!   `max_action_series`: past the cap, a new series is counted under
//!   `action="other"` instead, so the totals stay exact and only the
//!   action detail is lost; `keytrail_label_cardinality_folded_total`
//!   counts the events folded (`reason="series_cap"`) beside those folded
//!   for being outside the catalog (`reason="not_in_catalog"`);
//! - it never blocks: counting is a few atomic increments per event, done
//!   in [`PrometheusSink::accept`] before the share of the acknowledgement
//!   is acked; it holds no buffer, so [`PrometheusSink::flush`] has
//!   nothing to do.
//!
//! Counters are registered with the recorder current when a series is
//! first seen: install the global recorder ([`crate::Prometheus::install`])
//! before building the sink.

use std::collections::HashMap;

use keytrail_core::{AckToken, Event, SharedEvents, Sink, SinkError};
use metrics::Counter;

use crate::labels::{
    ACTIONABLE_SERIES_PER_ACTION, ActionLabel, EVENT_SERIES_PER_ACTION, OTHER_ACTION,
    PREREGISTERED_ACTIONABLE, action_label, actionable_series_index, event_series_index,
};
use crate::telemetry::names;

/// Why an event's action label was folded to `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    NotInCatalog,
    SeriesCap,
}

impl Fold {
    const fn as_str(self) -> &'static str {
        match self {
            Fold::NotInCatalog => "not_in_catalog",
            Fold::SeriesCap => "series_cap",
        }
    }
}

/// Which of the two audit counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Events,
    Actionable,
}

/// The counters of one catalog action, by dense label index.
#[derive(Default)]
struct ActionSeries {
    events: HashMap<usize, Counter>,
    actionable: HashMap<usize, Counter>,
}

/// Counts audit events into Prometheus counters. See the module docs.
pub struct PrometheusSink {
    max_action_series: usize,
    /// Series with a catalog action label created so far.
    action_series: usize,
    actions: HashMap<Box<str>, ActionSeries>,
    other_events: Vec<Option<Counter>>,
    other_actionable: Vec<Option<Counter>>,
    folded_not_in_catalog: Counter,
    folded_series_cap: Counter,
}

impl PrometheusSink {
    /// A sink that creates at most `max_action_series` series with a
    /// catalog action label. Registers, at zero, the folded counters and
    /// the actionable series the alert rules watch
    /// ([`PREREGISTERED_ACTIONABLE`], as far as the cap allows).
    pub fn new(max_action_series: usize) -> PrometheusSink {
        let folded = |fold: Fold| {
            let counter =
                metrics::counter!(names::LABEL_CARDINALITY_FOLDED, "reason" => fold.as_str());
            counter.increment(0);
            counter
        };
        let mut sink = PrometheusSink {
            max_action_series,
            action_series: 0,
            actions: HashMap::new(),
            other_events: vec![None; EVENT_SERIES_PER_ACTION],
            other_actionable: vec![None; ACTIONABLE_SERIES_PER_ACTION],
            folded_not_in_catalog: folded(Fold::NotInCatalog),
            folded_series_cap: folded(Fold::SeriesCap),
        };
        for &(source, action, severity) in PREREGISTERED_ACTIONABLE {
            let index = actionable_series_index(source, severity);
            let _ = sink.named(Family::Actionable, action, index, 0, || {
                actionable_counter(source.as_str(), action.to_owned(), severity.as_str())
            });
        }
        sink
    }

    /// Series with a catalog action label created so far (both counters).
    pub fn action_series(&self) -> usize {
        self.action_series
    }

    /// The configured cap on [`PrometheusSink::action_series`].
    pub fn max_action_series(&self) -> usize {
        self.max_action_series
    }

    /// Counts `events`. Synchronous and allocation-free once every series
    /// it meets exists.
    pub fn count(&mut self, events: &[Event]) {
        for event in events {
            self.count_one(event);
        }
    }

    fn count_one(&mut self, event: &Event) {
        let source = event.source;
        let events_index =
            event_series_index(source, event.category, event.outcome, event.severity);
        let actionable_index = actionable_series_index(source, event.severity);
        let mut fold = None;
        match action_label(event) {
            ActionLabel::Known(action) => {
                let counted = self.named(Family::Events, action, events_index, 1, || {
                    events_counter(event, action.to_owned())
                });
                if !counted {
                    self.other(Family::Events, events_index, event);
                    fold = Some(Fold::SeriesCap);
                }
                if event.actionable {
                    let counted =
                        self.named(Family::Actionable, action, actionable_index, 1, || {
                            actionable_counter(
                                source.as_str(),
                                action.to_owned(),
                                event.severity.as_str(),
                            )
                        });
                    if !counted {
                        self.other(Family::Actionable, actionable_index, event);
                        fold = Some(Fold::SeriesCap);
                    }
                }
            }
            ActionLabel::Other => {
                self.other(Family::Events, events_index, event);
                if event.actionable {
                    self.other(Family::Actionable, actionable_index, event);
                }
                fold = Some(Fold::NotInCatalog);
            }
        }
        match fold {
            Some(Fold::NotInCatalog) => self.folded_not_in_catalog.increment(1),
            Some(Fold::SeriesCap) => self.folded_series_cap.increment(1),
            None => {}
        }
    }

    /// Adds `by` to the catalog-action series `(action, index)` of
    /// `family`, creating it with `make` if the cap allows. False when the
    /// cap refused it (nothing was counted).
    fn named(
        &mut self,
        family: Family,
        action: &str,
        index: usize,
        by: u64,
        make: impl FnOnce() -> Counter,
    ) -> bool {
        let full = self.action_series >= self.max_action_series;
        if !self.actions.contains_key(action) {
            // No map entry for an action the cap refuses: the map stays
            // bounded too.
            if full {
                return false;
            }
            self.actions.insert(action.into(), ActionSeries::default());
        }
        let Some(series) = self.actions.get_mut(action) else {
            return false;
        };
        let by_index = match family {
            Family::Events => &mut series.events,
            Family::Actionable => &mut series.actionable,
        };
        if let Some(counter) = by_index.get(&index) {
            counter.increment(by);
            return true;
        }
        if full {
            return false;
        }
        let counter = make();
        counter.increment(by);
        by_index.insert(index, counter);
        self.action_series += 1;
        true
    }

    /// Increments the `action="other"` series of `family` for `event`.
    fn other(&mut self, family: Family, index: usize, event: &Event) {
        let slot = match family {
            Family::Events => &mut self.other_events[index],
            Family::Actionable => &mut self.other_actionable[index],
        };
        slot.get_or_insert_with(|| match family {
            Family::Events => events_counter(event, OTHER_ACTION.to_owned()),
            Family::Actionable => actionable_counter(
                event.source.as_str(),
                OTHER_ACTION.to_owned(),
                event.severity.as_str(),
            ),
        })
        .increment(1);
    }
}

fn events_counter(event: &Event, action: String) -> Counter {
    metrics::counter!(
        names::EVENTS,
        "source" => event.source.as_str(),
        "category" => event.category.as_str(),
        "action" => action,
        "outcome" => event.outcome.as_str(),
        "severity" => event.severity.as_str(),
    )
}

fn actionable_counter(source: &'static str, action: String, severity: &'static str) -> Counter {
    metrics::counter!(
        names::ACTIONABLE_EVENTS,
        "source" => source,
        "action" => action,
        "severity" => severity,
    )
}

impl std::fmt::Debug for PrometheusSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSink")
            .field("max_action_series", &self.max_action_series)
            .field("action_series", &self.action_series)
            .finish_non_exhaustive()
    }
}

impl Sink for PrometheusSink {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    /// Counts the events, then acks the share: counting cannot fail, and
    /// the counters are the delivery.
    async fn accept(&mut self, events: SharedEvents, ack: AckToken) -> Result<(), SinkError> {
        self.count(&events);
        ack.ack();
        Ok(())
    }

    /// Nothing is buffered.
    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use keytrail_core::{BatchStatus, Category, Events, Outcome, Severity, Source, Timestamp};
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

    use super::*;

    type Labels = BTreeMap<String, String>;

    /// `name{labels} value` lines of an exposition.
    fn samples(exposition: &str) -> Vec<(String, Labels, f64)> {
        exposition
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("value");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").expect("label");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().expect("number"))
            })
            .collect()
    }

    fn value(exposition: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        samples(exposition)
            .into_iter()
            .find(|(n, labels, _)| {
                n == name
                    && labels.len() == want.len()
                    && want
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
    }

    fn sum(exposition: &str, name: &str) -> f64 {
        samples(exposition)
            .into_iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    fn event(
        source: Source,
        action: &str,
        category: Category,
        outcome: Outcome,
        severity: Severity,
        actionable: bool,
    ) -> Event {
        let mut e = Event::new(Timestamp::from_millis(0), source, action.into());
        let known = !action.contains("unknown");
        if known {
            e.description = Some("From the catalog.".into());
        }
        e.category = category;
        e.outcome = outcome;
        e.severity = severity;
        e.actionable = actionable;
        e.actor.user = Some("alice@example.com".into());
        e.actor.ip = Some("192.0.2.7".into());
        e
    }

    fn with_sink(cap: usize, f: impl FnOnce(&mut PrometheusSink)) -> String {
        let recorder: PrometheusRecorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut sink = PrometheusSink::new(cap);
            f(&mut sink);
        });
        handle.render()
    }

    #[test]
    fn events_are_counted_with_their_mapped_labels() {
        let delete = event(
            Source::IbmHpcs,
            "hs-crypto.secrets.delete",
            Category::KeyManagement,
            Outcome::Success,
            Severity::Critical,
            true,
        );
        let unknown = event(
            Source::IbmCloud,
            "iam-groups.unknown.create",
            Category::Other,
            Outcome::Failure,
            Severity::Informational,
            true,
        );
        let failed = {
            let mut e = event(
                Source::SecurosysKm,
                "KEY_DELETE_FAILED",
                Category::KeyManagement,
                Outcome::Failure,
                Severity::High,
                true,
            );
            e.description = None;
            e
        };
        let text = with_sink(4096, |sink| {
            sink.count(&[delete.clone(), delete.clone(), unknown.clone()]);
            sink.count(std::slice::from_ref(&failed));
        });
        let events = names::EVENTS;
        assert_eq!(
            value(
                &text,
                events,
                &[
                    ("source", "ibm_hpcs"),
                    ("category", "key_management"),
                    ("action", "hs-crypto.secrets.delete"),
                    ("outcome", "success"),
                    ("severity", "critical"),
                ]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                events,
                &[
                    ("source", "ibm_cloud"),
                    ("category", "other"),
                    ("action", "other"),
                    ("outcome", "failure"),
                    ("severity", "informational"),
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                names::ACTIONABLE_EVENTS,
                &[
                    ("source", "securosys_km"),
                    ("action", "KEY_DELETE_FAILED"),
                    ("severity", "high"),
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                names::ACTIONABLE_EVENTS,
                &[
                    ("source", "ibm_hpcs"),
                    ("action", "hs-crypto.secrets.delete"),
                    ("severity", "critical"),
                ]
            ),
            Some(2.0)
        );
        assert_eq!(sum(&text, events), 4.0);
        assert_eq!(sum(&text, names::ACTIONABLE_EVENTS), 4.0);
        assert_eq!(
            value(
                &text,
                names::LABEL_CARDINALITY_FOLDED,
                &[("reason", "not_in_catalog")]
            ),
            Some(1.0)
        );
        assert!(!text.contains("alice") && !text.contains("192.0.2.7"));
    }

    #[test]
    fn non_actionable_events_stay_out_of_the_actionable_counter() {
        let read = event(
            Source::IbmKeyProtect,
            "kms.secrets.read",
            Category::KeyManagement,
            Outcome::Success,
            Severity::Informational,
            false,
        );
        let text = with_sink(4096, |sink| sink.count(&[read]));
        assert_eq!(sum(&text, names::EVENTS), 1.0);
        assert_eq!(sum(&text, names::ACTIONABLE_EVENTS), 0.0);
        assert!(!text.contains("kms.secrets.read\",severity=\"informational\"}"));
    }

    #[test]
    fn alerted_series_exist_at_zero_before_any_event() {
        let text = with_sink(4096, |sink| {
            assert_eq!(sink.action_series(), PREREGISTERED_ACTIONABLE.len());
        });
        for &(source, action, severity) in PREREGISTERED_ACTIONABLE {
            assert_eq!(
                value(
                    &text,
                    names::ACTIONABLE_EVENTS,
                    &[
                        ("source", source.as_str()),
                        ("action", action),
                        ("severity", severity.as_str()),
                    ]
                ),
                Some(0.0),
                "{action}"
            );
        }
        for reason in ["not_in_catalog", "series_cap"] {
            assert_eq!(
                value(
                    &text,
                    names::LABEL_CARDINALITY_FOLDED,
                    &[("reason", reason)]
                ),
                Some(0.0)
            );
        }
    }

    #[test]
    fn the_cap_folds_new_series_and_keeps_totals_exact() {
        let cap = PREREGISTERED_ACTIONABLE.len() + 3;
        let actions: Vec<String> = (0..10).map(|i| format!("kms.secrets.verb{i}")).collect();
        let batch: Vec<Event> = actions
            .iter()
            .map(|a| {
                event(
                    Source::IbmKeyProtect,
                    a,
                    Category::KeyManagement,
                    Outcome::Success,
                    Severity::Informational,
                    false,
                )
            })
            .collect();
        let text = with_sink(cap, |sink| {
            sink.count(&batch);
            assert_eq!(sink.action_series(), cap);
            // Seven of the ten were folded; the three admitted keep counting.
            sink.count(&batch);
            assert_eq!(sink.action_series(), cap);
            let preregistered: std::collections::HashSet<&str> =
                PREREGISTERED_ACTIONABLE.iter().map(|r| r.1).collect();
            assert_eq!(sink.actions.len(), preregistered.len() + 3);
        });
        assert_eq!(sum(&text, names::EVENTS), 20.0);
        let admitted: Vec<_> = samples(&text)
            .into_iter()
            .filter(|(n, l, _)| n == names::EVENTS && l["action"] != "other")
            .collect();
        assert_eq!(admitted.len(), 3);
        assert!(admitted.iter().all(|(_, _, v)| *v == 2.0));
        assert_eq!(
            value(
                &text,
                names::EVENTS,
                &[
                    ("source", "ibm_key_protect"),
                    ("category", "key_management"),
                    ("action", "other"),
                    ("outcome", "success"),
                    ("severity", "informational"),
                ]
            ),
            Some(14.0)
        );
        assert_eq!(
            value(
                &text,
                names::LABEL_CARDINALITY_FOLDED,
                &[("reason", "series_cap")]
            ),
            Some(14.0)
        );
    }

    #[test]
    fn a_known_action_can_be_capped_in_one_counter_only() {
        // Room for exactly one new series: the events series of the action
        // takes it, so its actionable series folds.
        let cap = PREREGISTERED_ACTIONABLE.len() + 1;
        let e = event(
            Source::IbmHpcs,
            "hs-crypto.secrets.create",
            Category::KeyManagement,
            Outcome::Failure,
            Severity::Medium,
            true,
        );
        let text = with_sink(cap, |sink| sink.count(&[e]));
        assert_eq!(
            value(
                &text,
                names::ACTIONABLE_EVENTS,
                &[
                    ("source", "ibm_hpcs"),
                    ("action", "other"),
                    ("severity", "medium"),
                ]
            ),
            Some(1.0)
        );
        assert_eq!(sum(&text, names::EVENTS), 1.0);
        assert_eq!(
            value(
                &text,
                names::LABEL_CARDINALITY_FOLDED,
                &[("reason", "series_cap")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_cap_below_the_preregistered_series_is_honoured() {
        let text = with_sink(2, |sink| {
            assert_eq!(sink.action_series(), 2);
            assert_eq!(sink.max_action_series(), 2);
        });
        let series = samples(&text)
            .into_iter()
            .filter(|(n, _, _)| n == names::ACTIONABLE_EVENTS)
            .count();
        assert_eq!(series, 2);
    }

    #[tokio::test]
    async fn accept_counts_then_acks() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let token = AckToken::new(move |s| record.lock().expect("lock").push(s));
        let mut sink = PrometheusSink::new(16);
        assert_eq!(sink.name(), "prometheus");
        let events = Arc::new(Events::from(vec![event(
            Source::SecurosysKm,
            "LOGIN_FAILURE",
            Category::Authentication,
            Outcome::Denied,
            Severity::Medium,
            true,
        )]));
        sink.accept(events, token).await.expect("accepts");
        sink.flush().await.expect("flushes");
        assert_eq!(*seen.lock().expect("lock"), [BatchStatus::Delivered]);
    }
}
