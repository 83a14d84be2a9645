//! The client package: profilesvc's service, called over HTTP on a set of instances (Go kit's
//! `profilesvc/client`).
//!
//! [`Client`] implements [`ProfileService`], so a program that calls profilesvc is written
//! against the same trait as the service itself. Behind it, as in Go kit, each method is an
//! endpoint made of kit-core's pieces:
//!
//! - [`sd::FixedInstancer`](kit_core::sd::FixedInstancer): the instances (fixed today; a
//!   discovery backend such as etcd is another instancer, and nothing else changes);
//! - [`sd::Endpointer`](kit_core::sd::Endpointer): one HTTP client endpoint per instance
//!   ([`make_client_endpoints`]);
//! - [`lb::RoundRobin`](kit_core::lb::RoundRobin) and
//!   [`lb::retry_with_callback`](kit_core::lb::retry_with_callback): the instances in turn, and
//!   a failed call tried again on the next one, up to [`ClientOptions::max_attempts`] within
//!   [`ClientOptions::timeout`].
//!
//! Unlike Go kit's client, this one sends the bodies the server reads (the profile itself, not
//! a request struct around it), escapes ids as path segments, reads error answers, and turns
//! them back into the service's errors: a profile that is not found is
//! [`ProfileError::NotFound`], and is not retried, since another instance would say the same.
//!
//! A call that failed on the way (a refused connection, an instance killed mid-request) is
//! retried. For the two methods that are not idempotent, `post_profile` and `post_address`, and
//! for the deletes, a retry after an attempt that may have reached the server can find the
//! attempt's own effect: a create answered `already exists`, a delete answered `not found`.
//! The client then checks: a delete is done; a create is done if what is stored is exactly what
//! it sent (anything else is another caller's, and the error stands).

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use kit_core::BoxError;
use kit_core::endpoint::{Endpoint, EndpointExt, ServiceExt};
use kit_core::error::{Error, ErrorExt};
use kit_core::lb::{Decision, RetryError, RoundRobin, retry_with_callback};
use kit_core::sd::{Endpointer, FixedInstancer};
use kit_core::transport::http::{
    Client as HttpClient, ClientError, Pool, Url, decode_json_response, encode_json_request,
};
use serde::Serialize;

use crate::endpoint::{
    DeleteAddressRequest, DeleteProfileRequest, Endpoints, GetAddressRequest, GetAddressesRequest,
    GetProfileRequest, PatchProfileRequest, PostAddressRequest, PostProfileRequest,
    PutProfileRequest, into_profile_error,
};
use crate::service::{Address, Profile, ProfileError, ProfileService};

// ANCHOR: options
/// How the client treats the instances it calls.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Attempts per call, each on the next instance, the first included (Go kit: 3).
    pub max_attempts: usize,
    /// How long all the attempts of one call may take together (Go kit: 500 ms).
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_attempts: 3,
            timeout: Duration::from_millis(500),
        }
    }
}
// ANCHOR_END: options

/// An instance that is not a usable address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid instance {instance:?}: {reason}")]
pub struct InstanceError {
    /// The instance as given.
    pub instance: String,
    /// What is wrong with it.
    pub reason: String,
}

/// profilesvc over HTTP, on a set of instances: a [`ProfileService`].
///
/// Cheap to clone; clones share the connections.
#[derive(Debug, Clone)]
pub struct Client {
    endpoints: Endpoints,
}

// ANCHOR: new
impl Client {
    /// A client of `instances` (`host:port`, or `http://host:port`), with Go kit's retries.
    pub fn new(instances: &[String]) -> Result<Self, InstanceError> {
        Self::with_options(instances, &ClientOptions::default())
    }

