//! [`RootReplicator`]: one replicated directory's view of the module's stream.

use super::hook::{Pending, Replicator};
use super::sender::StreamReplicator;
use crate::protocol::op::Op;
use std::sync::Arc;

/// The [`Replicator`] hook of one replicated directory: sends its operations on the module's
/// [`StreamReplicator`], tagged with its root index. Obtained from
/// [`StreamReplicator::root`]; the link stays open while a hook holds it, until
/// [`StreamReplicator::close`].
#[derive(Debug, Clone)]
pub struct RootReplicator {
    link: Arc<StreamReplicator>,
    root: u16,
}

impl RootReplicator {
    pub(super) fn new(link: Arc<StreamReplicator>, root: u16) -> RootReplicator {
        RootReplicator { link, root }
    }

    /// The root index its operations carry.
    pub fn index(&self) -> u16 {
        self.root
    }

    /// The stream it sends on.
    pub fn link(&self) -> &Arc<StreamReplicator> {
        &self.link
    }
}

impl Replicator for RootReplicator {
    fn send(&self, op: Op) -> Pending {
        self.link.send_to(self.root, op)
    }
}
