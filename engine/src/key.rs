//! The cluster key: 32 random bytes every node of a cluster shares (`/etc/hakit/cluster.key`).
//!
//! Nodes never use it directly: each channel derives its own key with BLAKE3's `derive_key`
//! and a channel-specific context string, so that a MAC computed for one channel (say a
//! heartbeat) can never be replayed as valid on another (replication, admin).
//!
//! File format: one line of 64 hexadecimal digits, optionally ending with a newline; lines
//! starting with `#` are comments. The file must be accessible by its owner only (0600).

use rand::{RngCore, TryRngCore};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const KEY_LEN: usize = 32;
const HEX_LEN: usize = 2 * KEY_LEN;
/// A key file is ~150 bytes; refuse to read more than this (e.g. a path mistaken for it).
const MAX_FILE: u64 = 4096;
/// Changing this string changes every heartbeat key: bump it with the wire version.
const HEARTBEAT_CONTEXT: &str = "hakit 2026-11 heartbeat v1";

/// The secret shared by every node of one cluster.
#[derive(Clone)]
pub struct ClusterKey([u8; KEY_LEN]);

/// The key heartbeat datagrams are authenticated with, derived from the [`ClusterKey`].
#[derive(Clone)]
pub struct HeartbeatKey([u8; KEY_LEN]);

impl HeartbeatKey {
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<secret>)")
    }
}

impl fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeartbeatKey(<secret>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{}: no cluster key; generate one on one node with `hakit cluster genkey` and copy \
         it to every other node", .path.display()
    )]
    Missing { path: PathBuf },
    #[error("{}: cannot {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error(
        "{}: a cluster key already exists; every node must share the same key, so replacing \
         it means copying the new key to every node (overwrite explicitly to do so)",
        .path.display()
    )]
    Exists { path: PathBuf },
    #[error("{}: not a regular file", .path.display())]
    NotRegularFile { path: PathBuf },
    #[error(
        "{}: the cluster key is accessible by group or others (mode {mode:04o}); run: chmod 600 {}",
        .path.display(), .path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{}: too large for a key file (more than {MAX_FILE} bytes)", .path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: not UTF-8 text", .path.display())]
    NotText { path: PathBuf },
    #[error("{}: no key line (expected one line of {HEX_LEN} hex digits)", .path.display())]
    NoKey { path: PathBuf },
    #[error("{}: lines {first} and {second} both hold a key; keep exactly one", .path.display())]
    SeveralKeys {
        path: PathBuf,
        first: usize,
        second: usize,
    },
    #[error("{}: line {line}: key is {len} characters, expected {HEX_LEN} hex digits", .path.display())]
    BadLength {
        path: PathBuf,
        line: usize,
        len: usize,
    },
    #[error("{}: line {line}, column {column}: not a hexadecimal digit", .path.display())]
    BadHex {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

impl ClusterKey {
    /// A fresh key from the operating system's random source (getrandom(2)).
    pub fn generate() -> ClusterKey {
        let mut bytes = [0u8; KEY_LEN];
        if rand::rngs::OsRng.try_fill_bytes(&mut bytes).is_err() {
            // Only when the kernel has no entropy source at all: ThreadRng seeds itself from
            // the same source and aborts rather than return a predictable key.
            rand::rng().fill_bytes(&mut bytes);
        }
        ClusterKey(bytes)
    }

    /// A key with known bytes, for tests and simulations.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> ClusterKey {
        ClusterKey(bytes)
    }

    /// The key for heartbeat MACs. Other channels derive theirs with other contexts.
    pub fn heartbeat_key(&self) -> HeartbeatKey {
        HeartbeatKey(blake3::derive_key(HEARTBEAT_CONTEXT, &self.0))
    }

    /// Writes the key to `path`, mode 0600 from the moment the file exists, creating a
    /// missing parent directory with mode 0700. The file is written under a temporary name
    /// then linked (or, with `overwrite`, renamed) into place, so that `path` is always
    /// either absent, the old key or the complete new key.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), KeyError> {
        let io = |action, source| KeyError::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        if !overwrite && fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::Exists {
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io("create its directory", e))?;
        }
        let tmp = temp_name(path);
        let result = write_new(path, &tmp, &self.text()).and_then(|()| {
            if overwrite {
                fs::rename(&tmp, path).map_err(|e| io("rename the new key into place", e))
            } else {
                // link(2) fails if `path` appeared meanwhile: never clobbers a key.
                fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => KeyError::Exists {
                        path: path.to_path_buf(),
                    },
                    _ => io("link the new key into place", e),
                })
            }
        });
        // After a rename the temporary name is already gone.
        let _ = fs::remove_file(&tmp);
        result?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync its directory", e))
    }

    /// Reads a key file, refusing one that group or others may access.
    pub fn load(path: &Path) -> Result<ClusterKey, KeyError> {
        let io = |action, source| KeyError::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => KeyError::Missing {
                path: path.to_path_buf(),
            },
            _ => io("open", e),
        })?;
        // fstat the open file, not the path: what is checked is what is read.
        let meta = file.metadata().map_err(|e| io("stat", e))?;
        if !meta.is_file() {
            return Err(KeyError::NotRegularFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut raw = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut raw)
            .map_err(|e| io("read", e))?;
        if raw.len() as u64 > MAX_FILE {
            return Err(KeyError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = std::str::from_utf8(&raw).map_err(|_| KeyError::NotText {
            path: path.to_path_buf(),
        })?;
        parse(path, text)
    }

    fn text(&self) -> String {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "# hakit cluster key: every node of the cluster must hold this same file, mode 0600.\n\
             {hex}\n"
        )
    }
}

