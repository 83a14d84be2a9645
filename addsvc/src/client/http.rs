//! The HTTP/JSON client.

use http::Method;
use kit_core::endpoint::{Endpoint, EndpointExt, endpoint_fn};
use kit_core::error::ErrorExt;
use kit_core::transport::http::{
    Client, ClientError, Pool, Url, decode_json_response, encode_json_request,
};

use super::{InstanceError, Options};
use crate::endpoint::{ConcatResponse, Set, SumResponse};
use crate::service::ServiceError;

// ANCHOR: http
/// addsvc at `instance` over HTTP/JSON (`host:port`, or a URL; `http://` is added when there is
/// no scheme, as Go kit's `NewHTTPClient` does).
///
/// A 400 answer carries a business error, `{"error":"can't sum two zeroes"}`: it comes back as
/// that [`ServiceError`] (Go kit's client reports only `400 Bad Request`). Any other failure is
/// the call's, with the kind of its status.
pub fn http(instance: &str, options: &Options) -> Result<Set, InstanceError> {
    let base = if instance.contains("://") {
        instance.to_owned()
    } else {
        format!("http://{instance}")
    };
    let base = Url::parse(&base).map_err(|e| InstanceError::new(instance, e))?;
    if base.scheme() != "http" {
        return Err(InstanceError::new(instance, "only http is supported"));
    }
    let url = |path: &str| base.join(path).map_err(|e| InstanceError::new(instance, e));
    // One connection pool for both methods.
    let pool = Pool::with_connect_timeout(options.timeout);
    let sum = Client::new(
        Method::POST,
        url("sum")?,
        encode_json_request,
        decode_json_response,
    )
    .pool(pool.clone())
    .name("sum")
    .endpoint();
    let concat = Client::new(
        Method::POST,
        url("concat")?,
        encode_json_request,
        decode_json_response,
    )
    .pool(pool)
    .name("concat")
    .endpoint();
    let set = Set {
        sum: business_errors(sum, |err| SumResponse {
            v: 0,
            err: Some(err),
        }),
        concat: business_errors(concat, |err| ConcatResponse {
            v: String::new(),
            err: Some(err),
        }),
    };
    Ok(super::instance(set, options))
}

/// `client` with a 400 answer turned back into the response that carries its business error.
fn business_errors<Req, Resp>(
    client: Endpoint<Req, Resp>,
    failed: fn(ServiceError) -> Resp,
) -> Endpoint<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    endpoint_fn(move |req: Req| {
        // One clone of the client a call, made by `invoke`.
        let call = client.invoke(req);
        async move {
            match call.await {
                Ok(response) => Ok(response),
                Err(err) => match err.find::<ClientError>() {
                    Some(ClientError::Status {
                        status, message, ..
                    }) if status.as_u16() == 400 => Ok(failed(ServiceError::from_message(message))),
                    _ => Err(kit_core::Error::from(err)),
                },
            }
        }
    })
}
// ANCHOR_END: http
