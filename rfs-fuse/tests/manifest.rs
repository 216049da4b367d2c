//! Manifests: what a walk lists, what comparing two manifests reports, and the manifest
//! conversation between primary and secondary.

use rfs_fuse::compare::{Difference, FileKind, Side};
use rfs_fuse::link::{LinkError, Opening, request_manifest, serve_manifest};
use rfs_fuse::protocol::{Message, encode_message};
use rfs_fuse::sync::manifest::{Entry, differences, walk};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

const BLOCK: u32 = 4096;

/// A small replica: nested directories, a file of several blocks, an empty file, a symlink.
fn replica() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/big"), vec![7u8; 3 * BLOCK as usize + 5]).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("z"), b"last").unwrap();
    symlink("a/b/big", root.join("link")).unwrap();
    dir
}

fn listed(root: &Path) -> Vec<Entry> {
    let dir = File::open(root).unwrap();
    walk(dir.as_fd(), BLOCK, 3).unwrap()
}

fn paths(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            e.path.as_ref().map_or_else(
                || ".".to_string(),
                |p| String::from_utf8(p.to_bytes()).unwrap(),
            )
        })
        .collect()
}

fn diff(a: &Path, b: &Path) -> Vec<Difference> {
    differences(&listed(a), &listed(b))
}

#[test]
fn a_walk_lists_every_entry_in_path_order_with_its_block_hashes() {
    let dir = replica();
    let entries = listed(dir.path());
    assert_eq!(
        paths(&entries),
        [".", "a", "a/b", "a/b/big", "empty", "link", "z"]
    );
    let big = &entries[3];
    assert_eq!((big.kind, big.size), (FileKind::Regular, 3 * 4096 + 5));
    assert_eq!(big.blocks.len(), 4, "three whole blocks and a partial one");
    assert_eq!(big.blocks[0], big.blocks[1], "same bytes, same hash");
    assert_ne!(big.blocks[2], big.blocks[3]);
    assert!(entries[4].blocks.is_empty());
    assert_eq!(entries[5].target.as_deref(), Some("a/b/big".as_ref()));
    assert_eq!(listed(dir.path()), entries, "a second walk lists the same");
}

