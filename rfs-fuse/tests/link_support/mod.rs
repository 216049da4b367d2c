//! Helpers shared by the replication link's tests: a secondary serving temp dirs (one per
//! root) on its own thread, a primary playing its local side with its own `Receiver`s, and a
//! raw peer that speaks frames by hand (to misbehave).
#![allow(dead_code)]

use rfs_fuse::link::{
    Hello, LinkError, LocalOutcome, Pending, ReplicationError, Replicator, ServeEnd, ServeOptions,
    StreamReplicator, serve,
};
use rfs_fuse::protocol::op::{Op, Owner, RelPath};
use rfs_fuse::protocol::{AckLevel, Message, MessageDecoder, encode_message};
use rfs_fuse::receiver::{ApplyError, Receiver};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tempfile::TempDir;

pub const MODULE: &str = "app";
/// Long enough never to fire in a healthy test, on a loaded machine.
pub const PATIENT: Duration = Duration::from_secs(30);

pub fn rel(path: &str) -> RelPath {
    RelPath::new(path.as_bytes()).unwrap()
}

pub fn owner() -> Owner {
    Owner {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    }
}

/// A one-root primary's `Hello`.
pub fn hello(module: &str) -> Hello {
    hello_roots(module, 1)
}

pub fn hello_roots(module: &str, roots: u16) -> Hello {
    Hello {
        module: module.to_string(),
        node: "node1".to_string(),
        session: 7,
        roots,
    }
}

pub fn outcome(result: Result<(), ApplyError>) -> LocalOutcome {
    match result {
        Ok(()) => LocalOutcome::Applied,
        Err(e) => LocalOutcome::Failed(e.errno() as i32),
    }
}

/// A secondary serving fresh temp dirs (one per root) on its own thread.
pub struct Secondary {
    pub dirs: Vec<TempDir>,
    thread: JoinHandle<Result<ServeEnd, LinkError>>,
}

impl Secondary {
    /// One root.
    pub fn spawn<S>(stream: S, options: ServeOptions) -> Secondary
    where
        S: Read + Write + TryCloneStream + Send + 'static,
    {
        Secondary::spawn_roots(stream, options, 1)
    }

    pub fn spawn_roots<S>(stream: S, options: ServeOptions, roots: usize) -> Secondary
    where
        S: Read + Write + TryCloneStream + Send + 'static,
    {
        let dirs: Vec<TempDir> = (0..roots).map(|_| tempfile::tempdir().unwrap()).collect();
        let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        let thread = thread::spawn(move || {
            let mut receivers: Vec<Receiver> =
                paths.iter().map(|p| Receiver::open(p).unwrap()).collect();
            let reader = stream.try_clone_stream();
            serve(reader, stream, &mut receivers, options)
        });
        Secondary { dirs, thread }
    }

    /// Root 0's directory.
    pub fn dir(&self) -> &Path {
        self.dirs[0].path()
    }

    /// Root 0's directory and how serving ended.
    pub fn join(self) -> (TempDir, Result<ServeEnd, LinkError>) {
        let (mut dirs, end) = self.join_all();
        (dirs.swap_remove(0), end)
    }

    pub fn join_all(self) -> (Vec<TempDir>, Result<ServeEnd, LinkError>) {
        (self.dirs, self.thread.join().unwrap())
    }
}

pub trait TryCloneStream: Sized {
    fn try_clone_stream(&self) -> Self;
}

impl TryCloneStream for UnixStream {
    fn try_clone_stream(&self) -> Self {
        self.try_clone().unwrap()
    }
}

impl TryCloneStream for std::net::TcpStream {
    fn try_clone_stream(&self) -> Self {
        self.try_clone().unwrap()
    }
}

/// The primary: its own replicas, one per root (applied with a `Receiver`, as the overlay
/// would apply locally), and the link.
pub struct Primary {
    pub dirs: Vec<TempDir>,
    pub locals: Vec<Receiver>,
    pub link: Arc<StreamReplicator>,
}

impl Primary {
    /// As many local replicas as the link has roots.
    pub fn new(link: StreamReplicator) -> Primary {
        let dirs: Vec<TempDir> = (0..link.roots())
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        let locals = dirs
            .iter()
            .map(|d| Receiver::open(d.path()).unwrap())
            .collect();
        Primary {
            dirs,
            locals,
            link: Arc::new(link),
        }
    }

    /// Root 0's directory.
    pub fn dir(&self) -> &Path {
        self.dirs[0].path()
    }

    /// Root 0's local receiver.
    pub fn local(&mut self) -> &mut Receiver {
        &mut self.locals[0]
    }

    /// [`replicate_to`](Self::replicate_to) root 0.
    pub fn replicate(&mut self, op: Op) -> Result<(), ReplicationError> {
        self.replicate_to(0, op)
    }

