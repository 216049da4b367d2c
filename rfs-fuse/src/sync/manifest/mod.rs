//! Manifests of a replica: every entry beneath a replicated directory with its metadata and,
//! for regular files, the BLAKE3 hashes of its fixed-size blocks, read in parallel ([`walk`]); and the
//! comparison of two manifests ([`differences`]), which is what `rfsverify` reports and what a
//! compare-based synchronisation acts on.

mod diff;
mod hash;
mod walk;

pub use crate::protocol::manifest::{Entry, Hash};
pub use diff::differences;
pub(crate) use hash::read_block;
pub use walk::{walk, walk_each, walk_metadata};

use crate::protocol::op::RelPath;
use std::cmp::Ordering;
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

/// The entries of two manifests (each sorted by path) paired by path, in path order: an
/// entry of `a`, of `b`, or of both.
pub(crate) fn paired<'m>(
    a: &'m [Entry],
    b: &'m [Entry],
) -> impl Iterator<Item = (Option<&'m Entry>, Option<&'m Entry>)> {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let (ea, eb) = (a.get(i), b.get(j));
        let order = match (ea, eb) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.path.cmp(&y.path),
        };
        Some(match order {
            Ordering::Less => {
                i += 1;
                (ea, None)
            }
            Ordering::Greater => {
                j += 1;
                (None, eb)
            }
            Ordering::Equal => {
                (i, j) = (i + 1, j + 1);
                (ea, eb)
            }
        })
    })
}

/// Whether `path` lies strictly beneath `top`.
pub(crate) fn beneath(path: Option<&RelPath>, top: Option<&RelPath>) -> bool {
    match (path, top) {
        (Some(path), Some(top)) => {
            let (p, t) = (path.components(), top.components());
            p.len() > t.len() && p.starts_with(t)
        }
        _ => false,
    }
}
