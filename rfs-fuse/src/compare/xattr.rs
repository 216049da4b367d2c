//! Reading the replicated xattrs (`user.*`, `trusted.*`) of an entry without following it.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

const REPLICATED: [&[u8]; 2] = [b"user.", b"trusted."];

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Call a size-query-then-fill xattr function until the buffer is large enough (the value
/// may grow between the two calls: ERANGE then means "ask again").
fn read_sized(mut call: impl FnMut(&mut [u8]) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = call(&mut []);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size.unsigned_abs()];
        let got = call(&mut buf);
        if got >= 0 {
            buf.truncate(got.unsigned_abs());
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// The entry's `user.*` and `trusted.*` xattrs; empty where the file system has none.
pub(crate) fn replicated_xattrs(path: &Path) -> io::Result<BTreeMap<OsString, Vec<u8>>> {
    let cpath = c_path(path)?;
    let listed = read_sized(|buf| {
        // SAFETY: `cpath` is a NUL-terminated string alive for the call; `buf` is a writable
        // buffer of `buf.len()` bytes (a null pointer with length 0 asks for the size).
        unsafe { libc::llistxattr(cpath.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    });
    let list = match listed {
        Ok(list) => list,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut out = BTreeMap::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if !REPLICATED.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "xattr name with NUL"))?;
        let value = read_sized(|buf| {
            // SAFETY: as above; `cname` is a NUL-terminated name alive for the call.
            unsafe {
                libc::lgetxattr(
                    cpath.as_ptr(),
                    cname.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            }
        });
        match value {
            Ok(value) => {
                out.insert(OsString::from_vec(name.to_vec()), value);
            }
            // Removed between listing and reading: it is simply not there.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "reading xattr {} of {}: {e}",
                        OsStr::from_bytes(name).to_string_lossy(),
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(out)
}
