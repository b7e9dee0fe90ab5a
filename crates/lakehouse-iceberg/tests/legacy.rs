//! Tables written before the incremental projection (the layout of `snap-<id>-v<N>.avro`
//! lists and `v<N>-<id>-m0.avro` / `-m1.avro` manifests, a pretty-printed metadata JSON)
//! read back into a state the next commits build on: appends, a compaction that rewrites
//! their manifests, a replace; garbage collection keeps their files while a kept snapshot
//! names them. The fixture was written by that earlier code (versions 1: objects 1 and 2;
//! 2: + 3; 3: + 4; 4: replaced by 5; 5: + 6).

mod common;

use common::{Table, object};
use lakehouse_iceberg::{TableConfig, TableState};
use std::collections::{BTreeSet, HashMap};

fn legacy_table(config: TableConfig) -> Table {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy");
    let mut store = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        store.insert(
            format!("datasets/legacy/metadata/{name}"),
            std::fs::read(&path).unwrap(),
        );
    }
    let json = &store["datasets/legacy/metadata/v5.metadata.json"];
    let mut table = Table::new("legacy", "memory://", config);
    let list = TableState::list_key_of("memory://", &table.name, json).unwrap();
    assert!(list.contains("/snap-"), "{list}");
    table.state = TableState::from_files("memory://", &table.name, json, &store[&list]).unwrap();
    table.store = store;
    let sets: [&[u64]; 5] = [&[1, 2], &[1, 2, 3], &[1, 2, 3, 4], &[5], &[5, 6]];
    for set in sets {
        let live = set.iter().map(|n| object("legacy", *n)).collect();
        table.live.push(live);
    }
    table
}

fn check_every_snapshot(table: &Table) {
    let metadata = table.metadata();
    let mut reached = BTreeSet::from([table.state.metadata_key().unwrap()]);
    for snapshot in &metadata.snapshots {
        let list = table.key_of(&snapshot.manifest_list);
        let expected: BTreeSet<String> = table.live[snapshot.sequence_number as usize]
            .iter()
            .map(|o| o.key.to_string())
            .collect();
        assert_eq!(
            table.live_files(&list),
            expected,
            "version {}",
            snapshot.sequence_number
        );
        reached.extend(table.list_manifests(&list));
        reached.insert(list);
    }
    let oldest = table.state.oldest_list_key().unwrap();
    let kept = table.state.referenced_keys(&table.store[&oldest]).unwrap();
    assert!(
        reached.is_subset(&kept),
        "GC would drop {:?}",
        reached.difference(&kept).collect::<Vec<_>>()
    );
}

#[test]
fn a_table_of_the_earlier_layout_takes_new_versions() {
    let mut table = legacy_table(TableConfig::default());
    assert_eq!(table.version(), 5);
    check_every_snapshot(&table);
    table.append(&[7]);
    check_every_snapshot(&table);
    // compacts 5 (in v4's m0 of the earlier layout) and 7 (v6's new manifest) into 8
    table.compact(&[0, 2], 8);
    check_every_snapshot(&table);
    table.replace(&[9]);
    check_every_snapshot(&table);
    let metadata = table.metadata();
    assert_eq!(metadata.snapshots.len(), 8);
    assert!(
        metadata.snapshots[0].manifest_list.contains("/snap-"),
        "the earlier snapshots keep their lists"
    );
}

#[test]
fn earlier_layout_manifests_merge_and_expire() {
    let config = TableConfig {
        manifest_merge_count: 2,
        max_snapshots: 3,
        ..TableConfig::default()
    };
    let mut table = legacy_table(config);
    for n in 10..16 {
        table.append(&[n]);
        check_every_snapshot(&table);
    }
    let list = table.state.manifest_list_key().unwrap();
    assert!(table.list_manifests(&list).len() <= 3);
    assert_eq!(table.metadata().snapshots.len(), 3);
}
