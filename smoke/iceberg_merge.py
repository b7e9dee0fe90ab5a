"""Engines read a table kept current by merge and delete by key through catalogd's Iceberg
REST catalog (docs/contract.md sections 8 and 11).

Usage: iceberg_merge.py INGESTD_URL CATALOGD_URL LABEL

Runs on the `.venv-iceberg` venv made by scripts/test. Through ingestd: a first merge with
`key=id` makes a dataset of `id,name,amount` (version 1), a second merges updates, unchanged
rows and new keys (version 2), a delete removes listed keys (version 3). The expected rows
of every version are computed here, from the CSV texts, with a dict as the model. Checks:
- ingestd's counts (inserted, updated, unchanged, deleted, not_found);
- pyiceberg: the snapshots' operations (`overwrite` for the merges, `delete` for the
  delete) with added and deleted record counts, the current scan and each tag v1..v3 read
  exactly that version's rows;
- DuckDB (ATTACH of the REST catalog) reads the current rows and an updated row's value;
- Polars scan_iceberg reads the current rows and tag v1's.
Prints one PASS/FAIL line per check; exit status 1 on a failure.
"""

import os
import sys

from checks import Checks
from iceberg_clients import attach_catalog, duckdb_connection, polars_storage_options
from lakehouse_http import ingest

os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")

check = Checks()


def to_csv(rows):
    """rows: {id: (name, amount)} as CSV text `id,name,amount`."""
    lines = ["id,name,amount"] + [f"{i},{n},{a}" for i, (n, a) in sorted(rows.items())]
    return "\n".join(lines) + "\n"


def sorted_rows(model):
    return sorted((i, n, a) for i, (n, a) in model.items())


def arrow_rows(table):
    return sorted(zip(table.column("id").to_pylist(), table.column("name").to_pylist(),
                      table.column("amount").to_pylist()))


def main():
    ingestd, catalogd, label = sys.argv[1], sys.argv[2], sys.argv[3]
    from pyiceberg.catalog.rest import RestCatalog

    name = f"ice_{label}_merge"
    first = {i: (f"n{i}", i * 10) for i in range(1, 301)}
    versions = [dict(first)]
    answer = ingest(ingestd, name, to_csv(first), "merge", "&key=id")
    check(f"{label}: the first merge inserts 300 rows", answer["merge"]["inserted"] == 300, str(answer["merge"]))

    delta = {i: (f"n{i}", i * 10) for i in range(1, 11)}            # unchanged
    delta.update({i: (f"changed{i}", -i) for i in range(100, 120)})  # updated
    delta.update({i: (f"new{i}", i) for i in range(1000, 1015)})     # inserted
    answer = ingest(ingestd, name, to_csv(delta), "merge", "&key=id")
    counts = answer["merge"]
    check(f"{label}: the merge counts 15 inserted, 20 updated, 10 unchanged",
          (counts["inserted"], counts["updated"], counts["unchanged"]) == (15, 20, 10), str(counts))
    model = dict(versions[-1])
    model.update(delta)
    versions.append(model)

    gone = list(range(200, 230)) + [5000, 5001]
    answer = ingest(ingestd, name, "id\n" + "\n".join(map(str, gone)) + "\n", "delete", "&key=id")
    counts = answer["merge"]
    check(f"{label}: the delete counts 30 deleted, 2 not found",
          (counts["deleted"], counts["not_found"]) == (30, 2), str(counts))
    model = {i: v for i, v in versions[-1].items() if i not in gone}
    versions.append(model)

    catalog = RestCatalog("lakehouse", uri=f"{catalogd}/iceberg")
    table = catalog.load_table(("lakehouse", name))
    current = table.current_snapshot()
    check(f"{label}: the current snapshot is a delete of 30 records",
          current.summary.operation.value == "delete"
          and int(current.summary.get("deleted-records", "0")) >= 30,
          str(current.summary))
    got = arrow_rows(table.scan().to_arrow())
    check(f"{label}: pyiceberg reads the current rows ({len(model)})", got == sorted_rows(model),
          f"{len(got)} rows")
    for version, rows in enumerate(versions, start=1):
        snapshot = table.snapshot_by_name(f"v{version}")
        if snapshot is None:
            check(f"{label}: tag v{version} exists", False)
            continue
        got = arrow_rows(table.scan(snapshot_id=snapshot.snapshot_id).to_arrow())
        check(f"{label}: pyiceberg tag v{version} reads version {version}'s rows", got == sorted_rows(rows),
              f"{len(got)} rows")
    v2 = table.snapshot_by_name("v2")
    check(f"{label}: version 2's snapshot is an overwrite",
          v2 is not None and v2.summary.operation.value == "overwrite", str(v2 and v2.summary))

    con = attach_catalog(duckdb_connection(), catalogd, table)
    relation = f'ice.lakehouse."{name}"'
    got = tuple(con.execute(f"SELECT count(*), sum(id), sum(amount) FROM {relation}").fetchone())
    want = (len(model), sum(model), sum(a for _, a in model.values()))
    check(f"{label}: DuckDB reads the current rows", got == want, f"{got} != {want}")
    got = con.execute(f"SELECT name, amount FROM {relation} WHERE id = 105").fetchall()
    check(f"{label}: DuckDB reads the updated row once", got == [("changed105", -105)], str(got))

    import polars as pl

    options = polars_storage_options(table)
    scan = pl.scan_iceberg(table, storage_options=options)
    got = scan.select(pl.len(), pl.col("id").sum(), pl.col("amount").sum()).collect().row(0)
    check(f"{label}: Polars reads the current rows", tuple(got) == want, f"{got} != {want}")
    first_snapshot = table.snapshot_by_name("v1")
    frame = pl.scan_iceberg(table, snapshot_id=first_snapshot.snapshot_id, storage_options=options)
    got = frame.select(pl.len(), pl.col("amount").sum()).collect().row(0)
    want1 = (len(versions[0]), sum(a for _, a in versions[0].values()))
    check(f"{label}: Polars reads tag v1 as it was", tuple(got) == want1, f"{got} != {want1}")
    print(f"iceberg merge {label}: {check.failures} failed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
