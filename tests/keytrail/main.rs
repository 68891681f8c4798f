//! keytrail integration tests.
