//! Instrumentation: a service middleware that counts and times every call, for Prometheus, as
//! the other services of the workspace do.

use std::time::Instant;

use kit_core::metrics::{Registry, RequestMetrics};

use crate::service::{Address, Profile, ProfileError, ProfileService};

/// The namespace and subsystem of every metric: `my_group` and `profile_service`, after the
/// string service's `my_group_string_service`.
pub const NAMESPACE: &str = "my_group_profile_service";

// ANCHOR: metrics
/// The metrics the middleware records, one pair per method:
///
/// - `my_group_profile_service_requests_total{method, error}`: calls;
/// - `my_group_profile_service_request_duration_seconds{method, error}`: their durations.
///
/// `method` is Go kit's name for the method (`PostProfile`, `GetAddress`, ...), and `error` is
/// `"true"` when the call failed, whatever the reason (not found included).
#[derive(Debug, Clone)]
pub struct Metrics {
    post_profile: RequestMetrics,
    get_profile: RequestMetrics,
    put_profile: RequestMetrics,
    patch_profile: RequestMetrics,
    delete_profile: RequestMetrics,
    get_addresses: RequestMetrics,
    get_address: RequestMetrics,
    post_address: RequestMetrics,
    delete_address: RequestMetrics,
}

impl Metrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let method = |name: &str| RequestMetrics::new(registry, NAMESPACE, name);
        Metrics {
            post_profile: method("PostProfile"),
            get_profile: method("GetProfile"),
            put_profile: method("PutProfile"),
            patch_profile: method("PatchProfile"),
            delete_profile: method("DeleteProfile"),
            get_addresses: method("GetAddresses"),
            get_address: method("GetAddress"),
            post_address: method("PostAddress"),
            delete_address: method("DeleteAddress"),
        }
    }
}
// ANCHOR_END: metrics

/// Records [`Metrics`] for every call of the wrapped service.
#[derive(Debug, Clone)]
pub struct InstrumentingMiddleware<S> {
    /// Where the numbers go.
    pub metrics: Metrics,
    /// The service being measured.
    pub next: S,
}

/// Records one call in `metrics` and passes its result on.
fn record<T>(
    metrics: &RequestMetrics,
    begin: Instant,
    result: Result<T, ProfileError>,
) -> Result<T, ProfileError> {
    metrics.record(result.is_err(), begin.elapsed());
    result
}

impl<S: ProfileService + Sync> ProfileService for InstrumentingMiddleware<S> {
    async fn post_profile(&self, profile: Profile) -> Result<(), ProfileError> {
        let begin = Instant::now();
        record(
            &self.metrics.post_profile,
            begin,
            self.next.post_profile(profile).await,
        )
    }

    async fn get_profile(&self, id: &str) -> Result<Profile, ProfileError> {
        let begin = Instant::now();
        record(
            &self.metrics.get_profile,
            begin,
            self.next.get_profile(id).await,
        )
    }

    async fn put_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let begin = Instant::now();
        record(
            &self.metrics.put_profile,
            begin,
            self.next.put_profile(id, profile).await,
        )
    }

    async fn patch_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let begin = Instant::now();
        record(
            &self.metrics.patch_profile,
            begin,
            self.next.patch_profile(id, profile).await,
        )
    }

    async fn delete_profile(&self, id: &str) -> Result<(), ProfileError> {
        let begin = Instant::now();
        record(
            &self.metrics.delete_profile,
            begin,
            self.next.delete_profile(id).await,
        )
    }

    async fn get_addresses(&self, profile_id: &str) -> Result<Vec<Address>, ProfileError> {
        let begin = Instant::now();
        record(
            &self.metrics.get_addresses,
            begin,
            self.next.get_addresses(profile_id).await,
        )
    }

    async fn get_address(
        &self,
        profile_id: &str,
        address_id: &str,
    ) -> Result<Address, ProfileError> {
        let begin = Instant::now();
        let result = self.next.get_address(profile_id, address_id).await;
        record(&self.metrics.get_address, begin, result)
    }

    async fn post_address(&self, profile_id: &str, address: Address) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.post_address(profile_id, address).await;
        record(&self.metrics.post_address, begin, result)
    }

    async fn delete_address(&self, profile_id: &str, address_id: &str) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.delete_address(profile_id, address_id).await;
        record(&self.metrics.delete_address, begin, result)
    }
}
