//! Maglev permutations and the paced fill of a set of buckets.
//!
//! A host's permutation is `bucket(j) = (offset + j × skip) mod N` with `offset` and `skip`
//! taken from `BLAKE3::derive_key(PERMUTATION_CONTEXT, name)`: `offset` is the little-endian
//! `u64` of output bytes 0..8 reduced mod N, `skip` the little-endian `u64` of bytes 8..16
//! reduced mod N/2, times 2, plus 1. N is a power of two, so the odd `skip` visits every bucket
//! exactly once. BLAKE3 is a fixed, portable specification: the table never depends on the
//! platform, the Rust version or a hasher's random seed.

/// Changing this string changes every table: nodes running different versions would disagree.
pub const PERMUTATION_CONTEXT: &str = "hakit farm 2025 maglev bucket permutation v1";

pub(super) struct Permutation {
    offset: u64,
    /// The inverse of `skip` modulo N: turns a bucket back into its position.
    inverse_skip: u64,
    mask: u64,
}

impl Permutation {
    pub(super) fn of(name: &str, buckets: usize) -> Permutation {
        let digest = blake3::Hasher::new_derive_key(PERMUTATION_CONTEXT)
            .update(name.as_bytes())
            .finalize();
        let bytes = digest.as_bytes();
        let word = |at: usize| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(le)
        };
        let n = buckets as u64;
        let skip = (word(8) % (n / 2)) * 2 + 1;
        // Newton's iteration doubles the correct low bits each step: 5 steps give 96 > 64.
        let mut inverse = skip;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(skip.wrapping_mul(inverse)));
        }
        Permutation {
            offset: word(0) % n,
            inverse_skip: inverse & (n - 1),
            mask: n - 1,
        }
    }

    /// Where `bucket` comes in this host's order of preference (0 = most preferred).
    pub(super) fn position(&self, bucket: usize) -> u64 {
        ((bucket as u64).wrapping_sub(self.offset) & self.mask).wrapping_mul(self.inverse_skip)
            & self.mask
    }
}

/// Shares `group` (distinct buckets) between hosts: host `h` gets exactly `quotas[h]` of them,
/// its most preferred ones still free when its turn comes. Returns `(bucket, host)` pairs.
/// `quotas` must sum to `group.len()`.
///
/// Turns are paced by quota: in round r a host may hold `ceil(r × quota / max_quota)`, so the
/// host with the largest quota claims one bucket per round, the others in proportion, and all
/// finish in the last round (unpaced, heavy hosts would end up picking leftovers).
pub(super) fn fill(
    group: &[usize],
    permutations: &[Permutation],
    quotas: &[usize],
) -> Vec<(usize, usize)> {
    let max_quota = quotas.iter().copied().max().unwrap_or(0);
    let buckets = group.iter().max().map_or(0, |&b| b + 1);
    let mut taken = vec![false; buckets];
    let mut claimed = Vec::with_capacity(group.len());
    // Each host's preference order restricted to the group, and how far it has read it.
    let mut orders: Vec<(Vec<usize>, usize, usize)> = quotas
        .iter()
        .enumerate()
        .map(|(host, &quota)| {
            let mut order = if quota > 0 {
                group.to_vec()
            } else {
                Vec::new()
            };
            order.sort_by_key(|&b| permutations[host].position(b));
            (order, 0, 0)
        })
        .collect();
    for round in 1..=max_quota {
        for (host, (order, read, held)) in orders.iter_mut().enumerate() {
            let pace = (round * quotas[host]).div_ceil(max_quota);
            while *held < pace && *read < order.len() {
                let bucket = order[*read];
                *read += 1;
                if !taken[bucket] {
                    taken[bucket] = true;
                    claimed.push((bucket, host));
                    *held += 1;
                }
            }
        }
    }
    claimed
}
