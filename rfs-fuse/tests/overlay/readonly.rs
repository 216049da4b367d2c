//! The secondary's mount: reads work, every mutation is EROFS, nothing is replicated.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use rfs_fuse::overlay::OverlayOptions;

use crate::support::*;

#[test]
fn every_mutation_is_erofs_and_reads_work() {
    let options = OverlayOptions {
        read_only: true,
        ..OverlayOptions::default()
    };
    let fx = mounted_with(options, |d| {
        fs::write(d.join("f"), b"content").unwrap();
        fs::create_dir(d.join("d")).unwrap();
        set_xattr(&d.join("f"), "user.k", b"v").unwrap();
    });
    let (f, d) = (fx.path("f"), fx.path("d"));

    let mut s = String::new();
    File::open(&f).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "content");
    assert_eq!(fs::read_dir(fx.dir.path()).unwrap().count(), 2);
    assert_eq!(get_xattr(&f, "user.k").unwrap(), b"v");
    File::open(&f).unwrap().sync_all().unwrap();

    let erofs = libc::EROFS;
    assert_eq!(errno(File::create(fx.path("new"))), erofs);
    assert_eq!(errno(OpenOptions::new().write(true).open(&f)), erofs);
    assert_eq!(errno(OpenOptions::new().append(true).open(&f)), erofs);
    assert_eq!(errno(fs::create_dir(fx.path("nd"))), erofs);
    assert_eq!(errno(fs::remove_file(&f)), erofs);
    assert_eq!(errno(fs::remove_dir(&d)), erofs);
    assert_eq!(errno(fs::rename(&f, fx.path("g"))), erofs);
    assert_eq!(errno(fs::hard_link(&f, fx.path("h"))), erofs);
    assert_eq!(errno(std::os::unix::fs::symlink("f", fx.path("s"))), erofs);
    assert_eq!(
        errno(fs::set_permissions(&f, fs::Permissions::from_mode(0o600))),
        erofs
    );
    assert_eq!(errno(std::os::unix::fs::chown(&f, Some(1), Some(1))), erofs);
    assert_eq!(
        errno(nix::unistd::truncate(&f, 0).map_err(std::io::Error::from)),
        erofs
    );
    assert_eq!(errno(touch_now(&f)), erofs);
    assert_eq!(errno(set_xattr(&f, "user.x", b"1")), erofs);
    assert_eq!(errno(remove_xattr(&f, "user.k")), erofs);
    assert_eq!(errno(mkfifo(&fx.path("p"), 0o600)), erofs);

    assert!(fx.recorder.ops().is_empty(), "{:#?}", fx.recorder.ops());
    let dir = fx.unmount();
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"content");
}
