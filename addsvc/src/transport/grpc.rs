//! gRPC: Go kit's `pb.Add` service, `Sum` and `Concat`, with the standard health service and
//! server reflection beside it.

use kit_core::log::Logger;
use kit_core::transport::grpc::Server;
use tonic::service::Routes;
use tonic::{Request, Response, Status};
use tonic_health::server::HealthReporter;

use crate::endpoint::{ConcatRequest, ConcatResponse, Set, SumRequest, SumResponse};
use crate::service::ServiceError;

/// The code generated from `proto/addsvc.proto` (by `build.rs`): messages, the server trait,
/// the client.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("pb");

    /// The file descriptor set of `addsvc.proto`, which the reflection service serves.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("addsvc_descriptor");
}

/// The largest request message accepted, in bytes; larger ones are refused before they are
/// decoded, with tonic's `OutOfRange`.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

// ANCHOR: codecs
/// A Sum request message as the endpoint's request.
pub fn decode_sum_request(m: pb::SumRequest) -> Result<SumRequest, kit_core::BoxError> {
    Ok(SumRequest { a: m.a, b: m.b })
}

/// A Sum response as its reply message: the business error, if any, in `err`, as Go kit.
pub fn encode_sum_reply(r: SumResponse) -> Result<pb::SumReply, kit_core::BoxError> {
    Ok(pb::SumReply {
        v: r.v,
        err: r.err.map(|e| e.to_string()).unwrap_or_default(),
    })
}

/// A Concat request message as the endpoint's request.
pub fn decode_concat_request(m: pb::ConcatRequest) -> Result<ConcatRequest, kit_core::BoxError> {
    Ok(ConcatRequest { a: m.a, b: m.b })
}

/// A Concat response as its reply message.
pub fn encode_concat_reply(r: ConcatResponse) -> Result<pb::ConcatReply, kit_core::BoxError> {
    Ok(pb::ConcatReply {
        v: r.v,
        err: r.err.map(|e| e.to_string()).unwrap_or_default(),
    })
}

/// A reply's `err` as the service's error: empty is none, as Go kit's clients read it.
pub fn reply_error(err: String) -> Option<ServiceError> {
    (!err.is_empty()).then(|| ServiceError::from_message(&err))
}
// ANCHOR_END: codecs

// ANCHOR: server
/// The `pb.Add` service, each method answered by its endpoint through kit-core's gRPC server.
#[derive(Debug, Clone)]
pub struct GrpcServer {
    sum: Server<pb::SumRequest, pb::SumReply, SumRequest, SumResponse>,
    concat: Server<pb::ConcatRequest, pb::ConcatReply, ConcatRequest, ConcatResponse>,
}

impl GrpcServer {
    /// The service for `set`, logging errors to `logger`.
    pub fn new(set: &Set, logger: &Logger) -> Self {
        let log_error = {
            let logger = logger.clone();
            move |err: &kit_core::BoxError| {
                logger.in_scope(|| tracing::warn!(transport = "gRPC", err = %err));
            }
        };
        GrpcServer {
            sum: Server::new(set.sum.clone(), decode_sum_request, encode_sum_reply)
                .method("/pb.Add/Sum")
                .error_handler(log_error.clone()),
            concat: Server::new(
                set.concat.clone(),
                decode_concat_request,
                encode_concat_reply,
            )
            .method("/pb.Add/Concat")
            .error_handler(log_error),
        }
    }
}

#[tonic::async_trait]
impl pb::add_server::Add for GrpcServer {
    async fn sum(
        &self,
        request: Request<pb::SumRequest>,
    ) -> Result<Response<pb::SumReply>, Status> {
        self.sum.serve(request).await
    }

    async fn concat(
        &self,
        request: Request<pb::ConcatRequest>,
    ) -> Result<Response<pb::ConcatReply>, Status> {
        self.concat.serve(request).await
    }
}
// ANCHOR_END: server

// ANCHOR: routes
/// Everything the gRPC listener serves: `pb.Add`, the health service (`grpc.health.v1.Health`,
/// `SERVING` for `pb.Add` until the drain starts) and server reflection (v1 and v1alpha), so
/// that standard tools (`grpcurl`, `grpc_health_probe`) work without the `.proto` file.
pub async fn routes(
    set: &Set,
    logger: &Logger,
) -> Result<(Routes, HealthReporter), kit_core::BoxError> {
    let add = pb::add_server::AddServer::new(GrpcServer::new(set, logger))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::add_server::AddServer<GrpcServer>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    let routes = Routes::new(add)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha);
    Ok((routes, health))
}
// ANCHOR_END: routes
