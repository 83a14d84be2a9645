//! Endpoints and middleware: one RPC, and what wraps it.
//!
//! Go kit's central abstraction is the endpoint, `func(ctx, request) (response, error)`: one method
//! of a service, with the transport already stripped off. Everything cross-cutting (logging,
//! metrics, circuit breakers, rate limits) is a middleware, `func(Endpoint) Endpoint`.
//!
//! tower already has both ideas: [`Service`] is an asynchronous function from a request to a
//! response or an error, and [`Layer`] wraps one service in another. So kit-core does not invent a
//! trait; an [`Endpoint`] is a type-erased tower service and a [`Middleware`] is a type-erased tower
//! layer. That is why tower's own layers (timeout, concurrency limit, load shed) and kit-core's
//! compose in one [`ServiceBuilder`], and why an endpoint mounts in axum or
//! wraps an HTTP client without adapters.
//!
//! Unlike Go kit, requests and responses are typed: an `Endpoint<UppercaseRequest,
//! UppercaseResponse>` cannot be handed a count request, and nobody casts `interface{}`.
//!
//! # Calling an endpoint
//!
//! tower's contract is that `call` may only follow a successful `poll_ready`, and that a clone of
//! a ready service is *not* ready. [`EndpointExt::invoke`] does the right thing (clone, wait for
//! readiness, call), so code built on kit-core never touches `poll_ready`.
//!
//! ```
//! use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt};
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kit_core::BoxError> {
//! let double: Endpoint<u32, u32> = endpoint_fn(|n: u32| async move { Ok::<_, Infallible>(n * 2) });
//! assert_eq!(double.invoke(21).await?, 42);
//! # Ok(())
//! # }
//! ```
//!
//! # Writing middleware
//!
//! A middleware written with [`middleware_fn`] receives the next endpoint and the request, just
//! like a Go kit middleware closure. [`chain`] composes several, the first one outermost, as Go
//! kit's `endpoint.Chain` does:
//!
//! ```
//! use kit_core::endpoint::{chain, endpoint_fn, middleware_fn, Endpoint, EndpointExt, Layer, Middleware, ServiceExt};
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kit_core::BoxError> {
//! let echo: Endpoint<String, String> = endpoint_fn(|s: String| async move { Ok::<_, Infallible>(s) });
//! let tag = |name: &'static str| -> Middleware<String, String> {
//!     middleware_fn(move |next: Endpoint<String, String>, req: String| async move {
//!         // `next` is this call's own clone: called as it is.
//!         let resp = next.oneshot(format!("{req}>{name}")).await?;
//!         Ok(format!("{resp}<{name}"))
//!     })
//! };
//! let wrapped = chain([tag("outer"), tag("inner")]).layer(echo);
//! assert_eq!(wrapped.invoke("req".to_string()).await?, "req>outer>inner<inner<outer");
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use tower::util::{BoxCloneSyncService, BoxCloneSyncServiceLayer, Oneshot};

/// tower's traits and builder, re-exported so that code built on kit-core has one place to import
/// from: endpoints are [`Service`]s and middlewares are [`Layer`]s.
pub use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use crate::error::{BoxError, Classify, Error};

/// One RPC: a typed request in, a typed response or an error out (Go kit's `endpoint.Endpoint`).
///
/// It is a boxed tower [`Service`] that is `Clone + Send + Sync`, so it can be stored in structs,
/// shared between tasks, mounted in axum and wrapped by any tower layer. Build one from an async
/// closure with [`endpoint_fn`], or from any suitable service with `Endpoint::new(service)`.
pub type Endpoint<Req, Resp> = BoxCloneSyncService<Req, Resp, BoxError>;

/// Something that wraps an endpoint in another (Go kit's `endpoint.Middleware`), type-erased.
///
/// It is a tower [`Layer`], so it can also be passed to
/// [`ServiceBuilder::layer`] next to tower's own layers.
pub type Middleware<Req, Resp> = BoxCloneSyncServiceLayer<Endpoint<Req, Resp>, Req, Resp, BoxError>;

/// Builds an endpoint from an async closure.
///
/// The closure is called once per request. Its error type may be any error that knows its
/// [kind](crate::error::Classify), a [`BoxError`], a kit-core [`Error`], or a message (`&str`,
/// `String`); the endpoint fails with it as an [`Error`], so that its kind reaches the
/// transport however many layers box it on the way (see [`error`](crate::error)). Use
/// [`Infallible`](std::convert::Infallible) when the endpoint cannot fail, as when business
/// errors travel inside the response.
pub fn endpoint_fn<Req, Resp, E, F, Fut>(f: F) -> Endpoint<Req, Resp>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    E: Into<Error> + 'static,
    Req: 'static,
    Resp: 'static,
{
    // Cloning an endpoint (which `invoke` does for every call) then costs a reference count,
    // not a copy of everything the closure captured.
    let f = Arc::new(f);
    Endpoint::new(tower::service_fn(move |req| f(req)).map_err(|e: E| BoxError::from(e.into())))
}

/// Builds a middleware from an async closure that receives the next endpoint and the request.
///
/// `next` is a fresh clone of the wrapped endpoint for every request, the middleware's to call
/// once: with [`ServiceExt::oneshot`], which waits for readiness before calling.
/// ([`EndpointExt::invoke`] works too, but clones it again first.)
pub fn middleware_fn<Req, Resp, F, Fut>(f: F) -> Middleware<Req, Resp>
where
    F: Fn(Endpoint<Req, Resp>, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, BoxError>> + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    Middleware::new(tower::layer::layer_fn(move |next: Endpoint<Req, Resp>| {
        // Shared, so that cloning the middleware's endpoint (once per call) does not clone the
        // whole chain inside it, layer by layer.
        let shared = Arc::new((f.clone(), next));
        tower::service_fn(move |req| {
            let (f, next) = &*shared;
            f(next.clone(), req)
        })
    }))
}

/// Composes middlewares into one; the first is outermost (Go kit's `endpoint.Chain`).
///
/// A request passes through the middlewares in the order given and the response comes back in
/// reverse, the same order as [`ServiceBuilder`] uses.
pub fn chain<Req, Resp>(
    middlewares: impl IntoIterator<Item = Middleware<Req, Resp>>,
) -> Middleware<Req, Resp>
where
    Req: 'static,
    Resp: 'static,
{
    let middlewares: Vec<_> = middlewares.into_iter().collect();
    Middleware::new(tower::layer::layer_fn(
        move |endpoint: Endpoint<Req, Resp>| {
            middlewares
                .iter()
                .rev()
                .fold(endpoint, |inner, middleware| middleware.layer(inner))
        },
    ))
}

/// Calling any cloneable service the way Go kit calls an endpoint: `e(ctx, request)`.
pub trait EndpointExt<Req>: Service<Req> + Clone + Sized {
    /// Calls a clone of this service once: waits until the clone is ready, then calls it.
    ///
    /// This is the correct way to call a shared service: calling without readiness may panic,
    /// and a clone of a ready service is not itself ready.
    fn invoke(&self, request: Req) -> Oneshot<Self, Req> {
        self.clone().oneshot(request)
    }
}

impl<Req, S: Service<Req> + Clone> EndpointExt<Req> for S {}

/// A response that may carry a business error (Go kit's `endpoint.Failer`).
///
/// Some services put their domain errors inside a successful response instead of failing the
/// call, so that the transport still encodes a normal body. A transport asks the response
/// whether it failed, and answers with the code of the error's [kind](crate::error::ErrorKind):
/// see `transport::http::encode_json_response_or_error`.
pub trait Failer {
    /// The business error this response carries, if any.
    fn failed(&self) -> Option<&(dyn Classify + Send + Sync + 'static)>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio_test::{assert_pending, assert_ready_ok, task};
    use tower::ServiceBuilder;

    fn echo() -> Endpoint<String, String> {
        endpoint_fn(|s: String| async move { Ok::<_, Infallible>(s) })
    }

    #[tokio::test]
    async fn endpoint_fn_maps_errors_into_box_error() {
        use crate::error::ErrorExt;
        let failing: Endpoint<(), ()> =
            endpoint_fn(|()| async { Err::<(), _>(std::io::Error::other("disk on fire")) });
        let err = failing.invoke(()).await.expect_err("the endpoint fails");
        assert_eq!(err.to_string(), "disk on fire");
        assert!(err.find::<std::io::Error>().is_some());
    }

    #[tokio::test]
    async fn chain_runs_the_first_middleware_outermost() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = |name: &'static str| {
            let seen = seen.clone();
            middleware_fn(move |next: Endpoint<String, String>, req: String| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("lock").push(format!("{name} before"));
                    let resp = next.invoke(req).await;
                    seen.lock().expect("lock").push(format!("{name} after"));
                    resp
                }
            })
        };
        let endpoint = chain([record("first"), record("second"), record("third")]).layer(echo());
        assert_eq!(endpoint.invoke("x".into()).await.expect("echo"), "x");
        assert_eq!(
            *seen.lock().expect("lock"),
            [
                "first before",
                "second before",
                "third before",
                "third after",
                "second after",
                "first after"
            ]
        );
    }

    #[tokio::test]
    async fn an_empty_chain_is_the_identity() {
        let endpoint = chain(Vec::<Middleware<String, String>>::new()).layer(echo());
        assert_eq!(endpoint.invoke("same".into()).await.expect("echo"), "same");
    }

    /// The middleware must wait for its inner service to become ready instead of calling it
    /// early (which panics in many tower services) or failing.
    #[tokio::test]
    async fn middleware_waits_for_an_inner_service_that_is_not_ready() {
        let (mock, mut handle) = tower_test::mock::pair::<String, String>();
        handle.allow(0);
        let inner: Endpoint<String, String> = Endpoint::new(mock.map_err(BoxError::from));
        let passthrough = middleware_fn(|next: Endpoint<String, String>, req: String| async move {
            next.invoke(req).await
        });
        let endpoint = passthrough.layer(inner);

        let mut call = task::spawn(endpoint.invoke("hello".into()));
        assert_pending!(call.poll());
        assert_pending!(call.poll());

        handle.allow(1);
        assert!(call.is_woken(), "readiness must wake the waiting call");
        assert_pending!(call.poll());
        let (request, respond) = handle
            .next_request()
            .await
            .expect("the request reaches the inner service");
        assert_eq!(request, "hello");
        respond.send_response("HELLO".into());
        assert_eq!(assert_ready_ok!(call.poll()), "HELLO");
    }

    /// kit-core middleware, tower's own layers and the type-erased endpoint all compose in one
    /// `ServiceBuilder`, and the result is again an `Endpoint`.
    #[tokio::test(start_paused = true)]
    async fn tower_layers_and_kit_middleware_compose() {
        let slow: Endpoint<u64, u64> = endpoint_fn(|millis: u64| async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            Ok::<_, Infallible>(millis)
        });
        let add_one = middleware_fn(|next: Endpoint<u64, u64>, req: u64| async move {
            Ok(next.invoke(req).await? + 1)
        });
        let endpoint: Endpoint<u64, u64> = Endpoint::new(
            ServiceBuilder::new()
                .load_shed()
                .concurrency_limit(1)
                .timeout(Duration::from_millis(100))
                .layer(add_one)
                .service(slow),
        );

        assert_eq!(endpoint.invoke(10).await.expect("in time"), 11);

        let err = endpoint.invoke(500).await.expect_err("too slow");
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");

        // While one call holds the only concurrency slot, another is shed at once.
        let mut busy = task::spawn(endpoint.invoke(50));
        assert_pending!(busy.poll());
        let err = endpoint.invoke(1).await.expect_err("shed");
        assert!(err.is::<tower::load_shed::error::Overloaded>(), "{err}");
        assert_eq!(busy.await.expect("the first call finishes"), 51);
    }
}
