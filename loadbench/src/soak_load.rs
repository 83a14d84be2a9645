//! The soak's load generator: a string service's routes called at a fixed rate with a mix of
//! valid and invalid requests, each checked against the answer it must get.
//!
//! wrk cannot tell which request an answer belongs to, nor hold a rate; this can. Every
//! `--interval` seconds it prints one JSON line: requests sent and answered per second, p50,
//! p99 and max latency, and for valid and invalid requests apart how many were answered as
//! they must be and how many were not (a wrong status, a wrong body, a failed connection).
//! `--rate 0` sends as fast as the connections allow: the saturated throughput.
//!
//! Run with: `cargo run --release -p loadbench --bin soak-load -- 127.0.0.1:8080 --rate 20000`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// One kind of request, what it must be answered with, and how often it is sent.
struct Kind {
    /// Per thousand requests.
    per_mille: u32,
    valid: bool,
    method: Method,
    path: &'static str,
    body: fn() -> Bytes,
    content_encoding: Option<&'static str>,
    status: StatusCode,
    /// Text the answer's body must hold.
    holds: &'static str,
}

/// A megabyte and a bit: over every service's body limit.
fn too_large() -> Bytes {
    static BODY: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BODY.get_or_init(|| {
        let mut body = b"{\"s\":\"".to_vec();
        body.resize(1024 * 1024 + 100, b'a');
        body.extend_from_slice(b"\"}");
        Bytes::from(body)
    })
    .clone()
}

