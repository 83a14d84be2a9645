//! The JSON-RPC client.

use kit_core::transport::http::{Pool, Url};
use kit_core::transport::jsonrpc::{Client, ErrorObject, decode_result};
use serde_json::Value;

use super::{InstanceError, Options};
use crate::endpoint::{ConcatRequest, ConcatResponse, Set, SumRequest, SumResponse};
use crate::service::ServiceError;

/// The codes our server gives business errors: invalid argument and out of range.
const BUSINESS_CODES: [i64; 2] = [-32003, -32011];

// ANCHOR: jsonrpc
/// addsvc at `instance` over JSON-RPC (`host:port` or a URL, `http://` added when missing).
///
/// An error object with a business error's code comes back as that [`ServiceError`]; any other
/// is the call's failure, of the kind its code says. (Go kit's server answers business errors
/// as a result of zero; from such a server they read as zero, as with Go kit's client.)
pub fn jsonrpc(instance: &str, options: &Options) -> Result<Set, InstanceError> {
    let url = if instance.contains("://") {
        instance.to_owned()
    } else {
        format!("http://{instance}")
    };
    let url = Url::parse(&url).map_err(|e| InstanceError::new(instance, e))?;
    let pool = Pool::with_connect_timeout(options.timeout);
    let sum = Client::new(
        pool.clone(),
        url.clone(),
        "sum",
        |r: SumRequest| Ok(serde_json::to_value(r)?),
        |answer| match business(answer) {
            Ok(answer) => decode_result::<SumResponse>(answer),
            Err(err) => Ok(SumResponse {
                v: 0,
                err: Some(err),
            }),
        },
    );
    let concat = Client::new(
        pool,
        url,
        "concat",
        |r: ConcatRequest| Ok(serde_json::to_value(r)?),
        |answer| match business(answer) {
            Ok(answer) => decode_result::<ConcatResponse>(answer),
            Err(err) => Ok(ConcatResponse {
                v: String::new(),
                err: Some(err),
            }),
        },
    );
    let set = Set {
        sum: sum.endpoint(),
        concat: concat.endpoint(),
    };
    Ok(super::instance(set, options))
}

/// The answer, or the business error it carries.
fn business(
    answer: Result<Value, ErrorObject>,
) -> Result<Result<Value, ErrorObject>, ServiceError> {
    match answer {
        Err(error) if BUSINESS_CODES.contains(&error.code) => {
            Err(ServiceError::from_message(&error.message))
        }
        answer => Ok(answer),
    }
}
// ANCHOR_END: jsonrpc
