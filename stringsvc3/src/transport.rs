//! The HTTP transport this stage changes: how a call that could not be answered is reported.

use std::error::Error as StdError;

use kit_core::error::ErrorExt;
use kit_core::transport::http::{DecodeError, Response, encode_error, json_response, status_code};
use stringsvc1::endpoint::UppercaseResponse;

// ANCHOR: encode
/// Answers a failed `uppercase` call. When the instances could not answer, the answer keeps the
/// response's shape, `{"v":"","err":"<why>"}`, with the status of the failure (503, or 504 for a
/// deadline): Go kit clients read `err` and nothing else, so a body they cannot read would look
/// like an empty success to them. A request that could not be read gets kit-core's
/// `{"error":"<why>"}`.
pub fn encode_uppercase_failure(error: &(dyn StdError + Send + Sync + 'static)) -> Response {
    if error.find::<DecodeError>().is_some() {
        return encode_error(error);
    }
    let body = UppercaseResponse {
        v: String::new(),
        err: Some(error.to_string()),
    };
    json_response(status_code(error), &body).unwrap_or_else(|_| encode_error(error))
}
// ANCHOR_END: encode
