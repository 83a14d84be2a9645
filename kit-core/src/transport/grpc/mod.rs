//! Endpoints over gRPC: a [`Server`] that answers a tonic service method with an endpoint, a
//! [`Client`] that calls a remote method as an endpoint, and [`serve`], the accept loop that
//! drains with the process's other listeners.
//!
//! This is Go kit's `transport/grpc`, on tonic:
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `grpctransport.NewServer(e, dec, enc, opts...)` | [`Server::new`], called from the tonic service trait's method |
//! | `ServerBefore` (metadata into the context) | [`Server::before`]; the deadline and request id are read by [`propagation`] |
//! | `ServerErrorHandler` | [`Server::error_handler`] |
//! | an endpoint error becomes status `Unknown` | the error's [kind](crate::error::ErrorKind) becomes its [code](code_for): `ResourceExhausted`, `Unavailable`, `DeadlineExceeded`… |
//! | `grpctransport.NewClient(conn, service, method, enc, dec, reply)` | [`Client::new`] |
//! | `grpc.NewServer()` + `Serve(lis)` | tonic's `Routes`, served by [`serve`] until a [`Shutdown`](crate::shutdown::Shutdown) |
//!
//! The generated code stays tonic's: `build.rs` compiles the `.proto` file (with `protox`, so no
//! system `protoc` is needed) and a service implements the generated trait by handing each
//! request to a [`Server`]:
//!
//! ```ignore
//! #[tonic::async_trait]
//! impl pb::add_server::Add for GrpcServer {
//!     async fn sum(&self, request: Request<SumRequest>) -> Result<Response<SumReply>, Status> {
//!         self.sum.serve(request).await
//!     }
//! }
//! ```
//!
//! Generate the code with [`Codec`] as its codec (`codec_path("kit_core::transport::grpc::Codec")`)
//! so that a message that cannot be decoded is the caller's `InvalidArgument`, not the
//! `Internal` that tonic's own codec answers.

mod client;
mod codec;
pub mod propagation;
mod serve;
mod server;
mod status;

pub use client::{Client, RemoteError, channel};
pub use codec::{Codec, Decoder, Encoder};
pub use serve::{DEFAULT_MAX_CONNECTIONS, HANDSHAKE_TIMEOUT, ServeOptions, serve, serve_with};
pub use server::{Panicked, Server};
pub use status::{code_for, kind_of_code, status};
