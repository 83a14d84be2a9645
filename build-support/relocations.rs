// Included by the build scripts of the service crates after `hot_code.rs`, whose
// `linker_is_rust_lld` it uses: `pack_relative_relocations()`.

/// Has the linker pack the release binaries' relative relocations (`-z pack-relative-relocs`,
/// glibc's `DT_RELR`): the addresses the loader adjusts at start-up, because a binary built as
/// a position-independent executable lands at a different address each run.
///
/// A service's binary holds about ten thousand of them (every `&'static str` inside a static,
/// every vtable's function pointers), written out one to 24 bytes: 240 KiB of profilesvc's
/// binary that the loader reads once at start-up and that stays resident for as long as the
/// service runs, out of a 6 MiB budget. Packed, a bitmap of which words to adjust, they take
/// 6 KiB.
///
/// Only where the linker is LLD (see `hot_code.rs`) and the C library the binaries will run
/// with, this machine's (the target is the host's), is glibc 2.36 or later, the first that
/// reads packed relocations: a binary linked this way names the version it needs, and an
/// older glibc refuses to start it, saying so.
fn pack_relative_relocations() {
    if std::env::var("PROFILE").as_deref() != Ok("release")
        || !linker_is_rust_lld()
        || !glibc_reads_packed_relocations()
    {
        return;
    }
    println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}

/// Whether this machine's C library is glibc 2.36 or later, as `getconf GNU_LIBC_VERSION`
/// says (`glibc 2.36`).
fn glibc_reads_packed_relocations() -> bool {
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().strip_prefix("glibc ").and_then(|version| {
        let mut parts = version.split('.');
        Some((
            parts.next()?.parse::<u32>().ok()?,
            parts.next()?.parse::<u32>().ok()?,
        ))
    });
    out.status.success() && version.is_some_and(|version| version >= (2, 36))
}
