//! Compiles `proto/addsvc.proto` into the gRPC code of `src/grpc.rs`, with protox (pure Rust),
//! so that building needs no `protoc` on the machine. The descriptor set is written too, for
//! the server's reflection service. And lays out the release binaries' hot code first (see
//! `build-support/hot_code.rs`) and packs their relative relocations (see
//! `build-support/relocations.rs`).

use std::path::PathBuf;

use prost::Message;

include!("../build-support/hot_code.rs");
include!("../build-support/relocations.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["addsvc.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("addsvc_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_transport(false)
        .codec_path("kit_core::transport::grpc::Codec")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto/addsvc.proto");
    hot_code_first("hot-code.txt");
    pack_relative_relocations();
    Ok(())
}
