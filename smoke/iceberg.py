"""Engines read every dataset as an Iceberg table (docs/contract.md section 8).

Usage: iceberg.py INGESTD_URL CATALOGD_URL LABEL

Runs on the `.venv-iceberg` venv made by scripts/test (scripts/requirements-iceberg.txt).
Ingests two datasets of its own through ingestd (replace, append, replace, append; and four
appends with disjoint id ranges), then through the REST catalog at CATALOGD_URL/iceberg:
- pyiceberg lists the tables, loads each, and its scan of the current snapshot has the
  catalog's row count; for its own dataset the rows equal the CSV values row for row, and
  scanning each tag v<N> gives exactly version N's rows;
- a filter on `id` plans fewer files than the table has, and each file's bounds equal its
  Parquet footer's statistics;
- DuckDB (PyPI extensions iceberg, avro, httpfs loaded with import_extension) reads the same
  counts and sums through ATTACH of the REST catalog and iceberg_scan of the metadata file;
- Polars scan_iceberg reads the same counts and sums, and version 1 through its snapshot;
- a column added by schema evolution (docs/contract.md sections 3 and 8) is a new Iceberg schema
  with a new field id: pyiceberg, DuckDB and Polars read it as null in the rows of the file
  written before it existed, and tag v1 has the old schema.
Prints one PASS/FAIL line per check.
"""

import os
import struct
import sys

from iceberg_clients import attach_catalog, duckdb_connection, polars_storage_options
from lakehouse_http import catalog_json, ingest
from checks import Checks

# pyiceberg plans the scans Polars runs (the polars_iceberg planner is not installed).
os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")


check = Checks()


def rows_of(csv_text):
    lines = csv_text.strip().split("\n")[1:]
    return sorted((int(a), b) for a, b in (line.split(",") for line in lines))


