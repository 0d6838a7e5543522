//! Generates the remote-write protobuf types from `proto/` with prost. The `.proto` files are
//! compiled by protox (pure Rust), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/prometheus_v1.proto", "proto/write_v2.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    // `bytes` fields (label names and values, symbols) decode as zero-copy `Bytes` slices of
    // the request body.
    prost_build::Config::new().bytes(["."]).compile_fds(fds)?;
    Ok(())
}
