//! Generates the tonic server and client code of `proto/shop.proto` with
//! tonic-prost-build (tonic's own code generator, so the generated code
//! follows tonic's codegen interface release by release), using the protoc
//! shipped in the protoc-bin-vendored crate (no system protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("shop_descriptor.bin"))
        .compile_with_config(config, &["proto/shop.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/shop.proto");
    Ok(())
}