fn parse(path: &Path, text: &str) -> Result<ClusterKey, KeyError> {
    let mut found: Option<(usize, &str)> = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((first, _)) = found {
            return Err(KeyError::SeveralKeys {
                path: path.to_path_buf(),
                first,
                second: line_no,
            });
        }
        found = Some((line_no, trimmed));
    }
    let Some((line, hex)) = found else {
        return Err(KeyError::NoKey {
            path: path.to_path_buf(),
        });
    };
    if let Some(column) = hex.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(KeyError::BadHex {
            path: path.to_path_buf(),
            line,
            column: column + 1,
        });
    }
    // All ASCII from here: bytes are characters.
    if hex.len() != HEX_LEN {
        return Err(KeyError::BadLength {
            path: path.to_path_buf(),
            line,
            len: hex.len(),
        });
    }
    let mut bytes = [0u8; KEY_LEN];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        if let [hi, lo] = *pair {
            *byte = hex_value(hi) << 4 | hex_value(lo);
        }
    }
    Ok(ClusterKey(bytes))
}

/// The value of a digit already checked by `is_ascii_hexdigit`.
fn hex_value(c: u8) -> u8 {
    match c {
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => c.wrapping_sub(b'0'),
    }
}

/// A name next to `path` that no one else uses: created with O_EXCL, so it never follows
/// a symlink someone planted.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "cluster.key".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(
        ".{name}.tmp.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// Errors name `path`, the key being saved: the temporary name means nothing to the user.
