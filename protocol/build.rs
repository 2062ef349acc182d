//! Compiles `../proto` with protox (a Rust protobuf compiler), so building
//! Boardwire needs no system `protoc`. Also writes the file descriptor set that
//! board-service serves through gRPC reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from("../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let files = [
        proto_root.join("boardwire/v1/board.proto"),
        proto_root.join("boardwire/v1/channels.proto"),
        proto_root.join("boardwire/v1/presence.proto"),
    ];
    let descriptors = protox::compile(&files, [&proto_root])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("boardwire_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
