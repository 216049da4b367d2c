//! Adding and removing the virtual IP address.

use std::net::IpAddr;

use rtnetlink::packet_route::address::AddressHeaderFlags;

use super::NetError;
use super::netlink::{AddrEntry, Netlink, errno, in_subnet};

/// Where a virtual address was put (or found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPlacement {
    pub ifname: String,
    pub ifindex: u32,
    pub prefix_len: u8,
}

/// Adds `addr` to `interface`, or, if `None`, to the interface holding an address whose
/// subnet contains `addr` (the most specific one), with that subnet's prefix length.
/// On a named interface with no such subnet the address is added as a host address
/// (/32 or /128). Idempotent: an address already present is left as it is.
/// IPv6 addresses are added without duplicate address detection (`nodad`).
pub async fn add_vip(addr: IpAddr, interface: Option<&str>) -> Result<VipPlacement, NetError> {
    let nl = Netlink::open()?;
    let addrs = nl.addresses().await?;
    let links = nl.links().await?;
    let name_of = |index: u32| {
        links
            .iter()
            .find(|(i, _)| *i == index)
            .map_or_else(|| format!("#{index}"), |(_, n)| n.clone())
    };

    if let Some(present) = addrs.iter().find(|e| e.addr == addr) {
        let ifname = name_of(present.ifindex);
        if let Some(wanted) = interface
            && wanted != ifname
        {
            return Err(NetError::VipElsewhere {
                addr,
                present_on: ifname,
                wanted: wanted.to_string(),
            });
        }
        return Ok(VipPlacement {
            ifname,
            ifindex: present.ifindex,
            prefix_len: present.prefix_len,
        });
    }

    let placement = match interface {
        Some(name) => {
            let ifindex = links
                .iter()
                .find(|(_, n)| n == name)
                .map(|(i, _)| *i)
                .ok_or_else(|| NetError::InterfaceNotFound {
                    name: name.to_string(),
                })?;
            let prefix_len = best_subnet(addrs.iter().filter(|e| e.ifindex == ifindex), addr)
                .map_or(host_prefix(addr), |e| e.prefix_len);
            VipPlacement {
                ifname: name.to_string(),
                ifindex,
                prefix_len,
            }
        }
        None => {
            let entry =
                best_subnet(addrs.iter(), addr).ok_or(NetError::NoMatchingSubnet { addr })?;
            VipPlacement {
                ifname: name_of(entry.ifindex),
                ifindex: entry.ifindex,
                prefix_len: entry.prefix_len,
            }
        }
    };

    let mut req = nl
        .handle
        .address()
        .add(placement.ifindex, addr, placement.prefix_len);
    if addr.is_ipv6() {
        req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
    }
    match req.execute().await {
        Ok(()) => Ok(placement),
        // Added meanwhile by someone else: the wanted state holds.
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(placement),
        Err(source) => Err(NetError::AddAddress {
            addr,
            prefix_len: placement.prefix_len,
            ifname: placement.ifname,
            source,
        }),
    }
}

/// Removes `addr` from whatever interface holds it. `Ok(false)` if it was not there.
pub async fn del_vip(addr: IpAddr) -> Result<bool, NetError> {
    let nl = Netlink::open()?;
    let held: Vec<AddrEntry> = nl
        .addresses()
        .await?
        .into_iter()
        .filter(|e| e.addr == addr)
        .collect();
    if held.is_empty() {
        return Ok(false);
    }
    let links = nl.links().await?;
    let mut removed = false;
    for entry in held {
        match nl.handle.address().del(entry.msg).execute().await {
            Ok(()) => removed = true,
            // Gone meanwhile (or with its interface).
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL | libc::ENODEV | libc::ESRCH)
                ) => {}
            Err(source) => {
                let ifname = links
                    .iter()
                    .find(|(i, _)| *i == entry.ifindex)
                    .map_or_else(|| format!("#{}", entry.ifindex), |(_, n)| n.clone());
                return Err(NetError::DelAddress {
                    addr,
                    ifname,
                    source,
                });
            }
        }
    }
    Ok(removed)
}

/// The interface holding an address (other than `addr`) whose subnet contains `addr`, the
/// most specific one: where `add_vip(addr, None)` would put it.
pub async fn interface_for(addr: IpAddr) -> Result<VipPlacement, NetError> {
    let nl = Netlink::open()?;
    let addrs = nl.addresses().await?;
    let entry = best_subnet(addrs.iter(), addr).ok_or(NetError::NoMatchingSubnet { addr })?;
    let ifname = nl
        .links()
        .await?
        .into_iter()
        .find(|(i, _)| *i == entry.ifindex)
        .map_or_else(|| format!("#{}", entry.ifindex), |(_, n)| n);
    Ok(VipPlacement {
        ifname,
        ifindex: entry.ifindex,
        prefix_len: entry.prefix_len,
    })
}

/// Whether any interface holds `addr`.
pub async fn has_vip(addr: IpAddr) -> Result<bool, NetError> {
    let nl = Netlink::open()?;
    Ok(nl.addresses().await?.iter().any(|e| e.addr == addr))
}

/// The address (other than `addr` itself) with the longest prefix whose subnet holds `addr`.
fn best_subnet<'a>(
    entries: impl Iterator<Item = &'a AddrEntry>,
    addr: IpAddr,
) -> Option<&'a AddrEntry> {
    entries
        .filter(|e| e.addr != addr && in_subnet(e.addr, e.prefix_len, addr))
        .max_by_key(|e| e.prefix_len)
}

fn host_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}
