//! Unit tests of retention and garbage collection over [`MemoryStore`] (docs/decisions.md, "Garbage collection and retention").

use crate::{Catalog, CatalogError, GcOptions, MemoryStore, RetentionPolicy, manifest_prefix};
use bytes::Bytes;
use chrono::{Duration, Utc};
use lakehouse_api::{DatasetName, IngestMode, ObjectKey, ObjectRef, VersionRegisterRequest};
use lakehouse_testkit::fixtures::{object_ref, register_request, schema_id as schema};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const HOUR_MS: u64 = 3_600_000;

fn name(text: &str) -> DatasetName {
    DatasetName::new(text).unwrap()
}

/// Stores `content` as `dataset`'s Parquet object under its content-addressed key, written
/// `age_hours` ago.
fn put_object(
    store: &MemoryStore,
    dataset: &DatasetName,
    content: &str,
    age_hours: i64,
) -> ObjectRef {
    let object = object_ref(dataset, &schema(), content.as_bytes(), 1);
    store.insert(object.key.clone(), Bytes::from(content.to_owned()));
    store.set_last_modified(&object.key, Utc::now() - Duration::hours(age_hours));
    object
}

fn request(objects: Vec<ObjectRef>, mode: IngestMode) -> VersionRegisterRequest {
    register_request(&schema(), objects, mode)
}

fn gc(grace_ms: u64) -> GcOptions {
    GcOptions {
        grace_ms,
        dry_run: false,
    }
}

fn exists(store: &MemoryStore, object: &ObjectRef) -> bool {
    store.bytes(&object.key).is_some()
}

async fn open(store: &Arc<MemoryStore>, policy: RetentionPolicy) -> Catalog<Arc<MemoryStore>> {
    Catalog::open(Arc::clone(store))
        .await
        .unwrap()
        .with_retention(policy)
}

#[tokio::test]
async fn orphan_older_than_grace_is_deleted_and_a_younger_one_is_kept() {
    let store = Arc::new(MemoryStore::new());
    let catalog = open(&store, RetentionPolicy::KEEP_ALL).await;
    let sales = name("sales");
    let live = put_object(&store, &sales, "live", 10);
    catalog
        .register(&sales, request(vec![live.clone()], IngestMode::Replace))
        .await
        .unwrap();
    let old_orphan = put_object(&store, &sales, "old orphan", 7);
    let young_orphan = put_object(&store, &sales, "young orphan", 5);
    let unknown = put_object(
        &store,
        &name("never-registered"),
        "crash before register",
        7,
    );

    let report = catalog.collect_garbage(gc(6 * HOUR_MS)).await.unwrap();

    assert_eq!(
        report.deleted,
        vec![unknown.key.clone(), old_orphan.key.clone()]
    );
    assert!(report.would_delete.is_empty());
    assert_eq!(
        (
            report.scanned_objects,
            report.retained_objects,
            report.skipped_young
        ),
        (4, 1, 1)
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(exists(&store, &live) && exists(&store, &young_orphan));
    assert!(!exists(&store, &old_orphan) && !exists(&store, &unknown));
    assert_eq!(
        store.keys(&manifest_prefix(&sales)).len(),
        1,
        "manifests stay"
    );
}

#[tokio::test]
async fn objects_of_retained_versions_are_kept_however_old() {
    let store = Arc::new(MemoryStore::new());
    let catalog = open(&store, RetentionPolicy::KEEP_ALL).await;
    let sales = name("sales");
    let mut objects = Vec::new();
    for content in ["v1", "v2", "v3"] {
        let object = put_object(&store, &sales, content, 1000);
        catalog
            .register(&sales, request(vec![object.clone()], IngestMode::Replace))
            .await
            .unwrap();
        objects.push(object);
    }
    let report = catalog.collect_garbage(gc(0)).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.retained_objects, 3);
    assert_eq!(report.expired_versions, 0);
    assert!(objects.iter().all(|o| exists(&store, o)));
}

