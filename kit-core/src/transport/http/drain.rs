//! What a request learns of its server's drain: the accept loop runs each connection with the
//! server's [`Shutdown`] token at hand, and the [`Server`](super::Server) cuts a request off
//! with a 503 when the drain deadline passes before it is done, rather than leave its client to
//! a connection that is simply closed.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::task::futures::TaskLocalFuture;

use crate::error::{BoxError, Error};
use crate::shutdown::{CutOff, Shutdown};

tokio::task_local! {
    static DRAINING: Shutdown;
}

/// Runs a connection with `shutdown` at hand for the requests it serves.
pub(super) fn scope<F: Future>(shutdown: Shutdown, connection: F) -> TaskLocalFuture<Shutdown, F> {
    DRAINING.scope(shutdown, connection)
}

/// Runs `handling`, but ends it with [`CutOff`] if the server's drain deadline passes first.
///
/// Outside a kit-core accept loop there is no drain to watch, and `handling` runs as it is. A
/// request that finishes in its first poll, as most do, costs nothing more: the drain is only
/// watched (a registration with the shutdown token and a timer) by requests that wait.
pub(super) async fn or_cut_off<T>(
    handling: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    let Ok(shutdown) = DRAINING.try_with(Shutdown::clone) else {
        return handling.await;
    };
    let mut handling = std::pin::pin!(handling);
    let mut cut_off: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = handling.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        let cut_off = cut_off.get_or_insert_with(|| {
            let requested = shutdown.requested();
            Box::pin(async move {
                let deadline = requested.await;
                tokio::time::sleep_until(deadline).await;
            })
        });
        cut_off
            .as_mut()
            .poll(cx)
            .map(|()| Err(Error::from(CutOff).into()))
    })
    .await
}
