//! The codec of both protocols' requests: prost's, except that each
//! request's room is reserved before it is written.
//!
//! tonic's own encoder grows its buffer from 8 KiB as the request is
//! written, so a batch of a few hundred kilobytes was copied about ten
//! times; reserved at once, the buffer of an earlier batch that h2 has sent
//! is reused in place. The requests are the frames whose items are already
//! encoded (`ForwardFrame`, `LogsFrame`); answers are decoded by prost.

use std::marker::PhantomData;

/// Encodes `E` into reserved room, decodes `D` with prost.
#[derive(Debug)]
pub(crate) struct ReservingCodec<E, D>(PhantomData<fn(E) -> D>);

impl<E, D> Default for ReservingCodec<E, D> {
    fn default() -> Self {
        ReservingCodec(PhantomData)
    }
}

impl<E, D> tonic::codec::Codec for ReservingCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ReservingEncoder<E>;
    type Decoder = tonic_prost::ProstDecoder<D>;

    fn encoder(&mut self) -> ReservingEncoder<E> {
        ReservingEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstCodec::<E, D>::default().decoder()
    }
}

/// Writes a request into room reserved for all of it.
#[derive(Debug)]
pub(crate) struct ReservingEncoder<E>(PhantomData<fn(E)>);

impl<E: prost::Message> tonic::codec::Encoder for ReservingEncoder<E> {
    type Item = E;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        request: E,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        buf.reserve(request.encoded_len());
        request
            .encode(buf)
            .map_err(|error| tonic::Status::internal(format!("encoding a request: {error}")))
    }
}
