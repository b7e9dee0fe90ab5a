"""A table fed by many appends stays bounded and reads exactly (docs/contract.md section 10).

Usage: appends.py INGESTD_URL CATALOGD_URL OBJECTS_ROOT APPENDS MERGE_COUNT MAX_SNAPSHOTS

Runs on the `.venv-iceberg` venv made by scripts/test, against a trio whose catalogd runs
with `manifest_merge_count` = MERGE_COUNT and `iceberg_max_snapshots` = MAX_SNAPSHOTS (so the
bounds bite within APPENDS versions) on a local storaged root OBJECTS_ROOT. Makes APPENDS
appends of a few rows each (ids disjoint per append; two clients at once, as a feed with two
writers would, so the run also takes less time), then checks:
- the appends made versions 1..APPENDS, each once;
- the latest manifest list names at most MERGE_COUNT + 1 manifests, and every manifest list
  written along the way did too (read back with DuckDB's avro extension);
- the latest metadata JSON lists at most MAX_SNAPSHOTS snapshots, each with its `v<N>` tag,
  the newest being the latest version, and no more than that many tags;
- pyiceberg, DuckDB (ATTACH of the REST catalog) and Polars read exactly the appended rows:
  the count, the sum of ids and the sorted ids equal the CSVs';
- pyiceberg's tag of the oldest kept snapshot reads exactly the rows appended up to it;
- the catalog API still serves a version older than the kept snapshots, with its objects.
Prints one PASS/FAIL line per check and exits 1 on any failure.
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from iceberg_clients import attach_catalog, duckdb_connection
from lakehouse_http import catalog_json, ingest
from checks import Checks

os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")
ROWS_PER_APPEND = 3


check = Checks()


def ids_of(number):
    """The ids appended by append number `number` (1-based)."""
    start = (number - 1) * ROWS_PER_APPEND
    return list(range(start, start + ROWS_PER_APPEND))


def main():
    ingestd, catalogd, root = sys.argv[1], sys.argv[2], sys.argv[3]
    appends, merge_count, max_snapshots = (int(a) for a in sys.argv[4:7])
    con = duckdb_connection()

    def avro_rows(path):
        return con.execute("SELECT count(*) FROM read_avro(?)", [path]).fetchone()[0]

    name = "long_feed"

    def append(number):
        rows = "".join(f"{i},a{number}\n" for i in ids_of(number))
        answer = ingest(ingestd, name, "id,label\n" + rows, "append", filename="a.csv")
        return answer["manifest"]["version"], number

    # The first append makes the dataset; then two writers race, each commit serialized by
    # catalogd, so the version an append gets is whatever its commit won.
    numbers_by_version = dict([append(1)])
    with ThreadPoolExecutor(max_workers=2) as pool:
        numbers_by_version.update(pool.map(append, range(2, appends + 1)))
    check(f"{appends} appends made versions 1..{appends}, each once",
          sorted(numbers_by_version) == list(range(1, appends + 1)),
          f"{len(numbers_by_version)} distinct versions")
    metadata_dir = os.path.join(root, "datasets", name, "metadata")
    latest = json.load(open(os.path.join(metadata_dir, f"v{appends}.metadata.json")))
    lists = [f for f in os.listdir(metadata_dir) if f.endswith("-list.avro") or f.startswith("snap-")]
    longest = max((avro_rows(os.path.join(metadata_dir, f)) for f in lists), default=0)
    check(f"every manifest list of {appends} appends names at most {merge_count + 1} manifests",
          0 < longest <= merge_count + 1, f"longest {longest}")
    current = next(s for s in latest["snapshots"] if s["snapshot-id"] == latest["current-snapshot-id"])
    list_path = current["manifest-list"].split("file://", 1)[-1]
    named = avro_rows(list_path)
    check("the latest manifest list is within the bound", named <= merge_count + 1, str(named))
    snapshots = latest["snapshots"]
    tags = [r for r, ref in latest["refs"].items() if ref["type"] == "tag"]
    check(f"the metadata JSON lists at most {max_snapshots} snapshots",
          len(snapshots) == min(appends, max_snapshots), str(len(snapshots)))
    check("each kept snapshot has its tag and no other tag is left",
          sorted(tags) == sorted(f"v{v}" for v in range(appends - len(snapshots) + 1, appends + 1)),
          f"{len(tags)} tags")
    check("the newest snapshot is the latest version",
          current["summary"].get("lakehouse.version") == str(appends), json.dumps(current["summary"]))

    want_ids = [i for n in range(1, appends + 1) for i in ids_of(n)]
    want = (len(want_ids), sum(want_ids))
    from pyiceberg.catalog.rest import RestCatalog

    catalog = RestCatalog("lakehouse", uri=f"{catalogd}/iceberg")
    table = catalog.load_table(("lakehouse", name))
    got_ids = sorted(table.scan().to_arrow().column("id").to_pylist())
    check("pyiceberg reads exactly the appended rows", got_ids == want_ids,
          f"{len(got_ids)} rows, want {len(want_ids)}")
    oldest = appends - len(snapshots) + 1
    tagged = table.scan(snapshot_id=table.snapshot_by_name(f"v{oldest}").snapshot_id).to_arrow()
    want_old = sorted(i for v in range(1, oldest + 1) for i in ids_of(numbers_by_version.get(v, 0)))
    check(f"pyiceberg's tag v{oldest} reads the rows appended up to it",
          sorted(tagged.column("id").to_pylist()) == want_old, f"{tagged.num_rows} rows")

    attach_catalog(con, catalogd)
    got = con.execute(f'SELECT count(*), sum(id), count(DISTINCT id) FROM ice.lakehouse."{name}"').fetchone()
    check("DuckDB reads exactly the appended rows", tuple(got) == (*want, want[0]), str(got))

    import polars as pl

    frame = pl.scan_iceberg(table).select(
        pl.len().alias("rows"), pl.col("id").sum().alias("sum"), pl.col("id").n_unique().alias("ids")
    ).collect()
    check("Polars reads exactly the appended rows", tuple(frame.row(0)) == (*want, want[0]), str(frame.row(0)))

    if oldest > 1:
        old = catalog_json(catalogd, f"/datasets/{name}/versions/1")
        check("the catalog API still serves a version older than the kept snapshots",
              old["version"] == 1 and len(old["objects"]) == 1, json.dumps(old)[:200])
    print(f"appends: {check.failures} failed")
    sys.exit(1 if check.failures else 0)


if __name__ == "__main__":
    main()
