//! What a replica holds, entry by entry: the answer to [`Message::ManifestRequest`]
//! (super::message::Message::ManifestRequest), compared by `rfsverify` and by the compare-based
//! synchronisation.
//!
//! Content travels as BLAKE3 hashes of fixed-size blocks and xattr values as BLAKE3 hashes,
//! so that an entry's size is bounded whatever the file's: a file's hashes beyond
//! [`MAX_HASHES`] follow in `ManifestBlocks` messages.

use super::op::{RelPath, Timestamp};
use crate::compare::FileKind;
use std::ffi::OsString;

/// A BLAKE3 hash.
pub type Hash = [u8; 32];

/// Smallest block size a manifest may be asked for (a page).
pub const MIN_BLOCK: u32 = 4 << 10;
/// Largest block size a manifest may be asked for.
pub const MAX_BLOCK: u32 = 64 << 20;
/// Most block hashes in one message (512 KiB of hashes).
pub const MAX_HASHES: usize = 16 << 10;
/// Most replicated xattrs one entry may carry.
pub const MAX_XATTRS: usize = 1024;

/// One entry of a replica, as the walk found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the replicated directory; `None` is the directory itself.
    pub path: Option<RelPath>,
    pub kind: FileKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Timestamp,
    pub nlink: u64,
    /// Device number of a device node, 0 otherwise.
    pub rdev: u64,
    /// A symlink's target.
    pub target: Option<OsString>,
    /// `user.*` and `trusted.*` xattrs by name (sorted), with the hash of each value.
    pub xattrs: Vec<(OsString, Hash)>,
    /// A regular file's block hashes, in order (none for an empty file).
    pub blocks: Vec<Hash>,
}

impl Entry {
    /// How many block hashes a regular file of `size` bytes has with blocks of `block_size`.
    pub fn block_count(size: u64, block_size: u32) -> u64 {
        size.div_ceil(u64::from(block_size.max(1)))
    }
}

/// Wire code of a [`FileKind`].
pub(super) fn kind_code(kind: FileKind) -> u8 {
    match kind {
        FileKind::Regular => 0,
        FileKind::Directory => 1,
        FileKind::Symlink => 2,
        FileKind::CharDevice => 3,
        FileKind::BlockDevice => 4,
        FileKind::Fifo => 5,
        FileKind::Socket => 6,
    }
}

/// The [`FileKind`] of a wire code, if any.
pub(super) fn kind_of(code: u8) -> Option<FileKind> {
    Some(match code {
        0 => FileKind::Regular,
        1 => FileKind::Directory,
        2 => FileKind::Symlink,
        3 => FileKind::CharDevice,
        4 => FileKind::BlockDevice,
        5 => FileKind::Fifo,
        6 => FileKind::Socket,
        _ => return None,
    })
}