#[tokio::test]
async fn versions_past_retention_are_gone_and_only_their_own_objects_are_collected() {
    let store = Arc::new(MemoryStore::new());
    let policy = RetentionPolicy {
        retain_versions: 2,
        retain_ms: 0,
    };
    let catalog = open(&store, policy).await;
    let sales = name("sales");
    // v1 = {a}, v2 = {b} (replace), v3 = {b, c} (append), v4 = {d} (replace)
    let a = put_object(&store, &sales, "a", 100);
    let b = put_object(&store, &sales, "b", 100);
    let c = put_object(&store, &sales, "c", 100);
    let d = put_object(&store, &sales, "d", 100);
    for (object, mode) in [
        (&a, IngestMode::Replace),
        (&b, IngestMode::Replace),
        (&c, IngestMode::Append),
        (&d, IngestMode::Replace),
    ] {
        catalog
            .register(&sales, request(vec![object.clone()], mode))
            .await
            .unwrap();
    }
    for version in [1, 2] {
        let error = catalog.fetch_version(&sales, version).await.unwrap_err();
        assert!(
            matches!(error, CatalogError::Gone { version: v, .. } if v == version),
            "{error:?}"
        );
    }
    assert_eq!(catalog.fetch_version(&sales, 3).await.unwrap().version, 3);
    assert_eq!(catalog.fetch_version(&sales, 4).await.unwrap().version, 4);
    assert!(matches!(
        catalog.fetch_version(&sales, 5).await,
        Err(CatalogError::VersionNotFound { .. })
    ));

    let report = catalog.collect_garbage(gc(HOUR_MS)).await.unwrap();
    // a is only in v1 (gone); b is in v2 (gone) and v3 (retained): kept.
    assert_eq!(report.deleted, vec![a.key.clone()]);
    assert_eq!(report.expired_versions, 2);
    assert_eq!(report.retained_objects, 3);
    assert!(!exists(&store, &a));
    assert!([&b, &c, &d].iter().all(|o| exists(&store, o)));
    // The audit trail stays: every manifest, and the listing marks what is gone.
    assert_eq!(store.keys(&manifest_prefix(&sales)).len(), 4);
    let (versions, _) = catalog.fetch_version_page(&sales, None, 100).await.unwrap();
    let gone: Vec<bool> = versions.iter().map(|v| v.gone).collect();
    assert_eq!(gone, vec![true, true, false, false]);
}

#[tokio::test]
async fn the_latest_version_is_kept_even_when_every_rule_expires_it() {
    let store = Arc::new(MemoryStore::new());
    let policy = RetentionPolicy {
        retain_versions: 0,
        retain_ms: 1,
    };
    let catalog = open(&store, policy).await;
    let sales = name("sales");
    let old = put_object(&store, &sales, "old", 100);
    let latest = put_object(&store, &sales, "latest", 100);
    for object in [&old, &latest] {
        catalog
            .register(&sales, request(vec![object.clone()], IngestMode::Replace))
            .await
            .unwrap();
        // Version 1 has expired when version 2 is committed, so version 2's Iceberg
        // metadata does not list it either (see the last test of this file).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let report = catalog.collect_garbage(gc(0)).await.unwrap();
    assert_eq!(report.deleted, vec![old.key.clone()]);
    assert!(exists(&store, &latest));
    assert_eq!(catalog.fetch_version(&sales, 2).await.unwrap().version, 2);
    assert!(matches!(
        catalog.fetch_version(&sales, 1).await,
        Err(CatalogError::Gone { .. })
    ));
}

#[tokio::test]
async fn a_dry_run_reports_and_deletes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let policy = RetentionPolicy {
        retain_versions: 1,
        retain_ms: 0,
    };
    let catalog = open(&store, policy).await;
    let sales = name("sales");
    let v1 = put_object(&store, &sales, "v1", 10);
    let v2 = put_object(&store, &sales, "v2", 10);
    for object in [&v1, &v2] {
        catalog
            .register(&sales, request(vec![object.clone()], IngestMode::Replace))
            .await
            .unwrap();
    }
    let orphan = put_object(&store, &sales, "orphan", 10);
    let before = store.keys("");
    let report = catalog
        .collect_garbage(GcOptions {
            grace_ms: HOUR_MS,
            dry_run: true,
        })
        .await
        .unwrap();
    assert!(report.dry_run);
    assert!(report.deleted.is_empty());
    let mut expected = vec![v1.key.clone(), orphan.key.clone()];
    expected.sort();
    assert_eq!(report.would_delete, expected);
    assert_eq!(store.keys(""), before, "nothing changed");
    let report = catalog.collect_garbage(gc(HOUR_MS)).await.unwrap();
    assert_eq!(
        report.deleted, expected,
        "a real run deletes what the dry run listed"
    );
}

