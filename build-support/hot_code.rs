// Included by the build scripts of the service crates: `hot_code_first("hot-code.txt")`.

/// Has the linker put the functions named in `list` (a file beside the crate's Cargo.toml, one
/// symbol a line, written by `scripts/hot-code`) side by side at the start of the release
/// binaries' code, in the order given.
///
/// The kernel maps a binary's code into a process 64 KiB at a time around each page it runs,
/// and the functions a service runs are spread all over its binary: a stringsvc3 instance ran
/// code on 458 of its pages, 1.8 MiB, in 57 of its 68 blocks of 64 KiB, and held 3.6 MiB of
/// its code resident after a load. The same functions laid out together held 1.4 MiB.
///
/// Only where the linker is known to be LLD, which takes `--symbol-ordering-file`: Rust's own
/// (`rust-lld`, the default on x86_64 Linux since Rust 1.90), when no other linker is set.
/// Elsewhere the binaries are built as before. A function that is not in the binary (the list
/// is older than the code, or the dependencies were built with other features than in the
/// build the list was written from: see `scripts/hot-code`) is skipped.
fn hot_code_first(list: &str) {
    println!("cargo::rerun-if-changed={list}");
    println!("cargo::rerun-if-env-changed=RUSTFLAGS");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    // A linker set in the environment. One set in a Cargo config file reaches this script as
    // RUSTC_LINKER, which Cargo does not let a script watch: after changing that setting, run
    // `cargo clean -p` on the crate (or touch its hot-code.txt).
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    if std::env::var("PROFILE").as_deref() != Ok("release") || !linker_is_rust_lld() {
        return;
    }
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let path = std::path::Path::new(&dir).join(list);
    if !path.is_file() {
        return;
    }
    println!(
        "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        path.display()
    );
    println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether the binaries will be linked by the `rust-lld` that comes with the toolchain: the
/// target is x86_64 Linux with glibc, the toolchain is 1.90 or later and has it, and neither
/// a linker nor linker flags were given.
fn linker_is_rust_lld() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("TARGET") != "x86_64-unknown-linux-gnu" || !var("RUSTC_LINKER").is_empty() {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker")
        || flags.contains("fuse-ld")
        || flags.contains("link-self-contained")
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let ask = |args: &[&str]| {
        std::process::Command::new(&rustc)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(version) = ask(&["-vV"]) else {
        return false;
    };
    let release = version
        .lines()
        .find_map(|line| line.strip_prefix("release: "))
        .and_then(|release| {
            let mut parts = release.split(['.', '-']);
            Some((
                parts.next()?.parse::<u32>().ok()?,
                parts.next()?.parse::<u32>().ok()?,
            ))
        });
    let new_enough = release.is_some_and(|release| release >= (1, 90));
    new_enough
        && version.contains("host: x86_64-unknown-linux-gnu")
        && ask(&["--print", "sysroot"]).is_some_and(|sysroot| {
            std::path::Path::new(sysroot.trim())
                .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld")
                .is_file()
        })
}