def main():
    ingestd, catalogd, label = sys.argv[1], sys.argv[2], sys.argv[3]
    from pyiceberg.catalog.rest import RestCatalog

    # Versions of our own dataset: replace, append, replace, append.
    name = f"ice_{label}_sales"
    steps = [
        ("replace", "id,name\n1,one\n2,two\n"),
        ("append", "id,name\n3,three\n"),
        ("replace", "id,name\n10,ten\n11,eleven\n12,twelve\n"),
        ("append", "id,name\n13,thirteen\n"),
    ]
    expected = []
    current = []
    for mode, text in steps:
        ingest(ingestd, name, text, mode)
        current = (current if mode == "append" else []) + rows_of(text)
        expected.append(sorted(current))
    pruned = f"ice_{label}_pruned"
    for i in range(4):
        text = "id,name\n" + "".join(f"{i * 100 + j},n{i}_{j}\n" for j in range(50))
        ingest(ingestd, pruned, text, "append")

    catalog = RestCatalog("lakehouse", uri=f"{catalogd}/iceberg")
    tables = [ident[-1] for ident in catalog.list_tables("lakehouse")]
    check(f"{label}: pyiceberg lists the tables", name in tables and pruned in tables, str(tables))
    for table_name in tables:
        table = catalog.load_table(("lakehouse", table_name))
        latest = catalog_json(catalogd, f"/datasets/{table_name}")
        count = table.scan().to_arrow().num_rows
        check(
            f"{label}: pyiceberg scan of {table_name} has the catalog's {latest['row_count']} rows",
            count == latest["row_count"],
            f"got {count}",
        )

    table = catalog.load_table(("lakehouse", name))
    got = sorted(zip(*table.scan().to_arrow().select(["id", "name"]).to_pydict().values()))
    check(f"{label}: pyiceberg current snapshot equals the CSV rows", got == expected[-1], str(got))
    for version, rows in enumerate(expected, start=1):
        snapshot = table.snapshot_by_name(f"v{version}")
        if snapshot is None:
            check(f"{label}: tag v{version} exists", False)
            continue
        arrow = table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
        got = sorted(zip(*arrow.select(["id", "name"]).to_pydict().values()))
        check(f"{label}: pyiceberg tag v{version} gives version {version}'s rows", got == rows, str(got))

    # Pruning: bounds exclude three of the four appended files.
    ptable = catalog.load_table(("lakehouse", pruned))
    all_files = list(ptable.scan().plan_files())
    some = list(ptable.scan(row_filter="id >= 300").plan_files())
    check(
        f"{label}: a filter on id plans fewer files ({len(some)} of {len(all_files)})",
        len(all_files) == 4 and len(some) == 1,
    )
    import pyarrow.parquet as pq

    for task in all_files:
        data_file = task.file
        with ptable.io.new_input(data_file.file_path).open() as stream:
            stats = pq.ParquetFile(stream).metadata.row_group(0).column(0).statistics
        lower = struct.unpack("<q", data_file.lower_bounds[1])[0]
        upper = struct.unpack("<q", data_file.upper_bounds[1])[0]
        check(
            f"{label}: bounds of {os.path.basename(data_file.file_path)[:12]} equal its footer's",
            (lower, upper) == (stats.min, stats.max) and data_file.record_count == 50,
            f"{(lower, upper)} vs {(stats.min, stats.max)}",
        )

    # DuckDB: ATTACH of the REST catalog and iceberg_scan of the metadata file.
    con = attach_catalog(duckdb_connection(), catalogd, table)
    want = (len(expected[-1]), sum(r[0] for r in expected[-1]))
    got = con.execute(f'SELECT count(*), sum(id) FROM ice.lakehouse."{name}"').fetchone()
    check(f"{label}: DuckDB ATTACH reads the current snapshot", tuple(got) == want, str(got))
    location = table.metadata_location
    path = location[len("file://"):] if location.startswith("file://") else location
    got = con.execute("SELECT count(*), sum(id) FROM iceberg_scan(?)", [path]).fetchone()
    check(f"{label}: DuckDB iceberg_scan of the metadata file", tuple(got) == want, str(got))

    # Polars.
    import polars as pl

    options = polars_storage_options(table)
    frame = pl.scan_iceberg(table, storage_options=options).select(pl.len(), pl.col("id").sum()).collect()
    check(f"{label}: Polars scan_iceberg reads the current snapshot", tuple(frame.row(0)) == want, str(frame.row(0)))
    first = table.snapshot_by_name("v1")
    frame = pl.scan_iceberg(table, snapshot_id=first.snapshot_id, storage_options=options).select(pl.len(), pl.col("id").sum()).collect()
    want1 = (len(expected[0]), sum(r[0] for r in expected[0]))
    check(f"{label}: Polars scan_iceberg of tag v1", tuple(frame.row(0)) == want1, str(frame.row(0)))

    # Schema evolution: version 2 adds `score` and keeps version 1's file.
    evolved = f"ice_{label}_evolved"
    ingest(ingestd, evolved, "id,name\n1,one\n2,two\n", "replace")
    ingest(ingestd, evolved, "id,name,score\n3,three,1.5\n", "append", "&schema_evolution=add_columns")
    want_rows = [(1, "one", None), (2, "two", None), (3, "three", 1.5)]
    etable = catalog.load_table(("lakehouse", evolved))
    fields = [(f.field_id, f.name) for f in etable.schema().fields]
    check(f"{label}: the added column has the next field id", fields == [(1, "id"), (2, "name"), (3, "score")], str(fields))
    got = sorted(zip(*etable.scan().to_arrow().select(["id", "name", "score"]).to_pydict().values()))
    check(f"{label}: pyiceberg reads the added column as null in the older file", got == want_rows, str(got))
    v1 = etable.snapshot_by_name("v1")
    old_names = [f.name for f in etable.schemas()[v1.schema_id].fields]
    check(f"{label}: tag v1 keeps the old schema", old_names == ["id", "name"], str(old_names))
    got = con.execute(
        f'SELECT count(*), count(score), sum(score) FROM ice.lakehouse."{evolved}"'
    ).fetchone()
    check(f"{label}: DuckDB reads the added column as null in the older file", tuple(got) == (3, 1, 1.5), str(got))
    frame = (
        pl.scan_iceberg(etable, storage_options=options)
        .select(pl.len(), pl.col("score").null_count().alias("nulls"), pl.col("score").sum().alias("sum"))
        .collect()
    )
    check(f"{label}: Polars reads the added column as null in the older file", tuple(frame.row(0)) == (3, 2, 1.5), str(frame.row(0)))

    print(f"iceberg {label}: {check.failures} failed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
