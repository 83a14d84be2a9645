//! With the `etcd` feature: compiles etcd's v3 API (`proto/etcd`, the KV, Watch and Lease
//! services only) into tonic client code, with protox (pure Rust), so that building needs no
//! `protoc` on the machine. Without it, nothing is compiled and the build needs none of this.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "etcd")]
    {
        let fds = protox::compile(["rpc.proto"], ["proto/etcd"])?;
        tonic_prost_build::configure()
            .build_server(false)
            .build_transport(false)
            .compile_fds(fds)?;
        println!("cargo:rerun-if-changed=proto/etcd");
    }
    Ok(())
}
