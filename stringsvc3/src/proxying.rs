//! Proxying: a service middleware whose `uppercase` is answered by other instances.

use std::num::NonZeroU32;
use std::time::Duration;

use http::Method;
use kit_core::circuitbreaker::{CircuitBreakerLayer, Settings};
use kit_core::context::DeadlineLayer;
use kit_core::endpoint::{Endpoint, EndpointExt, ServiceBuilder};
use kit_core::error::{Classify, Error, ErrorKind};
use kit_core::lb::{RoundRobin, retry};
use kit_core::log::{Logger, LoggingLayer};
use kit_core::ratelimit::{ErroringLimiterLayer, Limiter};
use kit_core::sd::{Endpointer, FixedInstancer};
use kit_core::transport::http::{Client, Pool, Url, decode_json_response, encode_json_request};
use stringsvc1::endpoint::{UppercaseRequest, UppercaseResponse};
use stringsvc1::service::StringService;

/// The uppercase endpoint of a remote instance, or of all of them behind a balancer.
pub type UppercaseEndpoint = Endpoint<UppercaseRequest, UppercaseResponse>;

// ANCHOR: options
/// How the proxy treats the instances it calls.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Requests per second each instance may receive (the limiter's refill).
    pub rate: NonZeroU32,
    /// Requests each instance may receive at once before the rate applies.
    pub burst: NonZeroU32,
    /// Attempts per call, on successive instances, the first included.
    pub max_attempts: usize,
    /// How long all the attempts of one call may take together.
    pub retry_timeout: Duration,
    /// Each instance's circuit breaker (gobreaker's defaults: opens after more than 5
    /// consecutive failures, for 60 seconds).
    pub breaker: Settings,
}

impl ProxyOptions {
    /// How long one attempt may take: the retry timeout shared out between the attempts, in
    /// whole milliseconds (timers tick in milliseconds), at least one.
    pub fn attempt_timeout(&self) -> Duration {
        let attempts = u32::try_from(self.max_attempts.max(1)).unwrap_or(u32::MAX);
        let share = (self.retry_timeout / attempts).as_millis().max(1);
        Duration::from_millis(u64::try_from(share).unwrap_or(u64::MAX))
    }
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            rate: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            max_attempts: 3,
            retry_timeout: Duration::from_millis(250),
            breaker: Settings::default(),
        }
    }
}
// ANCHOR_END: options

/// An instance in `--proxy` that is not a usable URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid instance {instance:?}: {reason}")]
pub struct InstanceError {
    /// The instance as given.
    pub instance: String,
    /// What is wrong with it.
    pub reason: String,
}

// ANCHOR: url
/// The URL of an instance's `uppercase`, as Go kit's stringsvc3 builds it: `http://` is added
/// when the instance has no scheme, and `/uppercase` when it has no path. (Go tests for a
/// leading `http`, which takes a host named `httpbin:8001` for a scheme; we look for `://`.)
pub fn instance_url(instance: &str) -> Result<Url, InstanceError> {
    let error = |reason: String| InstanceError {
        instance: instance.to_owned(),
        reason,
    };
    let with_scheme = match instance.split_once("://") {
        Some(("http", _)) => instance.to_owned(),
        // The HTTP client is built without TLS, to keep builds lean: say so now rather than
        // fail on every call.
        Some(("https", _)) => {
            return Err(error(
                "https is not supported: instances are called over plain http".into(),
            ));
        }
        Some((scheme, _)) => return Err(error(format!("scheme {scheme} is not http"))),
        None => format!("http://{instance}"),
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| error(e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("no host".into()));
    }
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/uppercase");
    }
    Ok(url)
}
// ANCHOR_END: url

// ANCHOR: client
/// The client endpoint of one instance: `GET` with a JSON body, as Go kit's proxy calls, so
/// that Go kit instances and ours both answer it. Each call is logged through `logger`, with the
/// instance as its peer (kit-core's transport logging, `LoggingLayer`).
pub fn http_client(url: Url, pool: Pool, logger: &Logger) -> UppercaseEndpoint {
    let logging = LoggingLayer::new(logger.clone(), "uppercase").peer(url.as_str());
    let client = Client::new(
        Method::GET,
        url,
        encode_json_request,
        decode_json_response::<UppercaseResponse>,
    )
    .pool(pool)
    .name("uppercase")
    .endpoint();
    Endpoint::new(ServiceBuilder::new().layer(logging).service(client))
}
// ANCHOR_END: client

// ANCHOR: instance
/// One instance's chain: its rate limiter, then its circuit breaker, then a deadline, then
/// `client`. The limiter is outside the breaker, so its refusals do not count as the instance's
/// failures. The deadline gives each attempt its share of the retry budget
/// ([`ProxyOptions::attempt_timeout`]): an instance that hangs fails its attempt, which its
/// breaker counts, and the call moves on to the next instance in time. The client sends that
/// deadline with the call, so the instance knows how long it will be waited for.
pub fn instance_endpoint(client: UppercaseEndpoint, options: &ProxyOptions) -> UppercaseEndpoint {
    let limiter = Limiter::new(options.rate, options.burst);
    let service = ServiceBuilder::new()
        .layer(ErroringLimiterLayer::new(limiter))
        .layer(CircuitBreakerLayer::new(options.breaker.clone()))
        .layer(DeadlineLayer::new(options.attempt_timeout()))
        .service(client);
    Endpoint::new(service)
}
// ANCHOR_END: instance

