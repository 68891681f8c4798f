//! The keytrail feed driver: `keytrail.v1.ForwardService/Forward`, one
//! bidirectional stream of sequenced batches answered by acknowledgements
//! (the contract is at the top of `proto/keytrail/v1/forward.proto`).
//!
//! One stream at a time. Opening one: wait until the receiver's health
//! service reports `keytrail.v1.ForwardService` serving, open the stream,
//! say hello with the oldest unanswered sequence, then send every
//! unanswered batch of the window in order, then new batches as they are
//! sealed. Answers must come in order, for the oldest unanswered batch:
//! - accepted: the batch's shares are acked and the backoff resets;
//! - rejected for good: the batch goes to the dead-letter output;
//! - rejected retryable, no answer within `request_timeout_ms`, a stream
//!   error, an answer out of order: the stream is dropped, and after a
//!   backoff a new one starts again from the oldest unanswered batch
//!   (go-back-N).
//!
//! Because the receiver stores only the sequence it expects and a new
//! stream replaces the old one, the stored events keep the order in which
//! they were taken; a batch is stored twice only when its answer was lost,
//! so duplicates are bounded by the window per reconnection.

use std::any::Any;

use bytes::Bytes;
use keytrail_core::{Event, Events, Prepare};
use keytrail_proto::{EncodedEvents, EventArena, ForwardFrame, v1};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::backoff::Backoff;
use crate::codec::ReservingCodec;
use crate::config::MAX_BATCH_BYTES;
use crate::forwarder::{Connection, describe, sleep_until, wait_retry};
use crate::queue::{Command, Encoder, Queue};
use crate::telemetry::{self, RejectKind};

/// Encodes events as `keytrail.v1.Event`, straight to bytes in shared
/// chunks: a wire batch holds each event's encoding once, and every send
/// shares it.
#[derive(Default)]
pub(crate) struct FeedEncoder(EventArena);

impl Encoder for FeedEncoder {
    type Item = Bytes;

    fn encode(&mut self, event: &Event) -> Bytes {
        self.0.encode(event)
    }

    fn prepared(events: &Events, index: usize) -> Option<Bytes> {
        let encoded = events.prepared::<FeedPrepare, EncodedEvents>()?;
        // Made from these very events, one for one; anything else is not
        // theirs.
        (encoded.len() == events.len())
            .then(|| encoded.get(index))
            .flatten()
    }

    fn encoded_len(item: &Bytes) -> usize {
        item.len()
    }
}

/// The feed's work on the transform threads: each batch's events encoded
/// there, while they are in that core's cache. The forwarding task then
/// only copies bytes; it encodes an event itself only when a batch comes
/// without them (a topology that does not prepare).
#[derive(Debug)]
pub(crate) struct FeedPrepare;

impl Prepare for FeedPrepare {
    fn prepare(&self, events: &[Event]) -> Box<dyn Any + Send + Sync> {
        Box::new(EncodedEvents::encode(events))
    }
}

/// The feed's method path (the generated client's; the end-to-end tests
/// fail on any other).
const FORWARD_PATH: &str = "/keytrail.v1.ForwardService/Forward";

/// Runs until the input is closed and everything is resolved.
pub(crate) async fn run(
    connection: Connection,
    mut commands: mpsc::Receiver<Command>,
    mut queue: Queue<FeedEncoder>,
) {
    let sender_id = format!("keytrail-{:016x}", crate::forwarder::random_seed());
    let mut backoff = Backoff::new(connection.settings.backoff);
    let mut streams = 0u64;
    loop {
        let failure = match stream(
            &connection,
            &mut commands,
            &mut queue,
            &sender_id,
            &mut backoff,
            &mut streams,
        )
        .await
        {
            Ok(()) => return,
            Err(failure) => failure,
        };
        queue.mark_all_unsent();
        connection.link_down(&failure);
        let delay = backoff.next_delay();
        telemetry::link_failed(&failure, delay);
        if !wait_retry(delay, &mut commands, &mut queue).await {
            return;
        }
    }
}

