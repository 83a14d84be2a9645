//! Endpoints over Thrift: [`serve`] runs a Thrift processor (the code the Thrift compiler
//! generates for a service) on a listener, and a [`Pool`] of connections calls one.
//!
//! Go kit has no Thrift transport, only a README: a service binds the generated processor to its
//! endpoints itself, as addsvc does, and serves it with Thrift's `TSimpleServer`, one connection
//! at a time. The [`thrift`] crate's I/O is synchronous, so neither side may run it on the
//! async runtime's threads, where a slow peer would stall every other request:
//!
//! - [`serve`] accepts on the runtime, then gives each connection a thread of its own, up to
//!   [`Config::max_connections`] at once; a handler on that thread reaches the endpoints with
//!   [`tokio::runtime::Handle::block_on`]. A connection that sends garbage, or nothing for
//!   [`Config::idle_timeout`], is closed, and nothing else is disturbed. A drain closes the
//!   idle connections at once and lets the busy ones answer first.
//! - [`Pool`] runs each call on tokio's blocking threads, with the call's deadline as the
//!   socket's timeouts, and keeps connections that ended cleanly for the next call.
//!
//! Both speak the [`Protocol`] and [`Framing`] given, as Go kit's flags choose them: the binary
//! protocol or the compact one, and plain, buffered or framed transport. Go's JSON protocols do
//! not exist in the Rust crate: [`Protocol`]'s parser refuses them by name.
//!
//! | Go kit / Thrift | kit-core |
//! |---|---|
//! | `thrift.NewTSimpleServer4(processor, socket, transport, protocol)` | [`serve`] with a [`Config`] |
//! | `-thrift-protocol binary\|compact` | [`Protocol`] |
//! | `-thrift-buffer N`, `-thrift-framed` | [`Framing`] |
//! | a handler's error → `TApplicationException` `INTERNAL_ERROR` | [`application_error`] |

mod client;
mod error;
mod io;
mod serve;

pub use client::Pool;
pub use error::application_error;
pub use io::{Config, Framing, Input, Output, Protocol, UnknownProtocol};
pub use serve::serve;
