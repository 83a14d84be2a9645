//! The gRPC client.

use kit_core::transport::grpc::{Client, channel};

use super::{InstanceError, Options};
use crate::endpoint::{ConcatRequest, ConcatResponse, Set, SumRequest, SumResponse};
use crate::transport::grpc::{pb, reply_error};

// ANCHOR: grpc
/// addsvc at `instance` (`host:port`) over gRPC, on one HTTP/2 connection made on the first
/// call. Needs a Tokio runtime.
///
/// A reply whose `err` is set comes back as that business error; a failed call is an error of
/// the kind its status code says (`ResourceExhausted` for the server's rate limit).
pub fn grpc(instance: &str, options: &Options) -> Result<Set, InstanceError> {
    let uri = if instance.contains("://") {
        instance.to_owned()
    } else {
        format!("http://{instance}")
    };
    let channel = channel(&uri, options.timeout).map_err(|e| InstanceError::new(instance, e))?;
    let sum = Client::new(
        channel.clone(),
        "/pb.Add/Sum",
        |r: SumRequest| Ok(pb::SumRequest { a: r.a, b: r.b }),
        |m: pb::SumReply| {
            Ok(SumResponse {
                v: m.v,
                err: reply_error(m.err),
            })
        },
    );
    let concat = Client::new(
        channel,
        "/pb.Add/Concat",
        |r: ConcatRequest| Ok(pb::ConcatRequest { a: r.a, b: r.b }),
        |m: pb::ConcatReply| {
            Ok(ConcatResponse {
                v: m.v,
                err: reply_error(m.err),
            })
        },
    );
    let set = Set {
        sum: sum.endpoint(),
        concat: concat.endpoint(),
    };
    Ok(super::instance(set, options))
}
// ANCHOR_END: grpc
