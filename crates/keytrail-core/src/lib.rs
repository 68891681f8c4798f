//! The shared vocabulary of keytrail.
//!
//! Every stage of the pipeline (source, normalize, enrich, classify, sinks)
//! depends on this crate and on no other stage. It holds:
//!
//! - [`Event`], the normalized audit event whose JSON form is the contract
//!   that outside tests and SIEMs read (`spec/normalized-event.md`);
//! - [`Timestamp`], the event time and the vendor time formats it accepts;
//! - [`DeadLetter`] and [`DeadLetterReason`], what becomes of input that
//!   cannot be normalized;
//! - [`Batch`] and [`AckToken`], the unit that flows through the channels and
//!   the handle that lets the source commit only what every sink confirmed;
//! - [`crn`], the IBM Cloud resource name parser used for source detection
//!   and enrichment;
//! - the stage traits ([`Transform`], [`Sink`]).
//!
//! The crate does no I/O and spawns nothing.

mod as_text;
pub mod batch;
pub mod crn;
pub mod dead_letter;
pub mod details;
pub mod event;
pub mod ident;
pub mod json;
pub mod lanes;
pub mod stage;
pub mod time;
pub mod topic;
pub mod trim;

pub use batch::{AckToken, Batch, BatchStatus, RawBatch, RawRecord, RecordMeta};
pub use compact_str::CompactString;
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use details::{Details, DetailsBuilder};
pub use event::{
    Actor, Category, ContractMembers, ContractObject, Event, KeyFacts, Member, Ocsf, Origin,
    Outcome, Reason, Severity, Source, Target, Text, TkeFacts,
};
pub use ident::Ident;
pub use stage::{
    DeadLetterBatch, Events, Home, Prepare, Prepared, SharedEvents, Sink, SinkError, Transform,
};
pub use time::{TimeError, Timestamp};
pub use topic::Topic;
pub use trim::trim;
