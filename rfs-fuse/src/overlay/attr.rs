//! From a backing `struct stat` to what the kernel is told, and back to stream timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use crate::protocol::op::Timestamp;

/// Attribute and entry validity: zero. With any caching, ctime/nlink went stale after
/// link/unlink in a POSIX suite (PLATFORM.md), and the secondary's mount must see the
/// receiver's changes at once. Every access asks the daemon; correctness first.
pub(crate) const TTL: Duration = Duration::ZERO;

pub(crate) fn kind(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn system_time(sec: i64, nsec: i64) -> SystemTime {
    let nsec = u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0);
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec.unsigned_abs(), nsec)
    } else {
        // Before 1970: step back whole seconds, then forward the nanoseconds.
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::new(0, nsec)
    }
}

/// The attributes reported for the object, under inode number `ino`.
pub(crate) fn file_attr(ino: u64, st: &libc::stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: u64::try_from(st.st_size).unwrap_or(0),
        blocks: u64::try_from(st.st_blocks).unwrap_or(0),
        atime: system_time(st.st_atime, st.st_atime_nsec),
        mtime: system_time(st.st_mtime, st.st_mtime_nsec),
        ctime: system_time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: kind(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: u32::try_from(st.st_nlink).unwrap_or(u32::MAX),
        uid: st.st_uid,
        gid: st.st_gid,
        // The FUSE attribute carries 32 bits of device number, in the kernel's encoding.
        rdev: u32::try_from(st.st_rdev).unwrap_or(0),
        blksize: u32::try_from(st.st_blksize).unwrap_or(4096),
        flags: 0,
    }
}

/// A `SystemTime` as `utimensat` takes it.
pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(before) => {
            let d = before.duration();
            let sec = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                Timestamp { sec, nsec: 0 }
            } else {
                Timestamp {
                    sec: sec - 1,
                    nsec: 1_000_000_000 - d.subsec_nanos(),
                }
            }
        }
    }
}

pub(crate) fn atime(st: &libc::stat) -> Timestamp {
    Timestamp {
        sec: st.st_atime,
        nsec: u32::try_from(st.st_atime_nsec).unwrap_or(0),
    }
}

pub(crate) fn mtime(st: &libc::stat) -> Timestamp {
    Timestamp {
        sec: st.st_mtime,
        nsec: u32::try_from(st.st_mtime_nsec).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_including_before_the_epoch() {
        for (sec, nsec) in [(0, 0), (1_700_000_000, 123), (-1, 500_000_000), (-10, 0)] {
            let t = system_time(sec, nsec);
            assert_eq!(
                timestamp(t),
                Timestamp {
                    sec,
                    nsec: nsec as u32
                }
            );
        }
    }
}
