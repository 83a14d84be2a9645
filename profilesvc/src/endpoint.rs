//! The endpoints: one per service method, with its request and response types, gathered in
//! [`Endpoints`] (Go kit's `profilesvc.Endpoints`).
//!
//! [`Endpoints`] is used from both sides, as in Go kit: the server makes it from a service
//! ([`Endpoints::new`]) and serves each endpoint over HTTP; the client package makes it from
//! HTTP client endpoints, and calls it as a [`ProfileService`], since `Endpoints` implements
//! the service trait again.

use std::sync::Arc;

use kit_core::BoxError;
use kit_core::endpoint::{Endpoint, EndpointExt, endpoint_fn};
use kit_core::error::{Error, ErrorExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::{Address, Profile, ProfileError, ProfileService};

// ANCHOR: types
/// `POST /profiles/`: a whole profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostProfileRequest {
    /// The profile to create.
    pub profile: Profile,
}

/// `GET /profiles/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetProfileRequest {
    /// The profile's id.
    pub id: String,
}

/// `PUT /profiles/{id}`: a whole profile, whose id must be the path's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutProfileRequest {
    /// The id in the path.
    pub id: String,
    /// The profile to store.
    pub profile: Profile,
}

/// `PATCH /profiles/{id}`: the fields to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchProfileRequest {
    /// The id in the path.
    pub id: String,
    /// What to change: the name if not empty, the addresses if any.
    pub profile: Profile,
}

/// `DELETE /profiles/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteProfileRequest {
    /// The profile's id.
    pub id: String,
}

/// `GET /profiles/{id}/addresses/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAddressesRequest {
    /// The profile's id.
    pub profile_id: String,
}

/// `GET /profiles/{id}/addresses/{addressID}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAddressRequest {
    /// The profile's id.
    pub profile_id: String,
    /// The address's id.
    pub address_id: String,
}

/// `POST /profiles/{id}/addresses/`: an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostAddressRequest {
    /// The profile's id.
    pub profile_id: String,
    /// The address to add.
    pub address: Address,
}

/// `DELETE /profiles/{id}/addresses/{addressID}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteAddressRequest {
    /// The profile's id.
    pub profile_id: String,
    /// The address's id.
    pub address_id: String,
}

/// The answer of the methods that answer nothing but success: `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Empty {}

/// The answer of `GET /profiles/{id}`: `{"profile":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct GetProfileResponse {
    /// The profile.
    pub profile: Profile,
}

/// The answer of `GET /profiles/{id}/addresses/`: `{"addresses":[...]}`, or `{}` when the
/// profile has none, as Go kit's `omitempty` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct GetAddressesResponse {
    /// The addresses, in the order they were added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
}

/// The answer of `GET /profiles/{id}/addresses/{addressID}`: `{"address":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct GetAddressResponse {
    /// The address.
    pub address: Address,
}
// ANCHOR_END: types

// ANCHOR: endpoints
/// One endpoint per method of the service (Go kit's `profilesvc.Endpoints`).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Creates a profile.
    pub post_profile: Endpoint<PostProfileRequest, Empty>,
    /// Reads a profile.
    pub get_profile: Endpoint<GetProfileRequest, GetProfileResponse>,
    /// Creates or replaces a profile.
    pub put_profile: Endpoint<PutProfileRequest, Empty>,
    /// Changes some fields of a profile.
    pub patch_profile: Endpoint<PatchProfileRequest, Empty>,
    /// Deletes a profile.
    pub delete_profile: Endpoint<DeleteProfileRequest, Empty>,
    /// Reads a profile's addresses.
    pub get_addresses: Endpoint<GetAddressesRequest, GetAddressesResponse>,
    /// Reads one address.
    pub get_address: Endpoint<GetAddressRequest, GetAddressResponse>,
    /// Adds an address.
    pub post_address: Endpoint<PostAddressRequest, Empty>,
    /// Deletes an address.
    pub delete_address: Endpoint<DeleteAddressRequest, Empty>,
}

impl Endpoints {
    /// The endpoints of `svc` (Go kit's `MakeServerEndpoints`). A business error fails the
    /// call, and the transport answers it with the status of its kind.
    pub fn new<S>(svc: S) -> Self
    where
        S: ProfileService + Send + Sync + 'static,
    {
        // One service shared by every endpoint and every request.
        let svc = Arc::new(svc);
        Endpoints {
            post_profile: method(&svc, |svc, req: PostProfileRequest| async move {
                svc.post_profile(req.profile).await.map(|()| Empty {})
            }),
            get_profile: method(&svc, |svc, req: GetProfileRequest| async move {
                let profile = svc.get_profile(&req.id).await?;
                Ok(GetProfileResponse { profile })
            }),
            put_profile: method(&svc, |svc, req: PutProfileRequest| async move {
                svc.put_profile(&req.id, req.profile)
                    .await
                    .map(|()| Empty {})
            }),
            patch_profile: method(&svc, |svc, req: PatchProfileRequest| async move {
                svc.patch_profile(&req.id, req.profile)
                    .await
                    .map(|()| Empty {})
            }),
            delete_profile: method(&svc, |svc, req: DeleteProfileRequest| async move {
                svc.delete_profile(&req.id).await.map(|()| Empty {})
            }),
            get_addresses: method(&svc, |svc, req: GetAddressesRequest| async move {
                let addresses = svc.get_addresses(&req.profile_id).await?;
                Ok(GetAddressesResponse { addresses })
            }),
            get_address: method(&svc, |svc, req: GetAddressRequest| async move {
                let address = svc.get_address(&req.profile_id, &req.address_id).await?;
                Ok(GetAddressResponse { address })
            }),
            post_address: method(&svc, |svc, req: PostAddressRequest| async move {
                svc.post_address(&req.profile_id, req.address)
                    .await
                    .map(|()| Empty {})
            }),
            delete_address: method(&svc, |svc, req: DeleteAddressRequest| async move {
                svc.delete_address(&req.profile_id, &req.address_id)
                    .await
                    .map(|()| Empty {})
            }),
        }
    }
}
// ANCHOR_END: endpoints

