//! chmod, chown, utimens (explicit and "now"), xattrs, device-less nodes.

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rfs_fuse::protocol::op::{Op, Owner, SetAttr, Timestamp};

use crate::support::*;

fn ts(md: &fs::Metadata) -> (Timestamp, Timestamp) {
    (
        Timestamp {
            sec: md.atime(),
            nsec: md.atime_nsec() as u32,
        },
        Timestamp {
            sec: md.mtime(),
            nsec: md.mtime_nsec() as u32,
        },
    )
}

#[test]
fn chmod_chown_and_times() {
    let fx = mounted(|d| fs::write(d.join("f"), b"x").unwrap());
    let f = fx.path("f");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4751)).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o4751);
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let md = fs::metadata(&f).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));

    let when = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(when).set_modified(when))
        .unwrap();
    let md = fs::metadata(&f).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 123_456_789));

    let before = SystemTime::now();
    touch_now(&f).unwrap();
    let md = fs::metadata(&f).unwrap();
    assert!(md.modified().unwrap() >= before - Duration::from_secs(1));
    let (now_a, now_m) = ts(&md);

    let ops = fx.ops_settled();
    let attrs: Vec<&SetAttr> = ops
        .iter()
        .filter_map(|op| match op {
            Op::SetAttr { path, attr } if *path == Some(rel("f")) => Some(attr),
            _ => None,
        })
        .collect();
    assert_eq!(
        attrs[0],
        &SetAttr {
            mode: Some(0o4751),
            ..SetAttr::default()
        }
    );
    // chown of a set-user-ID file drops the bit: the kernel sends the new mode with it.
    assert_eq!(
        attrs[1],
        &SetAttr {
            mode: Some(0o751),
            uid: Some(1234),
            gid: Some(5678),
            ..SetAttr::default()
        }
    );
    let explicit = Timestamp {
        sec: 1_600_000_000,
        nsec: 123_456_789,
    };
    assert!(
        attrs
            .iter()
            .any(|a| a.atime == Some(explicit) && a.mtime == Some(explicit))
    );
    // touch: "now" resolved to exactly what the file system recorded.
    let last = attrs.last().unwrap();
    assert_eq!(
        (last.atime, last.mtime),
        (Some(now_a), Some(now_m)),
        "{ops:#?}"
    );

    let dir = fx.unmount();
    let md = fs::metadata(dir.path().join("f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    assert_eq!(ts(&md), (now_a, now_m));
}

#[test]
fn new_objects_get_the_callers_owner_and_exact_mode() {
    let fx = mounted(|d| {
        fs::create_dir(d.join("shared")).unwrap();
        std::os::unix::fs::chown(d.join("shared"), None, Some(4321)).unwrap();
        fs::set_permissions(d.join("shared"), fs::Permissions::from_mode(0o2775)).unwrap();
    });
    // A set-group-ID directory passes its group and, to subdirectories, the bit.
    fs::create_dir(fx.path("shared/sub")).unwrap();
    fs::write(fx.path("shared/file"), b"").unwrap();
    mkfifo(&fx.path("fifo"), 0o640).unwrap();
    let sub = fs::metadata(fx.path("shared/sub")).unwrap();
    assert_eq!(sub.gid(), 4321);
    assert_eq!(sub.mode() & 0o7777, 0o2755);
    assert_eq!(fs::metadata(fx.path("shared/file")).unwrap().gid(), 4321);
    assert!(fs::metadata(fx.path("fifo")).unwrap().file_type().is_fifo());

    let ops = fx.ops_settled();
    let owner = Owner { uid: 0, gid: 4321 };
    assert!(ops.contains(&Op::Mkdir {
        path: rel("shared/sub"),
        mode: 0o2755,
        owner
    }));
    assert!(ops.iter().any(|op| matches!(op,
        Op::Create { path, owner: o, .. } if *path == rel("shared/file") && *o == owner)));
    assert!(ops.contains(&Op::Mknod {
        path: rel("fifo"),
        mode: libc::S_IFIFO | 0o640,
        rdev: 0,
        owner: Owner { uid: 0, gid: 0 }
    }));
}

#[test]
fn extended_attributes() {
    let fx = mounted(|d| {
        fs::write(d.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("f", d.join("link")).unwrap();
    });
    let f = fx.path("f");
    set_xattr(&f, "user.color", b"blue").unwrap();
    set_xattr(&f, "user.size", b"XL").unwrap();
    assert_eq!(get_xattr(&f, "user.color").unwrap(), b"blue");
    let mut names = list_xattr(&f).unwrap();
    names.sort();
    assert_eq!(names, ["user.color", "user.size"]);
    remove_xattr(&f, "user.size").unwrap();
    assert_eq!(errno(get_xattr(&f, "user.size")), libc::ENODATA);
    // Through a symlink the calls act on the target; the link itself has none.
    assert_eq!(get_xattr(&fx.path("link"), "user.color").unwrap(), b"blue");
    // On the root of the mount: replicated with no path (None names the root).
    set_xattr(fx.dir.path(), "user.root", b"r").unwrap();
    assert_eq!(get_xattr(fx.dir.path(), "user.root").unwrap(), b"r");
    remove_xattr(fx.dir.path(), "user.root").unwrap();
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o1750)).unwrap();

    let ops = fx.ops_settled();
    assert!(ops.contains(&Op::SetXattr {
        path: Some(rel("f")),
        name: "user.color".into(),
        value: bytes::Bytes::from_static(b"blue"),
        flags: 0
    }));
    assert!(ops.contains(&Op::RemoveXattr {
        path: Some(rel("f")),
        name: "user.size".into()
    }));
    assert!(ops.contains(&Op::SetXattr {
        path: None,
        name: "user.root".into(),
        value: bytes::Bytes::from_static(b"r"),
        flags: 0
    }));
    assert!(ops.contains(&Op::RemoveXattr {
        path: None,
        name: "user.root".into()
    }));
    assert!(
        ops.iter()
            .any(|op| matches!(op, Op::SetAttr { path: None, attr } if attr.mode == Some(0o1750))),
        "{ops:#?}"
    );
    let dir = fx.unmount();
    assert_eq!(
        get_xattr(&dir.path().join("f"), "user.color").unwrap(),
        b"blue"
    );
}