/// Many files in nested directories, of sizes around the block size (empty, partial, whole
/// and several blocks), with symlinks (to a file, to a directory, dangling) and a FIFO.
fn busy_replica() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let block = BLOCK as usize;
    for i in 0..300usize {
        let sub = root.join(format!("d{}/e{}", i % 7, i % 3));
        fs::create_dir_all(&sub).unwrap();
        let size = [0, 1, block - 1, block, block + 1, 5 * block + 17][i % 6];
        let data: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
        fs::write(sub.join(format!("f{i}")), data).unwrap();
    }
    symlink("d0/e0/f0", root.join("to-file")).unwrap();
    symlink("d1", root.join("to-dir")).unwrap();
    symlink("nowhere", root.join("d2/dangling")).unwrap();
    nix::unistd::mkfifo(
        &root.join("d3/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    dir
}

#[test]
fn the_number_of_hashing_workers_does_not_change_the_manifest() {
    let dir = busy_replica();
    let root = File::open(dir.path()).unwrap();
    let one = walk(root.as_fd(), BLOCK, 1).unwrap();
    let four = walk(root.as_fd(), BLOCK, 4).unwrap();
    assert_eq!(one, four);
    let files: Vec<&Entry> = one.iter().filter(|e| e.kind == FileKind::Regular).collect();
    assert_eq!(files.len(), 300);
    for file in files {
        assert_eq!(
            file.blocks.len() as u64,
            Entry::block_count(file.size, BLOCK)
        );
    }
    let listed = paths(&one);
    for special in ["to-file", "to-dir", "d2/dangling", "d3/fifo"] {
        assert!(listed.iter().any(|p| p == special), "{special} missing");
    }
    assert!(
        !listed.iter().any(|p| p.starts_with("to-dir/")),
        "symlink followed"
    );
}

#[test]
fn a_file_is_hashed_block_by_block_whatever_the_workers() {
    let dir = busy_replica();
    let path = dir.path().join("d5/e2/f5");
    let data = fs::read(&path).unwrap();
    let expected: Vec<[u8; 32]> = data
        .chunks(BLOCK as usize)
        .map(|block| *blake3::hash(block).as_bytes())
        .collect();
    let root = File::open(dir.path()).unwrap();
    for workers in [1, 4] {
        let entries = walk(root.as_fd(), BLOCK, workers).unwrap();
        let file = entries
            .iter()
            .find(|e| e.path.as_ref().is_some_and(|p| p.to_bytes() == b"d5/e2/f5"))
            .unwrap();
        assert_eq!((file.size, &file.blocks), (data.len() as u64, &expected));
    }
}

#[test]
fn identical_replicas_have_no_differences() {
    let (a, b) = (replica(), replica());
    assert_eq!(diff(a.path(), b.path()), []);
}

#[test]
fn a_changed_block_is_named_with_its_index() {
    let (a, b) = (replica(), replica());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(b.path().join("a/b/big"))
        .unwrap();
    file.seek(SeekFrom::Start(2 * u64::from(BLOCK) + 1))
        .unwrap();
    file.write_all(b"X").unwrap();
    drop(file);
    let mtime = fs::metadata(a.path().join("a/b/big"))
        .unwrap()
        .modified()
        .unwrap();
    File::options()
        .write(true)
        .open(b.path().join("a/b/big"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        diff(a.path(), b.path()),
        [Difference::Blocks {
            path: PathBuf::from("a/b/big"),
            count: 1,
            first: 2
        }]
    );
}

#[test]
fn a_subtree_on_one_side_is_reported_once_at_its_top() {
    let (a, b) = (replica(), replica());
    fs::remove_dir_all(b.path().join("a")).unwrap();
    fs::write(b.path().join("extra"), b"x").unwrap();
    assert_eq!(
        diff(a.path(), b.path()),
        [
            Difference::OnlyIn {
                path: PathBuf::from("a"),
                side: Side::A
            },
            Difference::OnlyIn {
                path: PathBuf::from("extra"),
                side: Side::B
            },
        ]
    );
}

#[test]
fn sizes_modes_and_types_are_compared() {
    let (a, b) = (replica(), replica());
    let z = b.path().join("z");
    fs::write(&z, b"longer").unwrap();
    let mut perms = fs::metadata(b.path().join("empty")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    fs::set_permissions(b.path().join("empty"), perms).unwrap();
    fs::remove_file(b.path().join("link")).unwrap();
    fs::create_dir(b.path().join("link")).unwrap();
    let found = diff(a.path(), b.path());
    let named: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        named.iter().any(|d| d.starts_with("empty: mode")),
        "{named:?}"
    );
    assert!(
        named.iter().any(|d| d == "link: type symlink vs directory"),
        "{named:?}"
    );
    assert!(
        named.iter().any(|d| d == "z: size 4 vs 6 bytes"),
        "{named:?}"
    );
}

/// Serves a manifest request for `module` over one end of a socket pair, from `root`.
fn secondary(
    root: PathBuf,
    module: &'static str,
) -> (UnixStream, std::thread::JoinHandle<Result<u64, LinkError>>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let thread = std::thread::spawn(move || {
        let dir = File::open(root).unwrap();
        let opening = Opening::read(theirs.try_clone().unwrap())?;
        serve_manifest(opening, theirs, module, &[dir.as_fd()], 3)
    });
    (ours, thread)
}

#[test]
fn the_secondary_answers_its_manifest_over_the_link() {
    let dir = replica();
    let (stream, served) = secondary(dir.path().to_path_buf(), "db");
    let manifests = request_manifest(stream.try_clone().unwrap(), stream, "db", 1, BLOCK).unwrap();
    assert_eq!(served.join().unwrap().unwrap(), 7);
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0].entries, listed(dir.path()));
}

