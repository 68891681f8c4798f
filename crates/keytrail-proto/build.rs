//! Generates the Rust code of `proto/keytrail/v1/*.proto` with protox (a
//! protobuf compiler in Rust, so no system `protoc` is needed) and
//! tonic-prost-build, and a second server of the feed whose requests are
//! decoded by `decode::ForwardMessage` (tonic-build's manual services).

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

    // The receiving side of the feed again, reading each request as
    // `decode::ForwardMessage` (events decoded straight into core events)
    // instead of the generated `ForwardRequest`. Same service, same route.
    let forward = tonic_build::manual::Method::builder()
        .name("forward")
        .route_name("Forward")
        .input_type("crate::decode::ForwardMessage")
        .output_type("crate::v1::ForwardResponse")
        .codec_path("tonic_prost::ProstCodec")
        .client_streaming()
        .server_streaming()
        .build();
    let service = tonic_build::manual::Service::builder()
        .name("ForwardService")
        .package("keytrail.v1")
        .method(forward)
        .build();
    tonic_build::manual::Builder::new()
        .build_client(false)
        .compile(&[service]);
    Ok(())
}
