//! The Thrift client.

use kit_core::endpoint::endpoint_fn;
use kit_core::transport::thrift::{Config, Input, Output, Pool};

use super::{InstanceError, Options};
use crate::endpoint::{ConcatRequest, ConcatResponse, Set, SumRequest, SumResponse};
use crate::transport::grpc::reply_error;
use crate::transport::thrift::addsvc::{AddServiceSyncClient, TAddServiceSyncClient};

type Generated = AddServiceSyncClient<Input, Output>;

// ANCHOR: thrift
/// addsvc at `instance` (`host:port`) over Thrift, with `config`'s protocol and framing, which
/// must be the server's.
///
/// The reply's `err` comes back as the business error (Go kit's client ignores it); a failure
/// (an exception the server answered, a connection that failed) is the call's.
pub fn thrift(instance: &str, config: Config, options: &Options) -> Result<Set, InstanceError> {
    if !instance.contains(':') {
        return Err(InstanceError::new(instance, "expected host:port"));
    }
    let pool = Pool::new(instance, config, options.timeout, Generated::new);
    let sums = pool.clone();
    let sum = endpoint_fn(move |r: SumRequest| {
        let pool = sums.clone();
        async move {
            let reply = pool.call(move |client| client.sum(r.a, r.b)).await?;
            Ok::<_, kit_core::Error>(SumResponse {
                v: reply.value.unwrap_or_default(),
                err: reply_error(reply.err.unwrap_or_default()),
            })
        }
    });
    let concat = endpoint_fn(move |r: ConcatRequest| {
        let pool = pool.clone();
        async move {
            let reply = pool.call(move |client| client.concat(r.a, r.b)).await?;
            Ok::<_, kit_core::Error>(ConcatResponse {
                v: reply.value.unwrap_or_default(),
                err: reply_error(reply.err.unwrap_or_default()),
            })
        }
    });
    Ok(super::instance(Set { sum, concat }, options))
}
// ANCHOR_END: thrift
