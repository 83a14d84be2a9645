//! The business logic: profiles and their addresses, and the rules for changing them, with no
//! idea of how they are reached or where they are kept.

use std::future::Future;

use kit_core::error::{Classify, Error, ErrorKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::repository::Repository;

// ANCHOR: model
/// A user's profile: an id, a name and addresses (Go kit's `Profile`).
///
/// On the wire, `name` and `addresses` are left out when empty, as Go's `omitempty` does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Profile {
    /// The profile's id: any text but the empty string.
    #[schema(required = true, min_length = 1)]
    pub id: String,
    /// The profile's name. (`null` reads as empty, as in Go.)
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(nullable)]
    pub name: String,
    /// The profile's addresses, in the order they were added. (`null` reads as none.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable)]
    pub addresses: Vec<Address>,
}

/// One address of a profile (Go kit's `Address`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Address {
    /// The address's id, unique within its profile: any text but the empty string.
    #[schema(required = true, min_length = 1)]
    pub id: String,
    /// Where it is. (`null` reads as empty.)
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(nullable)]
    pub location: String,
}
// ANCHOR_END: model

// ANCHOR: error
/// What can go wrong with a profile: Go kit's three errors, a request that names nothing, and
/// a failure of what lies behind the service (its store, or the instances a client calls).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile (or address) with that id.
    #[error("not found")]
    NotFound,
    /// A profile (or an address of the profile) with that id exists already.
    #[error("already exists")]
    AlreadyExists,
    /// The id in the path and the id in the body differ.
    #[error("inconsistent IDs")]
    InconsistentIds,
    /// The request is wrong in another way, such as an empty id; the text says how.
    #[error("{0}")]
    Invalid(String),
    /// The store, or a remote instance, failed; the error keeps its own kind (a store that
    /// stays locked is `Unavailable`, a bug is `Internal`).
    #[error(transparent)]
    Backend(Error),
}

impl Classify for ProfileError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProfileError::NotFound => ErrorKind::NotFound,
            ProfileError::AlreadyExists => ErrorKind::AlreadyExists,
            ProfileError::InconsistentIds | ProfileError::Invalid(_) => ErrorKind::InvalidArgument,
            ProfileError::Backend(error) => error.kind(),
        }
    }
}
// ANCHOR_END: error

impl ProfileError {
    /// A copy of a business error; `None` for [`Backend`](Self::Backend), which holds an error
    /// that cannot be copied.
    pub fn business(&self) -> Option<ProfileError> {
        match self {
            ProfileError::NotFound => Some(ProfileError::NotFound),
            ProfileError::AlreadyExists => Some(ProfileError::AlreadyExists),
            ProfileError::InconsistentIds => Some(ProfileError::InconsistentIds),
            ProfileError::Invalid(why) => Some(ProfileError::Invalid(why.clone())),
            ProfileError::Backend(_) => None,
        }
    }
}

// ANCHOR: trait
/// Profiles and their addresses (Go kit's `profilesvc.Service`).
///
/// The methods are asynchronous because implementations wait: on a database, or on another
/// instance over HTTP (the [`client`](crate::client) package implements this trait too).
pub trait ProfileService {
    /// Stores a new profile; fails with [`ProfileError::AlreadyExists`] if its id is taken.
    fn post_profile(
        &self,
        profile: Profile,
    ) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// The profile with this id.
    fn get_profile(&self, id: &str) -> impl Future<Output = Result<Profile, ProfileError>> + Send;

    /// Stores `profile` under `id`, creating it or replacing it whole; `profile.id` must be
    /// `id`.
    fn put_profile(
        &self,
        id: &str,
        profile: Profile,
    ) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// Changes the profile with this id: the name, if `profile` has one; the addresses, all of
    /// them, if `profile` has any. `profile.id` must be empty or `id`.
    fn patch_profile(
        &self,
        id: &str,
        profile: Profile,
    ) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// Deletes the profile with this id.
    fn delete_profile(&self, id: &str) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// The addresses of a profile.
    fn get_addresses(
        &self,
        profile_id: &str,
    ) -> impl Future<Output = Result<Vec<Address>, ProfileError>> + Send;

    /// One address of a profile.
    fn get_address(
        &self,
        profile_id: &str,
        address_id: &str,
    ) -> impl Future<Output = Result<Address, ProfileError>> + Send;

    /// Adds an address to a profile; fails with [`ProfileError::AlreadyExists`] if the
    /// profile has one with that id.
    fn post_address(
        &self,
        profile_id: &str,
        address: Address,
    ) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// Deletes an address of a profile.
    fn delete_address(
        &self,
        profile_id: &str,
        address_id: &str,
    ) -> impl Future<Output = Result<(), ProfileError>> + Send;
}
// ANCHOR_END: trait