    /// What the overlay does: send first, apply locally while the frame travels, then
    /// collect the verdict with the local outcome.
    pub fn replicate_to(&mut self, root: u16, op: Op) -> Result<(), ReplicationError> {
        let pending = self.link.send_to(root, op.clone());
        let local = outcome(self.locals[usize::from(root)].apply(&op));
        pending.settle(local)
    }

    /// Sends to root 0 without waiting (pipelining); the caller applies locally and settles
    /// later.
    pub fn send(&self, op: Op) -> Pending {
        self.link.send_to(0, op)
    }
}

/// A one-root primary and secondary over a Unix socket pair.
pub fn pair(options: ServeOptions, send_timeout: Duration) -> (Primary, Secondary) {
    pair_roots(options, send_timeout, 1)
}

/// A primary and a secondary with `roots` replicated directories each.
pub fn pair_roots(
    options: ServeOptions,
    send_timeout: Duration,
    roots: u16,
) -> (Primary, Secondary) {
    let (a, b) = UnixStream::pair().unwrap();
    let secondary = Secondary::spawn_roots(b, options, usize::from(roots));
    let hello = hello_roots(MODULE, roots);
    let link = StreamReplicator::start(a.try_clone().unwrap(), a, hello, send_timeout).unwrap();
    (Primary::new(link), secondary)
}

pub fn options(ack_level: AckLevel) -> ServeOptions {
    ServeOptions::new(MODULE, ack_level)
}

/// Counts `on_broken` calls and keeps the last reason.
#[derive(Clone, Default)]
pub struct BrokenProbe {
    pub calls: Arc<AtomicUsize>,
    pub reason: Arc<std::sync::Mutex<Option<String>>>,
}

impl BrokenProbe {
    pub fn attach(link: &StreamReplicator) -> BrokenProbe {
        let probe = BrokenProbe::default();
        let p = probe.clone();
        link.on_broken(move |reason| {
            p.calls.fetch_add(1, Ordering::SeqCst);
            *p.reason.lock().unwrap() = Some(reason);
        });
        probe
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// One end of a connection driven by hand.
pub struct RawPeer {
    pub stream: UnixStream,
    decoder: MessageDecoder,
}

impl RawPeer {
    pub fn new(stream: UnixStream) -> RawPeer {
        RawPeer {
            stream,
            decoder: MessageDecoder::new(),
        }
    }

    /// The next message; `None` at end of stream. A peer that closes with requests of ours
    /// still unread (it refused one and stopped reading) resets the connection once what it
    /// sent has been read: that is an end of stream too.
    pub fn recv(&mut self) -> Option<Message> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(message) = self.decoder.next().unwrap() {
                return Some(message);
            }
            let n = match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                read => read.unwrap(),
            };
            if n == 0 {
                return None;
            }
            self.decoder.push(&chunk[..n]);
        }
    }

    pub fn send(&mut self, message: &Message) {
        self.send_bytes(&encode_message(message).unwrap());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// As a secondary: reads Hello and accepts it.
    pub fn accept(&mut self) {
        assert!(matches!(self.recv(), Some(Message::Hello { .. })));
        self.send(&Message::HelloAck {
            version: rfs_fuse::protocol::PROTOCOL_VERSION,
            resume_from: 0,
        });
    }

    /// As a one-root primary: says Hello and expects HelloAck.
    pub fn hello(&mut self, module: &str) {
        self.hello_roots(module, 1);
    }

    pub fn hello_roots(&mut self, module: &str, roots: u16) {
        self.send(&Message::Hello {
            version: rfs_fuse::protocol::PROTOCOL_VERSION,
            module: module.to_string(),
            node: "raw".to_string(),
            session: 1,
            roots,
        });
        assert!(matches!(self.recv(), Some(Message::HelloAck { .. })));
    }

    /// A request to root 0.
    pub fn request(&mut self, seq: u64, op: Op) {
        self.request_to(seq, 0, op);
    }

    pub fn request_to(&mut self, seq: u64, root: u16, op: Op) {
        self.send(&Message::Request { seq, root, op });
    }
}

/// A raw secondary on its own thread that accepts the handshake then runs `then` with the
/// peer (returned at the end, so that the connection stays open until the test drops it).
pub fn raw_secondary(
    stream: UnixStream,
    then: impl FnOnce(&mut RawPeer) + Send + 'static,
) -> JoinHandle<RawPeer> {
    thread::spawn(move || {
        let mut peer = RawPeer::new(stream);
        peer.accept();
        then(&mut peer);
        peer
    })
}

/// Sends through the `Replicator` trait object, as the overlay will.
pub fn send_dyn(link: &dyn Replicator, op: Op) -> Pending {
    link.send(op)
}
