//! Farm modules: every node serves the VIP, each for its share of the clients. The pure
//! decision cores (which node owns which bucket of client addresses, and the membership
//! protocol agreeing on the view those buckets are spread over) and the XDP data plane.

pub mod membership;
pub mod table;
pub mod xdp;
