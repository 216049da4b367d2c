//! The receiver and `compare_trees` together: a stream applied by the receiver produces the
//! same tree as the same changes made directly with std calls.

mod common;

use bytes::Bytes;
use common::{Fixture, OWNER, rel};
use nix::fcntl::{AT_FDCWD, AtFlags};
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};
use rfs_fuse::compare::compare_trees;
use rfs_fuse::protocol::op::{Op, SetAttr, Timestamp};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

const T: Timestamp = Timestamp {
    sec: 1_700_000_000,
    nsec: 5,
};

fn stream() -> Vec<Op> {
    let times = SetAttr {
        atime: Some(T),
        mtime: Some(T),
        ..SetAttr::default()
    };
    vec![
        Op::Mkdir {
            path: rel("docs"),
            mode: 0o2775,
            owner: OWNER,
        },
        Op::Create {
            handle: 1,
            path: rel("docs/tmp"),
            mode: 0o640,
            owner: OWNER,
            exclusive: true,
        },
        Op::Write {
            handle: 1,
            offset: 0,
            data: Bytes::from_static(b"report v2"),
        },
        Op::Fsync {
            handle: 1,
            datasync: false,
        },
        Op::Close { handle: 1 },
        Op::Rename {
            from: rel("docs/tmp"),
            to: rel("docs/report"),
            flags: 0,
        },
        Op::Link {
            existing: rel("docs/report"),
            new: rel("report.link"),
        },
        Op::Symlink {
            path: rel("latest"),
            target: "docs/report".into(),
            owner: OWNER,
        },
        Op::SetXattr {
            path: Some(rel("docs/report")),
            name: "user.checksum".into(),
            value: Bytes::from_static(b"abc"),
            flags: 0,
        },
        Op::SetAttr {
            path: Some(rel("docs/report")),
            attr: times.clone(),
        },
        Op::SetAttr {
            path: Some(rel("latest")),
            attr: times,
        },
        Op::FsyncDir { path: None },
    ]
}

/// The same changes, made the ordinary way.
fn by_hand(root: &Path) {
    let own = |path: &Path| {
        fchownat(
            AT_FDCWD,
            path,
            Some(Uid::from_raw(OWNER.uid)),
            Some(Gid::from_raw(OWNER.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap()
    };
    fs::create_dir(root.join("docs")).unwrap();
    own(&root.join("docs"));
    fs::set_permissions(root.join("docs"), fs::Permissions::from_mode(0o2775)).unwrap();
    fs::write(root.join("docs/report"), b"report v2").unwrap();
    own(&root.join("docs/report"));
    fs::set_permissions(root.join("docs/report"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::hard_link(root.join("docs/report"), root.join("report.link")).unwrap();
    symlink("docs/report", root.join("latest")).unwrap();
    own(&root.join("latest"));
    xattr_set(&root.join("docs/report"), "user.checksum", b"abc");
    let t = TimeSpec::new(T.sec, i64::from(T.nsec));
    for name in ["docs/report", "latest"] {
        utimensat(
            AT_FDCWD,
            &root.join(name),
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a readable slice, all alive for the call.
    let res = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(res, 0);
}

#[test]
fn a_replayed_stream_matches_the_same_changes_made_directly() {
    let mut fx = Fixture::new();
    for op in stream() {
        fx.ok(op);
    }
    let reference = fx.tmp.path().join("reference");
    fs::create_dir(&reference).unwrap();
    by_hand(&reference);
    let diffs = compare_trees(&reference, &fx.root).unwrap();
    assert!(diffs.is_empty(), "{diffs:#?}");
    // And a divergence shows up.
    fs::write(fx.at("docs/report"), b"report v3").unwrap();
    let shown: Vec<String> = compare_trees(&reference, &fx.root)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        shown.contains(&"docs/report: content differs (same size)".to_string()),
        "{shown:?}"
    );
}
