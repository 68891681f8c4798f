//! keytrail as a library: configuration, the transforms, the topology that
//! runs the pipeline, the event generator, and the subcommands of the
//! `keytrail` binary (which is a thin `main` over this crate).

pub mod cmd;
pub mod config;
pub mod generate;
pub mod logging;
pub mod topology;
pub mod transforms;
