//! docs/contract.md section 10: a commit's files depend on its change, not on the table's history,
//! and what readers see stays bounded: random histories checked against a model, and a
//! long run of appends measured in bytes.

mod common;

use common::Table;
use lakehouse_iceberg::TableConfig;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Step {
    /// Appends this many new objects.
    Append(u8),
    /// Replaces everything by this many new objects.
    Replace(u8),
    /// Compacts the live objects at these (wrapped) positions into one.
    Compact(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1u8..3).prop_map(Step::Append),
        1 => (1u8..3).prop_map(Step::Replace),
        2 => proptest::collection::vec(any::<u8>(), 1..4).prop_map(Step::Compact),
    ]
}

/// After every step: the current list reaches exactly the model's live objects, each once;
/// every kept snapshot (time travel) reaches its version's; the list names at most
/// `manifest_merge_count` + 1 manifests; the metadata holds at most `max_snapshots`
/// snapshots, the latest retained ones; every list a snapshot names was written; and what
/// garbage collection keeps covers every list and manifest those snapshots reach.
fn check(table: &Table) -> Result<(), TestCaseError> {
    let config = &table.config;
    let list = table.state.manifest_list_key().unwrap();
    prop_assert!(table.list_manifests(&list).len() <= config.manifest_merge_count + 1);
    let metadata = table.metadata();
    prop_assert!(metadata.snapshots.len() <= config.max_snapshots);
    let version = table.version();
    let expected_oldest = (version + 1)
        .saturating_sub(config.max_snapshots as u64)
        .max((version + 1).saturating_sub(table.retain_versions.unwrap_or(u64::MAX)))
        .max(1);
    prop_assert_eq!(
        metadata.snapshots[0].sequence_number as u64,
        expected_oldest
    );
    let mut reached = BTreeSet::from([table.state.metadata_key().unwrap()]);
    for snapshot in &metadata.snapshots {
        let list = table.key_of(&snapshot.manifest_list);
        prop_assert!(table.store.contains_key(&list), "{} never written", list);
        let live = table.live_files(&list);
        let model: BTreeSet<String> = table.live[snapshot.sequence_number as usize]
            .iter()
            .map(|o| o.key.to_string())
            .collect();
        prop_assert_eq!(live, model, "version {}", snapshot.sequence_number);
        reached.extend(table.list_manifests(&list));
        reached.insert(list);
    }
    let oldest = table.state.oldest_list_key().unwrap();
    let kept = table.state.referenced_keys(&table.store[&oldest]).unwrap();
    prop_assert!(
        reached.is_subset(&kept),
        "GC would drop {:?}",
        reached.difference(&kept).collect::<Vec<_>>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn random_histories_match_the_model(
        steps in proptest::collection::vec(step(), 1..40),
        merge_count in 1usize..6,
        max_snapshots in 1usize..8,
        retain in proptest::option::of(1u64..10),
        target in prop_oneof![Just(1u64), Just(6_000), Just(1 << 23)],
    ) {
        let config = TableConfig {
            manifest_merge_count: merge_count,
            manifest_target_bytes: target,
            max_snapshots,
            max_metadata_log: 3,
        };
        let mut table = Table::new("d", "file:///data", config);
        table.retain_versions = retain;
        let mut next = 1u64;
        let mut fresh = |count: u8| {
            let numbers: Vec<u64> = (next..next + u64::from(count)).collect();
            next += u64::from(count);
            numbers
        };
        for step in steps {
            match step {
                Step::Append(count) => table.append(&fresh(count)),
                Step::Replace(count) => table.replace(&fresh(count)),
                Step::Compact(positions) => {
                    let live = table.live_now().len();
                    if live == 0 {
                        continue;
                    }
                    let mut picked: Vec<usize> = positions.iter().map(|p| *p as usize % live).collect();
                    picked.sort_unstable();
                    picked.dedup();
                    let into = fresh(1)[0];
                    table.compact(&picked, into);
                }
            }
            check(&table)?;
        }
    }
}

/// 2,000 appends of one file each: the bytes a commit writes do not grow with the version
/// (the manifest list stays under the merge bound, a merge rewrites at most about the
/// target size), and the metadata JSON stops growing at the snapshot cap.
#[test]
fn two_thousand_appends_write_bounded_bytes() {
    let config = TableConfig {
        manifest_target_bytes: 64 * 1024,
        ..TableConfig::default()
    };
    let mut table = Table::new("flights", "file:///var/lib/lakehouse/data", config.clone());
    table.round_trip = false;
    table.keep_old_json = false;
    for n in 1..=2000u64 {
        table.append(&[n]);
        if n % 250 == 0 {
            let list = table.state.manifest_list_key().unwrap();
            assert!(table.list_manifests(&list).len() <= config.manifest_merge_count + 1);
        }
    }
    let avro: Vec<u64> = table.written.iter().map(|(avro, _)| *avro).collect();
    let json: Vec<u64> = table.written.iter().map(|(_, json)| *json).collect();
    let mean = |range: std::ops::Range<usize>| {
        avro[range.clone()].iter().sum::<u64>() as f64 / range.len() as f64
    };
    let (early, late) = (mean(500..1000), mean(1500..2000));
    let peak_early = avro[..1000].iter().max().unwrap();
    let peak_late = avro[1000..].iter().max().unwrap();
    println!(
        "manifests + list per commit: mean {early:.0} B (v501-1000), {late:.0} B (v1501-2000); \
         peak {peak_early} B (v1-1000), {peak_late} B (v1001-2000); metadata JSON {} B at v1000, {} B at v2000",
        json[999], json[1999]
    );
    assert!(
        late <= early * 1.25,
        "mean bytes per commit grew: {early} -> {late}"
    );
    assert!(
        *peak_late <= config.manifest_target_bytes + 2 * 64 * 1024,
        "a merge rewrote more than the target size: {peak_late}"
    );
    let metadata = table.metadata();
    assert_eq!(metadata.snapshots.len(), 1000);
    assert_eq!(metadata.metadata_log.len(), 100);
    assert!(
        json[1999] <= json[999] + json[999] / 50,
        "the metadata JSON grew past the cap: {} -> {}",
        json[999],
        json[1999]
    );
    // and the table still reads right: every appended object, once
    let list = table.state.manifest_list_key().unwrap();
    assert_eq!(table.live_files(&list).len(), 2000);
}
