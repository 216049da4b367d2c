//! The primary's side: the FUSE overlay mounted in place.
//!
//! - [`replicate`]: the hook every mutating operation goes through ([`Replicator`]).
//! - [`mount`]: [`mount_in_place`], stale-mount cleanup, [`MountedOverlay`].
//! - `fs`: the thin `fuser` adapter; `core`: the file system logic it calls;
//!   `inodes`/`handles`: what inode and handle numbers stand for; `sys`: the `*at()` calls.

pub mod adopt;
mod attr;
mod core;
mod error;
mod fs;
mod handles;
mod inodes;
pub mod mount;
pub mod replicate;
pub mod switch;
mod sys;

pub use adopt::StreamAdopter;
pub use error::{FsError, OverlayError};
pub use mount::{
    FUSE_SUPER_MAGIC, MountedOverlay, OpenHandles, OverlayOptions, clean_stale, mount_in_place,
};
pub use replicate::{LocalOutcome, NoReplication, Pending, Recorder, ReplicationError, Replicator};
pub use switch::{Frozen, Observer, SwitchReplicator};
