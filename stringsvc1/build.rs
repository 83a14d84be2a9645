//! Lays out the release binary's hot code first (see `build-support/hot_code.rs`) and packs
//! its relative relocations (see `build-support/relocations.rs`).

include!("../build-support/hot_code.rs");
include!("../build-support/relocations.rs");

fn main() {
    hot_code_first("hot-code.txt");
    pack_relative_relocations();
}
