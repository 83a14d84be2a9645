//! The flags this stage adds to stringsvc1's, shared with the stages after it.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use kit_core::log::Format;

/// How the service logs: `--log-format`, with `RUST_LOG` for filtering.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written: logfmt (key=value) or json (one object per line).
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "logfmt",
        value_parser = PossibleValuesParser::new(["logfmt", "json"]).try_map(|s| s.parse::<Format>())
    )]
    pub log_format: Format,
}
