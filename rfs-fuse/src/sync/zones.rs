//! What changed inside a file that kept its path: which fixed-size *zones* of its bytes were
//! written, from which length on everything may differ (a truncation), or only its
//! metadata. Copying those zones instead of the whole file keeps an incremental
//! resynchronisation proportional to what was written, not to the size of the files.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// The granularity of in-file change tracking (`ruzone_blocksize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneSize(NonZeroU64);

impl ZoneSize {
    /// The zones of tracking kept in memory only (no durability cost): fine enough that a
    /// small write sends little more than itself.
    pub const EXACT: ZoneSize = match NonZeroU64::new(64 << 10) {
        Some(bytes) => ZoneSize(bytes),
        None => unreachable!(),
    };

    /// `None` for zero.
    pub fn new(bytes: u64) -> Option<ZoneSize> {
        NonZeroU64::new(bytes).map(ZoneSize)
    }

    pub fn bytes(self) -> u64 {
        self.0.get()
    }

    /// The zones `[first, end)` that hold bytes `[start, end)`.
    fn covering(self, start: u64, end: u64) -> (u64, u64) {
        (start / self.0, end.div_ceil(self.bytes()))
    }

    /// The bytes of zones `[first, end)`.
    fn span(self, first: u64, end: u64) -> (u64, u64) {
        (
            first.saturating_mul(self.bytes()),
            end.saturating_mul(self.bytes()),
        )
    }
}

/// A set of zone numbers kept as disjoint, non-adjacent runs `[start, end)` keyed by start,
/// so that a huge range (a hole punched through a large file) costs one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Runs(BTreeMap<u64, u64>);

impl Runs {
    fn covers(&self, start: u64, end: u64) -> bool {
        self.0
            .range(..=start)
            .next_back()
            .is_some_and(|(_, &e)| e >= end)
    }

    /// Adds `[start, end)`; whether any of it is new.
    fn insert(&mut self, start: u64, end: u64) -> bool {
        if start >= end || self.covers(start, end) {
            return false;
        }
        let (mut low, mut high) = (start, end);
        if let Some((&s, &e)) = self.0.range(..=start).next_back()
            && e >= start
        {
            low = s;
        }
        let joined: Vec<u64> = self.0.range(low..=high).map(|(&s, _)| s).collect();
        for s in joined {
            if let Some(e) = self.0.remove(&s) {
                high = high.max(e);
            }
        }
        self.0.insert(low, high);
        true
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().map(|(&s, &e)| (s, e))
    }
}

/// The changes of one file that kept its path. Present in a [`Changes`] at all: its
/// metadata changed (the data ones included).
///
/// [`Changes`]: super::tracker::Changes
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileChanges {
    zones: Runs,
    /// Everything from this length on may differ: the file was cut to it (and perhaps grew
    /// again since; the length it had before is unknown).
    tail: Option<u64>,
}

impl FileChanges {
    /// Bytes `[start, end)` were written; whether a zone not yet named is now.
    pub(crate) fn write(&mut self, zone: ZoneSize, start: u64, end: u64) -> bool {
        if self.tail.is_some_and(|tail| start >= tail) {
            return false;
        }
        let (first, last) = zone.covering(start, end);
        self.zones.insert(first, last)
    }

    /// The file was cut to `len`; whether that widens what changed.
    pub(crate) fn cut(&mut self, len: u64) -> bool {
        if self.tail.is_some_and(|tail| tail <= len) {
            return false;
        }
        self.tail = Some(len);
        true
    }

    /// Everything of `other` (counted in zones of `theirs`), in zones of `ours`.
    pub(crate) fn merge(&mut self, ours: ZoneSize, other: &FileChanges, theirs: ZoneSize) {
        for (first, end) in other.zones.iter() {
            let (start, end) = theirs.span(first, end);
            self.write(ours, start, end);
        }
        if let Some(len) = other.tail {
            self.cut(len);
        }
    }

    /// Only the metadata changed.
    pub fn metadata_only(&self) -> bool {
        self.zones.0.is_empty() && self.tail.is_none()
    }

    /// The byte ranges to send for a file now `len` bytes long: the changed zones and the
    /// tail, cut at `len`, sorted and merged.
    pub fn ranges(&self, zone: ZoneSize, len: u64) -> Vec<(u64, u64)> {
        let zones = self.zones.iter().map(|(first, end)| zone.span(first, end));
        let mut ranges: Vec<(u64, u64)> = zones
            .chain(self.tail.map(|tail| (tail, len)))
            .map(|(start, end)| (start, end.min(len)))
            .filter(|(start, end)| start < end)
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn zone() -> ZoneSize {
        ZoneSize::new(MIB).unwrap()
    }

    #[test]
    fn only_the_zones_written_are_sent_cut_at_the_files_length() {
        let mut f = FileChanges::default();
        assert!(f.write(zone(), 10, 20));
        assert!(!f.write(zone(), 100, 200), "same zone: nothing new");
        assert!(
            f.write(zone(), 5 * MIB - 1, 5 * MIB + 1),
            "straddles zones 4 and 5"
        );
        assert!(f.write(zone(), 3 * MIB, 4 * MIB), "joins zones 3 to 5");
        assert_eq!(f.ranges(zone(), 10 * MIB), [(0, MIB), (3 * MIB, 6 * MIB)]);
        assert_eq!(
            f.ranges(zone(), 4 * MIB + 7),
            [(0, MIB), (3 * MIB, 4 * MIB + 7)],
            "the file is shorter now"
        );
        assert!(!f.metadata_only());
    }

    #[test]
    fn a_cut_sends_everything_from_the_shortest_length_on() {
        let mut f = FileChanges::default();
        assert!(f.cut(3 * MIB));
        assert!(f.cut(MIB + 5), "shrunk further");
        assert!(
            !f.cut(8 * MIB),
            "grown again: the tail from MIB + 5 covers it"
        );
        assert!(
            !f.write(zone(), 2 * MIB, 3 * MIB),
            "beyond the cut: covered"
        );
        assert!(f.write(zone(), 0, 1));
        assert_eq!(f.ranges(zone(), 8 * MIB), [(0, MIB), (MIB + 5, 8 * MIB)]);
    }

    #[test]
    fn a_hole_through_a_huge_range_is_one_run() {
        let mut f = FileChanges::default();
        assert!(f.write(zone(), 0, u64::MAX));
        assert_eq!(f.zones.0.len(), 1);
        assert_eq!(f.ranges(zone(), 3 * MIB), [(0, 3 * MIB)]);
    }

    #[test]
    fn merging_converts_between_zone_sizes() {
        let mut ours = FileChanges::default();
        let mut theirs = FileChanges::default();
        let small = ZoneSize::new(4096).unwrap();
        theirs.write(small, 2 * MIB + 1, 2 * MIB + 2);
        theirs.cut(9 * MIB);
        ours.merge(zone(), &theirs, small);
        assert_eq!(
            ours.ranges(zone(), 10 * MIB),
            [(2 * MIB, 3 * MIB), (9 * MIB, 10 * MIB)]
        );
        assert!(FileChanges::default().metadata_only());
    }
}
