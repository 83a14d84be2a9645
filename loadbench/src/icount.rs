//! Instructions per request: the CPU cost of a service measured so that it does not depend on
//! the machine, its load or its clock, cheap enough to run on every change.
//!
//! Each service binary runs under callgrind (valgrind's instruction counter) twice, once
//! answering `--requests` requests and once three times as many, over one kept-alive
//! connection, then stops on SIGTERM. The difference between the two totals, divided by the
//! difference in requests, is what one more request costs: start-up, the first requests' lazy
//! set-up and the drain cancel out. Each measurement is made three times and the least counts.
//!
//! One start-up cost does not cancel out, because it depends on the clock: the metrics
//! recorder's clock (`quanta`) calibrates itself against the system's by spinning until its
//! estimate settles, which takes more or fewer instructions from one run to the next (under
//! callgrind, 7 to 12 million: up to 2 000 instructions per request of noise on stringsvc2).
//! Instructions spent inside one-time initializations ([`ONE_TIME`]) are therefore left out of
//! each total.
//!
//! With `--check`, the figures are compared with the baseline recorded in
//! `loadbench/icount.json`, and the run fails when any service costs more than 10 % above it.
//! `--record` writes the new figures as the baseline: do it in the commit that explains why the
//! cost changed.
//!
//! Run with `scripts/icount` (which builds the release binaries and finds valgrind).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How many times each service is measured; the least figure counts. What varies between runs
/// only ever adds work (timers that fire as the clock goes by, a background thread returning
/// memory, a hash table that happens to grow), so the least is the steadiest.
const REPEATS: usize = 3;

/// How much above its baseline a service may cost before the check fails.
const TOLERANCE: f64 = 0.10;

/// Functions that run a one-time initialization (a lazily set `OnceCell`), whose instructions are
/// left out of a run's total: the cost is paid once, whatever the number of requests, and can
/// depend on the clock (see the module's docs).
const ONE_TIME: &[&str] = &["once_cell::imp::initialize_or_wait"];

/// What one request sends: the tutorial's first call.
const REQUEST: &[u8] = b"POST /uppercase HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"s\":\"hello\"}";

const USAGE: &str = "usage: icount [--check | --record] [--requests N] [--valgrind PATH] [--baseline FILE] --bin NAME=PATH...

Measures the instructions each service binary spends per request under callgrind.

  --bin NAME=PATH   a service binary to measure (repeatable), e.g. stringsvc1=target/release/stringsvc1
  --requests N      requests in the shorter run (default 1000; the longer one sends 3N)
  --valgrind PATH   the valgrind to run (default: valgrind on PATH)
  --baseline FILE   the recorded figures (default loadbench/icount.json)
  --check           fail when a service costs more than 10 % above its baseline
  --record          write the figures measured as the new baseline";