#[tokio::test]
async fn gc_sees_versions_another_replica_registered() {
    let store = Arc::new(MemoryStore::new());
    let collector = open(&store, RetentionPolicy::KEEP_ALL).await;
    let writer = open(&store, RetentionPolicy::KEEP_ALL).await;
    let sales = name("sales");
    let object = put_object(&store, &sales, "registered elsewhere", 100);
    writer
        .register(&sales, request(vec![object.clone()], IngestMode::Replace))
        .await
        .unwrap();
    assert!(
        collector.latest(&sales).is_none(),
        "not in the collector's index yet"
    );
    let report = collector.collect_garbage(gc(0)).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert!(exists(&store, &object));
}

#[tokio::test]
async fn stray_keys_follow_the_grace_rule_and_a_store_outage_deletes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let catalog = open(&store, RetentionPolicy::KEEP_ALL).await;
    let stray = ObjectKey::new("datasets/loose-file").unwrap();
    store.insert(stray.clone(), "x");
    store.set_last_modified(&stray, Utc::now() - Duration::hours(1));
    let elsewhere = ObjectKey::new("other/thing").unwrap();
    store.insert(elsewhere.clone(), "y");
    store.set_last_modified(&elsewhere, Utc::now() - Duration::hours(100));

    store.set_unavailable(true);
    assert!(matches!(
        catalog.collect_garbage(gc(0)).await,
        Err(CatalogError::Store(_))
    ));
    store.set_unavailable(false);

    let report = catalog.collect_garbage(gc(2 * HOUR_MS)).await.unwrap();
    assert_eq!((report.skipped_young, report.deleted.len()), (1, 0));
    let report = catalog.collect_garbage(gc(0)).await.unwrap();
    assert_eq!(report.deleted, vec![stray]);
    assert!(
        store.bytes(&elsewhere).is_some(),
        "outside datasets/: never touched"
    );
}

/// Writers in the GC race test.
const WRITERS: u64 = 8;
/// Registers per writer in the GC race test.
const ROUNDS: u64 = 25;

