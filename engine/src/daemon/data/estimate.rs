//! What a copy will send, measured from the metadata before it starts: the totals behind a
//! copy's "to go" and ETA, and `hakit rfsdiff`'s estimate.

use rfs_fuse::sync::tracker::Changes;
use rfs_fuse::sync::zones::{FileChanges, ZoneSize};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Regular files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub files: u64,
    pub bytes: u64,
}

impl std::ops::Add for Size {
    type Output = Size;
    fn add(self, other: Size) -> Size {
        Size {
            files: self.files + other.files,
            bytes: self.bytes + other.bytes,
        }
    }
}

/// The regular files under `path` (itself if a file), not following symlinks nor crossing
/// into other file systems; what cannot be read counts as nothing (an estimate).
pub fn tree_size(path: &Path) -> Size {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Size::default();
    };
    size_below(path, &meta, meta.dev())
}

fn size_below(path: &Path, meta: &std::fs::Metadata, device: u64) -> Size {
    if meta.is_file() {
        return Size {
            files: 1,
            bytes: meta.len(),
        };
    }
    if !meta.is_dir() || meta.dev() != device {
        return Size::default();
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Size::default();
    };
    entries
        .flatten()
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .map(|(p, m)| size_below(&p, &m, device))
        .fold(Size::default(), |a, b| a + b)
}

/// What copying `changes` of the folder at `root` sends: each whole path's files, and the
/// changed zones of the files changed in place.
pub fn changed_size(root: &Path, changes: &Changes) -> Size {
    whole_size(root, changes) + in_place_size(root, changes)
}

/// The regular files under the whole paths of `changes`.
pub fn whole_size(root: &Path, changes: &Changes) -> Size {
    changes
        .top_paths()
        .map(|p| tree_size(&root.join(OsString::from_vec(p.to_bytes()))))
        .fold(Size::default(), |a, b| a + b)
}

/// The files changed in place and the bytes of their changed zones, as the copy sends them.
pub fn in_place_size(root: &Path, changes: &Changes) -> Size {
    changes
        .in_place()
        .map(|(p, file)| {
            let full = root.join(OsString::from_vec(p.to_bytes()));
            zones_size(&full, file, changes.zone)
        })
        .fold(Size::default(), |a, b| a + b)
}

/// A regular file's changed zones cut at its length; nothing for a directory's metadata;
/// anything else is copied whole.
fn zones_size(full: &Path, file: &FileChanges, zone: ZoneSize) -> Size {
    match std::fs::symlink_metadata(full) {
        Ok(meta) if meta.is_file() => Size {
            files: 1,
            bytes: file
                .ranges(zone, meta.len())
                .iter()
                .map(|(start, end)| end - start)
                .sum(),
        },
        Ok(meta) if meta.is_dir() && file.metadata_only() => Size::default(),
        _ => tree_size(full),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfs_fuse::protocol::op::RelPath;
    use rfs_fuse::sync::paths::Changed;

    #[test]
    fn files_are_counted_once_with_their_lengths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/one"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("a/b/two"), [0u8; 20]).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("a/link")).unwrap();
        assert_eq!(
            tree_size(dir.path()),
            Size {
                files: 2,
                bytes: 120
            }
        );
        assert_eq!(tree_size(&dir.path().join("gone")), Size::default());
        let mut changes = Changes::new(ZoneSize::new(16).unwrap());
        changes.add(Changed::Path(RelPath::new(b"a/b").unwrap()));
        changes.add(Changed::Path(RelPath::new(b"a/b/two").unwrap()));
        changes.add(Changed::Path(RelPath::new(b"deleted").unwrap()));
        assert_eq!(
            changed_size(dir.path(), &changes),
            Size {
                files: 1,
                bytes: 20
            },
            "a path beneath a changed directory is counted with it"
        );
    }

    #[test]
    fn files_changed_in_place_count_their_changed_zones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("f"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("g"), [0u8; 40]).unwrap();
        let mut changes = Changes::new(ZoneSize::new(16).unwrap());
        let p = |s: &str| RelPath::new(s.as_bytes()).unwrap();
        changes.add(Changed::Data {
            path: p("f"),
            start: 20,
            end: 21,
        });
        changes.add(Changed::Cut {
            path: p("f"),
            len: 90,
        });
        changes.add(Changed::Metadata(p("d")));
        changes.add(Changed::Path(p("g")));
        // f's zone 1 and its tail from the cut; d's metadata carries no bytes.
        let in_place = in_place_size(dir.path(), &changes);
        assert_eq!((in_place.files, in_place.bytes), (1, 16 + 10));
        let all = changed_size(dir.path(), &changes);
        assert_eq!((all.files, all.bytes), (2, 16 + 10 + 40), "g whole");
    }
}
