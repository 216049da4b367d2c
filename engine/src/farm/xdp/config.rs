//! The filter's settings in userspace terms, and their raw map forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use farm_ebpf_common::{
    DEFAULT_SEED, FarmConfig, bucket_of, client_hash_v4, client_hash_v6, config_flags, port_mode,
    proto,
};

use super::XdpError;

/// What the filter recognises as farm traffic and how it marks accepted frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterConfig {
    pub vip4: Option<Ipv4Addr>,
    pub vip6: Option<Ipv6Addr>,
    /// Destination MAC of farm frames; `None`: [`virtual_mac`] of the VIP (IPv4 first).
    pub virtual_mac: Option<[u8; 6]>,
    /// Destination MAC written into accepted frames; `None`: the interface's own address
    /// (required when the filter is loaded without an interface).
    pub interface_mac: Option<[u8; 6]>,
    /// Bucket hash seed: the same on every node of the farm.
    pub seed: u32,
}

impl FilterConfig {
    /// One VIP, the default virtual MAC and seed, the interface's MAC.
    pub fn for_vip(vip: IpAddr) -> Self {
        let (vip4, vip6) = match vip {
            IpAddr::V4(v) => (Some(v), None),
            IpAddr::V6(v) => (None, Some(v)),
        };
        Self {
            vip4,
            vip6,
            virtual_mac: None,
            interface_mac: None,
            seed: DEFAULT_SEED,
        }
    }

    /// The raw map value. `bucket_count` and the rule flags are set by the filter later.
    pub(super) fn raw(&self, interface_mac: [u8; 6]) -> Result<FarmConfig, XdpError> {
        let vip = match (self.vip4, self.vip6) {
            (Some(v), _) => IpAddr::V4(v),
            (None, Some(v)) => IpAddr::V6(v),
            (None, None) => return Err(XdpError::Invalid("no VIP configured".into())),
        };
        let mut flags = 0;
        if self.vip4.is_some() {
            flags |= config_flags::VIP4;
        }
        if self.vip6.is_some() {
            flags |= config_flags::VIP6;
        }
        Ok(FarmConfig {
            vip4: self.vip4.map_or([0; 4], |v| v.octets()),
            vip6: self.vip6.map_or([0; 16], |v| v.octets()),
            virtual_mac: self.virtual_mac.unwrap_or_else(|| virtual_mac(vip)),
            interface_mac,
            flags,
            bucket_count: 0,
            seed: self.seed,
            epoch: 0,
        })
    }
}

/// The farm's virtual MAC for `vip`: `5A:FE` followed by the IPv4 address's four bytes (the
/// model product's convention), or by the last four bytes of an IPv6 address. Locally
/// administered unicast, and no port ever sends from it, so switches flood frames to it.
pub fn virtual_mac(vip: IpAddr) -> [u8; 6] {
    let b = match vip {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(v) => {
            let o = v.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x5a, 0xfe, b[0], b[1], b[2], b[3]]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn number(self) -> u8 {
        match self {
            Self::Tcp => proto::TCP,
            Self::Udp => proto::UDP,
        }
    }
}

/// What the bucket hash covers (`filter="on_addr|on_port"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterMode {
    /// The client address: one client's connections all land on one node.
    OnAddr,
    /// The client address and port: one client's connections spread over the nodes.
    OnPort,
}

/// A load-balancing rule: traffic to the VIP on `port` (0 = every port) with `proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub port: u16,
    pub proto: Proto,
    pub filter: FilterMode,
}

impl Rule {
    pub(super) fn ip_proto(&self) -> u8 {
        self.proto.number()
    }

    /// The [`port_mode`] value of the rule table.
    pub(super) fn mode(&self) -> u64 {
        match self.filter {
            FilterMode::OnAddr => port_mode::ON_ADDR,
            FilterMode::OnPort => port_mode::ON_PORT,
        }
    }

    /// The [`config_flags`] bit saying this protocol has rules.
    pub(super) fn proto_flag(&self) -> u32 {
        match self.proto {
            Proto::Tcp => config_flags::TCP_RULES,
            Proto::Udp => config_flags::UDP_RULES,
        }
    }
}

/// The bucket the XDP program puts a client in (the same code runs there); `None` if
/// `bucket_count` is 0. `client_port` only counts with [`FilterMode::OnPort`].
pub fn bucket_for(
    client: IpAddr,
    client_port: u16,
    mode: FilterMode,
    seed: u32,
    bucket_count: u32,
) -> Option<u32> {
    let port = (mode == FilterMode::OnPort).then_some(client_port);
    let hash = match client {
        IpAddr::V4(a) => client_hash_v4(a.octets(), port, seed),
        IpAddr::V6(a) => client_hash_v6(a.octets(), port, seed),
    };
    bucket_of(hash, bucket_count)
}