/// The race of docs/decisions.md, "Garbage collection and retention": registers (each
/// PUTting a fresh object, then registering it) run while GC runs over and over with no grace at all. Registers may fail (GC may delete a
/// fresh object before its register checks it: the ingest then fails, no version is made),
/// but every object any retained version references must still exist, during and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_racing_registers_never_deletes_a_retained_object() {
    let store = Arc::new(MemoryStore::new());
    let policy = RetentionPolicy {
        retain_versions: 3,
        retain_ms: 0,
    };
    let catalog = Arc::new(open(&store, policy).await);
    let datasets = [name("alpha"), name("beta")];
    let registered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    // The collector publishes its run count; every few rounds a writer waits for a run
    // that started after it got there, so GC runs during the registers however the
    // scheduler treats the tasks (on a loaded machine the writers could otherwise finish
    // before the collector's second run).
    let (runs_tx, runs_rx) = tokio::sync::watch::channel(0u64);
    let collector = {
        let (catalog, done) = (Arc::clone(&catalog), Arc::clone(&done));
        tokio::spawn(async move {
            let mut runs = 0u64;
            let mut deleted = 0usize;
            while !done.load(Ordering::SeqCst) {
                let report = catalog.collect_garbage(gc(0)).await.unwrap();
                assert!(report.errors.is_empty(), "{:?}", report.errors);
                deleted += report.deleted.len();
                runs += 1;
                runs_tx.send_replace(runs);
                tokio::task::yield_now().await;
            }
            (runs, deleted)
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (catalog, store, registered) = (
                Arc::clone(&catalog),
                Arc::clone(&store),
                Arc::clone(&registered),
            );
            let dataset = datasets[(writer % 2) as usize].clone();
            let runs_rx = runs_rx.clone();
            tokio::spawn(write_rounds(
                catalog, store, registered, dataset, writer, runs_rx,
            ))
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (runs, deleted) = collector.await.unwrap();
    assert!(
        runs > 1 && deleted > 0,
        "the race happened: {runs} runs, {deleted} deleted"
    );
    assert!(registered.load(Ordering::SeqCst) > 0);

    only_retained_objects_remain(&catalog, &store, &datasets).await;
}

/// One writer of the race: [`ROUNDS`] registers of fresh objects (every fifth after a GC run
/// that began after it got there); a register answered while the version is retained must
/// find every object it names (checked under the commit lock).
async fn write_rounds(
    catalog: Arc<Catalog<Arc<MemoryStore>>>,
    store: Arc<MemoryStore>,
    registered: Arc<AtomicU64>,
    dataset: DatasetName,
    writer: u64,
    mut runs_rx: tokio::sync::watch::Receiver<u64>,
) {
    for round in 0..ROUNDS {
        if round % 5 == 4 {
            runs_rx.borrow_and_update();
            // Two changes: the first may be a run that began before this point.
            for _ in 0..2 {
                runs_rx.changed().await.unwrap();
            }
        }
        let object = put_object(&store, &dataset, &format!("{writer}/{round}"), 0);
        let mode = if round % 3 == 0 {
            IngestMode::Append
        } else {
            IngestMode::Replace
        };
        match catalog
            .register(&dataset, request(vec![object], mode))
            .await
        {
            Ok(outcome) => {
                registered.fetch_add(1, Ordering::SeqCst);
                // Under the commit lock (so GC is not mid-way through this
                // dataset): if the new version is still retained, it is complete.
                let lock = catalog.commit_lock(&dataset);
                let _guard = lock.lock().await;
                if !catalog.is_retained(&outcome.manifest) {
                    continue;
                }
                for object in &outcome.manifest.objects {
                    assert!(
                        store.bytes(&object.key).is_some(),
                        "version {} of {dataset} lost {}",
                        outcome.manifest.version,
                        object.key
                    );
                }
            }
            Err(CatalogError::InvalidObject { .. }) => {} // collected before register
            Err(error) => panic!("unexpected register error: {error:?}"),
        }
    }
}

/// After a final run with no grace, exactly the objects of retained versions remain.
async fn only_retained_objects_remain(
    catalog: &Catalog<Arc<MemoryStore>>,
    store: &MemoryStore,
    datasets: &[DatasetName],
) {
    let report = catalog.collect_garbage(gc(0)).await.unwrap();
    assert!(report.errors.is_empty());
    let mut retained = BTreeSet::new();
    for dataset in datasets {
        for manifest in crate::tests::all_versions(catalog, dataset).await {
            if catalog.is_retained(&manifest) {
                retained.extend(manifest.objects.iter().map(|o| o.key.clone()));
            }
        }
    }
    let stored: BTreeSet<ObjectKey> = store.keys("datasets/").into_iter().collect();
    let missing: Vec<_> = retained.difference(&stored).collect();
    assert!(missing.is_empty(), "retained objects deleted: {missing:?}");
    assert_eq!(
        stored, retained,
        "after a final run, only retained objects remain"
    );
}

/// docs/contract.md section 8: the latest Iceberg metadata never points at a missing object. Its
/// snapshots were chosen by retention when its version was committed; GC judges retention
/// now, so a version that expired since must keep its objects while the latest metadata
/// still lists it, and lose them once a newer metadata drops it.
#[tokio::test]
async fn objects_the_latest_iceberg_metadata_lists_outlive_their_retention() {
    let store = Arc::new(MemoryStore::new());
    let policy = RetentionPolicy {
        retain_versions: 0,
        retain_ms: 200,
    };
    let catalog = open(&store, policy).await.with_table_base("memory://");
    let sales = name("sales");
    let first = put_object(&store, &sales, "first", 10);
    let second = put_object(&store, &sales, "second", 10);
    for object in [&first, &second] {
        catalog
            .register(&sales, request(vec![object.clone()], IngestMode::Replace))
            .await
            .unwrap();
    }
    // The latest metadata keeps version 1's snapshot, so GC keeps its data file.
    assert_eq!(catalog.oldest_snapshot(&sales).await.unwrap(), Some(1));
    // Version 1 passes retain_ms: the passage of time is what is under test.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    catalog.collect_garbage(gc(0)).await.unwrap();
    for key in catalog.table_keys(&sales).await.unwrap() {
        assert!(
            store.bytes(&ObjectKey::new(key.clone()).unwrap()).is_some(),
            "the latest metadata lists {key}, which GC deleted"
        );
    }
    assert!(exists(&store, &first));

    // Version 3's metadata no longer lists version 1: its object goes.
    let third = put_object(&store, &sales, "third", 10);
    catalog
        .register(&sales, request(vec![third.clone()], IngestMode::Replace))
        .await
        .unwrap();
    assert!(catalog.oldest_snapshot(&sales).await.unwrap() > Some(1));
    catalog.collect_garbage(gc(0)).await.unwrap();
    assert!(!exists(&store, &first));
    assert!(exists(&store, &third));
}

/// `object` with a rejects object of `content`, stored `age_hours` ago.
fn with_rejects(
    store: &MemoryStore,
    dataset: &DatasetName,
    mut object: ObjectRef,
    content: &str,
    age_hours: i64,
) -> ObjectRef {
    let sha256 = lakehouse_api::Sha256Digest::from_bytes(
        <sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()).into(),
    );
    let key = ObjectKey::rejects_object(dataset, &sha256);
    store.insert(key.clone(), Bytes::from(content.to_owned()));
    store.set_last_modified(&key, Utc::now() - Duration::hours(age_hours));
    object.rejects = Some(lakehouse_api::RejectsRef {
        key,
        count: 1,
        size: content.len() as u64,
        sha256,
    });
    object
}

/// docs/contract.md section 3: rejects objects follow the GC and retention rules of the data they
/// came with: kept while their object is (an append successor keeps both), collected with it.
#[tokio::test]
async fn rejects_objects_live_and_go_with_their_data_object() {
    let store = Arc::new(MemoryStore::new());
    let policy = RetentionPolicy {
        retain_versions: 1,
        retain_ms: 0,
    };
    let catalog = open(&store, policy).await;
    let sales = name("sales");
    let first = put_object(&store, &sales, "first", 10);
    let first = with_rejects(
        &store,
        &sales,
        first,
        "line,column,reason,record\n2,,x,y\n",
        10,
    );
    catalog
        .register(&sales, request(vec![first.clone()], IngestMode::Replace))
        .await
        .unwrap();
    // Version 2 appends: version 1 is past retention, but its object (and so its rejects)
    // is still in version 2.
    let second = put_object(&store, &sales, "second", 10);
    catalog
        .register(&sales, request(vec![second.clone()], IngestMode::Append))
        .await
        .unwrap();
    let report = catalog.collect_garbage(gc(0)).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    let rejects_key = first.rejects.as_ref().unwrap().key.clone();
    assert!(store.bytes(&rejects_key).is_some());
    // Version 3 replaces everything: the first object and its rejects go together.
    let third = put_object(&store, &sales, "third", 10);
    catalog
        .register(&sales, request(vec![third], IngestMode::Replace))
        .await
        .unwrap();
    let report = catalog.collect_garbage(gc(0)).await.unwrap();
    assert!(report.deleted.contains(&rejects_key), "{report:?}");
    assert!(report.deleted.contains(&first.key), "{report:?}");
    assert!(store.bytes(&rejects_key).is_none());
}
