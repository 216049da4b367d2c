//! [`differences`]: what differs between two manifests of the same replicated directory, in
//! the vocabulary of [`compare`](crate::compare): the same rules as `compare_trees` (mtimes to
//! the second and not for directories, sizes of regular files only, link counts of
//! non-directories), content compared block by block.

use super::{Entry, beneath, paired};
use crate::compare::{Difference, FileKind, Side};
use crate::protocol::op::RelPath;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Every difference between `a` and `b` (each sorted by path, as [`walk`](super::walk) returns
/// them), in path order. An entry missing on one side, or of another type, is reported once:
/// what lies beneath it is not.
pub fn differences(a: &[Entry], b: &[Entry]) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut reported: Option<&RelPath> = None;
    for pair in paired(a, b) {
        let path = match pair {
            (Some(e), _) | (None, Some(e)) => e.path.as_ref(),
            (None, None) => continue,
        };
        if beneath(path, reported) {
            continue;
        }
        let top = match pair {
            (Some(x), Some(y)) => entries(x, y, &mut out),
            (Some(x), None) => only_in(x, Side::A, &mut out),
            (None, Some(y)) => only_in(y, Side::B, &mut out),
            (None, None) => false,
        };
        if top {
            reported = path;
        }
    }
    out
}

/// The path as `compare` names it (`.` for the directory itself).
fn shown(entry: &Entry) -> PathBuf {
    entry.path.as_ref().map_or_else(
        || PathBuf::from("."),
        |p| PathBuf::from(OsStr::from_bytes(&p.to_bytes())),
    )
}

/// Reports an entry present on one side only; true: what lies beneath it is covered.
fn only_in(entry: &Entry, side: Side, out: &mut Vec<Difference>) -> bool {
    out.push(Difference::OnlyIn {
        path: shown(entry),
        side,
    });
    true
}

/// Compares an entry present on both sides; true if they differ in type (what lies beneath
/// is then covered).
fn entries(a: &Entry, b: &Entry, out: &mut Vec<Difference>) -> bool {
    let path = shown(a);
    if a.kind != b.kind {
        out.push(Difference::Kind {
            path,
            a: a.kind,
            b: b.kind,
        });
        return true;
    }
    metadata(&path, a, b, out);
    xattrs(&path, a, b, out);
    match a.kind {
        FileKind::Regular => content(&path, a, b, out),
        FileKind::Symlink if a.target != b.target => out.push(Difference::SymlinkTarget {
            path: path.clone(),
            a: a.target.clone().unwrap_or_default(),
            b: b.target.clone().unwrap_or_default(),
        }),
        FileKind::CharDevice | FileKind::BlockDevice if a.rdev != b.rdev => {
            out.push(Difference::Rdev {
                path: path.clone(),
                a: a.rdev,
                b: b.rdev,
            });
        }
        _ => {}
    }
    if a.kind != FileKind::Directory && a.nlink != b.nlink {
        out.push(Difference::Nlink {
            path,
            a: a.nlink,
            b: b.nlink,
        });
    }
    false
}

fn metadata(path: &std::path::Path, a: &Entry, b: &Entry, out: &mut Vec<Difference>) {
    let path = || path.to_path_buf();
    if a.mode != b.mode {
        out.push(Difference::Mode {
            path: path(),
            a: a.mode,
            b: b.mode,
        });
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        out.push(Difference::Owner {
            path: path(),
            a: (a.uid, a.gid),
            b: (b.uid, b.gid),
        });
    }
    if a.kind != FileKind::Directory && a.mtime.sec != b.mtime.sec {
        out.push(Difference::Mtime {
            path: path(),
            a: a.mtime.sec,
            b: b.mtime.sec,
        });
    }
}

/// Xattrs by name; the values compared are their hashes, which the differences carry.
fn xattrs(path: &std::path::Path, a: &Entry, b: &Entry, out: &mut Vec<Difference>) {
    let mut names: Vec<&std::ffi::OsString> =
        a.xattrs.iter().chain(&b.xattrs).map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    let value = |entry: &Entry, name| {
        entry
            .xattrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, hash)| hash.to_vec())
    };
    for name in names {
        let (va, vb) = (value(a, name), value(b, name));
        if va != vb {
            out.push(Difference::Xattr {
                path: path.to_path_buf(),
                name: name.clone(),
                a: va,
                b: vb,
            });
        }
    }
}

/// Sizes, then block hashes.
fn content(path: &std::path::Path, a: &Entry, b: &Entry, out: &mut Vec<Difference>) {
    if a.size != b.size {
        out.push(Difference::Size {
            path: path.to_path_buf(),
            a: a.size,
            b: b.size,
        });
        return;
    }
    let differing: Vec<u64> = a
        .blocks
        .iter()
        .zip(&b.blocks)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(index, _)| index as u64)
        .collect();
    if let Some(&first) = differing.first() {
        out.push(Difference::Blocks {
            path: path.to_path_buf(),
            count: differing.len() as u64,
            first,
        });
    }
}
