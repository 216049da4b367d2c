//! Manifests of a replica: every entry beneath a replicated directory with its metadata and,
//! for regular files, the BLAKE3 hashes of its fixed-size blocks ([`walk`]); and the
//! comparison of two manifests ([`differences`]), which is what `rfsverify` reports and what a
//! compare-based synchronisation acts on.

mod diff;
mod walk;

pub use crate::protocol::manifest::{Entry, Hash};
pub use diff::differences;
pub use walk::walk;

use std::io;

/// The entries of one replicated directory, sorted by path (the directory itself first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootManifest {
    pub entries: Vec<Entry>,
}

/// Why a replica could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {doing}: {source}")]
    Io {
        /// Relative to the replicated directory (`.` for the directory itself).
        path: String,
        doing: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {count} replicated xattrs, more than a manifest carries ({max})")]
    TooManyXattrs {
        path: String,
        count: usize,
        max: usize,
    },
    #[error("{path}: {source}")]
    Path {
        path: String,
        #[source]
        source: crate::protocol::op::PathError,
    },
}
