//! The HTTP transport: which route reaches which endpoint, how requests are read from the path
//! and the body, and how answers are written.
//!
//! Each route's server is built by a function that also carries the route's OpenAPI
//! description (`#[utoipa::path]`), so the description sits next to the code it describes;
//! [`openapi`](crate::openapi) gathers them into the document.

use std::convert::Infallible;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::routing::{MethodFilter, on_service};
use http::Method;
use kit_core::BoxError;
use kit_core::endpoint::{Endpoint, Service};
use kit_core::error::{Error, ErrorKind};
use kit_core::transport::http::{
    Request, Response, Server, decode_json_request, encode_json_response, method_not_allowed,
    not_found,
};
use serde::de::DeserializeOwned;

use crate::endpoint::{
    DeleteAddressRequest, DeleteProfileRequest, Empty, Endpoints, GetAddressRequest,
    GetAddressResponse, GetAddressesRequest, GetAddressesResponse, GetProfileRequest,
    GetProfileResponse, PatchProfileRequest, PostAddressRequest, PostProfileRequest,
    PutProfileRequest,
};
use crate::openapi::{ErrorBody, ProfilePatch};
use crate::service::{Address, Profile};

// ANCHOR: routes
/// The nine routes of Go kit's profilesvc, each served by its endpoint.
///
/// As with gorilla/mux, a path is matched before it is percent-decoded, so an id may hold any
/// character, `/` included, written `%2F`; `/profiles` is not `/profiles/`. A known path with
/// another method gets a JSON 405 with an `Allow` header, an unknown path a JSON 404.
pub fn routes(endpoints: Endpoints) -> Routes {
    let e = endpoints;
    Routes::new()
        .route(Method::POST, "/profiles/", post_profile(e.post_profile))
        .route(Method::GET, "/profiles/{id}", get_profile(e.get_profile))
        .route(Method::PUT, "/profiles/{id}", put_profile(e.put_profile))
        .route(
            Method::PATCH,
            "/profiles/{id}",
            patch_profile(e.patch_profile),
        )
        .route(
            Method::DELETE,
            "/profiles/{id}",
            delete_profile(e.delete_profile),
        )
        .route(
            Method::GET,
            "/profiles/{id}/addresses/",
            get_addresses(e.get_addresses),
        )
        .route(
            Method::GET,
            "/profiles/{id}/addresses/{addressID}",
            get_address(e.get_address),
        )
        .route(
            Method::POST,
            "/profiles/{id}/addresses/",
            post_address(e.post_address),
        )
        .route(
            Method::DELETE,
            "/profiles/{id}/addresses/{addressID}",
            delete_address(e.delete_address),
        )
}
// ANCHOR_END: routes

/// An axum router that remembers its routes: what a test compares with the OpenAPI document,
/// since axum cannot list a router's routes.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    router: Router,
    table: Vec<(Method, String)>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `method path` with `service`.
    pub fn route<S>(mut self, method: Method, path: &str, service: S) -> Self
    where
        S: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("axum cannot route method {method}"));
        self.router = self.router.route(path, on_service(filter, service));
        self.table.push((method, path.to_owned()));
        self
    }

    /// Adds the routes of `router`, which serves `table` (axum cannot say what it serves).
    pub fn merge(mut self, router: Router, table: &[(Method, &str)]) -> Self {
        self.router = self.router.merge(router);
        self.table
            .extend(table.iter().map(|(m, p)| (m.clone(), (*p).to_owned())));
        self
    }

    /// Every route, as method and path template (`/profiles/{id}`), in the order added.
    pub fn table(&self) -> &[(Method, String)] {
        &self.table
    }

    /// The router, answering unknown paths with a JSON 404 and wrong methods with a JSON 405.
    pub fn into_router(self) -> Router {
        self.router
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }
}

/// The path parameters of a request, percent-decoded: one `String`, or a tuple of them.
async fn path<T: DeserializeOwned + Send>(parts: &mut http::request::Parts) -> Result<T, BoxError> {
    match Path::<T>::from_request_parts(parts, &()).await {
        Ok(Path(params)) => Ok(params),
        // Say what is wrong (`Invalid UTF-8 in `id``), with the status kit-core gives the kind.
        Err(rejection) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid path: {}", rejection.body_text()),
        )
        .into()),
    }
}

/// The JSON body: an object. Go reads `null` as an empty object; no Go client sends it, and
/// a `PATCH` of `null` would change nothing while answering success, so it is refused.
async fn body<B: DeserializeOwned>(request: Request) -> Result<B, BoxError> {
    match decode_json_request::<Option<B>>(request).await? {
        Some(body) => Ok(body),
        None => Err(Error::new(
            ErrorKind::InvalidArgument,
            "invalid request body: expected an object, found null",
        )
        .into()),
    }
}

