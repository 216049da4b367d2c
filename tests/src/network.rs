//! A network of a lab: a switch namespace holding bridge `br0`, and the hosts cabled to it. Hosts
//! see the lab's default network as `eth0` and the n-th network added by
//! [`crate::Lab::add_network`] as `eth<n>`; their port on every switch is `p-<host>`.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use crate::{names, switch};

/// A network of a [`crate::Lab`]. Cheap to clone; valid until the lab is dropped.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    lab: String,
    name: String,
    netns: String,
    interface: String,
    subnet: Subnet,
    /// An address of the bridge itself, which hosts cannot take.
    witness: Option<Ipv4Addr>,
    /// The hosts cabled (or being cabled) to it, and their addresses.
    members: Mutex<Vec<(String, Ipv4Addr)>>,
}

impl Network {
    /// The network number `index` of lab `lab` (0: the default one); nothing is created yet
    /// (see [`Network::create_switch`]).
    pub(crate) fn new(
        lab: &str,
        name: &str,
        netns: String,
        index: usize,
        subnet: Subnet,
        witness: Option<Ipv4Addr>,
    ) -> Network {
        Network {
            inner: Arc::new(Inner {
                lab: lab.to_string(),
                name: name.to_string(),
                netns,
                interface: format!("eth{index}"),
                subnet,
                witness,
                members: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The interface that hosts cabled to this network have on it (`eth0`, `eth1`...).
    pub fn interface(&self) -> &str {
        &self.inner.interface
    }

    pub(crate) fn subnet(&self) -> Subnet {
        self.inner.subnet
    }

    pub(crate) fn is(&self, other: &Network) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Creates the switch namespace and its bridge (holding the witness address, if any).
    pub(crate) fn create_switch(&self) -> Result<()> {
        let witness = self
            .inner
            .witness
            .map(|w| format!("{w}/{}", self.inner.subnet.len));
        switch::create(&self.inner.netns, witness.as_deref())
            .with_context(|| format!("creating the switch of {}", self.describe()))
    }

    /// Checks that `ip` is a free host address of this network for `host`, and reserves it.
    pub(crate) fn claim(&self, host: &str, ip: &str) -> Result<Ipv4Addr> {
        let (net, subnet) = (self.describe(), self.inner.subnet);
        let ip: Ipv4Addr = ip
            .parse()
            .with_context(|| format!("bad address {ip:?} for host {host} on {net}"))?;
        if !subnet.is_host(ip) || Some(ip) == self.inner.witness {
            let witness = match self.inner.witness {
                Some(w) => format!(", not the witness {w}"),
                None => String::new(),
            };
            bail!(
                "address {ip} of host {host} on {net} ({subnet}): use {} to {}{witness}",
                subnet.first(),
                subnet.last()
            );
        }
        let mut members = self.inner.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((other, at)) = members.iter().find(|(h, a)| h == host || *a == ip) {
            bail!("{net} already has host {other} at {at}");
        }
        members.push((host.to_string(), ip));
        Ok(ip)
    }

    /// Cables namespace `host_ns` of `host` to the switch, with address `ip` (see
    /// [`Network::claim`]) on [`Network::interface`].
    pub(crate) fn cable(&self, host: &str, host_ns: &str, ip: Ipv4Addr) -> Result<()> {
        let cidr = format!("{ip}/{}", self.inner.subnet.len);
        let port = names::switch_port(host);
        switch::cable(
            &self.inner.netns,
            &port,
            host_ns,
            &self.inner.interface,
            &cidr,
        )
        .with_context(|| format!("cabling host {host} to {}", self.describe()))
    }

    /// Pulls (`up` false) or plugs back the cable of `host`: its bridge port goes down or up.
    pub(crate) fn set_port(&self, host: &str, up: bool) -> Result<()> {
        let port = names::switch_port(host);
        let verb = if up { "plugging back" } else { "pulling" };
        switch::set_port(&self.inner.netns, &port, up)
            .with_context(|| format!("{verb} the cable of host {host} on {}", self.describe()))
    }

    /// "network backup of lab x", for messages.
    pub(crate) fn describe(&self) -> String {
        format!("network {} of lab {}", self.inner.name, self.inner.lab)
    }
}

/// An IPv4 subnet, e.g. 10.89.0.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    addr: Ipv4Addr,
    len: u8,
}

impl Subnet {
    pub(crate) const fn new(addr: Ipv4Addr, len: u8) -> Subnet {
        Subnet { addr, len }
    }

    /// `a.b.c.d/len`, with a prefix length of 1 to 30 and no host bits set.
    pub(crate) fn parse(text: &str) -> Result<Subnet> {
        let parsed = text
            .split_once('/')
            .and_then(|(addr, len)| Some((addr.parse().ok()?, len.parse().ok()?)));
        match parsed {
            Some((addr, len)) if (1..=30).contains(&len) && u32::from(addr) & !mask(len) == 0 => {
                Ok(Subnet { addr, len })
            }
            _ => bail!(
                "bad subnet {text:?}: write it like 10.89.0.0/24 (prefix length 1 to 30, host bits 0)"
            ),
        }
    }

    /// Whether `ip` is in the subnet and neither its network nor its broadcast address.
    fn is_host(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip & mask(self.len) == u32::from(self.addr) && ip != self.base() && ip != self.broadcast()
    }

    pub(crate) fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.len.min(other.len));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.broadcast() - 1)
    }

    fn base(&self) -> u32 {
        u32::from(self.addr)
    }

    fn broadcast(&self) -> u32 {
        self.base() | !mask(self.len)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The netmask of prefix length `len` (1 to 32).
fn mask(len: u8) -> u32 {
    u32::MAX << (32 - u32::from(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_bound_host_addresses() {
        let s = Subnet::parse("10.89.0.0/24").unwrap();
        assert_eq!(s.to_string(), "10.89.0.0/24");
        assert_eq!(
            (s.first(), s.last()),
            ("10.89.0.1".parse().unwrap(), "10.89.0.254".parse().unwrap())
        );
        for (ip, ok) in [
            ("10.89.0.1", true),
            ("10.89.0.254", true),
            ("10.89.0.0", false),
            ("10.89.0.255", false),
            ("10.88.0.1", false),
        ] {
            assert_eq!(s.is_host(ip.parse().unwrap()), ok, "{ip}");
        }
        for bad in [
            "10.89.0.1/24",
            "10.89.0.0",
            "10.89.0.0/31",
            "10.89.0.0/0",
            "x/24",
            "10.89.0.0/x",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn overlapping_subnets_are_detected() {
        let s = |t| Subnet::parse(t).unwrap();
        assert!(s("10.88.0.0/24").overlaps(&s("10.88.0.0/16")));
        assert!(s("10.88.0.0/16").overlaps(&s("10.88.5.0/24")));
        assert!(!s("10.88.0.0/24").overlaps(&s("10.89.0.0/24")));
    }
}
