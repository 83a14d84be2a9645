//! `kit_core::cmath` (the `libm` feature) linked into a program, as a service's binary links it:
//! the standard library's maths reaches the functions it defines, and the system's maths
//! library stays out of the process.
#![cfg(all(feature = "libm", target_os = "linux", target_env = "gnu"))]

use std::f64::consts::{E, LN_2, SQRT_2};

/// Whether `got` is within one unit in the last place of `want`, as the `libm` crate promises
/// (it gives 2.7182818284590455 for `exp(1)`, one above the nearest value to `e`).
fn within_an_ulp(got: f64, want: f64) -> bool {
    (got - want).abs() <= f64::EPSILON * want.abs()
}

/// If one of the five were defined with another's body, or with its arguments swapped, a value
/// here would be wrong.
#[test]
fn std_reaches_the_right_function_for_each_symbol() {
    let x = std::hint::black_box(2.0_f64);
    assert_eq!(x.powf(10.0), 1024.0);
    assert!(within_an_ulp(x.powf(0.5), SQRT_2));
    assert_eq!(10.0_f64.powf(x), 100.0);
    assert!(within_an_ulp((x - 1.0).exp(), E));
    assert!(within_an_ulp(x.ln(), LN_2));
    assert_eq!(std::hint::black_box(8.0_f64).log2(), 3.0);
    assert!(within_an_ulp((x - 1.0).ln_1p(), LN_2));
    // log1p keeps what `ln(1 + x)` rounds away.
    assert_eq!(std::hint::black_box(1e-20_f64).ln_1p(), 1e-20);
    assert!((-x).ln().is_nan());
    assert_eq!((x - 2.0).ln(), f64::NEG_INFINITY);
    assert_eq!((x * 500.0).exp(), f64::INFINITY);
    // The functions are the ones named, called by their C names too.
    assert_eq!(kit_core::cmath::pow(x, 3.0), 8.0);
    assert_eq!(kit_core::cmath::log2(x), 1.0);
}

#[test]
fn the_program_does_not_load_the_system_maths_library() {
    testkit::process::assert_no_libm("/proc/self/maps", "kit-core's cmath test");
}
