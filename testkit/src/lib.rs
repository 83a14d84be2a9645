//! Test scaffolding shared by the workspace's crates.
//!
//! - [`process`]: start a real binary, wait until it listens, stop it with a signal and check
//!   its exit status;
//! - [`http`]: serve a router in-process on a real socket, send requests and read answers;
//! - [`book`]: the tutorial's pages, their code blocks and their includes;
//! - [`transcript`]: run the tutorial's shell transcripts against the real binaries;
//! - [`tools`]: tools the checks need, such as `promtool`;
//! - [`otlp`]: an OpenTelemetry trace receiver (a real OTLP/gRPC server) and a collector that is down.
//! - [`etcd`]: a real etcd server on free ports, stopped and restarted at will.
//!
//! The tutorial promises that its code and its shell sessions are the real thing; these are the
//! checks that keep that promise.

pub mod book;
pub mod etcd;
pub mod http;
pub mod otlp;
pub mod process;
pub mod tools;
pub mod transcript;
