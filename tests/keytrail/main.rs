//! keytrail integration tests.

mod golden;
mod kafka;
mod real_samples;
mod support;
