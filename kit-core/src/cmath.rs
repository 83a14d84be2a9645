//! The C maths functions a service's binary calls, from the `libm` crate, so that it does not
//! load the system's `libm.so.6` for them.
//!
//! A service calls five of them: `exp`, `log`, `log1p` and `log2` from the Prometheus exporter's
//! summaries, and `pow` from tokio's scheduler. For those five, a binary would map all of glibc's
//! libm: loading it runs its ifunc resolvers, which lie all over its code, and the kernel maps
//! sixteen pages around each page touched. That was half a MiB of every service's resident
//! memory (stringsvc1: 504 KiB of its 4.2 MiB after the load benchmark), for functions that run
//! a few times a scrape. Defined here, in the binary, the linker resolves them before it reaches
//! `-lm`, and with nothing left to take from it, leaves libm out (`--as-needed`).
//!
//! The `libm` crate is Rust's port of musl's maths library: within one unit in the last place of
//! the exact result, as glibc's are, without setting `errno` (nothing in a service reads it).
//! Only Linux with glibc loads libm as a library of its own, so only there are these defined.
//!
//! A binary opts in with kit-core's `libm` feature; nothing is called by name. Should a
//! dependency one day call a function not defined here (`sin`, say), the binary loads libm again
//! for it and still works. To see which a binary takes from elsewhere:
//! `nm -D --undefined-only target/release/stringsvc2 | grep -E ' (exp|log|pow)'`.
//!
//! The workspace denies unsafe code; naming a symbol for the linker (`no_mangle`) counts as
//! such, since two definitions of one name would be undefined behaviour. This module is the one
//! exception (`kit-core/tests/unsafe_code.rs` keeps it so): it names five functions of C's
//! maths library, which nothing else in the binary defines, and has no `unsafe` block.
#![allow(unsafe_code)]

/// `e` raised to the power `x`.
#[unsafe(no_mangle)]
pub extern "C" fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// The natural logarithm of `x`.
#[unsafe(no_mangle)]
pub extern "C" fn log(x: f64) -> f64 {
    libm::log(x)
}

/// The natural logarithm of `1 + x`, exact for `x` near zero.
#[unsafe(no_mangle)]
pub extern "C" fn log1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// The base-2 logarithm of `x`.
#[unsafe(no_mangle)]
pub extern "C" fn log2(x: f64) -> f64 {
    libm::log2(x)
}

/// `x` raised to the power `y`.
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