#[test]
fn a_file_with_more_hashes_than_one_message_carries_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = rfs_fuse::protocol::manifest::MAX_HASHES + 3;
    let file = File::create(dir.path().join("sparse")).unwrap();
    file.set_len(blocks as u64 * u64::from(BLOCK)).unwrap();
    let (stream, served) = secondary(dir.path().to_path_buf(), "db");
    let manifests = request_manifest(stream.try_clone().unwrap(), stream, "db", 1, BLOCK).unwrap();
    served.join().unwrap().unwrap();
    assert_eq!(manifests[0].entries[1].blocks.len(), blocks);
}

#[test]
fn a_request_for_another_module_is_refused_with_the_reason() {
    let dir = replica();
    let (stream, served) = secondary(dir.path().to_path_buf(), "db");
    let error = request_manifest(stream.try_clone().unwrap(), stream, "web", 1, BLOCK).unwrap_err();
    assert!(
        matches!(&error, LinkError::Refused(reason) if reason.contains("module mismatch")),
        "{error}"
    );
    assert!(matches!(
        served.join().unwrap(),
        Err(LinkError::ModuleMismatch { .. })
    ));
}

/// A secondary that answers any manifest request with `answer`'s frames, then closes.
fn answer_with(answer: Vec<u8>) -> UnixStream {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let _request = Opening::read(theirs.try_clone().unwrap());
        let _ = theirs.write_all(&answer);
    });
    ours
}

fn frames(messages: &[Message]) -> Vec<u8> {
    messages
        .iter()
        .flat_map(|m| encode_message(m).unwrap().to_vec())
        .collect()
}

fn ask(answer: Vec<u8>) -> LinkError {
    let stream = answer_with(answer);
    request_manifest(stream.try_clone().unwrap(), stream, "db", 1, BLOCK).unwrap_err()
}

fn root_entry() -> Entry {
    let dir = replica();
    listed(dir.path()).remove(0)
}

#[test]
fn a_file_whose_hashes_do_not_match_its_size_is_refused() {
    let dir = replica();
    let mut entries = listed(dir.path());
    entries[3].blocks.pop();
    let answer: Vec<Message> = entries
        .into_iter()
        .map(|entry| Message::ManifestEntry {
            root: 0,
            entry: Box::new(entry),
        })
        .chain([Message::ManifestEnd { entries: 7 }])
        .collect();
    let error = ask(frames(&answer));
    assert!(
        error
            .to_string()
            .contains("carries 3 block hashes instead of 4"),
        "{error}"
    );
}

#[test]
fn entries_out_of_order_or_beyond_the_roots_are_refused() {
    let entry = |root| Message::ManifestEntry {
        root,
        entry: Box::new(root_entry()),
    };
    let twice = ask(frames(&[entry(0), entry(0)]));
    assert!(twice.to_string().contains("out of order"), "{twice}");
    let beyond = ask(frames(&[entry(1)]));
    assert!(
        beyond
            .to_string()
            .contains("names root 1, but there are only 1"),
        "{beyond}"
    );
}

#[test]
fn a_manifest_cut_short_is_an_error_not_a_shorter_manifest() {
    let mut answer = frames(&[
        Message::ManifestEntry {
            root: 0,
            entry: Box::new(root_entry()),
        },
        Message::ManifestEnd { entries: 1 },
    ]);
    answer.truncate(answer.len() - 3);
    assert!(matches!(ask(answer), LinkError::BadStream(_)));
    let without_end = frames(&[Message::ManifestEntry {
        root: 0,
        entry: Box::new(root_entry()),
    }]);
    let error = ask(without_end);
    assert!(error.to_string().contains("before ManifestEnd"), "{error}");
}
