//! Generates the Rust code of `proto/keytrail/v1/*.proto` with protox (a
//! protobuf compiler in Rust, so no system `protoc` is needed) and
//! tonic-prost-build.

use std::path::PathBuf;

const FILES: [&str; 2] = ["keytrail/v1/event.proto", "keytrail/v1/forward.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(FILES, [&root])?;
    tonic_prost_build::configure()
        // Maps as BTreeMap: deterministic encoding, and the core event keeps
        // its labels in a BTreeMap too.
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds(descriptors)?;
    Ok(())
}
