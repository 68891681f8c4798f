//! Test support for the keytrail end-to-end suite (shared helpers live in the test binary).
