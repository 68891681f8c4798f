//! The stage traits.
//!
//! Transforms (enrich, classify) are plain synchronous functions over an
//! event; the topology runs them over whole batches on its transform
//! threads. A sink may name a [`Prepare`] step to run there too, over each
//! batch's events while they are in that thread's cache.
//! Normalization is not a [`Transform`]: its input is raw bytes, not events.
//! Sinks are asynchronous: they receive the classified events of a batch,
//! shared with the other sinks, and a share of the batch's acknowledgement,
//! and resolve that share once the events are delivered (or given up, in
//! which case they go to the dead-letter output first).
//!
//! The fan-out is the topology's: it takes a classified [`Batch`] apart,
//! sends its dead letters to the dead-letter output with one share of the
//! token, wraps the events in a [`SharedEvents`] and hands each sink its
//! own share. Offsets move only when every share is resolved.

use std::any::{Any, TypeId};
use std::future::Future;
use std::sync::Arc;

use crate::batch::{AckToken, Batch};
use crate::dead_letter::DeadLetter;
use crate::event::Event;

/// The events of one batch, shared read-only by every sink.
pub type SharedEvents = Arc<Events>;

/// A batch's events, read as a slice. Made with a [`Home`], they are not
/// freed where the last sink lets go of them but sent back to be freed
/// there: the allocator frees memory fastest on the thread that allocated
/// it, and an event is about ten allocations.
pub struct Events {
    events: Vec<Event>,
    home: Option<Home>,
    prepared: Prepared,
}

impl Events {
    /// Events freed wherever the last holder drops them.
    pub fn new(events: Vec<Event>) -> Events {
        Events {
            events,
            home: None,
            prepared: Prepared::default(),
        }
    }

    /// Events handed to `home` when the last holder drops them.
    pub fn with_home(events: Vec<Event>, home: Home) -> Events {
        Events {
            events,
            home: Some(home),
            prepared: Prepared::default(),
        }
    }

    /// The same events, with what the sinks' [`Prepare`] steps made of
    /// them.
    pub fn with_prepared(mut self, prepared: Prepared) -> Events {
        self.prepared = prepared;
        self
    }

    /// What the [`Prepare`] step of type `S` made of these events, if it
    /// ran and made a `T`.
    pub fn prepared<S: Prepare, T: Any>(&self) -> Option<&T> {
        let step = TypeId::of::<S>();
        (self.prepared.0.iter())
            .find(|(kind, _)| *kind == step)
            .and_then(|(_, made)| made.downcast_ref::<T>())
    }
}

impl From<Vec<Event>> for Events {
    fn from(events: Vec<Event>) -> Events {
        Events::new(events)
    }
}

impl FromIterator<Event> for Events {
    fn from_iter<I: IntoIterator<Item = Event>>(events: I) -> Events {
        Events::new(events.into_iter().collect())
    }
}

impl std::ops::Deref for Events {
    type Target = [Event];

    fn deref(&self) -> &[Event] {
        &self.events
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("len", &self.events.len())
            .field("home", &self.home.is_some())
            .field("prepared", &self.prepared.0.len())
            .finish()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            (home.0)(std::mem::take(&mut self.events));
        }
    }
}

/// Where a batch's events go to be freed: usually a channel to the thread
/// that made them. If it is gone, the function frees them itself.
#[derive(Clone)]
pub struct Home(Arc<dyn Fn(Vec<Event>) + Send + Sync>);

impl Home {
    /// A home that takes spent events through `free`.
    pub fn new(free: impl Fn(Vec<Event>) + Send + Sync + 'static) -> Home {
        Home(Arc::new(free))
    }
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Home")
    }
}

/// Work a sink does on every batch's events on the transform thread that
/// made them, while they are still in that thread's cache, rather than on
/// its own task later (the gRPC feed encodes them there). The result
/// travels with the events, and the sink finds it by the step's type with
/// [`Events::prepared`].
///
/// The topology runs each type of step once per batch, however many sinks
/// ask for it, so a step's result must depend on its type and the events
/// alone: two sinks naming steps of one type share the first one's result.
pub trait Prepare: Any + std::fmt::Debug + Send + Sync {
    /// Works on the events of one batch.
    fn prepare(&self, events: &[Event]) -> Box<dyn Any + Send + Sync>;
}

/// What the [`Prepare`] steps made of a batch's events, by type of step.
#[derive(Default)]
pub struct Prepared(Vec<(TypeId, Box<dyn Any + Send + Sync>)>);

impl Prepared {
    /// Runs `steps` over `events`, once per type of step; nothing when
    /// there are no events.
    pub fn run(steps: &[Arc<dyn Prepare>], events: &[Event]) -> Prepared {
        let mut made: Vec<(TypeId, Box<dyn Any + Send + Sync>)> = Vec::new();
        if events.is_empty() {
            return Prepared(made);
        }
        for step in steps {
            let kind = (&**step as &dyn Any).type_id();
            if !made.iter().any(|(done, _)| *done == kind) {
                made.push((kind, step.prepare(events)));
            }
        }
        Prepared(made)
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Prepared").field(&self.0.len()).finish()
    }
}

/// What a stage gives up on for good, with the acknowledgement share that
/// the dead-letter output resolves once the letters are written.
#[derive(Debug)]
pub struct DeadLetterBatch {
    /// The letters, in order.
    pub letters: Vec<DeadLetter>,
    /// Resolved by the dead-letter output after a confirmed write.
    pub ack: AckToken,
}