    /// A client of `instances`, retrying as `options` say.
    pub fn with_options(
        instances: &[String],
        options: &ClientOptions,
    ) -> Result<Self, InstanceError> {
        for instance in instances {
            base_url(instance)?;
        }
        let instancer = FixedInstancer::new(instances.iter().cloned());
        // One connection pool for every instance and method.
        let http = Pool::new();
        // Go kit's client package: per method, an endpointer over the instances, round robin,
        // retries.
        let e = (&instancer, &http, options);
        Ok(Client {
            endpoints: Endpoints {
                post_profile: balanced(e, |e| e.post_profile),
                get_profile: balanced(e, |e| e.get_profile),
                put_profile: balanced(e, |e| e.put_profile),
                patch_profile: balanced(e, |e| e.patch_profile),
                delete_profile: balanced(e, |e| e.delete_profile),
                get_addresses: balanced(e, |e| e.get_addresses),
                get_address: balanced(e, |e| e.get_address),
                post_address: balanced(e, |e| e.post_address),
                delete_address: balanced(e, |e| e.delete_address),
            },
        })
    }
}

/// One method's endpoint over every instance: an endpointer whose factory makes an
/// instance's endpoints and picks this method's, round robin, with retries on the next
/// instance for failures that another instance might not have; business errors end the call
/// at once.
fn balanced<Req, Resp>(
    (instancer, http, options): (&FixedInstancer, &Pool, &ClientOptions),
    pick: fn(Endpoints) -> Endpoint<Req, Resp>,
) -> Endpoint<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    let http = http.clone();
    let endpointer = Endpointer::new(instancer, move |instance: &str| {
        make_client_endpoints(instance, http.clone()).map(pick)
    });
    let max_attempts = options.max_attempts.max(1);
    retry_with_callback(
        options.timeout,
        RoundRobin::new(endpointer),
        move |attempt, error: &BoxError| {
            if is_business(error) || attempt >= max_attempts {
                Decision::GiveUp
            } else {
                Decision::Retry
            }
        },
    )
}
// ANCHOR_END: new

/// Whether the error is the service's answer, which every instance would give alike.
fn is_business(error: &BoxError) -> bool {
    error
        .find::<ProfileError>()
        .is_some_and(|e| e.business().is_some())
}

// ANCHOR: client_endpoints
/// The nine endpoints of one instance, over HTTP (Go kit's `MakeClientEndpoints`), sending
/// with `http`'s connection pool.
///
/// Each sends what the server reads: the profile or address itself as the body, the ids as
/// percent-encoded path segments. An error answer becomes the service's error again
/// ([`ProfileError`] from the status and the message), so that the caller can tell a profile
/// that is not there from an instance that is not there.
pub fn make_client_endpoints(instance: &str, http: Pool) -> Result<Endpoints, InstanceError> {
    let base = base_url(instance)?;
    let endpoint = |method: Method| ClientEndpoint {
        base: base.clone(),
        method,
        http: http.clone(),
    };
    Ok(Endpoints {
        post_profile: endpoint(Method::POST)
            .with(|r: &PostProfileRequest| (vec!["profiles", ""], Some(Body::from(&r.profile)))),
        get_profile: endpoint(Method::GET)
            .with(|r: &GetProfileRequest| (vec!["profiles", &r.id], None)),
        put_profile: endpoint(Method::PUT)
            .with(|r: &PutProfileRequest| (vec!["profiles", &r.id], Some(Body::from(&r.profile)))),
        patch_profile: endpoint(Method::PATCH).with(|r: &PatchProfileRequest| {
            (vec!["profiles", &r.id], Some(Body::from(&r.profile)))
        }),
        delete_profile: endpoint(Method::DELETE)
            .with(|r: &DeleteProfileRequest| (vec!["profiles", &r.id], None)),
        get_addresses: endpoint(Method::GET).with(|r: &GetAddressesRequest| {
            (vec!["profiles", &r.profile_id, "addresses", ""], None)
        }),
        get_address: endpoint(Method::GET).with(|r: &GetAddressRequest| {
            (
                vec!["profiles", &r.profile_id, "addresses", &r.address_id],
                None,
            )
        }),
        post_address: endpoint(Method::POST).with(|r: &PostAddressRequest| {
            (
                vec!["profiles", &r.profile_id, "addresses", ""],
                Some(Body::from(&r.address)),
            )
        }),
        delete_address: endpoint(Method::DELETE).with(|r: &DeleteAddressRequest| {
            (
                vec!["profiles", &r.profile_id, "addresses", &r.address_id],
                None,
            )
        }),
    })
}
// ANCHOR_END: client_endpoints

