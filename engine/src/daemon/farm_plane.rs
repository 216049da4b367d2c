//! The data plane of one farm module on this node, set up when the module starts and torn
//! down when it stops: the VIP as a local address that never answers ARP (a /32 on `lo`,
//! `arp_ignore=1` and `arp_announce=2` on the LAN interface), the LAN interface promiscuous
//! and the ARP responder (`farm_arp`), and the XDP filter on the LAN interface. What a killed
//! daemon would leave behind (the address, the sysctls) is noted to the guardian; the XDP
//! link and the promiscuous membership die with the process.

use super::farm_arp::ArpResponder;
use super::guardian::Guardian;
use crate::farm::conns;
use crate::farm::settings::{FarmSettings, FarmVipV4};
use crate::farm::xdp::{BucketState, Counters, FilterConfig, XdpError, XdpFilter, XdpObject};
use crate::net::{add_vip, del_vip, interface_for};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The sysctls that keep the kernel from answering ARP for the VIP, and their values.
const ARP_SYSCTLS: [(&str, &str); 2] = [("arp_ignore", "1"), ("arp_announce", "2")];

/// `Err(message)` if this binary cannot run farm data planes: the XDP object is missing (the
/// message says how to build it).
pub fn available() -> Result<(), String> {
    match XdpObject::locate() {
        XdpObject::Path(path) if !path.is_file() => {
            Err(XdpError::ObjectMissing { path }.to_string())
        }
        _ => Ok(()),
    }
}

pub struct DataPlane {
    module: String,
    vip: FarmVipV4,
    ifname: String,
    guardian: Arc<Guardian>,
    /// Sysctls changed, with their previous values.
    saved: Vec<(PathBuf, String)>,
    vip_added: bool,
    filter: Option<XdpFilter>,
    arp: Option<ArpResponder>,
}

impl DataPlane {
    /// Sets everything up; on failure undoes what was done and says what failed.
    pub async fn up(
        module: &str,
        vip: &FarmVipV4,
        settings: &FarmSettings,
        guardian: Arc<Guardian>,
    ) -> Result<(DataPlane, String), String> {
        let ifname = match &vip.interface {
            Some(name) => name.clone(),
            None => {
                interface_for(IpAddr::V4(vip.addr))
                    .await
                    .map_err(|e| format!("farm VIP {}: {e}", vip.addr))?
                    .ifname
            }
        };
        let mut plane = DataPlane {
            module: module.to_string(),
            vip: vip.clone(),
            ifname,
            guardian,
            saved: Vec::new(),
            vip_added: false,
            filter: None,
            arp: None,
        };
        match plane.build(settings).await {
            Ok(done) => Ok((plane, done)),
            Err(e) => {
                let undone = plane.down().await;
                Err(format!("{e} (undone: {undone})"))
            }
        }
    }

    async fn build(&mut self, settings: &FarmSettings) -> Result<String, String> {
        let ifname = self.ifname.clone();
        for (name, value) in ARP_SYSCTLS {
            let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{ifname}/{name}"));
            let old = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?
                .trim()
                .to_string();
            self.guardian.note(&format!(
                "held {} sysctl {} {old}",
                self.module,
                path.display()
            ));
            self.saved.push((path.clone(), old));
            std::fs::write(&path, value).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        let addr = IpAddr::V4(self.vip.addr);
        self.guardian
            .note(&format!("held {} vip {addr}", self.module));
        self.vip_added = true;
        let placement = add_vip(addr, Some("lo"))
            .await
            .map_err(|e| format!("farm VIP {addr} on lo: {e}"))?;
        let mut config = FilterConfig::for_vip(addr);
        config.virtual_mac = Some(self.vip.virtual_mac);
        let mut filter = XdpFilter::load(&XdpObject::locate(), &ifname, &config)
            .map_err(|e| format!("XDP filter on {ifname}: {e}"))?;
        filter
            .set_rules(&settings.rules)
            .map_err(|e| format!("XDP rules: {e}"))?;
        let mode = filter.mode();
        let replaced = filter
            .replaced_stale()
            .map(|id| format!(" (replaced the stale hakit program {id})"))
            .unwrap_or_default();
        self.filter = Some(filter);
        let arp = ArpResponder::start(&ifname, self.vip.addr, self.vip.virtual_mac)
            .map_err(|e| format!("ARP socket on {ifname}: {e}"))?;
        self.arp = Some(arp);
        Ok(format!(
            "VIP {addr}/{} on lo, arp_ignore=1 and arp_announce=2 on {ifname}, {ifname} \
             promiscuous, XDP filter attached to {ifname} in {mode:?} mode{replaced}, virtual MAC {}",
            placement.prefix_len,
            mac_text(self.vip.virtual_mac)
        ))
    }

    /// The XDP mode in use ("Generic on eth0").
    pub fn describe(&self) -> String {
        match self.filter.as_ref().and_then(XdpFilter::mode) {
            Some(mode) => format!("XDP {mode:?} mode on {}", self.ifname),
            None => format!("no XDP filter on {}", self.ifname),
        }
    }

    pub fn install(&mut self, states: &[BucketState]) -> Result<(), XdpError> {
        match &mut self.filter {
            Some(f) if !states.is_empty() => f.set_owned_buckets(states),
            _ => Ok(()),
        }
    }

    pub fn set_responder(&self, active: bool) {
        if let Some(arp) = &self.arp {
            arp.set_active(active);
        }
    }

    pub fn counters(&self) -> Option<Counters> {
        self.filter.as_ref().and_then(|f| f.counters().ok())
    }

    /// The open connections to the VIP per bucket (`None` if the socket tables are
    /// unreadable).
    pub fn open_per_bucket(&self, settings: &FarmSettings, buckets: usize) -> Option<Vec<u32>> {
        let text = std::fs::read_to_string("/proc/net/tcp").ok()?;
        let open = conns::open_connections(&text);
        let seed = farm_ebpf_common::DEFAULT_SEED;
        let count = u32::try_from(buckets).ok()?;
        Some(conns::per_bucket(
            &open,
            IpAddr::V4(self.vip.addr),
            buckets,
            |c| {
                let mode = settings.tcp_mode(c.local_port)?;
                crate::farm::xdp::bucket_for(c.client, c.client_port, mode, seed, count)
                    .map(|b| b as usize)
            },
        ))
    }

    /// Tears everything down; says what was done.
    pub async fn down(mut self) -> String {
        let mut done = Vec::new();
        if self.arp.take().is_some() {
            done.push(format!("{} no longer promiscuous", self.ifname));
        }
        if let Some(filter) = self.filter.take() {
            done.push(match filter.detach() {
                Ok(()) => format!("XDP filter detached from {}", self.ifname),
                Err(e) => format!("XDP filter detach from {}: {e}", self.ifname),
            });
        }
        let addr = IpAddr::V4(self.vip.addr);
        if self.vip_added {
            match del_vip(addr).await {
                Ok(_) => {
                    done.push(format!("VIP {addr} removed"));
                    self.guardian
                        .note(&format!("released {} vip {addr}", self.module));
                }
                Err(e) => done.push(format!("VIP {addr}: {e}")),
            }
        }
        for (path, old) in std::mem::take(&mut self.saved) {
            match std::fs::write(&path, &old) {
                Ok(()) => {
                    self.guardian.note(&format!(
                        "released {} sysctl {}",
                        self.module,
                        path.display()
                    ));
                    done.push(format!("{} back to {old}", path.display()));
                }
                Err(e) => done.push(format!("{}: {e}", path.display())),
            }
        }
        done.join(", ")
    }
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
