//! The ceiling the gRPC load benchmark measures addsvc against: `pb.Add/Sum` doing the same
//! addition as addsvc (with its two-zeroes and overflow checks) in a bare tonic service, served
//! by tonic's own server, with none of kit-core's layers.
//!
//! Run with: `cargo run --release -p loadbench --bin bare-tonic -- 127.0.0.1:8082`

use addsvc::transport::grpc::pb::add_server::{Add, AddServer};
use addsvc::transport::grpc::pb::{ConcatReply, ConcatRequest, SumReply, SumRequest};
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
struct Bare;

#[tonic::async_trait]
impl Add for Bare {
    async fn sum(&self, request: Request<SumRequest>) -> Result<Response<SumReply>, Status> {
        let SumRequest { a, b } = request.into_inner();
        let max = i64::from(i32::MAX);
        let min = i64::from(i32::MIN);
        let reply = if a == 0 && b == 0 {
            SumReply {
                v: 0,
                err: "can't sum two zeroes".into(),
            }
        } else if (b > 0 && a > max - b) || (b < 0 && a < min - b) {
            SumReply {
                v: 0,
                err: "integer overflow".into(),
            }
        } else {
            SumReply {
                v: a + b,
                err: String::new(),
            }
        };
        Ok(Response::new(reply))
    }

    async fn concat(
        &self,
        request: Request<ConcatRequest>,
    ) -> Result<Response<ConcatReply>, Status> {
        let ConcatRequest { a, b } = request.into_inner();
        Ok(Response::new(ConcatReply {
            v: a + &b,
            err: String::new(),
        }))
    }
}

/// The services' allocator, so that the ceiling and the services differ only in what is
/// measured.
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit_core::allocator::purge_in_background();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8082".to_owned());
    let addr = match addr.parse() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("error: invalid address {addr:?}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served = tonic::transport::Server::builder()
        .add_service(AddServer::new(Bare))
        .serve(addr)
        .await;
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