// ANCHOR: proxy
/// The proxy's `uppercase` endpoint: the instances, each behind [`instance_endpoint`], taken
/// round robin, with retries. `client` makes each instance's client endpoint from its URL
/// ([`http_client`] in the service; something else in tests).
pub fn proxy_endpoint<C>(
    instances: &[String],
    options: &ProxyOptions,
    client: C,
) -> Result<UppercaseEndpoint, InstanceError>
where
    C: Fn(Url) -> UppercaseEndpoint + Send + Sync + 'static,
{
    let urls: Vec<Url> = instances
        .iter()
        .map(|i| instance_url(i))
        .collect::<Result<_, _>>()?;
    let instancer = FixedInstancer::new(urls.iter().map(Url::to_string));
    let per_instance = options.clone();
    let endpointer = Endpointer::new(&instancer, move |instance: &str| {
        let url = instance_url(instance)?;
        Ok::<_, InstanceError>(instance_endpoint(client(url), &per_instance))
    });
    let balancer = RoundRobin::new(endpointer);
    Ok(retry(options.max_attempts, options.retry_timeout, balancer))
}
// ANCHOR_END: proxy

// ANCHOR: error
/// What can go wrong when `uppercase` is proxied: this stage's own errors, beside those of the
/// service it wraps.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError<E> {
    /// The local service's error, when there is nothing to proxy to.
    #[error(transparent)]
    Local(E),
    /// An instance's business error, passed on in its own words (ours say `Empty string`, a Go
    /// kit instance `empty string`).
    #[error("{0}")]
    Remote(String),
    /// The instances could not answer: every attempt failed, or time ran out. The kit-core
    /// error says which ([`Unavailable`](ErrorKind::Unavailable) or
    /// [`DeadlineExceeded`](ErrorKind::DeadlineExceeded)).
    #[error(transparent)]
    Unavailable(Error),
}

impl<E: Classify> Classify for ProxyError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::Local(err) => err.kind(),
            // An instance that refused the request found it invalid, as we would have.
            ProxyError::Remote(_) => ErrorKind::InvalidArgument,
            ProxyError::Unavailable(err) => err.kind(),
        }
    }
}
// ANCHOR_END: error

// ANCHOR: middleware
/// A `StringService` whose `uppercase` goes to other instances; `count` stays local.
#[derive(Debug, Clone)]
pub struct ProxyingMiddleware<S> {
    /// The remote instances' `uppercase`, or `None` to call `next` (no `--proxy`).
    pub uppercase: Option<UppercaseEndpoint>,
    /// The local service.
    pub next: S,
}

impl<S: StringService + Sync> StringService for ProxyingMiddleware<S> {
    type Error = ProxyError<S::Error>;

    async fn uppercase(&self, s: &str) -> Result<String, Self::Error> {
        let Some(uppercase) = &self.uppercase else {
            return self.next.uppercase(s).await.map_err(ProxyError::Local);
        };
        let request = UppercaseRequest { s: s.to_owned() };
        match uppercase.invoke(request).await {
            Ok(UppercaseResponse { v, err: None }) => Ok(v),
            // Go kit's clients read an empty `err` as no error, and so do we.
            Ok(UppercaseResponse { v, err: Some(err) }) if err.is_empty() => Ok(v),
            Ok(UppercaseResponse { err: Some(err), .. }) => Err(ProxyError::Remote(err)),
            Err(err) => Err(ProxyError::Unavailable(Error::from(err))),
        }
    }

    async fn count(&self, s: &str) -> usize {
        self.next.count(s).await
    }
}
// ANCHOR_END: middleware

// ANCHOR: constructor
/// Go kit's `proxyingMiddleware(ctx, instances, logger)`: logs where `uppercase` goes
/// (`proxy_to=none`, or the instances) and returns the middleware to wrap the service in.
pub fn proxying_middleware<S>(
    instances: &[String],
    options: &ProxyOptions,
    logger: &Logger,
) -> Result<impl FnOnce(S) -> ProxyingMiddleware<S>, InstanceError> {
    // Refuse a bad instance before saying anything about where calls go.
    for instance in instances {
        instance_url(instance)?;
    }
    let uppercase = if instances.is_empty() {
        logger.in_scope(|| tracing::info!(proxy_to = "none"));
        None
    } else {
        let proxy_to = format!("[{}]", instances.join(" "));
        logger.in_scope(|| tracing::info!(proxy_to = proxy_to.as_str()));
        // One connection pool for every instance. (It follows no redirect, which would send
        // the caller's request wherever an instance says.)
        let pool = Pool::with_connect_timeout(options.attempt_timeout());
        let logger = logger.clone();
        Some(proxy_endpoint(instances, options, move |url| {
            http_client(url, pool.clone(), &logger)
        })?)
    };
    Ok(move |next| ProxyingMiddleware { uppercase, next })
}
// ANCHOR_END: constructor

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_urls_are_completed_like_go_kit() {
        let url = |i: &str| instance_url(i).map(|u| u.to_string());
        assert_eq!(
            url("localhost:8001").as_deref(),
            Ok("http://localhost:8001/uppercase")
        );
        assert_eq!(
            url("http://10.0.0.1:8001").as_deref(),
            Ok("http://10.0.0.1:8001/uppercase")
        );
        assert_eq!(
            url("http://example.com/v2/upper").as_deref(),
            Ok("http://example.com/v2/upper")
        );
        assert_eq!(
            url("httpbin:8001").as_deref(),
            Ok("http://httpbin:8001/uppercase")
        );
        assert_eq!(
            instance_url("https://example.com")
                .expect_err("no TLS")
                .to_string(),
            "invalid instance \"https://example.com\": https is not supported: instances are called over plain http"
        );
        assert!(url("localhost:notaport").is_err());
        assert!(url("").is_err());
        assert_eq!(
            instance_url("ftp://x").expect_err("not http").to_string(),
            "invalid instance \"ftp://x\": scheme ftp is not http"
        );
    }
}
