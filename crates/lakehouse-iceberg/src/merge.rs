//! Which manifests of a new manifest list are merged (Iceberg's `ManifestMergeManager`,
//! table properties `commit.manifest.min-count-to-merge` and
//! `commit.manifest.target-size-bytes`), as a pure function of the list's manifest lengths.
//!
//! The rule, deterministic:
//! 1. A list of at most `merge_count` manifests is left as it is.
//! 2. Otherwise the manifests are packed into bins from the end of the list (the oldest)
//!    towards its start (the newest), in order, a bin closing when the next manifest would
//!    take it past `target_bytes` (so a manifest larger than that is a bin of its own). Each
//!    bin of two or more manifests becomes one merged manifest; a bin of one is carried as it
//!    is. So a merged manifest that has reached the target size is never rewritten again, and
//!    a merge reads and writes at most about `target_bytes` per bin: its cost is bounded by
//!    the configuration, not by the table's history.
//! 3. Should that still leave more than `merge_count` + 1 manifests (only when their total
//!    size passes about `merge_count` x `target_bytes`), step 2 is repeated with the target
//!    doubled until it does not: the count bound always holds.

use std::ops::Range;

/// The bins of a list whose manifests are `lengths` bytes long (in list order, newest
/// first), as ranges of positions in list order covering the list; a range of two or more is
/// merged into one manifest. At most `merge_count` + 1 bins (at least one for a non-empty
/// list).
pub(crate) fn bins(lengths: &[u64], merge_count: usize, target_bytes: u64) -> Vec<Range<usize>> {
    if lengths.len() <= merge_count {
        return (0..lengths.len()).map(|i| i..i + 1).collect();
    }
    let mut target = target_bytes.max(1);
    loop {
        let packed = pack_from_end(lengths, target);
        if packed.len() <= merge_count + 1 || target == u64::MAX {
            return packed;
        }
        target = target.saturating_mul(2);
    }
}

fn pack_from_end(lengths: &[u64], target: u64) -> Vec<Range<usize>> {
    let mut bins = Vec::new();
    let mut end = lengths.len();
    let mut sum = 0u64;
    for i in (0..lengths.len()).rev() {
        let length = lengths[i];
        if i + 1 < end && sum.saturating_add(length) > target {
            bins.push(i + 1..end);
            end = i + 1;
            sum = 0;
        }
        sum = sum.saturating_add(length);
    }
    if end > 0 {
        bins.push(0..end);
    }
    bins.reverse();
    bins
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_lists_are_left_alone() {
        assert_eq!(bins(&[5, 5, 5], 3, 10), vec![0..1, 1..2, 2..3]);
        assert!(bins(&[], 0, 10).is_empty());
    }

    #[test]
    fn packs_from_the_oldest_and_leaves_full_manifests_alone() {
        // newest first: 1, 1, 1, then a full merged manifest of 10, then 4, 4
        let lengths = [1, 1, 1, 10, 4, 4];
        assert_eq!(bins(&lengths, 4, 10), vec![0..3, 3..4, 4..6]);
    }

    #[test]
    fn doubles_the_target_when_the_count_would_stay_too_high() {
        let lengths = [10; 8];
        let packed = bins(&lengths, 3, 10);
        assert!(packed.len() <= 4, "{packed:?}");
        assert_eq!(bins(&[7; 5], 0, 1), vec![0..5]);
    }

    proptest! {
        #[test]
        fn bins_cover_the_list_in_order_within_the_bound(
            lengths in proptest::collection::vec(1u64..5_000, 0..300),
            merge_count in 0usize..120,
            target in 1u64..20_000,
        ) {
            let packed = bins(&lengths, merge_count, target);
            let mut next = 0;
            for bin in &packed {
                prop_assert_eq!(bin.start, next);
                prop_assert!(bin.end > bin.start);
                next = bin.end;
            }
            prop_assert_eq!(next, lengths.len());
            prop_assert!(packed.len() <= merge_count + 1 || lengths.len() <= merge_count);
            if lengths.len() > merge_count && pack_from_end(&lengths, target).len() <= merge_count + 1 {
                // the target was not doubled: a merged bin stays within it
                for bin in packed.iter().filter(|b| b.len() > 1) {
                    prop_assert!(lengths[bin.clone()].iter().sum::<u64>() <= target);
                }
            }
        }
    }
}
