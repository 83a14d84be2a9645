//! Application logging: a service middleware that logs every call with the ids it names, as
//! Go kit's profilesvc does.

use std::time::Instant;

use kit_core::duration::GoDuration;
use kit_core::log::{Logger, or_null};

use crate::service::{Address, Profile, ProfileError, ProfileService};

// ANCHOR: middleware
/// Logs one line per call of the wrapped service: the method (Go kit's name for it), the ids
/// it was given, how long it took, and its error or `null`:
///
/// ```text
/// method=PostProfile id=1234 took=2.835µs err=null
/// method=GetAddress profileID=1234 addressID=home took=1.2µs err="not found"
/// ```
#[derive(Debug, Clone)]
pub struct LoggingMiddleware<S> {
    /// Where the lines go.
    pub logger: Logger,
    /// The service being logged.
    pub next: S,
}

impl<S> LoggingMiddleware<S> {
    /// Logs a call of `method` on profile `id`.
    fn profile<T>(&self, method: &str, id: &str, begin: Instant, result: &Result<T, ProfileError>) {
        self.logger.in_scope(|| {
            tracing::info!(
                method,
                id,
                took = %GoDuration(begin.elapsed()),
                err = %or_null(result.as_ref().err()),
            );
        });
    }

    /// Logs a call of `method` on the addresses of profile `profile_id`.
    fn addresses<T>(
        &self,
        method: &str,
        profile_id: &str,
        begin: Instant,
        result: &Result<T, ProfileError>,
    ) {
        self.logger.in_scope(|| {
            tracing::info!(
                method,
                profileID = profile_id,
                took = %GoDuration(begin.elapsed()),
                err = %or_null(result.as_ref().err()),
            );
        });
    }

    /// Logs a call of `method` on one address.
    fn address<T>(
        &self,
        method: &str,
        profile_id: &str,
        address_id: &str,
        begin: Instant,
        result: &Result<T, ProfileError>,
    ) {
        self.logger.in_scope(|| {
            tracing::info!(
                method,
                profileID = profile_id,
                addressID = address_id,
                took = %GoDuration(begin.elapsed()),
                err = %or_null(result.as_ref().err()),
            );
        });
    }
}
// ANCHOR_END: middleware

impl<S: ProfileService + Sync> ProfileService for LoggingMiddleware<S> {
    async fn post_profile(&self, profile: Profile) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let id = profile.id.clone();
        let result = self.next.post_profile(profile).await;
        self.profile("PostProfile", &id, begin, &result);
        result
    }

    async fn get_profile(&self, id: &str) -> Result<Profile, ProfileError> {
        let begin = Instant::now();
        let result = self.next.get_profile(id).await;
        self.profile("GetProfile", id, begin, &result);
        result
    }

    async fn put_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.put_profile(id, profile).await;
        self.profile("PutProfile", id, begin, &result);
        result
    }

    async fn patch_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.patch_profile(id, profile).await;
        self.profile("PatchProfile", id, begin, &result);
        result
    }

    async fn delete_profile(&self, id: &str) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.delete_profile(id).await;
        self.profile("DeleteProfile", id, begin, &result);
        result
    }

    async fn get_addresses(&self, profile_id: &str) -> Result<Vec<Address>, ProfileError> {
        let begin = Instant::now();
        let result = self.next.get_addresses(profile_id).await;
        self.addresses("GetAddresses", profile_id, begin, &result);
        result
    }

    async fn get_address(
        &self,
        profile_id: &str,
        address_id: &str,
    ) -> Result<Address, ProfileError> {
        let begin = Instant::now();
        let result = self.next.get_address(profile_id, address_id).await;
        self.address("GetAddress", profile_id, address_id, begin, &result);
        result
    }

    async fn post_address(&self, profile_id: &str, address: Address) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.post_address(profile_id, address).await;
        self.addresses("PostAddress", profile_id, begin, &result);
        result
    }

    async fn delete_address(&self, profile_id: &str, address_id: &str) -> Result<(), ProfileError> {
        let begin = Instant::now();
        let result = self.next.delete_address(profile_id, address_id).await;
        self.address("DeleteAddress", profile_id, address_id, begin, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::MemoryRepository;
    use crate::service::BasicProfileService;
    use kit_core::log::Format;

    #[tokio::test]
    async fn lines_are_go_kits() {
        let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        let svc = LoggingMiddleware {
            logger,
            next: BasicProfileService::new(MemoryRepository::new()),
        };
        let profile = Profile {
            id: "1234".into(),
            name: "Go Kit".into(),
            addresses: Vec::new(),
        };
        svc.post_profile(profile).await.expect("post");
        let _ = svc.get_address("1234", "home address").await;
        let _ = svc.get_addresses("nobody").await;
        let cut: Vec<String> = lines
            .lines()
            .iter()
            .map(|line| {
                let (head, tail) = line.split_once(" took=").expect("took");
                let err = tail.split_once(' ').map_or("", |(_, err)| err);
                format!("{head} {err}")
            })
            .collect();
        assert_eq!(
            cut,
            [
                "method=PostProfile id=1234 err=null",
                r#"method=GetAddress profileID=1234 addressID="home address" err="not found""#,
                r#"method=GetAddresses profileID=nobody err="not found""#,
            ]
        );
    }
}
