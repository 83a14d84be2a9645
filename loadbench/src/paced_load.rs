//! The load benchmark's paced HTTP/1.1 load, for latency below saturation: `--connections`
//! clients, each sending a request, reading its whole answer, then waiting a time drawn at
//! random (exponentially distributed, with a mean of `--mean-us` microseconds) before the next,
//! for `--duration` seconds. It prints one JSON line in the shape of the wrk script's:
//! requests, duration, latency percentiles, errors, answers that are not 2xx and answers
//! carrying an in-band error.
//!
//! Why not wrk, which drives the benchmark's other HTTP runs: wrk's `delay()` counts in whole
//! milliseconds, and its event loop fires every timer due in the same millisecond together, so
//! its paced connections send in bursts (at 12 000 requests a second, 70 % of the gaps between
//! two requests are under 10 µs, where clients arriving on their own would leave 12 %). The
//! last request of a burst waits behind the others, and the latency measured is the burst's.
//! Here each client is a thread that sleeps to the microsecond, so requests arrive spread out
//! as from independent clients.
//!
//! Run with: `cargo run --release -p loadbench --bin paced-load -- 127.0.0.1:8080
//! --connections 20 --mean-us 2000 --duration 5`

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use loadbench::Report;

const USAGE: &str = "\
usage: paced-load HOST:PORT [options]

Each of N clients sends a request, reads its answer, waits a random time around a mean, and
starts again; prints one JSON line with the requests made, latency percentiles and errors.

  --connections N        clients, each with its own connection (default 16)
  --mean-us N            the mean wait between an answer and the next request, in
                         microseconds (default 2000); waits are exponentially distributed
  --duration SECONDS     how long to run (default 10)
  --method M             the request's method (default POST)
  --path P               the request's path (default /uppercase)
  --body B               the request's JSON body (default {\"s\":\"hello, world\"})
  --inband-marker TEXT   text that marks an answer as an in-band error (default \"err\":\")";

/// What to send, to whom, how often and for how long.
#[derive(Debug)]
struct Options {
    target: String,
    connections: usize,
    mean: Duration,
    duration: Duration,
    method: String,
    path: String,
    body: String,
    marker: String,
}

/// Why the command line gives no [`Options`].
#[derive(Debug)]
enum Refused {
    /// `--help`: the usage, and nothing wrong.
    Help,
    /// A mistake, named.
    Mistake(String),
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Refused::Mistake(message)
    }
}

fn options(args: impl IntoIterator<Item = String>) -> Result<Options, Refused> {
    let mut args = args.into_iter();
    let mut options = Options {
        target: String::new(),
        connections: 16,
        mean: Duration::from_millis(2),
        duration: Duration::from_secs(10),
        method: "POST".into(),
        path: "/uppercase".into(),
        body: r#"{"s":"hello, world"}"#.into(),
        marker: r#""err":""#.into(),
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        let number = |v: String| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("{arg} needs a whole number, not {v:?}\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--connections" => options.connections = number(value()?)? as usize,
            "--mean-us" => options.mean = Duration::from_micros(number(value()?)?),
            "--duration" => options.duration = Duration::from_secs(number(value()?)?),
            "--method" => options.method = value()?,
            "--path" => options.path = value()?,
            "--body" => options.body = value()?,
            "--inband-marker" => options.marker = value()?,
            "-h" | "--help" => return Err(Refused::Help),
            target if options.target.is_empty() && !target.starts_with('-') => {
                options.target = target.to_owned();
            }
            other => return Err(format!("unexpected argument {other:?}\n\n{USAGE}").into()),
        }
    }
    if options.target.is_empty() {
        return Err(format!("no HOST:PORT to load\n\n{USAGE}").into());
    }
    if options.connections == 0 {
        return Err(String::from("--connections must be at least 1").into());
    }
    Ok(options)
}

/// A small random number generator (xorshift64*), one a client: the waits need nothing more.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Self {
        // xorshift stays at zero from zero.
        Random(seed | 1)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A wait exponentially distributed with mean `mean`: the gaps between the requests of
    /// clients that come independently of each other.
    fn wait(&mut self, mean: Duration) -> Duration {
        mean.mul_f64(-(1.0 - self.unit()).ln())
    }
}

/// One answer, read whole.
struct Answer {
    status: u16,
    inband: bool,
    /// The server said it closes the connection.
    close: bool,
}