/// The mix: three in four requests valid, the rest each kind of mistake a client makes.
const MIX: [Kind; 10] = [
    Kind {
        per_mille: 450,
        valid: true,
        method: Method::POST,
        path: "/uppercase",
        body: || Bytes::from_static(br#"{"s":"hello, world"}"#),
        content_encoding: None,
        status: StatusCode::OK,
        holds: r#""v":"HELLO, WORLD""#,
    },
    Kind {
        per_mille: 250,
        valid: true,
        method: Method::POST,
        path: "/count",
        body: || Bytes::from_static(br#"{"s":"hello, world"}"#),
        content_encoding: None,
        status: StatusCode::OK,
        holds: r#""v":12"#,
    },
    Kind {
        per_mille: 50,
        valid: true,
        method: Method::POST,
        path: "/uppercase",
        body: || Bytes::from_static(br#"{"s":""}"#),
        content_encoding: None,
        status: StatusCode::OK,
        holds: r#""err":"Empty string""#,
    },
    Kind {
        per_mille: 80,
        valid: false,
        method: Method::POST,
        path: "/uppercase",
        body: || Bytes::from_static(br#"{"s":"#),
        content_encoding: None,
        status: StatusCode::BAD_REQUEST,
        holds: r#""error":"#,
    },
    Kind {
        per_mille: 50,
        valid: false,
        method: Method::POST,
        path: "/count",
        body: || Bytes::from_static(br#"{"s":1}"#),
        content_encoding: None,
        status: StatusCode::BAD_REQUEST,
        holds: r#""error":"#,
    },
    Kind {
        per_mille: 40,
        valid: false,
        method: Method::POST,
        path: "/nowhere",
        body: || Bytes::from_static(b"{}"),
        content_encoding: None,
        status: StatusCode::NOT_FOUND,
        holds: r#""error":"#,
    },
    Kind {
        per_mille: 40,
        valid: false,
        method: Method::PUT,
        path: "/uppercase",
        body: Bytes::new,
        content_encoding: None,
        status: StatusCode::METHOD_NOT_ALLOWED,
        holds: r#""error":"#,
    },
    Kind {
        per_mille: 30,
        valid: false,
        method: Method::POST,
        path: "/uppercase",
        body: || Bytes::from_static(b"[1,2,3]"),
        content_encoding: None,
        status: StatusCode::BAD_REQUEST,
        holds: r#""error":"#,
    },
    Kind {
        per_mille: 9,
        valid: false,
        method: Method::POST,
        path: "/uppercase",
        body: || Bytes::from_static(br#"{"s":"x"}"#),
        content_encoding: Some("gzip"),
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        holds: r#""error":"#,
    },
    Kind {
        per_mille: 1,
        valid: false,
        method: Method::POST,
        path: "/uppercase",
        body: too_large,
        content_encoding: None,
        status: StatusCode::PAYLOAD_TOO_LARGE,
        holds: r#""error":"#,
    },
];

struct Options {
    target: SocketAddr,
    rate: u64,
    connections: usize,
    duration: Duration,
    interval: Duration,
}

fn options() -> Result<Options, String> {
    let usage = "usage: soak-load HOST:PORT [--rate REQUESTS_PER_SECOND (0: as fast as possible)] \
                 [--connections N] [--duration SECONDS] [--interval SECONDS]";
    let mut args = std::env::args().skip(1);
    let mut target = None;
    let (mut rate, mut connections, mut duration, mut interval) = (0, 32, 60, 5);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a whole number\n{usage}"))
        };
        match arg.as_str() {
            "--rate" => rate = number("--rate")?,
            "--connections" => connections = number("--connections")?.max(1),
            "--duration" => duration = number("--duration")?.max(1),
            "--interval" => interval = number("--interval")?.max(1),
            "-h" | "--help" => return Err(usage.to_owned()),
            addr if target.is_none() => {
                target = Some(
                    addr.parse()
                        .map_err(|_| format!("{addr:?} is not an IP:PORT\n{usage}"))?,
                );
            }
            other => return Err(format!("unexpected argument {other:?}\n{usage}")),
        }
    }
    Ok(Options {
        target: target.ok_or(usage)?,
        rate,
        connections: usize::try_from(connections).unwrap_or(usize::MAX),
        duration: Duration::from_secs(duration),
        interval: Duration::from_secs(interval),
    })
}

/// What happened to one request.
struct Outcome {
    at: Instant,
    valid: bool,
    /// Answered as it must be.
    right: bool,
    latency_us: u32,
}

/// The kind of the `n`th request: the mix, spread evenly over every thousand requests.
fn kind(n: u64) -> &'static Kind {
    // A stride coprime with 1000 visits every slot of a thousand once, mixing the kinds.
    let slot = (n.wrapping_mul(617) % 1000) as u32;
    let mut bound = 0;
    for kind in &MIX {
        bound += kind.per_mille;
        if slot < bound {
            return kind;
        }
    }
    &MIX[0]
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(target: SocketAddr) -> Option<Sender> {
    let stream = TcpStream::connect(target).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Sends one request of `kind` and checks its answer.
///
/// A connection the server closed after its last answer (as it does after refusing a body) is
/// replaced before the request goes out: a request that was never sent is not a failure of the
/// service. Once sent, whatever goes wrong counts.
async fn call(sender: &mut Option<Sender>, target: SocketAddr, kind: &Kind) -> bool {
    for _ in 0..2 {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            *sender = connect(target).await;
        }
        let Some(open) = sender.as_mut() else {
            return false;
        };
        if open.ready().await.is_err() {
            *sender = None;
            continue;
        }
        let mut request = Request::builder()
            .method(kind.method.clone())
            .uri(kind.path)
            .header(header::HOST, "soak")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(encoding) = kind.content_encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        let Ok(request) = request.body(Full::new((kind.body)())) else {
            return false;
        };
        let response = match open.send_request(request).await {
            Ok(response) => response,
            Err(err) if err.is_canceled() => {
                *sender = None;
                continue;
            }
            Err(err) => {
                *sender = None;
                return wrong(kind, &format!("no answer: {err}"));
            }
        };
        let status = response.status();
        // A server that says it closes the connection is taken at its word before the next
        // request, rather than when the next request fails on it.
        if response
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            *sender = None;
        }
        let Ok(body) = response.into_body().collect().await else {
            *sender = None;
            return wrong(kind, &format!("{status} with a body cut short"));
        };
        let body = body.to_bytes();
        let text = String::from_utf8_lossy(&body);
        if status == kind.status && text.contains(kind.holds) {
            return true;
        }
        return wrong(kind, &format!("{status} {text}"));
    }
    false
}

/// Says on stderr what the first few wrong answers were, and counts the request wrong.
fn wrong(kind: &Kind, what: &str) -> bool {
    static TOLD: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    if TOLD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 10 {
        let what: String = what.chars().take(300).collect();
        eprintln!("wrong answer to {} {}: {what}", kind.method, kind.path);
    }
    false
}

/// One connection's requests: every `period` (or back to back), until `end`.
async fn worker(
    target: SocketAddr,
    first: u64,
    stride: u64,
    period: Option<Duration>,
    end: Instant,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    let mut sender = connect(target).await;
    let mut ticks = period.map(|period| {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut n = first;
    loop {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        let started = Instant::now();
        if started >= end {
            return;
        }
        let kind = kind(n);
        n += stride;
        let right = call(&mut sender, target, kind).await;

        let latency_us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let outcome = Outcome {
            at: started,
            valid: kind.valid,
            right,
            latency_us,
        };
        if outcomes.send(outcome).is_err() {
            return;
        }
    }
}

#[derive(Default)]
struct Interval {
    latencies: Vec<u32>,
    valid: u64,
    valid_wrong: u64,
    invalid: u64,
    invalid_wrong: u64,
}

impl Interval {
    fn line(&mut self, index: usize, seconds: f64) -> String {
        self.latencies.sort_unstable();
        let at = |q: f64| loadbench::percentile(&self.latencies, q * 100.0);
        let answered = self.latencies.len();
        format!(
            "{{\"interval\":{index},\"seconds\":{seconds:.3},\"requests\":{answered},\"rps\":{:.0},\
             \"p50_us\":{},\"p99_us\":{},\"max_us\":{},\"valid\":{},\"valid_wrong\":{},\
             \"invalid\":{},\"invalid_wrong\":{}}}",
            answered as f64 / seconds,
            at(0.5),
            at(0.99),
            self.latencies.last().copied().unwrap_or(0),
            self.valid,
            self.valid_wrong,
            self.invalid,
            self.invalid_wrong,
        )
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let end = start + options.duration;
    let per_connection = (options.rate > 0)
        .then(|| Duration::from_secs_f64(options.connections as f64 / options.rate as f64));
    let (outcomes, mut received) = mpsc::unbounded_channel();
    for c in 0..options.connections {
        tokio::spawn(worker(
            options.target,
            c as u64,
            options.connections as u64,
            per_connection,
            end,
            outcomes.clone(),
        ));
    }
    drop(outcomes);

    let slots = options
        .duration
        .as_secs()
        .div_ceil(options.interval.as_secs()) as usize;
    let mut intervals: Vec<Interval> = (0..slots.max(1)).map(|_| Interval::default()).collect();
    while let Some(outcome) = received.recv().await {
        let index =
            (outcome.at.duration_since(start).as_secs() / options.interval.as_secs()) as usize;
        let Some(interval) = intervals.get_mut(index) else {
            continue;
        };
        interval.latencies.push(outcome.latency_us);
        match (outcome.valid, outcome.right) {
            (true, right) => {
                interval.valid += 1;
                interval.valid_wrong += u64::from(!right);
            }
            (false, right) => {
                interval.invalid += 1;
                interval.invalid_wrong += u64::from(!right);
            }
        }
    }
    let mut total = Interval::default();
    for (index, interval) in intervals.iter_mut().enumerate() {
        let seconds = options
            .interval
            .min(
                options
                    .duration
                    .saturating_sub(options.interval * index as u32),
            )
            .as_secs_f64();
        println!("{}", interval.line(index, seconds));
        total.latencies.extend_from_slice(&interval.latencies);
        total.valid += interval.valid;
        total.valid_wrong += interval.valid_wrong;
        total.invalid += interval.invalid;
        total.invalid_wrong += interval.invalid_wrong;
    }
    println!(
        "{}",
        total
            .line(usize::MAX, options.duration.as_secs_f64())
            .replace(
                &format!("\"interval\":{}", usize::MAX),
                "\"interval\":\"total\""
            )
    );
    std::process::ExitCode::SUCCESS
}
