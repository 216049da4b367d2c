//! The synchronised walk of both trees.

use super::CompareOptions;
use super::difference::{Difference, FileKind, Side};
use super::xattr::replicated_xattrs;
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub(super) struct Walker<'p> {
    a: &'p Path,
    b: &'p Path,
    options: CompareOptions,
    out: Vec<Difference>,
    /// Per side: (device, inode) of each multiply-linked entry -> the first relative path
    /// seen with it, so that link groups can be compared by name.
    links: [HashMap<(u64, u64), PathBuf>; 2],
}

fn kind(meta: &Metadata) -> FileKind {
    let t = meta.file_type();
    if t.is_dir() {
        FileKind::Directory
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else {
        FileKind::Regular
    }
}

/// Entry names of a directory, sorted bytewise.
fn names(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect()
}

/// BLAKE3 of a regular file, opened without following a symlink or blocking on a FIFO that
/// replaced it since it was examined.
fn content_hash(path: &Path) -> io::Result<blake3::Hash> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} changed type during the comparison",
            path.display()
        )));
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file)?;
    Ok(hasher.finalize())
}

impl<'p> Walker<'p> {
    pub fn new(a: &'p Path, b: &'p Path, options: CompareOptions) -> Walker<'p> {
        Walker {
            a,
            b,
            options,
            out: Vec::new(),
            links: [HashMap::new(), HashMap::new()],
        }
    }

    /// Depth first, with an explicit stack so that deep trees cannot overflow the stack.
    pub fn run(mut self) -> io::Result<Vec<Difference>> {
        // The roots' own attributes first, reported under `.`; a root that is not a
        // directory on both sides has no entries to walk.
        if !self.entry(Path::new("."))? {
            return Ok(self.out);
        }
        let mut pending = vec![PathBuf::new()];
        while let Some(dir) = pending.pop() {
            let in_a = names(&self.a.join(&dir))?;
            let in_b = names(&self.b.join(&dir))?;
            let mut subdirs = Vec::new();
            for name in in_a.union(&in_b) {
                let path = dir.join(name);
                match (in_a.contains(name), in_b.contains(name)) {
                    (true, true) => {
                        if self.entry(&path)? {
                            subdirs.push(path);
                        }
                    }
                    (true, false) => self.out.push(Difference::OnlyIn {
                        path,
                        side: Side::A,
                    }),
                    _ => self.out.push(Difference::OnlyIn {
                        path,
                        side: Side::B,
                    }),
                }
            }
            pending.extend(subdirs.into_iter().rev());
        }
        Ok(self.out)
    }

    /// Compare one entry present on both sides; true if both are directories to descend.
    fn entry(&mut self, path: &Path) -> io::Result<bool> {
        let (full_a, full_b) = (self.a.join(path), self.b.join(path));
        let (ma, mb) = (
            fs::symlink_metadata(&full_a)?,
            fs::symlink_metadata(&full_b)?,
        );
        let (ka, kb) = (kind(&ma), kind(&mb));
        if ka != kb {
            self.push(Difference::Kind {
                path: path.to_path_buf(),
                a: ka,
                b: kb,
            });
            return Ok(false);
        }
        let p = || path.to_path_buf();
        if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            self.push(Difference::Mode {
                path: p(),
                a: ma.mode() & 0o7777,
                b: mb.mode() & 0o7777,
            });
        }
        if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
            self.push(Difference::Owner {
                path: p(),
                a: (ma.uid(), ma.gid()),
                b: (mb.uid(), mb.gid()),
            });
        }
        let is_dir = ka == FileKind::Directory;
        let check_mtime = self.options.mtime && (!is_dir || self.options.dir_mtime);
        if check_mtime && ma.mtime() != mb.mtime() {
            self.push(Difference::Mtime {
                path: p(),
                a: ma.mtime(),
                b: mb.mtime(),
            });
        }
        self.xattrs(path, &full_a, &full_b)?;
        match ka {
            FileKind::Directory => return Ok(true),
            FileKind::Regular => {
                if ma.len() != mb.len() {
                    self.push(Difference::Size {
                        path: p(),
                        a: ma.len(),
                        b: mb.len(),
                    });
                } else if content_hash(&full_a)? != content_hash(&full_b)? {
                    self.push(Difference::Content { path: p() });
                }
            }
            FileKind::Symlink => {
                let (ta, tb) = (fs::read_link(&full_a)?, fs::read_link(&full_b)?);
                if ta != tb {
                    self.push(Difference::SymlinkTarget {
                        path: p(),
                        a: ta.into_os_string(),
                        b: tb.into_os_string(),
                    });
                }
            }
            FileKind::CharDevice | FileKind::BlockDevice if ma.rdev() != mb.rdev() => {
                self.push(Difference::Rdev {
                    path: p(),
                    a: ma.rdev(),
                    b: mb.rdev(),
                });
            }
            _ => {}
        }
        self.links(path, &ma, &mb);
        Ok(false)
    }

    /// Link counts of non-directories (a directory's count follows its subdirectories,
    /// already compared), and, when both sides are multiply linked, the link groups.
    fn links(&mut self, path: &Path, ma: &Metadata, mb: &Metadata) {
        if ma.nlink() != mb.nlink() {
            self.push(Difference::Nlink {
                path: path.to_path_buf(),
                a: ma.nlink(),
                b: mb.nlink(),
            });
            return;
        }
        if ma.nlink() < 2 {
            return;
        }
        let [links_a, links_b] = &mut self.links;
        let first_a = links_a
            .entry((ma.dev(), ma.ino()))
            .or_insert_with(|| path.to_path_buf())
            .clone();
        let first_b = links_b
            .entry((mb.dev(), mb.ino()))
            .or_insert_with(|| path.to_path_buf())
            .clone();
        if first_a != first_b {
            self.push(Difference::LinkGroup {
                path: path.to_path_buf(),
                a: first_a,
                b: first_b,
            });
        }
    }

    fn xattrs(&mut self, path: &Path, full_a: &Path, full_b: &Path) -> io::Result<()> {
        let (xa, xb) = (replicated_xattrs(full_a)?, replicated_xattrs(full_b)?);
        let names: BTreeSet<&OsString> = xa.keys().chain(xb.keys()).collect();
        for name in names {
            let (va, vb) = (xa.get(name), xb.get(name));
            if va != vb {
                self.push(Difference::Xattr {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    a: va.cloned(),
                    b: vb.cloned(),
                });
            }
        }
        Ok(())
    }

    fn push(&mut self, difference: Difference) {
        self.out.push(difference);
    }
}
