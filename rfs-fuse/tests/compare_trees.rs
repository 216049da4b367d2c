//! `compare_trees`: identical trees compare equal; each kind of difference is detected and
//! named by its relative path.

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};
use rfs_fuse::compare::{
    CompareOptions, Difference, FileKind, Side, compare_trees, compare_trees_with,
};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

const MTIME: i64 = 1_600_000_000;

fn set_mtime(path: &Path, sec: i64) {
    let t = TimeSpec::new(sec, 0);
    utimensat(AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn lsetxattr(path: &Path, name: &str, value: &[u8]) {
    let cpath = CString::new(path.as_os_str().as_bytes()).unwrap();
    let cname = CString::new(name).unwrap();
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
    assert_eq!(res, 0, "{}", std::io::Error::last_os_error());
}

/// A tree with one of everything; `touch` pins non-directory mtimes so that the two copies
/// never straddle a second.
fn build(dir: &Path) {
    fs::create_dir(dir).unwrap();
    fs::write(dir.join("f"), b"hello").unwrap();
    chmod(&dir.join("f"), 0o4640);
    fchownat(
        AT_FDCWD,
        &dir.join("f"),
        Some(Uid::from_raw(1234)),
        Some(Gid::from_raw(5678)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
    chmod(&dir.join("f"), 0o4640);
    lsetxattr(&dir.join("f"), "user.a", b"1");
    lsetxattr(&dir.join("f"), "trusted.b", b"2");
    fs::create_dir(dir.join("d")).unwrap();
    chmod(&dir.join("d"), 0o750);
    fs::write(dir.join("d/g"), b"world").unwrap();
    fs::write(dir.join("d/k"), b"other").unwrap();
    fs::hard_link(dir.join("d/g"), dir.join("d/h")).unwrap();
    fs::hard_link(dir.join("d/k"), dir.join("d/m")).unwrap();
    symlink("f", dir.join("l")).unwrap();
    lsetxattr(&dir.join("l"), "trusted.on-link", b"yes");
    mknod(
        &dir.join("p"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    mknod(
        &dir.join("c"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    )
    .unwrap();
    touch_all(dir);
}

fn touch_all(dir: &Path) {
    for name in ["f", "d/g", "d/k", "l", "p", "c"] {
        set_mtime(&dir.join(name), MTIME);
    }
}

struct Pair {
    _tmp: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

fn pair() -> Pair {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&a);
    build(&b);
    Pair { _tmp: tmp, a, b }
}

impl Pair {
    fn diff(&self) -> Vec<Difference> {
        compare_trees(&self.a, &self.b).unwrap()
    }

    /// Exactly one difference, whose text starts with `path: `.
    fn one(&self, path: &str) -> Difference {
        let diffs = self.diff();
        assert_eq!(diffs.len(), 1, "{diffs:#?}");
        let d = diffs.into_iter().next().unwrap();
        assert_eq!(d.path(), Path::new(path));
        assert!(d.to_string().starts_with(&format!("{path}: ")), "{d}");
        d
    }
}

#[test]
fn identical_trees_have_no_difference() {
    let p = pair();
    assert_eq!(p.diff(), vec![]);
    // Directory mtimes are only compared on request.
    set_mtime(&p.b.join("d"), 12345);
    assert_eq!(p.diff(), vec![]);
    let options = CompareOptions {
        dir_mtime: true,
        ..CompareOptions::default()
    };
    let diffs = compare_trees_with(&p.a, &p.b, options).unwrap();
    assert!(
        matches!(&diffs[..], [Difference::Mtime { b: 12345, .. }]),
        "{diffs:?}"
    );
}

#[test]
fn sparse_layout_is_not_compared() {
    let p = pair();
    fs::File::create(p.a.join("s"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    fs::write(p.b.join("s"), vec![0u8; 1 << 20]).unwrap();
    for side in [&p.a, &p.b] {
        chmod(&side.join("s"), 0o600);
        set_mtime(&side.join("s"), MTIME);
    }
    assert_eq!(p.diff(), vec![]);
}

#[test]
fn entries_on_one_side_only() {
    let p = pair();
    fs::remove_file(p.b.join("p")).unwrap();
    let d = p.one("p");
    assert_eq!(
        d,
        Difference::OnlyIn {
            path: "p".into(),
            side: Side::A
        }
    );
    assert_eq!(d.to_string(), "p: present only in the first tree");
    fs::create_dir_all(p.b.join("new/deep")).unwrap();
    let diffs = p.diff();
    assert_eq!(diffs.len(), 2, "a subtree is reported once: {diffs:?}");
    assert!(diffs.contains(&Difference::OnlyIn {
        path: "new".into(),
        side: Side::B
    }));
}

#[test]
fn type_difference() {
    let p = pair();
    fs::remove_file(p.b.join("p")).unwrap();
    fs::create_dir(p.b.join("p")).unwrap();
    let d = p.one("p");
    assert_eq!(
        d,
        Difference::Kind {
            path: "p".into(),
            a: FileKind::Fifo,
            b: FileKind::Directory
        }
    );
    assert_eq!(d.to_string(), "p: type FIFO vs directory");
}

#[test]
fn size_and_content() {
    let p = pair();
    fs::write(p.b.join("f"), b"HELLO").unwrap();
    set_mtime(&p.b.join("f"), MTIME);
    assert_eq!(p.one("f").to_string(), "f: content differs (same size)");
    fs::write(p.b.join("f"), b"longer").unwrap();
    set_mtime(&p.b.join("f"), MTIME);
    assert_eq!(p.one("f").to_string(), "f: size 5 vs 6 bytes");
    // Both names of a hard-linked file differ.
    fs::write(p.b.join("d/k"), b"OTHER").unwrap();
    set_mtime(&p.b.join("d/k"), MTIME);
    let paths: Vec<PathBuf> = p.diff().iter().map(|d| d.path().to_path_buf()).collect();
    assert_eq!(paths, ["f", "d/k", "d/m"].map(PathBuf::from));
}

#[test]
fn mode_owner_mtime() {
    let p = pair();
    chmod(&p.b.join("f"), 0o640);
    assert_eq!(p.one("f").to_string(), "f: mode 4640 vs 0640");
    chmod(&p.b.join("f"), 0o4640);
    fchownat(
        AT_FDCWD,
        &p.b.join("l"),
        Some(Uid::from_raw(1)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
    assert_eq!(p.one("l").to_string(), "l: owner 0:0 vs 1:0");
    let p = pair();
    set_mtime(&p.b.join("c"), MTIME + 1);
    assert!(matches!(p.one("c"), Difference::Mtime { a: MTIME, .. }));
    let off = CompareOptions {
        mtime: false,
        dir_mtime: false,
    };
    assert_eq!(compare_trees_with(&p.a, &p.b, off).unwrap(), vec![]);
}

#[test]
fn symlink_target_and_device_number() {
    let p = pair();
    fs::remove_file(p.b.join("l")).unwrap();
    symlink("d/g", p.b.join("l")).unwrap();
    lsetxattr(&p.b.join("l"), "trusted.on-link", b"yes");
    set_mtime(&p.b.join("l"), MTIME);
    assert_eq!(p.one("l").to_string(), r#"l: symlink target "f" vs "d/g""#);
    let p = pair();
    fs::remove_file(p.b.join("c")).unwrap();
    mknod(
        &p.b.join("c"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 5),
    )
    .unwrap();
    set_mtime(&p.b.join("c"), MTIME);
    assert!(matches!(p.one("c"), Difference::Rdev { .. }));
}

#[test]
fn xattrs_user_and_trusted_only() {
    let p = pair();
    lsetxattr(&p.b.join("f"), "user.a", b"changed");
    let d = p.one("f");
    assert_eq!(d.to_string(), "f: xattr user.a values differ");
    let p = pair();
    lsetxattr(&p.a.join("l"), "trusted.extra", b"x");
    assert_eq!(
        p.one("l").to_string(),
        "l: xattr trusted.extra present only in the first tree"
    );
    // Other namespaces are not replicated state.
    let p = pair();
    lsetxattr(&p.b.join("f"), "security.hakit-test", b"x");
    assert_eq!(p.diff(), vec![]);
}

#[test]
fn hard_link_structure() {
    let p = pair();
    // d/h becomes a separate copy with the same content: link counts differ.
    fs::remove_file(p.b.join("d/h")).unwrap();
    fs::write(p.b.join("d/h"), b"world").unwrap();
    set_mtime(&p.b.join("d/h"), MTIME);
    let diffs = p.diff();
    assert_eq!(diffs.len(), 2, "{diffs:#?}");
    assert_eq!(diffs[0].to_string(), "d/g: link count 2 vs 1");
    assert_eq!(diffs[1].path(), Path::new("d/h"));

    // Same counts, different partners: a has {g,h},{k,m}; b has {g,k},{h,m}.
    let p = pair();
    for name in ["g", "h", "k", "m"] {
        fs::remove_file(p.b.join("d").join(name)).unwrap();
    }
    fs::write(p.b.join("d/g"), b"world").unwrap();
    fs::hard_link(p.b.join("d/g"), p.b.join("d/k")).unwrap();
    fs::write(p.b.join("d/h"), b"world").unwrap();
    fs::hard_link(p.b.join("d/h"), p.b.join("d/m")).unwrap();
    set_mtime(&p.b.join("d/g"), MTIME);
    set_mtime(&p.b.join("d/h"), MTIME);
    let groups: Vec<String> = p
        .diff()
        .into_iter()
        .filter(|d| matches!(d, Difference::LinkGroup { .. }))
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        groups[0],
        "d/h: hard-linked with d/g in the first tree but with d/h in the second tree"
    );
    assert_eq!(groups.len(), 3, "{groups:#?}");
}

#[test]
fn the_roots_own_attributes_are_compared() {
    let p = pair();
    chmod(&p.b, 0o1750);
    let d = p.one(".");
    assert!(matches!(d, Difference::Mode { b: 0o1750, .. }), "{d}");
    let p = pair();
    fchownat(
        AT_FDCWD,
        &p.b,
        Some(Uid::from_raw(7)),
        Some(Gid::from_raw(8)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
    assert!(matches!(p.one("."), Difference::Owner { b: (7, 8), .. }));
    let p = pair();
    lsetxattr(&p.a, "user.root", b"x");
    assert_eq!(
        p.one(".").to_string(),
        ".: xattr user.root present only in the first tree"
    );
    // The root's mtime, like any directory's, only on request.
    let p = pair();
    set_mtime(&p.b, 12345);
    assert_eq!(p.diff(), vec![]);
    let options = CompareOptions {
        dir_mtime: true,
        ..CompareOptions::default()
    };
    let diffs = compare_trees_with(&p.a, &p.b, options).unwrap();
    assert!(
        diffs
            .iter()
            .any(|d| matches!(d, Difference::Mtime { b: 12345, .. }) && d.path() == Path::new(".")),
        "{diffs:#?}"
    );
}
