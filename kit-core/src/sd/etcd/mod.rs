//! Service discovery on etcd v3 (Go kit's `sd/etcdv3`): services put their address under a key
//! that lives as long as they do, and clients watch the keys.
//!
//! The key layout is `/services/<service>/<address>`, with the address as the value
//! ([`key`], [`prefix`]): `/services/addsvc/127.0.0.1:8082` → `127.0.0.1:8082`. The value is
//! what clients dial, so an instance's key and value say the same thing, and the key is unique
//! per instance.
//!
//! - A [`Registrar`] puts an instance's key under a lease with a time to live, keeps the lease
//!   alive while the process runs, and deletes the key when asked to
//!   ([`deregister`](Registrar::deregister), on a graceful shutdown). A process that dies
//!   without deregistering stops renewing the lease, and etcd deletes the key when the time to
//!   live runs out. When etcd is unreachable, the registrar tries again with [`Backoff`], and
//!   puts the key back under a new lease once etcd answers.
//! - An [`Instancer`] reads every key under a service's prefix, then follows a watch on it,
//!   publishing each new set of instances to its subscribers (the
//!   [`Endpointer`](crate::sd::Endpointer)s). When etcd is unreachable it publishes the error,
//!   which endpointers answer by keeping the endpoints they have, and reconnects with
//!   [`Backoff`]: reading all the keys again, then watching from there.
//!
//! | Go kit (`sd/etcdv3`) | kit-core |
//! |---|---|
//! | `etcdv3.NewClient(ctx, machines, options)` | [`Client::new`] |
//! | `etcdv3.NewInstancer(client, prefix, logger)` | [`Instancer::new`] |
//! | `etcdv3.NewRegistrar(client, service, logger)`, `Register`, `Deregister` | [`Registrar::start`], [`Registrar::deregister`] |
//! | `etcdv3.Service{Key, Value, TTL}` | [`key`] and the address, and a time to live |
//!
//! With the `cli` feature, [`RegisterArgs`] are the flags a service takes to register itself
//! (`--etcd`, `--etcd-ttl`, `--etcd-advertise`), and [`Registration`] is the `run::Program`
//! hook that registers once the listeners are bound and deregisters on SIGTERM or Ctrl-C,
//! before the drain.
//!
//! The client speaks etcd's own gRPC API (its KV, Watch and Lease services), compiled from
//! etcd's `.proto` files by `build.rs`.

mod backoff;
#[cfg(feature = "cli")]
mod cli;
mod client;
mod instancer;
mod registrar;

pub use backoff::Backoff;
#[cfg(feature = "cli")]
pub use cli::{RegisterArgs, Registration};
pub use client::{Client, EtcdError};
pub use instancer::Instancer;
pub use registrar::Registrar;

/// The gRPC code generated from etcd's `.proto` files.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
mod pb {
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

/// The prefix under which `service`'s instances register: `/services/<service>/`.
pub fn prefix(service: &str) -> String {
    format!("/services/{service}/")
}

/// The key of one instance of `service` at `address`: `/services/<service>/<address>`.
pub fn key(service: &str, address: &str) -> String {
    format!("{}{address}", prefix(service))
}

#[cfg(test)]
mod tests;
