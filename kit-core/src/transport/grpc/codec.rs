//! Protobuf messages on the wire, with tonic's prost codec, except that a message that cannot be
//! decoded is the sender's mistake.

use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, EncodeBuf};

/// tonic's prost codec, except that a request that is not a valid message is answered
/// `InvalidArgument` ("the caller's request is wrong") rather than `Internal`, which would
/// blame the server. Name it in `build.rs` with
/// `codec_path("kit_core::transport::grpc::Codec")`.
#[derive(Debug)]
pub struct Codec<T, U> {
    _types: PhantomData<fn(T) -> U>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec {
            _types: PhantomData,
        }
    }
}

/// The encoder of [`Codec`]: prost's.
#[derive(Debug)]
pub struct Encoder<T>(tonic_prost::ProstEncoder<T>);

/// The decoder of [`Codec`]: prost's, failing with `InvalidArgument`.
#[derive(Debug)]
pub struct Decoder<U>(tonic_prost::ProstDecoder<U>);

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = Encoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        Encoder(tonic_prost::ProstEncoder::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(tonic_prost::ProstDecoder::default())
    }
}

impl<T: prost::Message> tonic::codec::Encoder for Encoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.0.encode(item, buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

impl<U: prost::Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("invalid message: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
