//! [`StreamAdopter`]: puts a new stream in step with the files the application opened before
//! the stream existed (a database keeps its files open across the peer's arrival).
//!
//! A stream handle is valid on the peer from its `Open`/`Create` to its `Close`. When the
//! overlay switches to a new stream, its files already open for writing have handles the new
//! peer never heard of: each one with a path is opened there first; one unlinked while open
//! cannot be reached by the peer (nor needs to be: it vanishes on close), so what is done
//! through it is not sent.

use super::replicate::{Pending, Replicator};
use crate::protocol::op::{Handle, Op, RelPath};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

pub struct StreamAdopter {
    inner: Arc<dyn Replicator>,
    /// Handles the peer cannot know: their operations stay local.
    orphans: Mutex<HashSet<Handle>>,
}

impl std::fmt::Debug for StreamAdopter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamAdopter").finish_non_exhaustive()
    }
}

impl StreamAdopter {
    /// Sends `Open` for every open file with a path; returns the adopter and the pending
    /// opens. Call with writes frozen, `open` taken meanwhile (see
    /// [`OpenHandles::snapshot`](super::mount::OpenHandles::snapshot)).
    pub fn adopt(
        inner: Arc<dyn Replicator>,
        open: Vec<(Handle, Option<RelPath>)>,
    ) -> (StreamAdopter, Vec<Pending>) {
        let mut orphans = HashSet::new();
        let mut pending = Vec::new();
        for (handle, path) in open {
            match path {
                Some(path) => pending.push(inner.send(Op::Open { handle, path })),
                None => {
                    orphans.insert(handle);
                }
            }
        }
        let adopter = StreamAdopter {
            inner,
            orphans: Mutex::new(orphans),
        };
        (adopter, pending)
    }
}

fn handle_of(op: &Op) -> Option<Handle> {
    match op {
        Op::Write { handle, .. }
        | Op::SetLen { handle, .. }
        | Op::Fallocate { handle, .. }
        | Op::Fsync { handle, .. }
        | Op::Close { handle } => Some(*handle),
        _ => None,
    }
}

impl Replicator for StreamAdopter {
    fn send(&self, op: Op) -> Pending {
        if let Some(handle) = handle_of(&op) {
            let mut orphans = self.orphans.lock().unwrap_or_else(PoisonError::into_inner);
            if orphans.contains(&handle) {
                if matches!(op, Op::Close { .. }) {
                    orphans.remove(&handle);
                }
                return Pending::ready();
            }
        }
        self.inner.send(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::replicate::Recorder;
    use bytes::Bytes;

    fn path(p: &str) -> RelPath {
        RelPath::new(p.as_bytes()).unwrap()
    }

    #[test]
    fn open_files_are_opened_on_the_new_stream_and_orphans_stay_local() {
        let recorder = Arc::new(Recorder::new());
        let (adopter, pending) = StreamAdopter::adopt(
            recorder.clone(),
            vec![(7, Some(path("db/file"))), (9, None)],
        );
        assert_eq!(pending.len(), 1);
        let write = |handle| Op::Write {
            handle,
            offset: 0,
            data: Bytes::from_static(b"x"),
        };
        adopter.send(write(7)).wait().unwrap();
        adopter.send(write(9)).wait().unwrap();
        adopter.send(Op::Close { handle: 9 }).wait().unwrap();
        adopter.send(Op::Close { handle: 7 }).wait().unwrap();
        assert_eq!(
            recorder.ops(),
            vec![
                Op::Open {
                    handle: 7,
                    path: path("db/file")
                },
                write(7),
                Op::Close { handle: 7 },
            ]
        );
    }
}
