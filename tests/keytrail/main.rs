//! keytrail integration tests.

mod e2e;
mod golden;
mod kafka;
mod real_samples;
mod support;
mod tansu;
