//! Farm modules: every node serves the VIP, each for its share of the clients.

pub mod xdp;
