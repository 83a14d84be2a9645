//! The first stage of the Go kit tutorial: a string service with JSON over HTTP.
//!
//! Run with: `cargo run -p stringsvc1`, then
//!
//! ```text
//! $ curl -XPOST -d'{"s":"hello, world"}' localhost:8080/uppercase
//! {"v":"HELLO, WORLD","err":null}
//! ```
//!
//! The crate shows the three layers of a Go kit service, one module each:
//!
//! - [`service`]: the business logic, [`StringService`](service::StringService);
//! - [`endpoint`]: one endpoint per method, with its request and response types;
//! - [`transport`]: the HTTP routes and codecs, [`transport::app`].
//!
//! [`cli`] and the binary wire them to a socket. Later stages of the tutorial depend on this
//! crate and add their own layer around the same service.

pub mod cli;
pub mod endpoint;
pub mod service;
pub mod transport;
