//! Balancers: which endpoint serves the next call.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::endpoint::Endpoint;
use crate::error::{BoxError, Classify, Error, ErrorKind};
use crate::sd::Endpointer;

/// Picks the endpoint for one call (Go kit's `lb.Balancer`).
pub trait Balancer<Req, Resp>: Send + Sync + 'static {
    /// The endpoint to call, or [`NoEndpoints`] (or the discovery error) when there is none.
    fn endpoint(&self) -> Result<Endpoint<Req, Resp>, BoxError> {
        self.pick(None).map(|(_, endpoint)| endpoint)
    }

    /// Picks an endpoint and says where it stands in the endpointer's list. For a retry,
    /// `after` is the previous attempt's position: the balancers here then pick another
    /// endpoint, so that the attempts of one call go to distinct instances while there are
    /// enough, however other calls interleave.
    fn pick(&self, after: Option<usize>) -> Result<(usize, Endpoint<Req, Resp>), BoxError>;
}

/// There was no endpoint to pick: discovery found no instances, or none could be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no endpoints available")]
pub struct NoEndpoints;

impl Classify for NoEndpoints {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// Takes the endpoints in turn (Go kit's `lb.NewRoundRobin`): the first call goes to the first
/// instance in the endpointer's order, the next to the second, and so on, wrapping around.
pub struct RoundRobin<Req, Resp> {
    endpointer: Endpointer<Req, Resp>,
    next: AtomicUsize,
}

impl<Req, Resp> RoundRobin<Req, Resp> {
    /// Balances over `endpointer`'s endpoints.
    pub fn new(endpointer: Endpointer<Req, Resp>) -> Self {
        RoundRobin {
            endpointer,
            next: AtomicUsize::new(0),
        }
    }
}

impl<Req, Resp> Balancer<Req, Resp> for RoundRobin<Req, Resp>
where
    Req: 'static,
    Resp: 'static,
{
    fn pick(&self, after: Option<usize>) -> Result<(usize, Endpoint<Req, Resp>), BoxError> {
        let endpoints = self.endpointer.endpoints()?;
        if endpoints.is_empty() {
            return Err(Error::from(NoEndpoints).into());
        }
        // A retry takes the instance after the previous attempt's rather than the shared
        // counter's next, which concurrent calls may have moved back onto a failing instance.
        let at = match after {
            Some(previous) => (previous + 1) % endpoints.len(),
            None => self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len(),
        };
        Ok((at, endpoints[at].clone()))
    }
}

impl<Req, Resp> fmt::Debug for RoundRobin<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobin")
            .field("endpointer", &self.endpointer)
            .field("next", &self.next)
            .finish()
    }
}

/// Picks an endpoint at random (Go kit's `lb.NewRandom`), from a seeded sequence so that a test
/// can repeat it.
pub struct Random<Req, Resp> {
    endpointer: Endpointer<Req, Resp>,
    state: AtomicU64,
}

impl<Req, Resp> Random<Req, Resp> {
    /// Balances over `endpointer`'s endpoints, picking with a generator seeded by `seed`.
    pub fn new(endpointer: Endpointer<Req, Resp>, seed: u64) -> Self {
        Random {
            endpointer,
            state: AtomicU64::new(seed),
        }
    }

    /// The next number of the SplitMix64 sequence: statistically sound for picking, lock-free,
    /// and reproducible from its seed.
    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl<Req, Resp> Balancer<Req, Resp> for Random<Req, Resp>
where
    Req: 'static,
    Resp: 'static,
{
    fn pick(&self, after: Option<usize>) -> Result<(usize, Endpoint<Req, Resp>), BoxError> {
        let endpoints = self.endpointer.endpoints()?;
        let len = endpoints.len() as u64;
        if len == 0 {
            return Err(Error::from(NoEndpoints).into());
        }
        // The modulo bias is below 2^-50 for any realistic number of instances.
        let at = match after {
            // Any endpoint but the previous attempt's.
            Some(previous) if len > 1 => (previous as u64 + 1 + self.next_u64() % (len - 1)) % len,
            _ => self.next_u64() % len,
        } as usize;
        Ok((at, endpoints[at].clone()))
    }
}

impl<Req, Resp> fmt::Debug for Random<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Random")
            .field("endpointer", &self.endpointer)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EndpointExt, endpoint_fn};
    use crate::sd::{Broadcaster, FixedInstancer};

    fn endpointer(instancer: &impl crate::sd::Instancer) -> Endpointer<(), String> {
        Endpointer::new(instancer, |instance: &str| {
            let name = instance.to_owned();
            let endpoint: Endpoint<(), String> = endpoint_fn(move |()| {
                let name = name.clone();
                async move { Ok::<_, BoxError>(name) }
            });
            Ok::<_, BoxError>(endpoint)
        })
    }

    async fn picks(balancer: &impl Balancer<(), String>, n: usize) -> Vec<String> {
        let mut picked = Vec::new();
        for _ in 0..n {
            let endpoint = balancer.endpoint().expect("an endpoint");
            picked.push(endpoint.invoke(()).await.expect("an answer"));
        }
        picked
    }

    #[tokio::test]
    async fn round_robin_starts_with_the_first_instance_and_wraps() {
        let balancer = RoundRobin::new(endpointer(&FixedInstancer::new([
            ":8001", ":8002", ":8003",
        ])));
        assert_eq!(
            picks(&balancer, 4).await,
            [":8001", ":8002", ":8003", ":8001"]
        );
    }

    #[tokio::test]
    async fn random_reaches_every_instance_and_repeats_with_its_seed() {
        let instancer = FixedInstancer::new(["a", "b", "c"]);
        let first = picks(&Random::new(endpointer(&instancer), 7), 60).await;
        let again = picks(&Random::new(endpointer(&instancer), 7), 60).await;
        assert_eq!(first, again);
        for name in ["a", "b", "c"] {
            let hits = first.iter().filter(|p| *p == name).count();
            assert!((10..=30).contains(&hits), "{name}: {hits} of 60");
        }
    }

    #[tokio::test]
    async fn a_retry_pick_takes_another_endpoint() {
        let instancer = FixedInstancer::new(["a", "b", "c"]);
        let round_robin = RoundRobin::new(endpointer(&instancer));
        // Other calls moving the shared counter do not matter to a retry's pick.
        round_robin.endpoint().expect("a");
        assert_eq!(round_robin.pick(Some(0)).expect("b").0, 1);
        assert_eq!(round_robin.pick(Some(2)).expect("a").0, 0);
        let random = Random::new(endpointer(&instancer), 3);
        for previous in [0, 1, 2].repeat(20) {
            assert_ne!(random.pick(Some(previous)).expect("another").0, previous);
        }
    }

    #[tokio::test]
    async fn no_instances_means_no_endpoints() {
        let broadcaster = Broadcaster::new();
        let balancer = RoundRobin::new(endpointer(&broadcaster));
        let err = balancer.endpoint().expect_err("nothing to pick");
        assert!(crate::error::ErrorExt::find::<NoEndpoints>(err.as_ref()).is_some());
        assert_eq!(err.to_string(), "no endpoints available");
        broadcaster.publish(["x"]);
        assert_eq!(picks(&balancer, 1).await, ["x"]);
    }
}
