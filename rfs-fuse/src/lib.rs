//! The replicated file system of hakit's mirror module.
//!
//! - [`protocol`]: the ordered replication stream: operations, frames (length + CRC32), acks.
//! - [`receiver`]: the secondary's side: applies operations beneath the replicated root,
//!   refusing any path that would escape it.
//! - [`compare`]: comparing two replicas (rfsverify, replication tests).
//! - [`link`]: the replication link: the primary's stream sender and the secondary's server.
//! - [`overlay`]: the primary's side: a FUSE file system mounted in place over a directory,
//!   serving every operation relative to a descriptor opened on that directory before the
//!   mount, and handing each mutating operation to a replication hook before replying.

pub mod compare;
pub mod link;
pub mod overlay;
pub mod protocol;
pub mod receiver;
pub mod sync;
