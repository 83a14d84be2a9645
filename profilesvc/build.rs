//! Lays out the release binary's hot code first (see `build-support/hot_code.rs`).

include!("../build-support/hot_code.rs");

fn main() {
    hot_code_first("hot-code.txt");
}
