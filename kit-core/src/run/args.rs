//! Flags: the ones services share, Go's spelling of them, and one-line mistakes.

use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::duration;
use crate::listen::ListenAddr;

/// The default of `--max-connections` (the HTTP transport's own default).
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The flags of a service with one listener: where to listen, how many connections to serve,
/// how long to drain.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on: :PORT for every interface, or HOST:PORT for one.
    #[arg(long, value_name = "ADDR", default_value = ":8080")]
    pub listen: ListenAddr,

    /// How many connections.
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// How to stop.
    #[command(flatten)]
    pub drain: DrainArgs,
}

/// How many connections each listener serves at once: a flag of its own, for services that
/// name their listeners themselves.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// The most connections served at once on each listener. At the limit, HTTP closes the
    /// connection idle the longest to make room, and answers a newcomer 503 when every one is
    /// busy; gRPC closes the newcomer (its client reconnects with backoff).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = at_least_one)]
    pub max_connections: usize,
}

/// How long a service drains when it is asked to stop: a flag of its own, for services with
/// several listeners that name their addresses themselves.
#[derive(Debug, Clone, clap::Args)]
pub struct DrainArgs {
    /// On Ctrl-C or SIGTERM, how long requests in flight may take to finish before the server
    /// stops anyway (for example 10s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    pub drain_timeout: Duration,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

/// Parses the process's arguments into `A` (see [`parse_from`]).
pub fn parse<A: Parser>() -> Result<A, ExitCode> {
    parse_from(std::env::args_os())
}

/// Parses `args` (the program's name first) into `A`, accepting Go's single-dash spelling of
/// every long flag: `-listen=:8001` and `-listen :8001` mean `--listen=:8001`, so Go kit's
/// command lines paste as they are.
///
/// `--help` and `--version` print and give `Err(ExitCode::SUCCESS)`; a mistake prints one line
/// on stderr, pointing at `--help`, and gives exit status 2 (see [`usage_error`]).
pub fn parse_from<A, I, T>(args: I) -> Result<A, ExitCode>
where
    A: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let command = A::command();
    let long: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(str::to_owned))
        .chain(["help".to_owned(), "version".to_owned()])
        .collect();
    // After `--`, nothing is a flag.
    let mut flags = true;
    let args = args.into_iter().map(|arg| {
        let arg: OsString = arg.into();
        if arg == "--" {
            flags = false;
        }
        if flags { go_style(arg, &long) } else { arg }
    });
    command
        .try_get_matches_from(args)
        .and_then(|mut matches| A::from_arg_matches_mut(&mut matches))
        .map_err(usage_error)
}

/// `-name` or `-name=value` as `--name...`, when `name` is one of the `long` flags.
fn go_style(arg: OsString, long: &[String]) -> OsString {
    let Some(text) = arg.to_str() else {
        return arg;
    };
    let single = text.strip_prefix('-').filter(|rest| !rest.starts_with('-'));
    match single {
        Some(rest) if long.iter().any(|name| rest.split('=').next() == Some(name)) => {
            OsString::from(format!("-{text}"))
        }
        _ => arg,
    }
}

/// Reports a flag error: `--help` and `--version` print what they ask for and give status 0;
/// anything else prints its first line, pointing at `--help`, and gives status 2.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments");
    eprintln!("{first} (see --help)");
    ExitCode::from(2)
}

/// Prints `error: <message>` on stderr and gives exit status 1: a failure that is not the
/// user's typing.
pub fn fail(message: impl fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        serve: ServeArgs,
        #[arg(long, default_value = "")]
        proxy: String,
        #[arg(long = "http-addr", default_value = ":8081")]
        http_addr: ListenAddr,
    }

    fn parsed(args: &[&str]) -> Result<Args, ExitCode> {
        parse_from(std::iter::once("test").chain(args.iter().copied()))
    }

    #[test]
    fn go_style_flags_are_long_flags() {
        let args = parsed(&[
            "-listen=:8001",
            "-proxy",
            "a,b",
            "-http-addr",
            ":9",
            "-drain-timeout=1.5s",
        ])
        .expect("valid");
        assert_eq!(args.serve.listen.port(), 8001);
        assert_eq!(args.proxy, "a,b");
        assert_eq!(args.http_addr.port(), 9);
        assert_eq!(args.serve.drain.drain_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn defaults_and_double_dashes() {
        let args = parsed(&["--listen", "127.0.0.1:0"]).expect("valid");
        assert_eq!(args.serve.listen.host(), Some("127.0.0.1"));
        assert_eq!(args.serve.drain.drain_timeout, Duration::from_secs(10));
        assert_eq!(args.http_addr.port(), 8081);
    }

    #[test]
    fn only_long_flags_are_rewritten() {
        let long = ["listen".to_owned()];
        let rewritten: Vec<OsString> = ["-listen=:1", "-x=1", "-5", "--listen", "-h", "plain"]
            .into_iter()
            .map(|arg| go_style(arg.into(), &long))
            .collect();
        assert_eq!(
            rewritten,
            ["--listen=:1", "-x=1", "-5", "--listen", "-h", "plain"].map(OsString::from)
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert_eq!(
            parsed(&["--listen", "8080"]).expect_err("no colon"),
            ExitCode::from(2)
        );
        assert_eq!(
            parsed(&["--drain-timeout", "10"]).expect_err("no unit"),
            ExitCode::from(2)
        );
        assert_eq!(parsed(&["--nope"]).expect_err("unknown"), ExitCode::from(2));
    }
}