/// The implementation of [`ProfileService`]: Go kit's rules, over any [`Repository`].
///
/// The rules live here; the repository only keeps profiles, and changes one atomically
/// ([`Repository::update`]), so that two requests changing the same profile at once both take
/// effect.
#[derive(Debug, Clone)]
pub struct BasicProfileService<R> {
    repository: R,
}

impl<R: Repository> BasicProfileService<R> {
    /// The service, keeping its profiles in `repository`.
    pub fn new(repository: R) -> Self {
        BasicProfileService { repository }
    }

    /// Where the profiles are kept.
    pub fn repository(&self) -> &R {
        &self.repository
    }
}

/// Refuses an empty id: such a profile could never be named in a path.
fn require_id(what: &str, id: &str) -> Result<(), ProfileError> {
    if id.is_empty() {
        return Err(ProfileError::Invalid(format!("{what} id is empty")));
    }
    Ok(())
}

/// Refuses a profile whose own id, or one of whose addresses' ids, is empty.
fn validate(profile: &Profile) -> Result<(), ProfileError> {
    require_id("profile", &profile.id)?;
    profile
        .addresses
        .iter()
        .try_for_each(|address| require_id("address", &address.id))
}

// ANCHOR: impl
impl<R: Repository> ProfileService for BasicProfileService<R> {
    async fn post_profile(&self, profile: Profile) -> Result<(), ProfileError> {
        validate(&profile)?;
        self.repository.create(profile).await
    }

    async fn get_profile(&self, id: &str) -> Result<Profile, ProfileError> {
        self.repository.get(id).await?.ok_or(ProfileError::NotFound)
    }

