//! What the sender needs from a connection beyond `Write`: a bound on blocking writes and a
//! way to wake its reader thread.
//!
//! The sender promises that no verdict waits longer than the send timeout. A write to a peer
//! that stopped reading would block forever once the socket buffer fills, and the reader
//! thread blocks in `read` until the peer closes; both must be interruptible from another
//! thread. Sockets provide both (`SO_SNDTIMEO`, `shutdown(2)`, which acts on the connection
//! and so on every descriptor cloned from it). [`Unmanaged`] adapts any other writer, without
//! those guarantees.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Shuts a connection down in both directions, from any thread: a blocked `read` returns
/// end of stream, a blocked `write` fails.
pub struct ShutdownHandle(Box<dyn Fn() + Send + Sync>);

impl ShutdownHandle {
    pub fn new(shutdown: impl Fn() + Send + Sync + 'static) -> ShutdownHandle {
        ShutdownHandle(Box::new(shutdown))
    }

    /// A handle that does nothing.
    pub fn none() -> ShutdownHandle {
        ShutdownHandle::new(|| {})
    }

    pub fn shutdown(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownHandle")
    }
}

/// The writer half of a connection, as the sender needs it.
pub trait Transport: Write {
    /// Bound every blocking write (the sender passes its send timeout).
    fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()>;
    /// A handle that shuts the whole connection down (both halves).
    fn shutdown_handle(&self) -> io::Result<ShutdownHandle>;
}

impl Transport for TcpStream {
    fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        TcpStream::set_write_timeout(self, Some(timeout))
    }

    fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        let socket = self.try_clone()?;
        Ok(ShutdownHandle::new(move || {
            // Already shut down or reset: nothing left to wake.
            let _ = socket.shutdown(Shutdown::Both);
        }))
    }
}

impl Transport for UnixStream {
    fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        UnixStream::set_write_timeout(self, Some(timeout))
    }

    fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        let socket = self.try_clone()?;
        Ok(ShutdownHandle::new(move || {
            let _ = socket.shutdown(Shutdown::Both);
        }))
    }
}

/// Any writer, without a write bound or a shutdown: a write to a stalled peer may block
/// past the send timeout, and closing the link leaves the reader thread blocked until the
/// peer closes its side. For transports that enforce their own timeouts, and for tests.
#[derive(Debug)]
pub struct Unmanaged<W>(pub W);

impl<W: Write> Write for Unmanaged<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Transport for Unmanaged<W> {
    fn set_write_timeout(&mut self, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        Ok(ShutdownHandle::none())
    }
}
