//! The rules as the program reads them: a 2-bit [`port_mode`] for every (protocol, port).
//!
//! An array indexed by port instead of a hash map of rules: the verifier inlines array
//! lookups (a bounds check and an add), while a hash lookup is a helper call hashing the key,
//! about 15 ns. 2 protocols × 65 536 ports × 2 bits = 4096 words of 64 bits (32 KiB). A rule
//! for "every port" is expanded by userspace into every port without its own rule.

use crate::types::proto;

/// Words in `FARM_PORTS`.
pub const PORT_WORDS: u32 = 2 * 65_536 * 2 / 64;

/// The 2-bit values of the table.
pub mod port_mode {
    /// No rule: not farm traffic.
    pub const NONE: u64 = 0;
    /// Bucket by client address.
    pub const ON_ADDR: u64 = 1;
    /// Bucket by client address and port.
    pub const ON_PORT: u64 = 2;
    /// Mask of one entry.
    pub const MASK: u64 = 3;
}

/// Where the mode of (`proto`, `port`) lives: the word index and the bit shift in it; `None`
/// for a protocol other than TCP and UDP.
#[inline(always)]
pub const fn port_slot(ip_proto: u8, port: u16) -> Option<(u32, u32)> {
    let p = match ip_proto {
        proto::TCP => 0,
        proto::UDP => 1,
        _ => return None,
    };
    let bit = ((p << 16) | port as u32) * 2;
    Some((bit / 64, bit % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cover_the_table_without_overlap() {
        assert_eq!(port_slot(proto::TCP, 0), Some((0, 0)));
        assert_eq!(port_slot(proto::TCP, 33), Some((1, 2)));
        assert_eq!(port_slot(proto::UDP, 0), Some((2048, 0)));
        assert_eq!(port_slot(proto::UDP, u16::MAX), Some((PORT_WORDS - 1, 62)));
        assert_eq!(port_slot(1, 80), None);
    }
}