    async fn put_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        if id != profile.id {
            return Err(ProfileError::InconsistentIds);
        }
        validate(&profile)?;
        self.repository.put(profile).await
    }

    async fn patch_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        if !profile.id.is_empty() && profile.id != id {
            return Err(ProfileError::InconsistentIds);
        }
        profile
            .addresses
            .iter()
            .try_for_each(|address| require_id("address", &address.id))?;
        // Go kit's PATCH: what the request has replaces what is stored; what it leaves empty
        // stays as it was, so a field cannot be cleared this way (PUT can).
        self.repository
            .update(id, move |stored| {
                if !profile.name.is_empty() {
                    stored.name = profile.name;
                }
                if !profile.addresses.is_empty() {
                    stored.addresses = profile.addresses;
                }
                Ok(())
            })
            .await
    }

    async fn delete_profile(&self, id: &str) -> Result<(), ProfileError> {
        match self.repository.delete(id).await? {
            true => Ok(()),
            false => Err(ProfileError::NotFound),
        }
    }

    async fn get_addresses(&self, profile_id: &str) -> Result<Vec<Address>, ProfileError> {
        Ok(self.get_profile(profile_id).await?.addresses)
    }

    async fn get_address(
        &self,
        profile_id: &str,
        address_id: &str,
    ) -> Result<Address, ProfileError> {
        self.get_profile(profile_id)
            .await?
            .addresses
            .into_iter()
            .find(|address| address.id == address_id)
            .ok_or(ProfileError::NotFound)
    }

    async fn post_address(&self, profile_id: &str, address: Address) -> Result<(), ProfileError> {
        require_id("address", &address.id)?;
        self.repository
            .update(profile_id, move |stored| {
                if stored.addresses.iter().any(|a| a.id == address.id) {
                    return Err(ProfileError::AlreadyExists);
                }
                stored.addresses.push(address);
                Ok(())
            })
            .await
    }

    async fn delete_address(&self, profile_id: &str, address_id: &str) -> Result<(), ProfileError> {
        let address_id = address_id.to_owned();
        self.repository
            .update(profile_id, move |stored| {
                let before = stored.addresses.len();
                stored.addresses.retain(|a| a.id != address_id);
                if stored.addresses.len() == before {
                    return Err(ProfileError::NotFound);
                }
                Ok(())
            })
            .await
    }
}
// ANCHOR_END: impl

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::MemoryRepository;

    fn service() -> BasicProfileService<MemoryRepository> {
        BasicProfileService::new(MemoryRepository::new())
    }

    fn profile(id: &str, name: &str) -> Profile {
        Profile {
            id: id.into(),
            name: name.into(),
            addresses: Vec::new(),
        }
    }

    fn address(id: &str, location: &str) -> Address {
        Address {
            id: id.into(),
            location: location.into(),
        }
    }

    #[tokio::test]
    async fn post_then_get_and_no_overwrite() {
        let svc = service();
        svc.post_profile(profile("1", "Go Kit"))
            .await
            .expect("post");
        assert_eq!(
            svc.get_profile("1").await.expect("get"),
            profile("1", "Go Kit")
        );
        let again = svc.post_profile(profile("1", "Other")).await;
        assert!(matches!(again, Err(ProfileError::AlreadyExists)));
        assert_eq!(svc.get_profile("1").await.expect("get").name, "Go Kit");
        assert!(matches!(
            svc.get_profile("2").await,
            Err(ProfileError::NotFound)
        ));
    }

    #[tokio::test]
    async fn empty_ids_are_refused() {
        let svc = service();
        let err = svc.post_profile(profile("", "x")).await.expect_err("empty");
        assert_eq!(err.to_string(), "profile id is empty");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let mut with_blank_address = profile("1", "x");
        with_blank_address.addresses.push(address("", "Home"));
        assert!(matches!(
            svc.post_profile(with_blank_address).await,
            Err(ProfileError::Invalid(_))
        ));
        svc.post_profile(profile("1", "x")).await.expect("post");
        assert!(matches!(
            svc.post_address("1", address("", "Home")).await,
            Err(ProfileError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn put_creates_or_replaces_and_checks_ids() {
        let svc = service();
        let mut p = profile("1", "first");
        p.addresses.push(address("a", "Home"));
        svc.put_profile("1", p.clone()).await.expect("create");
        assert_eq!(svc.get_profile("1").await.expect("get"), p);
        svc.put_profile("1", profile("1", ""))
            .await
            .expect("replace");
        assert_eq!(svc.get_profile("1").await.expect("get"), profile("1", ""));
        assert!(matches!(
            svc.put_profile("1", profile("2", "x")).await,
            Err(ProfileError::InconsistentIds)
        ));
        assert!(matches!(
            svc.put_profile("1", profile("", "x")).await,
            Err(ProfileError::InconsistentIds)
        ));
    }

    #[tokio::test]
    async fn patch_replaces_only_what_it_has() {
        let svc = service();
        let mut p = profile("1", "first");
        p.addresses.push(address("a", "Home"));
        svc.post_profile(p).await.expect("post");

        svc.patch_profile("1", profile("", "second"))
            .await
            .expect("name");
        let got = svc.get_profile("1").await.expect("get");
        assert_eq!(got.name, "second");
        assert_eq!(got.addresses, [address("a", "Home")]);

        let mut only_addresses = profile("1", "");
        only_addresses.addresses = vec![address("b", "Work"), address("c", "Gym")];
        svc.patch_profile("1", only_addresses)
            .await
            .expect("addresses");
        let got = svc.get_profile("1").await.expect("get");
        assert_eq!(got.name, "second");
        assert_eq!(got.addresses, [address("b", "Work"), address("c", "Gym")]);

        assert!(matches!(
            svc.patch_profile("1", profile("2", "x")).await,
            Err(ProfileError::InconsistentIds)
        ));
        assert!(matches!(
            svc.patch_profile("9", profile("", "x")).await,
            Err(ProfileError::NotFound)
        ));
    }

    #[tokio::test]
    async fn addresses_follow_go_kits_rules() {
        let svc = service();
        assert!(matches!(
            svc.get_addresses("1").await,
            Err(ProfileError::NotFound)
        ));
        assert!(matches!(
            svc.post_address("1", address("a", "Home")).await,
            Err(ProfileError::NotFound)
        ));
        svc.post_profile(profile("1", "x")).await.expect("post");
        assert_eq!(svc.get_addresses("1").await.expect("none"), []);
        svc.post_address("1", address("a", "Home"))
            .await
            .expect("add");
        svc.post_address("1", address("b", "Work"))
            .await
            .expect("add");
        assert!(matches!(
            svc.post_address("1", address("a", "Elsewhere")).await,
            Err(ProfileError::AlreadyExists)
        ));
        assert_eq!(
            svc.get_address("1", "b").await.expect("b"),
            address("b", "Work")
        );
        assert!(matches!(
            svc.get_address("1", "z").await,
            Err(ProfileError::NotFound)
        ));
        svc.delete_address("1", "a").await.expect("delete");
        assert!(matches!(
            svc.delete_address("1", "a").await,
            Err(ProfileError::NotFound)
        ));
        assert_eq!(
            svc.get_addresses("1").await.expect("one"),
            [address("b", "Work")]
        );
        svc.delete_profile("1").await.expect("delete");
        assert!(matches!(
            svc.delete_profile("1").await,
            Err(ProfileError::NotFound)
        ));
    }
}
