//! The bucket hash: MurmurHash3_x86_32 over 32-bit words, seeded.
//!
//! Fixed forever (every node of a farm must compute the same bucket for a client, whatever its
//! version), cheap in eBPF (no loops, no tables), and well mixed even for clients that differ
//! in one low bit. The words are the client address read as big-endian numbers (IPv4: one
//! word, `a.b.c.d` = `a << 24 | …`; IPv6: four), followed for `on_port` by the client port.
//! This equals the reference MurmurHash3_x86_32 of the bytes `w.to_le_bytes()` of each word.

/// Seed used when the configuration does not choose one ("haki").
pub const DEFAULT_SEED: u32 = 0x6861_6b69;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
const fn mix(h: u32, k: u32) -> u32 {
    let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
const fn finish(h: u32, len_bytes: u32) -> u32 {
    let mut h = h ^ len_bytes;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3_x86_32 of `words` (see the module doc for the byte order).
pub fn murmur3_words(words: &[u32], seed: u32) -> u32 {
    let mut h = seed;
    for w in words {
        h = mix(h, *w);
    }
    finish(h, (words.len() as u32).wrapping_mul(4))
}

/// Hash of an IPv4 client (`addr` in network order), with its port for `on_port`.
#[inline(always)]
pub const fn client_hash_v4(addr: [u8; 4], port: Option<u16>, seed: u32) -> u32 {
    let h = mix(seed, u32::from_be_bytes(addr));
    match port {
        Some(p) => finish(mix(h, p as u32), 8),
        None => finish(h, 4),
    }
}

/// Hash of an IPv6 client (`addr` in network order), with its port for `on_port`.
#[inline(always)]
pub const fn client_hash_v6(addr: [u8; 16], port: Option<u16>, seed: u32) -> u32 {
    let h = mix(seed, word(addr, 0));
    let h = mix(h, word(addr, 4));
    let h = mix(h, word(addr, 8));
    let h = mix(h, word(addr, 12));
    match port {
        Some(p) => finish(mix(h, p as u32), 20),
        None => finish(h, 16),
    }
}

/// Bytes `i..i + 4` of `addr` as a big-endian number (`i` is a constant ≤ 12).
#[inline(always)]
const fn word(addr: [u8; 16], i: usize) -> u32 {
    u32::from_be_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]])
}

/// The bucket of `hash` in a table of `bucket_count` buckets (`None` if the count is 0):
/// `hash × count / 2³²` ("fastrange"), as even as `hash % count` for a well-mixed hash but a
/// multiplication instead of a division (a 64-bit division costs ~10 ns in the program).
#[inline(always)]
pub const fn bucket_of(hash: u32, bucket_count: u32) -> Option<u32> {
    if bucket_count == 0 {
        return None;
    }
    Some(((hash as u64 * bucket_count as u64) >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_murmur3() {
        // Published MurmurHash3_x86_32 test vectors.
        assert_eq!(murmur3_words(&[], 0), 0);
        assert_eq!(murmur3_words(&[], 1), 0x514e_28b7);
        assert_eq!(
            murmur3_words(&[u32::from_le_bytes(*b"test")], 0),
            0xba6b_d213
        );
        assert_eq!(
            murmur3_words(&[u32::from_le_bytes([0x21, 0x43, 0x65, 0x87])], 0),
            0xf55b_516b
        );
        assert_eq!(
            murmur3_words(&[u32::from_le_bytes([0x21, 0x43, 0x65, 0x87])], 0x5082_edee),
            0x2362_f9de
        );
    }

    #[test]
    fn client_hashes_are_murmur3_of_their_words() {
        let v4 = [10, 1, 2, 3];
        let w = u32::from_be_bytes(v4);
        assert_eq!(client_hash_v4(v4, None, 7), murmur3_words(&[w], 7));
        assert_eq!(
            client_hash_v4(v4, Some(4242), 7),
            murmur3_words(&[w, 4242], 7)
        );
        let v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
        let ws = [0xfd00_0000, 0, 0, 0x1234];
        assert_eq!(client_hash_v6(v6, None, 7), murmur3_words(&ws, 7));
        assert_eq!(
            client_hash_v6(v6, Some(80), 7),
            murmur3_words(&[ws[0], ws[1], ws[2], ws[3], 80], 7)
        );
    }

    #[test]
    fn neighbouring_clients_spread_evenly() {
        let mut hits = [0u32; 256];
        for i in 0..65_536u32 {
            let addr = (0x0a00_0000 | i).to_be_bytes();
            let b = bucket_of(client_hash_v4(addr, None, DEFAULT_SEED), 256);
            hits[b.unwrap_or(0) as usize] += 1;
        }
        // 256 per bucket on average; a good hash stays well within ±40 %.
        assert!(hits.iter().all(|&h| (154..=358).contains(&h)), "{hits:?}");
        assert_eq!(bucket_of(5, 0), None);
        assert_eq!(bucket_of(u32::MAX, 256), Some(255));
        assert_eq!(bucket_of(0, 7), Some(0));
    }
}
