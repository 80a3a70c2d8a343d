//! The security headers on answers hyper writes by itself. When a request
//! cannot even be parsed (431 for oversized headers, 400 for a malformed
//! request line) hyper answers before any router or middleware runs, so
//! those answers would lack the headers every other answer carries. This
//! wraps the connection's byte stream: a response head that goes out
//! without our Content-Security-Policy (only hyper's own answers) gets the
//! full set added before its blank line. Heads our router produced already
//! carry them and pass through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use axum::http::{HeaderName, header};

/// Headers every response carries: a CSP with no inline script, no framing,
/// no referrer, HSTS, and no caching of anything personal. The listener adds
/// them to the few answers hyper makes itself, before any routing.
pub const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CACHE_CONTROL, "no-store"),
];

pub struct SecureHeads<T> {
    inner: T,
    /// A rewritten head still being written, and how much of it went out.
    pending: Vec<u8>,
    written: usize,
    /// The length of the caller's buffer the rewrite stands for.
    owed: usize,
}

impl<T> SecureHeads<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
            owed: 0,
        }
    }
}

/// `buf` with the security headers added to its head, if it is a response
/// head (complete within `buf`) that lacks them.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = buf[..end].to_ascii_lowercase();
    if head
        .windows(b"content-security-policy:".len())
        .any(|w| w == b"content-security-policy:")
    {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len() + 512);
    out.extend_from_slice(&buf[..end]);
    for (name, value) in SECURITY_HEADERS {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(&buf[end..]);
    Some(out)
}

impl<T: AsyncWrite + Unpin> SecureHeads<T> {
    /// Writes the pending rewrite; Ready(n) with the caller's length once all is out.
    fn flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while self.written < self.pending.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(std::mem::take(&mut self.owed)))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SecureHeads<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SecureHeads<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.owed > 0 {
            // The caller repeats the buffer it was told is pending.
            return this.flush_pending(cx);
        }
        if let Some(rewritten) = rewrite(buf) {
            this.pending = rewritten;
            this.written = 0;
            this.owed = buf.len();
            return this.flush_pending(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.owed > 0 {
            match this.flush_pending(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_answers_get_the_headers_and_ours_pass_untouched() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "));
        assert!(out.contains("\r\ncontent-security-policy: default-src 'none';"));
        assert!(out.contains("\r\nx-frame-options: DENY"));
        assert!(out.contains("content-length: 0\r\n"));
        assert!(out.ends_with("\r\ncache-control: no-store\r\n\r\n"));
        let ours = b"HTTP/1.1 200 OK\r\nContent-Security-Policy: x\r\n\r\n{}";
        assert!(rewrite(ours).is_none());
        assert!(
            rewrite(b"{\"HTTP/1.1 \": 1}").is_none(),
            "a body is not a head"
        );
    }
}