struct Args {
    bins: Vec<(String, PathBuf)>,
    requests: u64,
    valgrind: PathBuf,
    baseline: PathBuf,
    check: bool,
    record: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        bins: Vec::new(),
        requests: 1000,
        valgrind: PathBuf::from("valgrind"),
        baseline: PathBuf::from("loadbench/icount.json"),
        check: false,
        record: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--bin" => {
                let bin = value("--bin")?;
                let (name, path) = bin
                    .split_once('=')
                    .ok_or_else(|| format!("--bin takes NAME=PATH, not {bin:?}"))?;
                parsed.bins.push((name.to_owned(), PathBuf::from(path)));
            }
            "--requests" => {
                let n = value("--requests")?;
                parsed.requests = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--requests takes a positive count, not {n:?}"))?;
            }
            "--valgrind" => parsed.valgrind = PathBuf::from(value("--valgrind")?),
            "--baseline" => parsed.baseline = PathBuf::from(value("--baseline")?),
            "--check" => parsed.check = true,
            "--record" => parsed.record = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.bins.is_empty() {
        return Err("name at least one --bin NAME=PATH".to_owned());
    }
    if parsed.check && parsed.record {
        return Err("--check and --record exclude each other".to_owned());
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("icount: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("icount: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    let baseline = read_baseline(&args.baseline)?;
    let mut measured = BTreeMap::new();
    let mut within = true;
    for (name, path) in &args.bins {
        let mut per_request = u64::MAX;
        for _ in 0..REPEATS {
            let short = total_instructions(&args.valgrind, path, args.requests)?;
            let long = total_instructions(&args.valgrind, path, 3 * args.requests)?;
            per_request = per_request.min(long.saturating_sub(short) / (2 * args.requests));
        }
        measured.insert(name.clone(), per_request);
        match baseline.get(name) {
            Some(&recorded) => {
                let ratio = per_request as f64 / recorded as f64;
                let verdict = if ratio > 1.0 + TOLERANCE {
                    within = false;
                    "more than 10 % above the baseline"
                } else {
                    "ok"
                };
                println!(
                    "{name}: {per_request} instructions per request; baseline {recorded} ({:+.1} %): {verdict}",
                    (ratio - 1.0) * 100.0
                );
            }
            None => println!("{name}: {per_request} instructions per request; no baseline"),
        }
    }
    if args.record {
        let mut recorded = baseline;
        recorded.extend(measured);
        write_baseline(&args.baseline, &recorded)?;
        println!("recorded in {}", args.baseline.display());
        return Ok(true);
    }
    Ok(!args.check || within)
}

/// Runs `binary` under callgrind, sends it `requests` requests, stops it, and returns the
/// instructions it executed in all.
fn total_instructions(valgrind: &Path, binary: &Path, requests: u64) -> Result<u64, String> {
    let dir = std::env::temp_dir().join(format!("icount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let out = dir.join("callgrind.out");
    // The service's own output (a log line per request, for some) and valgrind's go to a file:
    // a pipe nobody reads until the end would fill up and stop the service.
    let log = dir.join("output");
    let output = std::fs::File::create(&log).map_err(|err| format!("{}: {err}", log.display()))?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .args(["--listen", &listen])
        // One worker, as on a service pinned to one core (the load benchmark's set-up): with
        // more, how often workers park, wake and steal from each other varies from run to run,
        // and so would the count.
        .env("TOKIO_WORKER_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|err| err.to_string())?)
        .stderr(output)
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", valgrind.display()))?;
    let result = drive(&mut child, port, requests);
    // SIGTERM: the service drains and exits, and callgrind writes its counts.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().map_err(|err| err.to_string())?;
    // The end of what it printed, to say why it failed if it did.
    let printed = std::fs::read(&log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&printed[printed.len().saturating_sub(4000)..]);
    result.map_err(|err| format!("{}: {err}\n{stderr}", binary.display()))?;
    // The services drain and exit 0; the benchmark's fixtures simply die of the signal.
    let stopped = status.success() || {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(15)
    };
    if !stopped {
        return Err(format!(
            "{} exited with {status}\n{stderr}",
            binary.display()
        ));
    }
    let counts =
        std::fs::read_to_string(&out).map_err(|err| format!("{}: {err}", out.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    let total = counts
        .lines()
        .find_map(|line| line.strip_prefix("summary: "))
        .or_else(|| {
            counts
                .lines()
                .find_map(|line| line.strip_prefix("totals: "))
        })
        .and_then(|total| total.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| format!("no instruction total in {}", out.display()))?;
    Ok(total.saturating_sub(calls_into(&counts, ONE_TIME)))
}

/// The instructions spent in calls to any of `functions` (theirs and those of everything they
/// call), read from a callgrind output file: each call is recorded by its callee (`cfn=`), a
/// `calls=` line, and a line whose last figure is the call's inclusive cost. Calls from one of
/// `functions` to another are not counted again.
fn calls_into(counts: &str, functions: &[&str]) -> u64 {
    // Callgrind names a function once, `(id) name`, and by `(id)` alone after that.
    let mut names = HashMap::new();
    let mut name_of = |spec: &'_ str| -> Option<bool> {
        let (id, name) = spec.trim().strip_prefix('(')?.split_once(')')?;
        let name = name.trim();
        if name.is_empty() {
            names.get(id).copied()
        } else {
            let wanted = functions.contains(&name);
            names.insert(id.to_owned(), wanted);
            Some(wanted)
        }
    };
    let mut in_wanted = false;
    let mut callee_wanted = false;
    let mut counting = false;
    let mut total = 0;
    for line in counts.lines() {
        if counting {
            counting = false;
            total += line
                .split_whitespace()
                .last()
                .and_then(|cost| cost.parse::<u64>().ok())
                .unwrap_or(0);
        } else if let Some(spec) = line.strip_prefix("fn=") {
            in_wanted = name_of(spec).unwrap_or(false);
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            callee_wanted = name_of(spec).unwrap_or(false);
        } else if line.starts_with("calls=") {
            counting = callee_wanted && !in_wanted;
        }
    }
    total
}

/// Waits for the service to listen, then sends `requests` requests over one connection, each
/// answered before the next is sent.
fn drive(child: &mut Child, port: u16, requests: u64) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Under callgrind a service starts some fifty times slower than usual.
    let deadline = Instant::now() + Duration::from_secs(120);
    let stream = loop {
        match TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(err) => {
                if Instant::now() > deadline || child.try_wait()?.is_some() {
                    return Err(io::Error::other(format!("it never listened: {err}")));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    for _ in 0..requests {
        writer.write_all(REQUEST)?;
        let mut length = None;
        line.clear();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!("answered {line:?}")));
        }
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.ok_or_else(|| io::Error::other("an answer without content-length"))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("no free port: {err}"))
}

/// The baseline file: one `"name": count` per line, as JSON.
fn read_baseline(path: &Path) -> Result<BTreeMap<String, u64>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

fn write_baseline(path: &Path, figures: &BTreeMap<String, u64>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(figures).map_err(|err| err.to_string())?;
    std::fs::write(path, text + "\n").map_err(|err| format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout callgrind writes: names compressed to ids after their first mention, each
    /// call followed by its inclusive cost.
    #[test]
    fn counts_the_calls_into_one_time_initializations() {
        let counts = "\
events: Ir
summary: 10000
fn=(1) main
0 100
cfn=(2) once_cell::imp::initialize_or_wait
calls=1 0
0 7000
cfn=(3) serve
calls=2 0
0 2000
fn=(2)
0 50
cfn=(4) quanta::calibrate
calls=1 0
0 6900
fn=(3)
0 900
cfn=(2)
calls=1 0
0 300
cfn=(2)
calls=1 0
0 1
";
        assert_eq!(calls_into(counts, ONE_TIME), 7301);
        assert_eq!(calls_into(counts, &["serve"]), 2000);
        assert_eq!(calls_into(counts, &["nothing"]), 0);
    }

    /// A call from one of the functions to another is inside the first, already counted.
    #[test]
    fn nested_calls_are_counted_once() {
        let counts = "\
fn=(1) main
cfn=(2) init
calls=1 0
0 500
fn=(2)
cfn=(2)
calls=1 0
0 200
";
        assert_eq!(calls_into(counts, &["init"]), 500);
    }
}
