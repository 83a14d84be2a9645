//! What the transports call when the `trace` feature is off: nothing, at no cost.

// Each transport uses the part it needs; which are used depends on the features enabled.
#![allow(dead_code)]

use crate::context::Context;
use crate::error::ErrorKind;

/// No span.
#[derive(Debug)]
pub(crate) struct Call;

#[allow(clippy::unused_self)]
impl Call {
    pub(crate) const fn none() -> Self {
        Call
    }

    #[inline]
    pub(crate) fn http_server(
        ctx: Context,
        _method: &http::Method,
        _path: &str,
        _name: Option<&'static str>,
    ) -> (Context, Call) {
        (ctx, Call)
    }

    #[inline]
    pub(crate) fn http_client(
        ctx: Context,
        _method: &http::Method,
        _url: &str,
        _host: Option<&str>,
        _port: Option<u16>,
        _name: Option<&'static str>,
    ) -> (Context, Call) {
        (ctx, Call)
    }

    #[inline]
    pub(crate) fn rpc(
        ctx: Context,
        _server: bool,
        _system: &'static str,
        _path: &str,
    ) -> (Context, Call) {
        (ctx, Call)
    }

    #[inline]
    pub(crate) fn is_traced(&self) -> bool {
        false
    }

    #[inline]
    pub(crate) fn failed(&mut self, _kind: ErrorKind, _message: &dyn std::fmt::Display) {}

    #[inline]
    pub(crate) fn http_status(&mut self, _status: u16, _server: bool) {}

    #[inline]
    pub(crate) fn grpc_status(&mut self, _code: i32, _server: bool) {}

    #[inline]
    pub(crate) fn jsonrpc_error(&mut self, _code: i64) {}

    #[inline]
    pub(crate) fn succeeded(&mut self) {}
}
