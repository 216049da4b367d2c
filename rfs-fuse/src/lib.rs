//! The replicated file system of hakit's mirror module.
//!
//! - [`protocol`]: the ordered replication stream: operations, frames (length + CRC32), acks.
//! - [`receiver`]: the secondary's side: applies operations beneath the replicated root,
//!   refusing any path that would escape it.
//! - [`compare`]: comparing two replicas (rfsverify, replication tests).
//! - [`overlay`]: the primary's side: a FUSE file system mounted in place over a directory,
//!   serving every operation relative to a descriptor opened on that directory before the
//!   mount, and handing each mutating operation to a replication hook before replying.

pub mod compare;
pub mod overlay;
pub mod protocol;
pub mod receiver;
