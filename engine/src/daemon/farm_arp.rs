//! The farm's packet socket on the LAN interface: it keeps the interface promiscuous (a
//! `PACKET_MR_PROMISC` membership, which the kernel drops with the socket, so a killed daemon
//! leaves nothing behind) and, while this node is the view's responder, answers ARP requests
//! for the VIP with the virtual MAC (see `farm::arp`). A blocking thread: one small frame
//! now and then, and a read timeout to notice the stop flag.

use crate::farm::arp;
use crate::net::{broadcast_sockaddr, ethernet_mac};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct ArpResponder {
    active: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// ARP replies sent for the VIP.
    pub answered: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl ArpResponder {
    /// Opens the socket on `ifname` (promiscuous from now on); answers nothing until
    /// [`ArpResponder::set_active`].
    pub fn start(ifname: &str, vip: Ipv4Addr, virtual_mac: [u8; 6]) -> io::Result<ArpResponder> {
        let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(io::Error::from)?;
        let arp_proto = i32::from((libc::ETH_P_ARP as u16).to_be());
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(arp_proto)))?;
        let link = broadcast_sockaddr(ifindex)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad interface index"))?;
        socket.bind(&link)?;
        let own_mac = ethernet_mac(&socket.local_addr()?).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{ifname} is not an Ethernet interface"),
            )
        })?;
        promiscuous(&socket, ifindex)?;
        socket.set_read_timeout(Some(READ_TIMEOUT))?;
        let active = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            socket,
            link,
            vip,
            virtual_mac,
            own_mac,
            active: active.clone(),
            stop: stop.clone(),
            answered: answered.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("farm-arp".into())
            .spawn(move || worker.run())?;
        Ok(ArpResponder {
            active,
            stop,
            answered,
            thread: Some(thread),
        })
    }

    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }
}

impl Drop for ArpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    socket: Socket,
    link: SockAddr,
    vip: Ipv4Addr,
    virtual_mac: [u8; 6],
    own_mac: [u8; 6],
    active: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
}

impl Worker {
    fn run(mut self) {
        let mut buf = [0u8; 2048];
        while !self.stop.load(Ordering::Relaxed) {
            let len = match self.socket.read(&mut buf) {
                Ok(len) => len,
                // The read timeout, or an interrupted read: look at the flags again.
                Err(_) => continue,
            };
            if !self.active.load(Ordering::Relaxed) {
                continue;
            }
            let frame = &buf[..len.min(buf.len())];
            if let Some(answer) = arp::reply(frame, self.vip, self.virtual_mac, self.own_mac)
                && self.socket.send_to(&answer, &self.link).is_ok()
            {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Puts the interface in promiscuous mode for as long as `socket` lives.
fn promiscuous(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let mreq = libc::packet_mreq {
        mr_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    let len =
        libc::socklen_t::try_from(size_of::<libc::packet_mreq>()).map_err(io::Error::other)?;
    // SAFETY: `mreq` is a fully initialised packet_mreq that outlives the call, `len` is its
    // exact size, and the fd is a live AF_PACKET socket owned by `socket`: the kernel reads
    // exactly that struct and keeps no pointer to it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&raw const mreq).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
