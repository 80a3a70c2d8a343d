//! Long-lived answers (history streams, the live stream) kept from hurting
//! anyone else: a per-account cap on how many are open at once, and a
//! streamed body that ends (with its connection) when its client stops
//! taking it. A stream never holds a database connection while it waits
//! on its client: it reads a chunk, lets the connection go, then sends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use tokio::sync::{Notify, mpsc};

use crate::error::ApiError;
use crate::open_counts::{OpenCounts, OpenSlot};

/// Streams (history and live together) one account may have open at once,
/// per cloud instance: a family's computers each keep one live stream, and
/// a few history downloads fit beside them.
pub const MAX_STREAMS_PER_ACCOUNT: usize = 8;

/// A streamed body whose client has not taken the next chunk for this long
/// is ended, and its connection closed.
pub const STALL_LIMIT: Duration = Duration::from_secs(15);

/// Open streams per account.
#[derive(Clone, Default)]
pub struct StreamCounts(OpenCounts<String>);

/// Held by an open stream; dropping it (the stream ended, however) frees the place.
pub type StreamPermit = OpenSlot<String>;

impl StreamCounts {
    /// One more open stream for `account_id`, or `429 too_many_streams`.
    pub fn open(&self, account_id: &str) -> Result<StreamPermit, ApiError> {
        self.0
            .take(&account_id.to_owned(), MAX_STREAMS_PER_ACCOUNT)
            .ok_or(ApiError::TooManyStreams)
    }
}

/// Closes the connection a request arrived on (put into every request by
/// the listener): used to end a streamed answer its client stopped reading,
/// which hyper alone would keep open as long as the socket lives.
#[derive(Clone, Default)]
pub struct CloseConnection(pub Arc<Notify>);

/// Where a stream's producer puts its chunks.
pub struct ChunkSender {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    close: Option<CloseConnection>,
}

impl ChunkSender {
    /// Hands a chunk to the client. False when the stream must end: the
    /// client went away, or did not take the previous chunk within
    /// [`STALL_LIMIT`] (then its connection is closed too).
    pub async fn send(&self, chunk: Bytes) -> bool {
        match self.tx.send_timeout(Ok(chunk), STALL_LIMIT).await {
            Ok(()) => true,
            Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::info!("a stream's client stopped reading; closing its connection");
                if let Some(close) = &self.close {
                    close.0.notify_one();
                }
                false
            }
        }
    }

    /// Ends the stream with an error, so the client sees it cut, not complete.
    pub async fn fail(&self, why: &'static str) {
        let _ = self
            .tx
            .send_timeout(Err(std::io::Error::other(why)), STALL_LIMIT)
            .await;
    }
}

/// A body fed by a producer task through a one-chunk channel: the producer
/// runs only as fast as the client reads.
pub fn channel_body(close: Option<CloseConnection>) -> (ChunkSender, Body) {
    let (tx, mut rx) = mpsc::channel(1);
    let stream = async_stream::stream! {
        while let Some(chunk) = rx.recv().await {
            yield chunk;
        }
    };
    (ChunkSender { tx, close }, Body::from_stream(stream))
}