/// `http://host:port` for an instance given as `host:port` or as a URL.
fn base_url(instance: &str) -> Result<Url, InstanceError> {
    let error = |reason: String| InstanceError {
        instance: instance.to_owned(),
        reason,
    };
    let with_scheme = match instance.split_once("://") {
        Some(("http", _)) => instance.to_owned(),
        Some((scheme, _)) => return Err(error(format!("scheme {scheme} is not http"))),
        None => format!("http://{instance}"),
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| error(e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("no host".into()));
    }
    url.set_path("");
    url.set_query(None);
    Ok(url)
}

/// A JSON body, encoded when the request is built.
struct Body(Result<serde_json::Value, String>);

impl Body {
    fn from<T: Serialize>(value: &T) -> Self {
        Body(serde_json::to_value(value).map_err(|e| e.to_string()))
    }
}

/// What every client endpoint of an instance shares.
struct ClientEndpoint {
    base: Url,
    method: Method,
    http: Pool,
}

impl ClientEndpoint {
    /// The endpoint whose requests go to the path segments `route` gives (escaped one by one;
    /// `""` last makes the trailing slash) with the body it gives, and whose answers decode
    /// as `Resp`.
    fn with<Req, Resp, F>(self, route: F) -> Endpoint<Req, Resp>
    where
        Req: Send + 'static,
        Resp: serde::de::DeserializeOwned + Send + 'static,
        F: for<'r> Fn(&'r Req) -> (Vec<&'r str>, Option<Body>) + Send + Sync + 'static,
    {
        let base = self.base.clone();
        let encode = move |request: &mut http::Request<Bytes>, req: Req| -> Result<(), BoxError> {
            let (segments, body) = route(&req);
            let mut url = base.clone();
            url.path_segments_mut()
                .map_err(|()| "the instance's URL cannot take a path")?
                .clear()
                .extend(segments);
            *request.uri_mut() = url.as_str().parse()?;
            match body {
                Some(Body(Ok(json))) => encode_json_request(request, json),
                Some(Body(Err(why))) => Err(why.into()),
                None => Ok(()),
            }
        };
        let client = HttpClient::new(
            self.method,
            self.base.clone(),
            encode,
            decode_json_response::<Resp>,
        )
        .pool(self.http)
        .endpoint();
        Endpoint::new(client.map_err(from_answer))
    }
}

// ANCHOR: from_answer
/// The service's error that an error answer stands for: 404 `not found`, 409 `already
/// exists`, 400 `inconsistent IDs` and other 400s are the business errors they were on the
/// server. Anything else (no answer, a 5xx, a 404 from something that is not profilesvc) stays
/// what it was, with its kind.
fn from_answer(error: BoxError) -> BoxError {
    let business = error.find::<ClientError>().and_then(|client| match client {
        ClientError::Status {
            status, message, ..
        } => match (status.as_u16(), message.as_str()) {
            (404, "not found") => Some(ProfileError::NotFound),
            (409, "already exists") => Some(ProfileError::AlreadyExists),
            (400, "inconsistent IDs") => Some(ProfileError::InconsistentIds),
            (400, message) => Some(ProfileError::Invalid(message.to_owned())),
            _ => None,
        },
        _ => None,
    });
    match business {
        Some(business) => Error::from(business).into(),
        None => error,
    }
}
// ANCHOR_END: from_answer

/// Whether a failed attempt may have reached the server and taken effect: anything but a
/// connection that was never made.
fn may_have_taken_effect(error: &BoxError) -> bool {
    if is_business(error) {
        return false;
    }
    let never_sent = error
        .find::<ClientError>()
        .is_some_and(ClientError::is_connect);
    !never_sent
}

