//! Where the compiled XDP program comes from.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::XdpError;

/// Environment variable naming the object file (`cargo xtask test` sets it).
pub const OBJECT_ENV: &str = "HAKIT_FARM_XDP_OBJECT";
/// Where a packaged install puts the object.
const INSTALLED: &str = "/usr/lib/hakit/farm-xdp.o";
/// Where `cargo xtask build-ebpf` leaves it, relative to the cargo target directory.
const BUILT: &str = "bpfel-unknown-none/release/farm-ebpf";

/// The compiled `farm-ebpf` program: a file, or bytes already in memory.
#[derive(Clone, Debug)]
pub enum XdpObject {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

impl XdpObject {
    /// `$HAKIT_FARM_XDP_OBJECT` if set; else the build output next to this executable's target
    /// directory (`target/{debug,release}/hakit`, or `target/debug/deps/…` for tests) if it
    /// exists; else the installed path. The result may not exist: loading then fails with
    /// [`XdpError::ObjectMissing`].
    pub fn locate() -> Self {
        if let Some(p) = std::env::var_os(OBJECT_ENV) {
            return Self::Path(p.into());
        }
        let built = std::env::current_exe().ok().and_then(|exe| {
            exe.ancestors()
                .skip(2)
                .take(2)
                .map(|dir| dir.join(BUILT))
                .find(|p| p.is_file())
        });
        Self::Path(built.unwrap_or_else(|| INSTALLED.into()))
    }

    pub(super) fn bytes(&self) -> Result<Cow<'_, [u8]>, XdpError> {
        match self {
            Self::Bytes(b) => Ok(Cow::Borrowed(b)),
            Self::Path(path) => read(path).map(Cow::Owned),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, XdpError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            XdpError::ObjectMissing { path: path.into() }
        } else {
            XdpError::ObjectRead {
                path: path.into(),
                source,
            }
        }
    })
}
