//! The endpoints: one per service method, with its request and response types.

use std::convert::Infallible;
use std::sync::Arc;

use kit_core::endpoint::{Endpoint, endpoint_fn};
use kit_core::error::{Classify, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::service::StringService;

// ANCHOR: types
/// The request of `uppercase`: `{"s":"hello, world"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UppercaseRequest {
    /// The string to upper-case. A request without it asks for the empty string.
    #[serde(default)]
    pub s: String,
}

/// The response of `uppercase`: `{"v":"HELLO, WORLD","err":null}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UppercaseResponse {
    /// The upper-cased string; empty when `err` is set.
    pub v: String,
    /// The business error, as its message; `null` on success.
    pub err: Option<String>,
}

/// The request of `count`: `{"s":"hello, world"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountRequest {
    /// The string to measure.
    #[serde(default)]
    pub s: String,
}

/// The response of `count`: `{"v":12}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountResponse {
    /// The length of the string in bytes.
    pub v: usize,
}
// ANCHOR_END: types

// ANCHOR: uppercase
/// The `uppercase` endpoint of `svc`.
///
/// A business error (the caller's mistake, such as an empty string) travels inside the response,
/// in `err`, so the call itself succeeds: that is what the tutorial's clients expect. Any other
/// failure, which a service that calls others can have, fails the call, and the transport
/// answers it with the status of its kind.
pub fn make_uppercase_endpoint<S>(svc: S) -> Endpoint<UppercaseRequest, UppercaseResponse>
where
    S: StringService + Send + Sync + 'static,
{
    // Shared by every request, whatever middlewares the service is wrapped in.
    let svc = Arc::new(svc);
    endpoint_fn(move |req: UppercaseRequest| {
        let svc = Arc::clone(&svc);
        async move {
            match svc.uppercase(&req.s).await {
                Ok(v) => Ok(UppercaseResponse { v, err: None }),
                Err(err) if err.kind() == ErrorKind::InvalidArgument => Ok(UppercaseResponse {
                    v: String::new(),
                    err: Some(err.to_string()),
                }),
                Err(err) => Err(Error::from(err)),
            }
        }
    })
}
// ANCHOR_END: uppercase

// ANCHOR: count
/// The `count` endpoint of `svc`.
pub fn make_count_endpoint<S>(svc: S) -> Endpoint<CountRequest, CountResponse>
where
    S: StringService + Send + Sync + 'static,
{
    let svc = Arc::new(svc);
    endpoint_fn(move |req: CountRequest| {
        let svc = Arc::clone(&svc);
        async move {
            let v = svc.count(&req.s).await;
            Ok::<_, Infallible>(CountResponse { v })
        }
    })
}
// ANCHOR_END: count

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BasicStringService;
    use kit_core::endpoint::EndpointExt;

    #[tokio::test]
    async fn uppercase_puts_business_errors_in_the_response() {
        let uppercase = make_uppercase_endpoint(BasicStringService);
        let ok = uppercase
            .invoke(UppercaseRequest { s: "abc".into() })
            .await
            .expect("the call succeeds");
        assert_eq!(
            ok,
            UppercaseResponse {
                v: "ABC".into(),
                err: None
            }
        );
        let empty = uppercase
            .invoke(UppercaseRequest::default())
            .await
            .expect("the call succeeds");
        assert_eq!(
            empty,
            UppercaseResponse {
                v: String::new(),
                err: Some("Empty string".into())
            }
        );
    }

    #[tokio::test]
    async fn count_counts() {
        let count = make_count_endpoint(BasicStringService);
        let response = count
            .invoke(CountRequest {
                s: "hello, world".into(),
            })
            .await
            .expect("the call succeeds");
        assert_eq!(response, CountResponse { v: 12 });
    }
}