/// The path's parameters, then the JSON body.
async fn path_and_body<P, B>(request: Request) -> Result<(P, B), BoxError>
where
    P: DeserializeOwned + Send,
    B: DeserializeOwned,
{
    let (mut parts, rest) = request.into_parts();
    let params = path(&mut parts).await?;
    Ok((params, body(Request::from_parts(parts, rest)).await?))
}

/// The path's parameters; a body, if any, is not read (Go kit's clients send one on GET and
/// DELETE).
async fn path_only<P: DeserializeOwned + Send>(request: Request) -> Result<P, BoxError> {
    let (mut parts, _body) = request.into_parts();
    path(&mut parts).await
}

// ANCHOR: post_profile
/// `POST /profiles/`: creates a profile.
#[utoipa::path(
    post,
    path = "/profiles/",
    operation_id = "PostProfile",
    tag = "profiles",
    request_body(content = Profile, description = "The profile, with an id that is not empty."),
    responses(
        (status = 200, description = "Created.", body = Empty),
        (status = 400, description = "The body is not a profile, or an id is empty.", body = ErrorBody),
        (status = 409, description = "A profile with this id exists.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn post_profile(
    endpoint: Endpoint<PostProfileRequest, Empty>,
) -> Server<PostProfileRequest, Empty> {
    Server::new(
        endpoint,
        |request| async move {
            let profile: Profile = body(request).await?;
            Ok(PostProfileRequest { profile })
        },
        encode_json_response,
    )
    .name("PostProfile")
}
// ANCHOR_END: post_profile

/// `GET /profiles/{id}`: reads a profile.
#[utoipa::path(
    get,
    path = "/profiles/{id}",
    operation_id = "GetProfile",
    tag = "profiles",
    params(("id" = String, Path, description = "The profile's id.", min_length = 1)),
    responses(
        (status = 200, description = "The profile.", body = GetProfileResponse),
        (status = 400, description = "The path is not valid UTF-8 once decoded.", body = ErrorBody),
        (status = 404, description = "No such profile.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn get_profile(
    endpoint: Endpoint<GetProfileRequest, GetProfileResponse>,
) -> Server<GetProfileRequest, GetProfileResponse> {
    Server::new(
        endpoint,
        |request| async move {
            let id = path_only(request).await?;
            Ok(GetProfileRequest { id })
        },
        encode_json_response,
    )
    .name("GetProfile")
}

// ANCHOR: put_profile
/// `PUT /profiles/{id}`: creates or replaces a profile.
#[utoipa::path(
    put,
    path = "/profiles/{id}",
    operation_id = "PutProfile",
    tag = "profiles",
    params(("id" = String, Path, description = "The profile's id.", min_length = 1)),
    request_body(content = Profile, description = "The whole profile; its id must be the path's."),
    responses(
        (status = 200, description = "Stored.", body = Empty),
        (status = 400, description = "The body is not a profile, its id is not the path's (`inconsistent IDs`), or an address id is empty.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn put_profile(
    endpoint: Endpoint<PutProfileRequest, Empty>,
) -> Server<PutProfileRequest, Empty> {
    Server::new(
        endpoint,
        |request| async move {
            let (id, profile) = path_and_body(request).await?;
            Ok(PutProfileRequest { id, profile })
        },
        encode_json_response,
    )
    .name("PutProfile")
}
// ANCHOR_END: put_profile

/// `PATCH /profiles/{id}`: changes some fields of a profile.
#[utoipa::path(
    patch,
    path = "/profiles/{id}",
    operation_id = "PatchProfile",
    tag = "profiles",
    params(("id" = String, Path, description = "The profile's id.", min_length = 1)),
    request_body(content = ProfilePatch, description = "What to change: a name that is not empty replaces the name; a list of addresses that is not empty replaces all of them. The id may be left out; if given, it must be the path's."),
    responses(
        (status = 200, description = "Changed.", body = Empty),
        (status = 400, description = "The body is not a profile, its id is not the path's (`inconsistent IDs`), or an address id is empty.", body = ErrorBody),
        (status = 404, description = "No such profile.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn patch_profile(
    endpoint: Endpoint<PatchProfileRequest, Empty>,
) -> Server<PatchProfileRequest, Empty> {
    Server::new(
        endpoint,
        |request| async move {
            let (id, profile) = path_and_body(request).await?;
            Ok(PatchProfileRequest { id, profile })
        },
        encode_json_response,
    )
    .name("PatchProfile")
}

/// `DELETE /profiles/{id}`: deletes a profile.
#[utoipa::path(
    delete,
    path = "/profiles/{id}",
    operation_id = "DeleteProfile",
    tag = "profiles",
    params(("id" = String, Path, description = "The profile's id.", min_length = 1)),
    responses(
        (status = 200, description = "Deleted.", body = Empty),
        (status = 400, description = "The path is not valid UTF-8 once decoded.", body = ErrorBody),
        (status = 404, description = "No such profile.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn delete_profile(
    endpoint: Endpoint<DeleteProfileRequest, Empty>,
) -> Server<DeleteProfileRequest, Empty> {
    Server::new(
        endpoint,
        |request| async move {
            let id = path_only(request).await?;
            Ok(DeleteProfileRequest { id })
        },
        encode_json_response,
    )
    .name("DeleteProfile")
}

/// `GET /profiles/{id}/addresses/`: reads a profile's addresses.
#[utoipa::path(
    get,
    path = "/profiles/{id}/addresses/",
    operation_id = "GetAddresses",
    tag = "addresses",
    params(("id" = String, Path, description = "The profile's id.", min_length = 1)),
    responses(
        (status = 200, description = "The addresses; `{}` when there are none.", body = GetAddressesResponse),
        (status = 400, description = "The path is not valid UTF-8 once decoded.", body = ErrorBody),
        (status = 404, description = "No such profile.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn get_addresses(
    endpoint: Endpoint<GetAddressesRequest, GetAddressesResponse>,
) -> Server<GetAddressesRequest, GetAddressesResponse> {
    Server::new(
        endpoint,
        |request| async move {
            let profile_id = path_only(request).await?;
            Ok(GetAddressesRequest { profile_id })
        },
        encode_json_response,
    )
    .name("GetAddresses")
}

/// `GET /profiles/{id}/addresses/{addressID}`: reads one address.
#[utoipa::path(
    get,
    path = "/profiles/{id}/addresses/{addressID}",
    operation_id = "GetAddress",
    tag = "addresses",
    params(
        ("id" = String, Path, description = "The profile's id.", min_length = 1),
        ("addressID" = String, Path, description = "The address's id.", min_length = 1),
    ),
    responses(
        (status = 200, description = "The address.", body = GetAddressResponse),
        (status = 400, description = "The path is not valid UTF-8 once decoded.", body = ErrorBody),
        (status = 404, description = "No such profile, or no such address.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn get_address(
    endpoint: Endpoint<GetAddressRequest, GetAddressResponse>,
) -> Server<GetAddressRequest, GetAddressResponse> {
    Server::new(
        endpoint,
        |request| async move {
            let (profile_id, address_id) = path_only(request).await?;
            Ok(GetAddressRequest {
                profile_id,
                address_id,
            })
        },
        encode_json_response,
    )
    .name("GetAddress")
}

/// `POST /profiles/{id}/addresses/`: adds an address.
#[utoipa::path(
    post,
    path = "/profiles/{id}/addresses/",
    operation_id = "PostAddress",
    tag = "addresses",
    params(("id" = String, Path, description = "The profile's id.", min_length = 1)),
    request_body(content = Address, description = "The address, with an id that is not empty."),
    responses(
        (status = 200, description = "Added.", body = Empty),
        (status = 400, description = "The body is not an address, or its id is empty.", body = ErrorBody),
        (status = 404, description = "No such profile.", body = ErrorBody),
        (status = 409, description = "The profile has an address with this id.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn post_address(
    endpoint: Endpoint<PostAddressRequest, Empty>,
) -> Server<PostAddressRequest, Empty> {
    Server::new(
        endpoint,
        |request| async move {
            let (profile_id, address): (String, Address) = path_and_body(request).await?;
            Ok(PostAddressRequest {
                profile_id,
                address,
            })
        },
        encode_json_response,
    )
    .name("PostAddress")
}

/// `DELETE /profiles/{id}/addresses/{addressID}`: deletes an address.
#[utoipa::path(
    delete,
    path = "/profiles/{id}/addresses/{addressID}",
    operation_id = "DeleteAddress",
    tag = "addresses",
    params(
        ("id" = String, Path, description = "The profile's id.", min_length = 1),
        ("addressID" = String, Path, description = "The address's id.", min_length = 1),
    ),
    responses(
        (status = 200, description = "Deleted.", body = Empty),
        (status = 400, description = "The path is not valid UTF-8 once decoded.", body = ErrorBody),
        (status = 404, description = "No such profile, or no such address.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is busy; try again.", body = ErrorBody),
    )
)]
pub fn delete_address(
    endpoint: Endpoint<DeleteAddressRequest, Empty>,
) -> Server<DeleteAddressRequest, Empty> {
    Server::new(
        endpoint,
        |request| async move {
            let (profile_id, address_id) = path_only(request).await?;
            Ok(DeleteAddressRequest {
                profile_id,
                address_id,
            })
        },
        encode_json_response,
    )
    .name("DeleteAddress")
}
