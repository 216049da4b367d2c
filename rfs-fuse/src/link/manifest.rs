//! The manifest conversation: the primary asks the secondary for the manifest of every
//! replicated directory ([`fetch_manifest`]); the secondary walks its directories and answers
//! ([`serve_manifest`]). It runs on its own connection beside the replication stream, which it
//! never disturbs.

use super::error::LinkError;
use super::incoming::{Incoming, Opening};
use super::kind;
use super::server::goodbye;
use crate::protocol::manifest::{Entry, MAX_HASHES};
use crate::protocol::{Message, PROTOCOL_VERSION};
use crate::sync::manifest::{RootManifest, walk_each};
use bytes::BytesMut;
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// How long the primary waits to connect, and for each part of the answer (entries leave as
/// they are read: the longest silence is the time to read one file).
pub const MANIFEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Answers the manifest request that opened this connection with the manifest of every
/// directory in `roots` (the module's, in configuration order), files hashed by `workers`
/// threads; how many entries were sent. A request for another module, protocol version or number of roots is refused with a
/// Goodbye saying why, as is a walk that fails.
pub fn serve_manifest<R: Read, W: Write>(
    opening: Opening<R>,
    writer: W,
    module: &str,
    roots: &[BorrowedFd<'_>],
    workers: usize,
) -> Result<u64, LinkError> {
    let mut writer = BufWriter::new(writer);
    let result = accepted_block_size(&opening.first, module, roots.len())
        .and_then(|block_size| send_manifests(&mut writer, roots, block_size, workers));
    if let Err(error) = &result {
        goodbye(&mut writer, &error.to_string());
    }
    result
}

/// The block size asked for, if the request is one this secondary can answer.
fn accepted_block_size(request: &Message, module: &str, roots: usize) -> Result<u32, LinkError> {
    let Message::ManifestRequest {
        version,
        module: asked,
        roots: asked_roots,
        block_size,
    } = request
    else {
        return Err(LinkError::Protocol(format!(
            "expected ManifestRequest, got {}",
            kind(request)
        )));
    };
    check_asked(*version, asked, *asked_roots, module, roots)?;
    Ok(*block_size)
}

/// A request for this `module` with its number of `roots`, in this protocol version.
pub(super) fn check_asked(
    version: u16,
    asked: &str,
    asked_roots: u16,
    module: &str,
    roots: usize,
) -> Result<(), LinkError> {
    if version != PROTOCOL_VERSION {
        return Err(LinkError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    if asked != module {
        return Err(LinkError::ModuleMismatch {
            expected: module.to_string(),
            got: asked.to_string(),
        });
    }
    if usize::from(asked_roots) != roots {
        return Err(LinkError::RootsMismatch {
            ours: roots,
            theirs: asked_roots,
        });
    }
    Ok(())
}

fn send_manifests<W: Write>(
    writer: &mut W,
    roots: &[BorrowedFd<'_>],
    block_size: u32,
    workers: usize,
) -> Result<u64, LinkError> {
    let mut sent = 0u64;
    for (index, root) in roots.iter().enumerate() {
        let root_index = u16::try_from(index).map_err(|_| {
            LinkError::Protocol(format!("root {index} beyond the protocol's range"))
        })?;
        // Each entry leaves as soon as it is read: the primary hears something at least
        // once per file, however long the whole folder takes to read.
        let mut failed = None;
        walk_each(*root, block_size, workers, &mut |entry| {
            let flush = !entry.blocks.is_empty();
            let sent_one = send_entry(writer, root_index, entry).and_then(|()| {
                if flush {
                    writer
                        .flush()
                        .map_err(LinkError::io("sending the manifest"))?;
                }
                Ok(())
            });
            match sent_one {
                Ok(()) => sent += 1,
                Err(error) => failed = Some(error),
            }
            failed.is_none()
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
    }
    send(writer, &Message::ManifestEnd { entries: sent })?;
    writer
        .flush()
        .map_err(LinkError::io("sending the manifest"))?;
    Ok(sent)
}

/// One entry, its hashes beyond what one message carries following in `ManifestBlocks`.
fn send_entry<W: Write>(writer: &mut W, root: u16, mut entry: Entry) -> Result<(), LinkError> {
    let rest = entry.blocks.split_off(entry.blocks.len().min(MAX_HASHES));
    send(
        writer,
        &Message::ManifestEntry {
            root,
            entry: Box::new(entry),
        },
    )?;
    for hashes in rest.chunks(MAX_HASHES) {
        let hashes = hashes.to_vec();
        send(writer, &Message::ManifestBlocks { hashes })?;
    }
    Ok(())
}

pub(super) fn send<W: Write>(writer: &mut W, message: &Message) -> Result<(), LinkError> {
    let mut frame = BytesMut::new();
    crate::protocol::write_message(&mut frame, message).map_err(|source| LinkError::Encode {
        what: kind(message),
        source,
    })?;
    writer
        .write_all(&frame)
        .map_err(LinkError::io("sending the manifest"))
}

/// Asks the secondary listening at `addr` for the manifest of each of the module's `roots`
/// directories, hashing blocks of `block_size` bytes.
pub fn fetch_manifest(
    addr: SocketAddr,
    module: &str,
    roots: u16,
    block_size: u32,
) -> Result<Vec<RootManifest>, LinkError> {
    let (reader, writer) = side_connection(addr)?;
    request_manifest(reader, writer, module, roots, block_size)
}

/// A connection to the peer's replication port beside the stream (for a manifest or a
/// journal), as a reader and a writer, every wait bounded by [`MANIFEST_TIMEOUT`].
pub fn side_connection(addr: SocketAddr) -> Result<(TcpStream, TcpStream), LinkError> {
    let stream = TcpStream::connect_timeout(&addr, MANIFEST_TIMEOUT)
        .map_err(LinkError::io("connecting beside the stream"))?;
    stream
        .set_read_timeout(Some(MANIFEST_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(MANIFEST_TIMEOUT)))
        .map_err(LinkError::io("setting the side connection's timeouts"))?;
    let reader = stream
        .try_clone()
        .map_err(LinkError::io("setting up the side connection"))?;
    Ok((reader, stream))
}

/// [`fetch_manifest`] over an established connection.
pub fn request_manifest<R: Read, W: Write>(
    reader: R,
    mut writer: W,
    module: &str,
    roots: u16,
    block_size: u32,
) -> Result<Vec<RootManifest>, LinkError> {
    let request = Message::ManifestRequest {
        version: PROTOCOL_VERSION,
        module: module.to_string(),
        roots,
        block_size,
    };
    send(&mut writer, &request)?;
    writer
        .flush()
        .map_err(LinkError::io("sending the manifest request"))?;
    let mut incoming = Incoming::new(reader, "reading the manifest");
    let mut assembly = Assembly::new(roots, block_size);
    loop {
        let message = incoming.next()?.ok_or_else(|| {
            LinkError::Protocol("the secondary closed the connection before ManifestEnd".into())
        })?;
        if let Some(done) = assembly.take(message)? {
            return Ok(done);
        }
    }
}

/// The most entries a manifest may hold (memory bound against a broken or hostile peer).
pub const MAX_MANIFEST_ENTRIES: u64 = 10_000_000;
/// The most block hashes a manifest may hold in all (512 MiB of hashes).
pub const MAX_MANIFEST_HASHES: u64 = 16 << 20;

/// The manifests being received, checked as they arrive: entries of each root in strictly
/// increasing path order starting with the root itself, each file with exactly the block
/// hashes its size calls for.
struct Assembly {
    roots: Vec<RootManifest>,
    block_size: u32,
    /// The last entry received, which `ManifestBlocks` may still extend, and its root.
    open: Option<(usize, Entry)>,
    received: u64,
    hashes: u64,
    /// At most this many entries and block hashes.
    limits: (u64, u64),
}

impl Assembly {
    fn new(roots: u16, block_size: u32) -> Assembly {
        Assembly {
            roots: vec![RootManifest::default(); usize::from(roots)],
            block_size,
            open: None,
            received: 0,
            hashes: 0,
            limits: (MAX_MANIFEST_ENTRIES, MAX_MANIFEST_HASHES),
        }
    }

    /// Takes one message; the manifests once complete.
    fn take(&mut self, message: Message) -> Result<Option<Vec<RootManifest>>, LinkError> {
        match message {
            Message::ManifestEntry { root, entry } => {
                self.close()?;
                self.open(usize::from(root), *entry)?;
            }
            Message::ManifestBlocks { hashes } => self.extend(hashes)?,
            Message::ManifestEnd { entries } => {
                self.close()?;
                if entries != self.received {
                    return Err(LinkError::Protocol(format!(
                        "the manifest announces {entries} entries but {} arrived",
                        self.received
                    )));
                }
                return Ok(Some(std::mem::take(&mut self.roots)));
            }
            Message::Goodbye { reason } => return Err(LinkError::Refused(reason)),
            other => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {} in a manifest",
                    kind(&other)
                )));
            }
        }
        Ok(None)
    }

    fn open(&mut self, root: usize, entry: Entry) -> Result<(), LinkError> {
        if self.received >= self.limits.0 {
            return Err(LinkError::Protocol(format!(
                "the manifest holds more than {} entries",
                self.limits.0
            )));
        }
        self.count_hashes(entry.blocks.len())?;
        let roots = self.roots.len();
        let manifest = self.roots.get(root).ok_or(LinkError::Protocol(format!(
            "a manifest entry names root {root}, but there are only {roots} roots"
        )))?;
        let in_order = match manifest.entries.last() {
            None => entry.path.is_none(),
            Some(last) => last.path < entry.path,
        };
        if !in_order {
            return Err(LinkError::Protocol(format!(
                "manifest entries of root {root} out of order"
            )));
        }
        self.open = Some((root, entry));
        Ok(())
    }

    fn extend(&mut self, hashes: Vec<crate::protocol::manifest::Hash>) -> Result<(), LinkError> {
        let Some((_, entry)) = &mut self.open else {
            return Err(LinkError::Protocol(
                "ManifestBlocks without an entry".to_string(),
            ));
        };
        let total = entry.blocks.len().saturating_add(hashes.len()) as u64;
        if total > Entry::block_count(entry.size, self.block_size) {
            return Err(LinkError::Protocol(format!(
                "more block hashes than an entry of {} bytes has",
                entry.size
            )));
        }
        let more = hashes.len();
        entry.blocks.extend(hashes);
        self.count_hashes(more)
    }

    fn count_hashes(&mut self, more: usize) -> Result<(), LinkError> {
        self.hashes = self.hashes.saturating_add(more as u64);
        if self.hashes > self.limits.1 {
            return Err(LinkError::Protocol(format!(
                "the manifest holds more than {} block hashes",
                self.limits.1
            )));
        }
        Ok(())
    }

    /// Files the entry received last, checking its block count.
    fn close(&mut self) -> Result<(), LinkError> {
        let Some((root, entry)) = self.open.take() else {
            return Ok(());
        };
        let expected = match entry.kind {
            crate::compare::FileKind::Regular => Entry::block_count(entry.size, self.block_size),
            _ => 0,
        };
        if entry.blocks.len() as u64 != expected {
            return Err(LinkError::Protocol(format!(
                "a manifest entry of {} bytes carries {} block hashes instead of {expected}",
                entry.size,
                entry.blocks.len()
            )));
        }
        if let Some(manifest) = self.roots.get_mut(root) {
            manifest.entries.push(entry);
            self.received += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::manifest::Hash;
    use crate::protocol::op::{RelPath, Timestamp};

    fn file(name: &str, size: u64) -> Message {
        Message::ManifestEntry {
            root: 0,
            entry: Box::new(Entry {
                path: Some(RelPath::new(name.as_bytes()).unwrap()),
                kind: crate::compare::FileKind::Regular,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size,
                mtime: Timestamp { sec: 0, nsec: 0 },
                nlink: 1,
                rdev: 0,
                target: None,
                xattrs: Vec::new(),
                blocks: vec![Hash::default(); size.div_ceil(4096) as usize],
            }),
        }
    }

    fn root() -> Message {
        let Message::ManifestEntry { entry, .. } = file("x", 0) else {
            unreachable!()
        };
        Message::ManifestEntry {
            root: 0,
            entry: Box::new(Entry {
                path: None,
                kind: crate::compare::FileKind::Directory,
                ..*entry
            }),
        }
    }

    #[test]
    fn a_manifest_beyond_the_memory_bounds_is_refused() {
        let mut few_entries = Assembly::new(1, 4096);
        few_entries.limits = (2, 100);
        for message in [root(), file("a", 0)] {
            few_entries.take(message).unwrap();
        }
        let error = few_entries.take(file("b", 0)).unwrap_err();
        assert!(error.to_string().contains("more than 2 entries"), "{error}");

        let mut few_hashes = Assembly::new(1, 4096);
        few_hashes.limits = (100, 3);
        few_hashes.take(root()).unwrap();
        few_hashes.take(file("a", 3 * 4096)).unwrap();
        let error = few_hashes.take(file("b", 4096)).unwrap_err();
        assert!(
            error.to_string().contains("more than 3 block hashes"),
            "{error}"
        );
    }
}
