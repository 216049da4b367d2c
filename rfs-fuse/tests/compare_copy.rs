//! A compare-based copy brings a secondary holding an older copy up to date: only the
//! differing blocks of a file travel, extra entries go, and the trees end identical.

use rfs_fuse::compare::{CompareOptions, compare_trees_with};
use rfs_fuse::protocol::op::Op;
use rfs_fuse::receiver::Receiver;
use rfs_fuse::sync::compare_copy::compare_copy;
use rfs_fuse::sync::full_copy::{CopyStats, full_copy};
use rfs_fuse::sync::manifest::walk;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

const BLOCK: u32 = 1 << 20;
const BIG: usize = 6 << 20;

fn tree(root: &Path) {
    fs::create_dir_all(root.join("d/e")).unwrap();
    let big: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("d/big"), big).unwrap();
    for i in 0..10 {
        fs::write(root.join(format!("d/e/f{i}")), format!("file {i}\n")).unwrap();
    }
    fs::write(root.join("gone"), b"removed on the primary later").unwrap();
    fs::hard_link(root.join("d/e/f1"), root.join("d/f1-again")).unwrap();
}

/// Applies every operation of `copy` to a receiver on `secondary`.
fn apply_to(
    secondary: &Path,
    copy: impl FnOnce(&mut dyn FnMut(Op) -> Result<(), std::io::Error>) -> CopyStats,
) -> CopyStats {
    let mut receiver = Receiver::open(secondary).unwrap();
    copy(&mut |op: Op| {
        receiver
            .apply(&op)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

fn sync(primary: &Path, secondary: &Path) -> CopyStats {
    let theirs = walk(File::open(secondary).unwrap().as_fd(), BLOCK, 2).unwrap();
    apply_to(secondary, |emit| {
        compare_copy(primary, &theirs, BLOCK, emit).unwrap()
    })
}

fn assert_identical(primary: &Path, secondary: &Path) {
    let options = CompareOptions {
        mtime: true,
        dir_mtime: false,
    };
    let diffs = compare_trees_with(primary, secondary, options).unwrap();
    assert!(diffs.is_empty(), "differences: {diffs:#?}");
}

/// Two identical trees, by a full copy.
fn pair() -> (tempfile::TempDir, tempfile::TempDir) {
    let (primary, secondary) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tree(primary.path());
    apply_to(secondary.path(), |emit| {
        full_copy(primary.path(), emit).unwrap()
    });
    (primary, secondary)
}

#[test]
fn identical_trees_send_only_files_with_several_names() {
    let (primary, secondary) = pair();
    let stats = sync(primary.path(), secondary.path());
    // d/e/f1, also named d/f1-again, is copied whole so that its names stay linked.
    assert_eq!(stats.bytes, "file 1\n".len() as u64);
    assert_identical(primary.path(), secondary.path());
}

#[test]
fn only_differing_blocks_travel_and_extra_entries_go() {
    let (primary, secondary) = pair();
    let (p, s) = (primary.path(), secondary.path());
    File::options()
        .write(true)
        .open(p.join("d/big"))
        .unwrap()
        .write_at(b"changed", 2 * u64::from(BLOCK) + 10)
        .unwrap();
    fs::write(p.join("d/e/f3"), b"longer than before\n").unwrap();
    fs::set_permissions(p.join("d/e/f4"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(p.join("gone")).unwrap();
    fs::write(p.join("new"), b"only on the primary").unwrap();
    fs::create_dir_all(s.join("extra/deep")).unwrap();
    fs::write(s.join("extra/deep/x"), b"only on the secondary").unwrap();
    fs::remove_file(s.join("d/e/f5")).unwrap();
    fs::create_dir(s.join("d/e/f5")).unwrap();
    let stats = sync(p, s);
    assert_identical(p, s);
    assert_eq!(
        stats.files, 5,
        "d/big and d/e/f3 updated in place; new, d/e/f5 (a directory there) and the \
         multiply-linked d/e/f1 copied whole"
    );
    assert!(
        stats.bytes < u64::from(BLOCK) + 1000,
        "one block of the big file and a few small files, not {} bytes",
        stats.bytes
    );
}

#[test]
fn an_empty_secondary_receives_the_whole_tree_with_its_links() {
    let (primary, secondary) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tree(primary.path());
    let stats = sync(primary.path(), secondary.path());
    assert_identical(primary.path(), secondary.path());
    assert_eq!(
        stats.links, 1,
        "the second name of d/e/f1 is linked, not copied"
    );
}