/// An endpoint that calls one method of the shared service.
fn method<S, Req, Resp, F, Fut>(svc: &Arc<S>, call: F) -> Endpoint<Req, Resp>
where
    S: Send + Sync + 'static,
    Req: 'static,
    Resp: 'static,
    F: Fn(Arc<S>, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ProfileError>> + Send + 'static,
{
    let svc = svc.clone();
    endpoint_fn(move |req: Req| call(svc.clone(), req))
}

// ANCHOR: service
/// The endpoints called as a service, as Go kit's `Endpoints` implements `Service`: what the
/// client package hands its users.
impl ProfileService for Endpoints {
    async fn post_profile(&self, profile: Profile) -> Result<(), ProfileError> {
        call(&self.post_profile, PostProfileRequest { profile }).await?;
        Ok(())
    }

    async fn get_profile(&self, id: &str) -> Result<Profile, ProfileError> {
        let req = GetProfileRequest { id: id.to_owned() };
        Ok(call(&self.get_profile, req).await?.profile)
    }

    async fn put_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let req = PutProfileRequest {
            id: id.to_owned(),
            profile,
        };
        call(&self.put_profile, req).await?;
        Ok(())
    }

    async fn patch_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let req = PatchProfileRequest {
            id: id.to_owned(),
            profile,
        };
        call(&self.patch_profile, req).await?;
        Ok(())
    }

    async fn delete_profile(&self, id: &str) -> Result<(), ProfileError> {
        let req = DeleteProfileRequest { id: id.to_owned() };
        call(&self.delete_profile, req).await?;
        Ok(())
    }

    async fn get_addresses(&self, profile_id: &str) -> Result<Vec<Address>, ProfileError> {
        let req = GetAddressesRequest {
            profile_id: profile_id.to_owned(),
        };
        Ok(call(&self.get_addresses, req).await?.addresses)
    }

    async fn get_address(
        &self,
        profile_id: &str,
        address_id: &str,
    ) -> Result<Address, ProfileError> {
        let req = GetAddressRequest {
            profile_id: profile_id.to_owned(),
            address_id: address_id.to_owned(),
        };
        Ok(call(&self.get_address, req).await?.address)
    }

    async fn post_address(&self, profile_id: &str, address: Address) -> Result<(), ProfileError> {
        let req = PostAddressRequest {
            profile_id: profile_id.to_owned(),
            address,
        };
        call(&self.post_address, req).await?;
        Ok(())
    }

    async fn delete_address(&self, profile_id: &str, address_id: &str) -> Result<(), ProfileError> {
        let req = DeleteAddressRequest {
            profile_id: profile_id.to_owned(),
            address_id: address_id.to_owned(),
        };
        call(&self.delete_address, req).await?;
        Ok(())
    }
}
// ANCHOR_END: service

/// Calls `endpoint`, turning its failure back into the service's error.
async fn call<Req, Resp>(endpoint: &Endpoint<Req, Resp>, req: Req) -> Result<Resp, ProfileError>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    endpoint.invoke(req).await.map_err(into_profile_error)
}

/// The service's error inside an endpoint's failure: a business error found anywhere in the
/// chain (behind retries, say) is itself again; anything else is a [`ProfileError::Backend`]
/// that keeps its kind.
pub fn into_profile_error(error: BoxError) -> ProfileError {
    if let Some(business) = error
        .find::<ProfileError>()
        .and_then(ProfileError::business)
    {
        return business;
    }
    ProfileError::Backend(Error::from(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::MemoryRepository;
    use crate::service::BasicProfileService;
    use kit_core::error::ErrorKind;

    #[tokio::test]
    async fn endpoints_are_the_service_again() {
        let endpoints = Endpoints::new(BasicProfileService::new(MemoryRepository::new()));
        let profile = Profile {
            id: "1".into(),
            name: "Go Kit".into(),
            addresses: Vec::new(),
        };
        endpoints.post_profile(profile.clone()).await.expect("post");
        assert_eq!(endpoints.get_profile("1").await.expect("get"), profile);
        assert!(matches!(
            endpoints.post_profile(profile).await,
            Err(ProfileError::AlreadyExists)
        ));
        let missing = endpoints.get_profile("2").await.expect_err("missing");
        assert!(matches!(missing, ProfileError::NotFound));
        assert_eq!(
            ErrorExt::kind(
                &*endpoints
                    .get_profile
                    .invoke(GetProfileRequest { id: "2".into() })
                    .await
                    .expect_err("missing")
            ),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn other_failures_keep_their_kind() {
        let err = into_profile_error(Error::new(ErrorKind::Unavailable, "refused").into());
        assert!(matches!(err, ProfileError::Backend(_)));
        assert_eq!(
            kit_core::error::Classify::kind(&err),
            ErrorKind::Unavailable
        );
        assert_eq!(err.to_string(), "refused");
    }
}
