//! The emulator's TCP listener: plain TCP, except that every connection carries a kill switch
//! that fault injection can throw to drop the connection without an answer.
//!
//! A handler cannot close its own connection in axum. So every accepted stream is wrapped in
//! a [`KillableStream`], and the same switch reaches the request's extensions as
//! `ConnectInfo<ConnectionHandle>`. Once the switch is thrown, writes fail and reads end, so
//! the server gives up on the connection before writing the response and the client sees the
//! connection close with no answer. This module knows nothing about HTTP or the store.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be dropped on purpose.
pub(crate) struct FaultListener {
    inner: TcpListener,
}

impl FaultListener {
    pub(crate) fn new(inner: TcpListener) -> Self {
        FaultListener { inner }
    }
}

impl Listener for FaultListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's listener for `TcpListener` retries failed accepts itself.
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        (KillableStream { inner: stream, killed: Arc::new(AtomicBool::new(false)) }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that stops working once its switch is thrown.
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

fn killed_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the emulator dropped this connection on purpose")
}

impl AsyncRead for KillableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.is_killed() {
            // End of stream: nothing more is read from a dropped connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The handle a request gets (as `ConnectInfo<ConnectionHandle>`) to drop its connection.
#[derive(Clone)]
pub(crate) struct ConnectionHandle {
    killed: Arc<AtomicBool>,
}

impl ConnectionHandle {
    /// Drops the connection: the response being prepared is never written.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, FaultListener>> for ConnectionHandle {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        ConnectionHandle { killed: Arc::clone(&stream.io().killed) }
    }
}