// ANCHOR: service
impl ProfileService for Client {
    async fn post_profile(&self, profile: Profile) -> Result<(), ProfileError> {
        let id = profile.id.clone();
        match invoke(
            &self.endpoints.post_profile,
            PostProfileRequest {
                profile: profile.clone(),
            },
        )
        .await
        {
            Ok(_) => Ok(()),
            // Our own earlier attempt may have created it: it is done if what is stored is what
            // we sent.
            Err((ProfileError::AlreadyExists, true)) => match self.get_profile(&id).await {
                Ok(stored) if stored == profile => Ok(()),
                _ => Err(ProfileError::AlreadyExists),
            },
            Err((error, _)) => Err(error),
        }
    }

    async fn get_profile(&self, id: &str) -> Result<Profile, ProfileError> {
        let req = GetProfileRequest { id: id.to_owned() };
        Ok(plain(invoke(&self.endpoints.get_profile, req).await)?.profile)
    }

    async fn put_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let req = PutProfileRequest {
            id: id.to_owned(),
            profile,
        };
        plain(invoke(&self.endpoints.put_profile, req).await).map(drop)
    }

    async fn patch_profile(&self, id: &str, profile: Profile) -> Result<(), ProfileError> {
        let req = PatchProfileRequest {
            id: id.to_owned(),
            profile,
        };
        plain(invoke(&self.endpoints.patch_profile, req).await).map(drop)
    }

    async fn delete_profile(&self, id: &str) -> Result<(), ProfileError> {
        let req = DeleteProfileRequest { id: id.to_owned() };
        match invoke(&self.endpoints.delete_profile, req).await {
            Ok(_) | Err((ProfileError::NotFound, true)) => Ok(()),
            Err((error, _)) => Err(error),
        }
    }

    async fn get_addresses(&self, profile_id: &str) -> Result<Vec<Address>, ProfileError> {
        let req = GetAddressesRequest {
            profile_id: profile_id.to_owned(),
        };
        Ok(plain(invoke(&self.endpoints.get_addresses, req).await)?.addresses)
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
        Ok(plain(invoke(&self.endpoints.get_address, req).await)?.address)
    }

    async fn post_address(&self, profile_id: &str, address: Address) -> Result<(), ProfileError> {
        let req = PostAddressRequest {
            profile_id: profile_id.to_owned(),
            address: address.clone(),
        };
        match invoke(&self.endpoints.post_address, req).await {
            Ok(_) => Ok(()),
            Err((ProfileError::AlreadyExists, true)) => {
                match self.get_address(profile_id, &address.id).await {
                    Ok(stored) if stored == address => Ok(()),
                    _ => Err(ProfileError::AlreadyExists),
                }
            }
            Err((error, _)) => Err(error),
        }
    }

    async fn delete_address(&self, profile_id: &str, address_id: &str) -> Result<(), ProfileError> {
        let req = DeleteAddressRequest {
            profile_id: profile_id.to_owned(),
            address_id: address_id.to_owned(),
        };
        match invoke(&self.endpoints.delete_address, req).await {
            Ok(_) | Err((ProfileError::NotFound, true)) => Ok(()),
            Err((error, _)) => Err(error),
        }
    }
}
// ANCHOR_END: service

/// Calls `endpoint`: the answer, or the service's error and whether an earlier attempt may
/// have taken effect.
async fn invoke<Req, Resp>(
    endpoint: &Endpoint<Req, Resp>,
    req: Req,
) -> Result<Resp, (ProfileError, bool)>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    match endpoint.invoke(req).await {
        Ok(resp) => Ok(resp),
        Err(raw) => {
            let uncertain = raw.find::<RetryError>().is_some_and(|retry| {
                let errors = retry.errors();
                errors.len() > 1 && errors[..errors.len() - 1].iter().any(may_have_taken_effect)
            });
            Err((into_profile_error(raw), uncertain))
        }
    }
}

/// The result of a call whose earlier attempts do not matter (reads, and writes that are
/// idempotent).
fn plain<T>(result: Result<T, (ProfileError, bool)>) -> Result<T, ProfileError> {
    result.map_err(|(error, _)| error)
}
