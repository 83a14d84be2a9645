//! Reading a whole body, a request's on the server side or an answer's on the client side.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

/// How much of a declared length is reserved at once when no limit says how much may come: a
/// length alone, with nothing behind it yet, reserves no more than this.
const BELIEVED_WITHOUT_LIMIT: usize = 64 * 1024;

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum Collect<E> {
    /// More than the limit came, or was declared.
    TooLarge,
    /// Reading failed.
    Failed(E),
}

/// Reads `body` whole, refusing more than `limit` bytes.
///
/// A small body usually arrives whole in one frame: taken as it is, it is neither copied nor
/// gathered into a list first. The rest go into one buffer of the size the body says it has
/// (its length, when declared), believed up to `limit` (or 64 KiB without one): grown by
/// doubling instead, a body just under the limit would briefly take twice its size.
pub(crate) async fn collect<B>(
    mut body: B,
    limit: Option<usize>,
) -> Result<Bytes, Collect<B::Error>>
where
    B: Body<Data = Bytes> + Unpin,
{
    let max = limit.unwrap_or(usize::MAX);
    let first = match body.frame().await {
        None => return Ok(Bytes::new()),
        Some(frame) => frame
            .map_err(Collect::Failed)?
            .into_data()
            .unwrap_or_default(),
    };
    if first.len() > max {
        return Err(Collect::TooLarge);
    }
    if body.is_end_stream() {
        return Ok(first);
    }
    let left = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let declared = first.len().saturating_add(left);
    if declared > max {
        return Err(Collect::TooLarge);
    }
    let mut whole = BytesMut::with_capacity(declared.min(limit.unwrap_or(BELIEVED_WITHOUT_LIMIT)));
    whole.extend_from_slice(&first);
    drop(first);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Collect::Failed)?.into_data() {
            if whole.len() + data.len() > max {
                return Err(Collect::TooLarge);
            }
            whole.extend_from_slice(&data);
        }
    }
    Ok(whole.freeze())
}
