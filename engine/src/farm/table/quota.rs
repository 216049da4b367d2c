//! Apportioning a number of buckets to weights by the largest remainder method: every share
//! is within one bucket of its exact value `total × weight / Σweight`.

/// Per weight (same order), its share of `total`; all zeros when every weight is 0. Leftovers
/// go to the largest remainders; equal remainders to the lower index (the hosts are sorted by
/// name), so the result is deterministic.
pub(super) fn apportion(weights: &[u64], total: usize) -> Vec<usize> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let n = total as u128;
    let mut shares: Vec<usize> = weights
        .iter()
        .map(|&w| (n * u128::from(w) / sum) as usize)
        .collect();
    let given: usize = shares.iter().sum();
    let mut by_remainder: Vec<(u128, usize)> = weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0)
        .map(|(i, &w)| (n * u128::from(w) % sum, i))
        .collect();
    by_remainder.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in by_remainder.iter().take(total.saturating_sub(given)) {
        shares[i] += 1;
    }
    shares
}
