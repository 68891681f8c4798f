//! keytrail integration tests.

mod e2e;
mod golden;
mod kafka;
mod metrics;
mod real_samples;
mod support;
mod tansu;
