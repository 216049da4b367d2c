//! Comparing two replicas: the basis of `hakit rfsverify` and of the replication tests.
//!
//! [`compare_trees`] walks both trees in the same order, never following a symlink, and
//! reports every [`Difference`] in what replication must preserve: type, size, content
//! (BLAKE3), permission bits, owner, mtime to the second, symlink target, device number,
//! `user.*` and `trusted.*` xattrs, and hard-link structure (link counts, and which entries
//! share an inode). The roots' own attributes (mode, owner, xattrs; mtime only with
//! [`CompareOptions::dir_mtime`]) are compared too and reported under the path `.`. Not
//! compared: sparse layout, atime/ctime, other xattr namespaces (`security.*` is often
//! host-specific). A subtree present on one side only is reported once, at its top. The trees
//! should be quiescent: an entry vanishing during the walk is an I/O error.

mod difference;
mod walk;
pub(crate) mod xattr;

pub use difference::{Difference, FileKind, Side};

use std::io;
use std::path::Path;

/// What to compare beyond the always-compared attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareOptions {
    /// Compare mtimes (to the second) of everything but directories.
    pub mtime: bool,
    /// Also compare directories' mtimes. Off by default: each replica's kernel sets them
    /// when it applies an entry change, and the stream does not carry them.
    pub dir_mtime: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            mtime: true,
            dir_mtime: false,
        }
    }
}

/// Compare the trees under `a` and `b` with the default options.
pub fn compare_trees(a: &Path, b: &Path) -> io::Result<Vec<Difference>> {
    compare_trees_with(a, b, CompareOptions::default())
}

/// Compare the trees under `a` and `b`; differences come in walk order (depth first, names
/// sorted bytewise), so that two runs on the same trees report the same list.
pub fn compare_trees_with(
    a: &Path,
    b: &Path,
    options: CompareOptions,
) -> io::Result<Vec<Difference>> {
    walk::Walker::new(a, b, options).run()
}