/// A synchronous, in-place event transform.
pub trait Transform: Send + Sync {
    /// Transforms one event.
    fn apply(&self, event: &mut Event);

    /// Transforms every event of a batch.
    fn transform(&self, batch: &mut Batch) {
        for event in &mut batch.events {
            self.apply(event);
        }
    }
}

/// Why a sink stopped.
#[derive(Debug, thiserror::Error)]
#[error("sink {sink} failed")]
pub struct SinkError {
    /// The sink's name.
    pub sink: &'static str,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A destination for events.
pub trait Sink: Send {
    /// A short name for logs and metrics (`grpc`, `prometheus`).
    fn name(&self) -> &'static str;

    /// Takes the events of a batch. The sink resolves `ack` once they are
    /// delivered (or handed to the dead-letter output); it may hold the
    /// token while it waits, and the source's offsets wait with it.
    /// Returning means the sink has taken the events, not delivered them;
    /// a sink that is full waits here, which is the pipeline's
    /// backpressure.
    fn accept(
        &mut self,
        events: SharedEvents,
        ack: AckToken,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Delivers what is buffered; called at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Work to do for this sink on the transform threads (see
    /// [`Prepare`]); none by default.
    fn prepare(&self) -> Option<Arc<dyn Prepare>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use super::*;
    use crate::{Source, Timestamp};

    fn events(actions: &[&str]) -> Vec<Event> {
        (actions.iter())
            .map(|a| Event::new(Timestamp::from_millis(0), Source::IbmCloud, (*a).into()))
            .collect()
    }

    #[test]
    fn the_last_holder_hands_the_events_home_once() {
        let (tx, rx) = mpsc::channel::<(thread::ThreadId, Vec<Event>)>();
        let home = Home::new(move |events| {
            tx.send((thread::current().id(), events))
                .expect("test receives");
        });
        let shared: SharedEvents = Arc::new(Events::with_home(events(&["a", "b", "c"]), home));
        assert_eq!(shared.len(), 3);
        assert_eq!(shared[1].action, "b");

        let elsewhere = Arc::clone(&shared);
        drop(shared);
        assert!(
            rx.try_recv().is_err(),
            "a holder is left: nothing goes home"
        );
        let dropper = thread::spawn(move || drop(elsewhere));
        let dropper_id = dropper.thread().id();
        dropper.join().expect("dropped");
        let (on, back) = rx.try_recv().expect("the last drop sent the events home");
        assert_eq!(on, dropper_id, "sent by the thread that dropped them");
        let actions: Vec<_> = back.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["a", "b", "c"], "every event, in order");
        assert!(rx.try_recv().is_err(), "sent once");
    }

    #[test]
    fn events_without_a_home_read_like_a_slice() {
        let made: Events = events(&["x", "y"]).into_iter().collect();
        assert_eq!(made.len(), 2);
        assert_eq!(
            made.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(
            format!("{made:?}"),
            "Events { len: 2, home: false, prepared: 0 }"
        );
        assert_eq!(made.prepared::<Count, usize>(), None);
    }

    /// Joins the events' actions; counts its runs.
    #[derive(Debug, Default)]
    struct Actions(std::sync::atomic::AtomicUsize);

    impl Prepare for Actions {
        fn prepare(&self, events: &[Event]) -> Box<dyn Any + Send + Sync> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
            Box::new(actions.join(","))
        }
    }

    /// Counts the events.
    #[derive(Debug)]
    struct Count;

    impl Prepare for Count {
        fn prepare(&self, events: &[Event]) -> Box<dyn Any + Send + Sync> {
            Box::new(events.len())
        }
    }

    /// Counts the events too, but is never run.
    #[derive(Debug)]
    struct Also;

    impl Prepare for Also {
        fn prepare(&self, events: &[Event]) -> Box<dyn Any + Send + Sync> {
            Box::new(events.len())
        }
    }

    #[test]
    fn each_type_of_step_runs_once_and_its_result_is_found_by_the_steps_type() {
        let first = Arc::new(Actions::default());
        let second = Arc::new(Actions::default());
        let steps: Vec<Arc<dyn Prepare>> = vec![
            Arc::clone(&first) as Arc<dyn Prepare>,
            Arc::new(Count),
            Arc::clone(&second) as Arc<dyn Prepare>,
        ];
        let batch = events(&["a", "b"]);
        let prepared = Prepared::run(&steps, &batch);
        let counted = |step: &Actions| step.0.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            (counted(&first), counted(&second)),
            (1, 0),
            "one run per type"
        );

        let shared = Events::new(batch).with_prepared(prepared);
        assert_eq!(
            shared.prepared::<Actions, String>().map(String::as_str),
            Some("a,b")
        );
        assert_eq!(shared.prepared::<Count, usize>(), Some(&2));
        assert_eq!(shared.prepared::<Count, u32>(), None, "Count made a usize");
        assert_eq!(shared.prepared::<Also, usize>(), None, "Also did not run");
        assert!(
            Prepared::run(&steps, &[]).0.is_empty(),
            "no work for a batch without events"
        );
        assert_eq!(
            format!("{shared:?}"),
            "Events { len: 2, home: false, prepared: 2 }"
        );
    }
}