fn write_new(path: &Path, tmp: &Path, text: &str) -> Result<(), KeyError> {
    let io = |action, source| KeyError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    // The mode applies at creation (less the umask, which only removes bits): the key is
    // never readable by others, not even between creation and a later chmod.
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| io("create a temporary file next to it", e))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| io("chmod 600", e))?;
    f.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    fn write_key_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("cluster.key");
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn load_err(text: &str) -> (PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = write_key_file(dir.path(), text, 0o600);
        let err = ClusterKey::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        (path, err)
    }

    #[test]
    fn generate_save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/hakit/cluster.key");
        let key = ClusterKey::generate();
        key.save(&path, false).unwrap();
        let loaded = ClusterKey::load(&path).unwrap();
        assert_eq!(loaded.0, key.0);
        assert_eq!(loaded.heartbeat_key().0, key.heartbeat_key().0);
        assert_ne!(ClusterKey::generate().0, key.0);
    }

    #[test]
    fn file_is_0600_and_created_directory_0700() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf/cluster.key");
        ClusterKey::generate().save(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("conf")), 0o700);
        let leftovers = fs::read_dir(dir.path().join("conf")).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }

    #[test]
    fn refuses_to_overwrite_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let first = ClusterKey::generate();
        first.save(&path, false).unwrap();
        let err = ClusterKey::generate().save(&path, false).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }));
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("every node must share the same key"), "{msg}");
        assert_eq!(ClusterKey::load(&path).unwrap().0, first.0, "untouched");

        let second = ClusterKey::generate();
        second.save(&path, true).unwrap();
        assert_eq!(ClusterKey::load(&path).unwrap().0, second.0);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn accepts_comments_blank_lines_uppercase_and_no_trailing_newline() {
        let hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
        let dir = tempfile::tempdir().unwrap();
        let path = write_key_file(dir.path(), &format!("# comment\n\n{hex}"), 0o600);
        let key = ClusterKey::load(&path).unwrap();
        assert_eq!(key.0[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(key.0[31], 0xff);
        let path = write_key_file(dir.path(), &format!("{hex}\r\n"), 0o400);
        assert_eq!(ClusterKey::load(&path).unwrap().0, key.0);
    }

    #[test]
    fn bad_hex_names_path_line_and_column() {
        let mut hex = "ab".repeat(KEY_LEN);
        hex.replace_range(9..10, "z");
        let (_, err) = load_err(&format!("# c\n{hex}\n"));
        assert!(
            err.contains("line 2, column 10: not a hexadecimal digit"),
            "{err}"
        );
        assert!(!err.contains("abab"), "the key is not echoed: {err}");
    }

    #[test]
    fn wrong_length_missing_and_several_keys_are_errors() {
        let (_, err) = load_err(&"ab".repeat(31));
        assert!(err.contains("key is 62 characters, expected 64"), "{err}");
        let (_, err) = load_err("# only a comment\n");
        assert!(err.contains("no key line"), "{err}");
        let hex = "ab".repeat(KEY_LEN);
        let (_, err) = load_err(&format!("{hex}\n{hex}\n"));
        assert!(err.contains("lines 1 and 2"), "{err}");
        let (_, err) = load_err("\u{e9}".repeat(32).as_str());
        assert!(err.contains("line 1, column 1: not a hex"), "{err}");
    }

    #[test]
    fn group_or_world_readable_file_is_an_error_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [0o640, 0o604, 0o620] {
            let path = write_key_file(dir.path(), &"ab".repeat(KEY_LEN), bad);
            let err = ClusterKey::load(&path).unwrap_err();
            assert!(matches!(err, KeyError::Permissions { mode, .. } if mode == bad));
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
        }
    }

    #[test]
    fn missing_file_and_directory_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.key");
        let err = ClusterKey::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("hakit cluster genkey"), "{err}");
        let err = ClusterKey::load(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::NotRegularFile { .. }), "{err}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let (_, err) = load_err(&"#".repeat(MAX_FILE as usize + 1));
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn debug_hides_key_bytes() {
        let key = ClusterKey::from_bytes([0xab; KEY_LEN]);
        let shown = format!("{key:?} {:?}", key.heartbeat_key());
        assert_eq!(shown, "ClusterKey(<secret>) HeartbeatKey(<secret>)");
    }

    #[test]
    fn heartbeat_key_is_derived_not_the_raw_key() {
        let key = ClusterKey::from_bytes([7; KEY_LEN]);
        assert_ne!(key.heartbeat_key().0, key.0);
        let expected = blake3::derive_key("hakit 2026-11 heartbeat v1", &[7; KEY_LEN]);
        assert_eq!(key.heartbeat_key().0, expected);
    }
}
