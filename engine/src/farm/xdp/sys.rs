//! The few `bpf(2)` commands aya 0.14 does not expose: running a program on a crafted packet
//! (`BPF_PROG_TEST_RUN`), and detaching somebody else's XDP link by id.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::XdpError;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_DETACH: libc::c_long = 34;

/// The `test` member of `union bpf_attr` (include/uapi/linux/bpf.h), up to `batch_size`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// The outcome of running the program on one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The XDP action (`XDP_DROP` = 1, `XDP_PASS` = 2).
    pub action: u32,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
    /// Mean run time per repetition, in nanoseconds (as measured by the kernel).
    pub duration_ns: u32,
}

impl TestRun {
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
}

/// Runs the program `repeat` times on `packet` (at least 14 bytes: the kernel refuses less).
pub(super) fn test_run(
    prog: BorrowedFd<'_>,
    packet: &[u8],
    repeat: u32,
) -> Result<TestRun, XdpError> {
    let mut out = vec![0u8; packet.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(prog),
        data_size_in: len_u32(packet.len())?,
        data_size_out: len_u32(out.len())?,
        data_in: packet.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: repeat.max(1),
        ..TestRunAttr::default()
    };
    bpf(BPF_PROG_TEST_RUN, "BPF_PROG_TEST_RUN", &mut attr)?;
    out.truncate(attr.data_size_out as usize);
    Ok(TestRun {
        action: attr.retval,
        packet: out,
        duration_ns: attr.duration,
    })
}

/// Detaches the BPF link `link_id` (whoever holds it): `bpftool link detach`.
pub(super) fn detach_link(link_id: u32) -> Result<(), XdpError> {
    // `link_id` is the first u32 of the id-lookup member; open_flags 0.
    let mut get = [link_id, 0, 0];
    let raw = bpf(BPF_LINK_GET_FD_BY_ID, "BPF_LINK_GET_FD_BY_ID", &mut get)?;
    let raw = i32::try_from(raw).map_err(|_| XdpError::Syscall {
        cmd: "BPF_LINK_GET_FD_BY_ID",
        source: io::Error::other("fd out of range"),
    })?;
    // SAFETY: on success BPF_LINK_GET_FD_BY_ID returns a new file descriptor we now own.
    let link = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut detach = [fd_u32(link.as_fd()), 0];
    bpf(BPF_LINK_DETACH, "BPF_LINK_DETACH", &mut detach)?;
    Ok(())
}

/// The prog-load member of `union bpf_attr`, up to `prog_name`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// Loads `return XDP_PASS;` named `name` (< 16 bytes): the benchmark's baseline (what
/// `BPF_PROG_TEST_RUN` costs around any program) and a foreign program for tests.
pub(super) fn load_trivial_xdp(name: &str) -> Result<OwnedFd, XdpError> {
    // r0 = 2 (XDP_PASS); exit.
    let insns: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: 6, // BPF_PROG_TYPE_XDP
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    let n = name.len().min(15);
    attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let fd = bpf(BPF_PROG_LOAD, "BPF_PROG_LOAD", &mut attr)?;
    let fd = i32::try_from(fd).map_err(|_| XdpError::Syscall {
        cmd: "BPF_PROG_LOAD",
        source: io::Error::other("fd out of range"),
    })?;
    // SAFETY: on success BPF_PROG_LOAD returns a new file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bpf(cmd, attr, size_of(attr))`; the attr struct is zero-extended by the kernel.
fn bpf<T>(cmd: libc::c_long, name: &'static str, attr: &mut T) -> Result<libc::c_long, XdpError> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` value laid out as the member
    // of `union bpf_attr` that `cmd` reads, and its size is passed along; the pointers inside
    // it (test run buffers, instructions, license) point at buffers that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>(),
        )
    };
    if ret < 0 {
        return Err(XdpError::Syscall {
            cmd: name,
            source: io::Error::last_os_error(),
        });
    }
    Ok(ret)
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // File descriptors are non-negative.
    fd.as_raw_fd().unsigned_abs()
}

fn len_u32(len: usize) -> Result<u32, XdpError> {
    u32::try_from(len).map_err(|_| XdpError::Invalid(format!("packet of {len} bytes")))
}