/// One stream, from health check to failure; `Ok` when the input closed
/// and everything was answered.
async fn stream(
    connection: &Connection,
    commands: &mut mpsc::Receiver<Command>,
    queue: &mut Queue<FeedEncoder>,
    sender_id: &str,
    backoff: &mut Backoff,
    streams: &mut u64,
) -> Result<(), String> {
    let settings = connection.settings;
    connection.check_health(v1::FORWARD_SERVICE_NAME).await?;

    // Room for the hello and a whole window: sends never wait.
    let (requests, outgoing) = mpsc::channel(settings.limits.max_in_flight + 1);
    let first_sequence = queue.first_unanswered();
    let hello = ForwardFrame::Hello(v1::Hello {
        sender_id: sender_id.to_owned(),
        first_sequence,
        agent: concat!("keytrail/", env!("CARGO_PKG_VERSION")).to_owned(),
    });
    requests
        .try_send(hello)
        .map_err(|_| "feed stream closed".to_owned())?;

    // The generated client would take `v1::ForwardRequest`s, whose events
    // are owned messages; the same call with a prost codec over
    // `ForwardFrame` sends the pre-encoded events as they are.
    let service = tonic::service::interceptor::InterceptedService::new(
        connection.channel.clone(),
        connection.auth.clone(),
    );
    let mut client = tonic::client::Grpc::new(service)
        .max_decoding_message_size(MAX_BATCH_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Zstd);
    if let Some(encoding) = connection.compression {
        client = client.send_compressed(encoding);
    }
    let opened = tokio::time::timeout(settings.request_timeout, async {
        client
            .ready()
            .await
            .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
        let mut request = tonic::Request::new(ReceiverStream::new(outgoing));
        request
            .extensions_mut()
            .insert(tonic::GrpcMethod::new(v1::FORWARD_SERVICE_NAME, "Forward"));
        let codec = ReservingCodec::<ForwardFrame, v1::ForwardResponse>::default();
        client
            .streaming(
                request,
                http::uri::PathAndQuery::from_static(FORWARD_PATH),
                codec,
            )
            .await
    })
    .await
    .map_err(|_| "opening the feed stream timed out".to_owned())?
    .map_err(|status| format!("opening the feed stream failed: {}", describe(&status)))?;
    let mut answers = opened.into_inner();

    if *streams > 0 {
        telemetry::reconnect();
    }
    *streams += 1;
    connection.link_up();
    telemetry::connected("keytrail", first_sequence, queue.in_flight());

    loop {
        let now = Instant::now();
        queue.fill(now);
        queue.reject_oversized().await;
        for sequence in queue.due(now) {
            let Some(batch) = queue.get(sequence) else {
                continue;
            };
            let request = ForwardFrame::Batch {
                sequence,
                events: batch.items.clone(),
            };
            requests
                .try_send(request)
                .map_err(|_| "feed stream closed".to_owned())?;
            queue.mark_sent(sequence, now);
        }
        queue.check_flushes();
        if queue.is_done() {
            return Ok(());
        }

        let answer_deadline = queue
            .front()
            .and_then(|b| b.sent_at)
            .map(|sent| sent + settings.request_timeout);
        tokio::select! {
            biased;
            answer = answers.message() => match answer {
                Ok(Some(answer)) => on_answer(answer, queue, backoff).await?,
                Ok(None) => return Err("receiver closed the feed stream".to_owned()),
                Err(status) => return Err(format!("feed stream failed: {}", describe(&status))),
            },
            () = sleep_until(answer_deadline) => {
                return Err("no acknowledgement within request_timeout_ms".to_owned());
            }
            () = sleep_until(queue.linger_deadline()) => {}
            command = commands.recv(), if queue.wants_input() => queue.take(command),
        }
    }
}

/// Applies one acknowledgement; `Err` ends the stream.
async fn on_answer(
    answer: v1::ForwardResponse,
    queue: &mut Queue<FeedEncoder>,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let Some(oldest) = queue.front().filter(|b| b.sent_at.is_some()) else {
        return Err(format!(
            "receiver answered batch {} that was not sent",
            answer.sequence
        ));
    };
    let (sequence, events) = (oldest.sequence, oldest.len());
    if answer.sequence != sequence {
        return Err(format!(
            "receiver answered batch {} while batch {sequence} was the oldest unanswered",
            answer.sequence
        ));
    }
    match answer.status() {
        v1::AckStatus::Accepted => {
            queue.accept(sequence, Instant::now());
            backoff.reset();
            Ok(())
        }
        v1::AckStatus::RejectedPermanent => {
            queue.reject(sequence, &answer.reason).await;
            Ok(())
        }
        v1::AckStatus::RejectedRetryable => {
            telemetry::batch_rejected(sequence, events, RejectKind::Retryable, &answer.reason);
            Err(format!(
                "receiver asked to retry batch {sequence}: {}",
                answer.reason
            ))
        }
        v1::AckStatus::Unspecified => Err(format!(
            "receiver answered batch {sequence} without a status"
        )),
    }
}
