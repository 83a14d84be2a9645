//! What the targets share, made once per process: a runtime, and addsvc's endpoints.
//!
//! A fuzzer calls a target millions of times; building servers, registries and loggers for
//! each input would measure set-up, not decoding.

use std::sync::OnceLock;

use kit_core::log::{Format, Logger};
use kit_core::metrics::Registry;
use tokio::runtime::Runtime;

/// The runtime servers run on and targets block on. One worker: the targets feed it one input
/// at a time.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("cannot start a runtime: {err}"))
    })
}

/// A logger that formats every line, hostile text included, and writes it nowhere: the
/// formatting is part of what a request exercises, keeping the lines would fill the memory.
pub(crate) fn logger() -> Logger {
    static LOGGER: OnceLock<Logger> = OnceLock::new();
    LOGGER
        .get_or_init(|| {
            Logger::builder(Format::Logfmt)
                .to_writer(std::io::sink)
                .unwrap_or_else(|err| panic!("cannot make a logger: {err}"))
        })
        .clone()
}

/// addsvc's endpoints, with its middlewares, as its binary builds them.
pub(crate) fn addsvc() -> &'static addsvc::Set {
    static SET: OnceLock<addsvc::Set> = OnceLock::new();
    SET.get_or_init(|| {
        let _runtime = runtime().enter();
        let logger = logger();
        let registry = Registry::new();
        let svc = addsvc::service(addsvc::service::BasicService, &logger, &registry);
        addsvc::Set::new(svc, &addsvc::Limits::default(), &logger, &registry)
    })
}

/// Reads a response body whole, up to `limit` bytes; `None` if it is longer or fails.
pub(crate) async fn body<B>(body: B, limit: usize) -> Option<bytes::Bytes>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}