/// Reads one answer (sized by `Content-Length`, as every server of the benchmark sends).
fn read_answer(reader: &mut impl BufRead, marker: &[u8]) -> io::Result<Answer> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP/1 status line: {line:?}")))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(io::Error::other(format!("not a header: {header:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| io::Error::other(format!("bad Content-Length {value:?}")))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(io::Error::other("chunked answers are not read"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let inband = !marker.is_empty() && body.windows(marker.len()).any(|w| w == marker);
    Ok(Answer {
        status,
        inband,
        close,
    })
}

/// One client: until `end`, a request, its answer, a wait; a new connection when one fails or
/// the server closes it.
fn client(options: &Options, request: &[u8], seed: u64, end: Instant) -> Report {
    let mut tally = Report::default();
    let mut random = Random::new(seed);
    let marker = options.marker.as_bytes();
    // Clients start at random moments, not all at once.
    std::thread::sleep(random.wait(options.mean));
    'connection: while Instant::now() < end {
        let Ok(stream) = TcpStream::connect(&options.target) else {
            tally.connect_errors += 1;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        // Small requests leave at once; an answer that never comes ends the connection.
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(mut writer) = stream.try_clone() else {
            tally.connect_errors += 1;
            continue;
        };
        let mut reader = BufReader::new(stream);
        loop {
            let start = Instant::now();
            if start >= end {
                break 'connection;
            }
            if writer.write_all(request).is_err() {
                tally.write_errors += 1;
                continue 'connection;
            }
            match read_answer(&mut reader, marker) {
                Ok(answer) => {
                    let took = start.elapsed().as_micros();
                    tally
                        .latencies
                        .push(u32::try_from(took).unwrap_or(u32::MAX));
                    tally.non2xx += u64::from(!(200..300).contains(&answer.status));
                    tally.inband += u64::from(answer.inband);
                    if answer.close {
                        continue 'connection;
                    }
                }
                Err(_) => {
                    tally.read_errors += 1;
                    continue 'connection;
                }
            }
            std::thread::sleep(random.wait(options.mean));
        }
    }
    tally
}

fn main() {
    let options = match options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(Refused::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(Refused::Mistake(message)) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    // Sleeps end when asked, not up to 50 µs later (the default timer slack), where the kernel
    // may wake several clients at once: that would bring back the bursts this tool is for.
    // The main thread's slack is set here; the clients' threads, made after, take it from it.
    if let Err(error) = std::fs::write("/proc/self/timerslack_ns", "1") {
        eprintln!(
            "paced-load: cannot set the timer slack (waits may end up to 50 µs late): {error}"
        );
    }
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        options.method,
        options.path,
        options.target,
        options.body.len(),
        options.body
    )
    .into_bytes();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64);
    let begin = Instant::now();
    let end = begin + options.duration;
    let mut report = Report::default();
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..options.connections)
            .map(|i| {
                let (options, request) = (&options, &request);
                let seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                scope.spawn(move || client(options, request, seed, end))
            })
            .collect();
        for client in clients {
            report.add(client.join().unwrap_or_default());
        }
    });
    report.duration = begin.elapsed();
    println!("{}", report.json_line());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Options, Refused> {
        options(line.split_whitespace().map(String::from))
    }

    /// Why `line` is refused, as a mistake.
    fn refused(line: &str) -> String {
        match args(line) {
            Err(Refused::Mistake(message)) => message,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn options_are_read_and_mistakes_named() {
        let o = args("127.0.0.1:80 --connections 3 --mean-us 500 --duration 2 --path /count")
            .expect("options");
        assert_eq!(o.target, "127.0.0.1:80");
        assert_eq!(o.connections, 3);
        assert_eq!(o.mean, Duration::from_micros(500));
        assert_eq!(o.duration, Duration::from_secs(2));
        assert_eq!(o.path, "/count");
        assert!(refused("").contains("no HOST:PORT"));
        assert!(refused("x:1 --connections").contains("needs a value"));
        assert!(refused("x:1 --mean-us soon").contains("whole number"));
        assert!(refused("x:1 --connections 0").contains("at least 1"));
        assert!(refused("x:1 --bogus").contains("unexpected argument"));
        assert!(matches!(args("x:1 --help"), Err(Refused::Help)));
    }

    #[test]
    fn waits_average_their_mean_and_vary() {
        let mut random = Random::new(42);
        let mean = Duration::from_micros(2000);
        let waits: Vec<f64> = (0..100_000)
            .map(|_| random.wait(mean).as_secs_f64() * 1e6)
            .collect();
        let average = waits.iter().sum::<f64>() / waits.len() as f64;
        assert!((average - 2000.0).abs() < 40.0, "mean wait {average} µs");
        // Exponential: about 63 % of the waits are under the mean, and some are very short.
        let under = waits.iter().filter(|&&w| w < 2000.0).count() as f64 / waits.len() as f64;
        assert!((under - 0.632).abs() < 0.01, "{under} under the mean");
        let short = waits.iter().filter(|&&w| w < 100.0).count() as f64 / waits.len() as f64;
        assert!((short - 0.049).abs() < 0.005, "{short} under 100 µs");
    }

    #[test]
    fn answers_are_read_whole() {
        let text = "HTTP/1.1 200 OK\r\ncontent-length: 24\r\n\r\n{\"v\":\"X\",\"err\":\"boom\"}\r\n\
                    HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let mut reader = io::Cursor::new(text.as_bytes());
        let first = read_answer(&mut reader, br#""err":""#).expect("first");
        assert_eq!(
            (first.status, first.inband, first.close),
            (200, true, false)
        );
        let second = read_answer(&mut reader, br#""err":""#).expect("second");
        assert_eq!(
            (second.status, second.inband, second.close),
            (503, false, true)
        );
        assert!(read_answer(&mut reader, b"").is_err(), "nothing left");
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(read_answer(&mut io::Cursor::new(chunked.as_bytes()), b"").is_err());
        let garbage = "SSH-2.0-OpenSSH\r\n";
        assert!(read_answer(&mut io::Cursor::new(garbage.as_bytes()), b"").is_err());
    }
}
