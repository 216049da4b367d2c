//! Errors of the XDP loader. Each names what failed and, where the operator can act, how.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "the farm XDP object {path} is missing: build it with `cargo xtask build-ebpf` \
         (or point {env} at it)",
        env = super::OBJECT_ENV
    )]
    ObjectMissing { path: PathBuf },
    #[error("cannot read the farm XDP object {path}: {source}")]
    ObjectRead { path: PathBuf, source: io::Error },
    #[error("cannot load the farm XDP object: {0}")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("the farm XDP object has no program {0:?} (wrong object?)")]
    NoProgram(&'static str),
    #[error("the kernel refused the farm XDP program: {0}")]
    Program(#[source] Box<aya::programs::ProgramError>),
    #[error("farm XDP map {name}: {source}")]
    Map {
        name: &'static str,
        source: Box<aya::maps::MapError>,
    },
    #[error("no network interface named {0:?}")]
    UnknownInterface(String),
    #[error("cannot attach XDP to {ifname} in {mode:?} mode: {source}")]
    Attach {
        ifname: String,
        mode: super::XdpMode,
        source: Box<aya::programs::ProgramError>,
    },
    #[error("cannot attach XDP to {ifname}: native mode: {native}; generic mode: {generic}")]
    AttachEither {
        ifname: String,
        native: Box<aya::programs::ProgramError>,
        generic: Box<aya::programs::ProgramError>,
    },
    #[error(
        "{ifname} already runs XDP program {name:?} (id {id}), which is not hakit's: \
         refusing to replace it"
    )]
    Busy {
        ifname: String,
        id: u32,
        name: String,
    },
    #[error("netlink ({what}): {source}")]
    Netlink {
        what: &'static str,
        source: io::Error,
    },
    #[error("bpf({cmd}): {source}")]
    Syscall {
        cmd: &'static str,
        source: io::Error,
    },
    #[error("invalid farm filter setting: {0}")]
    Invalid(String),
}

// aya's errors are large: they are boxed so that every `Result<_, XdpError>` stays small.
impl XdpError {
    pub(crate) fn map(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> Self {
        move |source| Self::Map {
            name,
            source: Box::new(source),
        }
    }

    pub(crate) fn program(e: aya::programs::ProgramError) -> Self {
        Self::Program(Box::new(e))
    }
}
