//! Farm modules: every node serves the VIP, each for its share of the clients. The pure
//! decision cores (which node owns which bucket of client addresses, the membership protocol
//! agreeing on the view those buckets are spread over, the module's lifecycle around it, the
//! hand-over of moved buckets, the ARP answer for the VIP) and the XDP data plane.

pub mod arp;
pub mod conns;
pub mod drain;
pub mod membership;
pub mod module;
pub mod settings;
pub mod table;
pub mod xdp;
