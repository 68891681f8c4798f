//! keytrail integration tests.

mod golden;
mod real_samples;
