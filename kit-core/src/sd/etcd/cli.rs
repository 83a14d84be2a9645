//! The flags that register a service's instance in etcd, and the [`Hook`] that does it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{Client, Registrar, key};
use crate::duration;
use crate::error::BoxError;
use crate::listen::ListenAddr;
use crate::run::Hook;

/// `--etcd`, `--etcd-ttl` and `--etcd-advertise`: where and how an instance registers itself.
#[derive(Debug, Clone, clap::Args)]
pub struct RegisterArgs {
    /// etcd endpoints to register this instance with, comma-separated host:port. The key is
    /// /services/SERVICE/HOST:PORT, its value HOST:PORT. Without it, nothing is registered.
    #[arg(long, value_name = "ENDPOINTS", default_value = "")]
    pub etcd: String,

    /// How long the registration outlives an instance that stops without deregistering (killed,
    /// say), in whole seconds: the time to live of its etcd lease.
    #[arg(long = "etcd-ttl", value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub etcd_ttl: Duration,

    /// The host others reach this instance at. Default: the host it listens on, or 127.0.0.1
    /// when it listens on every interface.
    #[arg(long = "etcd-advertise", value_name = "HOST", default_value = "")]
    pub etcd_advertise: String,
}

impl RegisterArgs {
    /// The registration these flags ask for, as `service`, of the address of the program's
    /// `listener`-th listener (counting from 0 in the order they are added); `None` without
    /// `--etcd`. Must be called within a tokio runtime.
    pub fn registration(
        &self,
        service: &str,
        listener: usize,
    ) -> Result<Option<Registration>, BoxError> {
        if self.etcd.trim().is_empty() {
            return Ok(None);
        }
        if self.etcd_ttl < Duration::from_secs(1) {
            return Err("--etcd-ttl: must be at least 1s".into());
        }
        let client = Client::new(&self.etcd).map_err(|e| format!("--etcd: {e}"))?;
        Ok(Some(Registration {
            client,
            service: service.to_owned(),
            listener,
            ttl: self.etcd_ttl,
            advertise: self.etcd_advertise.trim().to_owned(),
            registrar: None,
        }))
    }
}

/// An instance's registration in etcd, as a program [`Hook`]: it registers the address of one
/// listener once it is bound, and deregisters as soon as the program is asked to stop, before
/// the drain.
#[derive(Debug)]
pub struct Registration {
    client: Client,
    service: String,
    listener: usize,
    ttl: Duration,
    advertise: String,
    registrar: Option<Registrar>,
}

impl Registration {
    /// The address registered for a listener bound to `bound`.
    fn address(&self, bound: &ListenAddr) -> String {
        let host = match (self.advertise.as_str(), bound.host()) {
            ("", None | Some("" | "0.0.0.0" | "::" | "[::]")) => "127.0.0.1",
            ("", Some(host)) => host,
            (advertised, _) => advertised,
        };
        format!("{host}:{}", bound.port())
    }
}

impl Hook for Registration {
    fn started(&mut self, bound: &[ListenAddr]) {
        let Some(addr) = bound.get(self.listener) else {
            tracing::warn!(service = self.service.as_str(), "no listener to register");
            return;
        };
        let address = self.address(addr);
        self.registrar = Some(Registrar::start(
            self.client.clone(),
            key(&self.service, &address),
            address,
            self.ttl,
        ));
    }

    fn stopping(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Some(registrar) = &self.registrar {
                registrar.deregister().await;
            }
        })
    }
}
