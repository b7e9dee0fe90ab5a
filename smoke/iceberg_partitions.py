"""Engines read a partitioned dataset through catalogd's Iceberg REST catalog and prune its
files (docs/contract.md sections 8 and 10, "Partitions in Iceberg").

Usage: iceberg_partitions.py INGESTD_URL CATALOGD_URL LABEL

Runs on the `.venv-iceberg` venv made by scripts/test, after smoke/iceberg.py. Ingests
through ingestd a CSV of `ts,id,name` over several days (one before 1970, every seventh ts
empty) into a new dataset with `partition_by=day(ts),bucket(4,id)`, then appends a second
CSV. Every expectation is computed here from the CSV text generated below and from the
catalog's manifest (`objects[].partition`):
- each upload's files are the partition tuples of its rows (day and pyiceberg's bucket);
- pyiceberg: the table's spec; an unfiltered scan plans every object of the version and
  reads every row; a filter on one day plans exactly the files of that day's partitions
  (fewer than all) and reads exactly that day's rows; `id == 17` plans only files of 17's
  bucket (exactly those whose id bounds span 17) and reads that one row;
- DuckDB (ATTACH of the REST catalog) and Polars (scan_iceberg) read exactly that day's ids,
  the row of id 17, and the full row count.
Prints one PASS/FAIL line per check; exit status 1 on a failure.
"""

import datetime
import os
import sys

from iceberg_clients import attach_catalog, duckdb_connection, polars_storage_options
from lakehouse_http import catalog_json, ingest
from checks import Checks

# pyiceberg plans the scans Polars runs (the polars_iceberg planner is not installed).
os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")

PARTITION_BY = "day(ts),bucket(4,id)"
DAYS = ["1969-12-30", "2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"]
DAY = datetime.date(2024, 3, 1)
UTC = datetime.timezone.utc
EPOCH = datetime.date(1970, 1, 1)


check = Checks()


def make_csv(first_id, count, shift):
    """`count` rows from id `first_id`: ts on DAYS (chosen by id and `shift`), every seventh
    ts empty, a time of day that varies with the id."""
    lines = ["ts,id,name"]
    for i in range(first_id, first_id + count):
        if i % 7 == 3:
            ts = ""
        else:
            day = DAYS[(i * 3 + shift) % len(DAYS)]
            ts = f"{day}T{i % 24:02}:{(i * 7) % 60:02}:{i % 60:02}Z"
        lines.append(f"{ts},{i},name-{i}")
    return "\n".join(lines) + "\n"


def parse_rows(csv_text):
    """The CSV's rows as (id, ts as an aware datetime or None), parsed independently of the
    service."""
    rows = []
    for line in csv_text.strip().split("\n")[1:]:
        ts, ident, _ = line.split(",")
        when = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None
        rows.append((int(ident), when))
    return rows


def day_number(date):
    return (date - EPOCH).days


def partition_of(ident, ts, bucket_of):
    """The partition tuple `day(ts),bucket(4,id)` of a row, as the catalog records it."""
    return [None if ts is None else day_number(ts.date()), bucket_of(ident)]


def files_spanning(uploads, ident, bucket_of):
    """How many files of the uploads, given as (CSV text, the objects ingestd answered), hold
    rows of `ident`'s bucket whose ids span `ident` (so that their id bounds do not exclude it)."""
    count = 0
    for csv_text, objects in uploads:
        rows = parse_rows(csv_text)
        for obj in objects:
            if obj["partition"][1] != bucket_of(ident):
                continue
            ids = [i for i, ts in rows if partition_of(i, ts, bucket_of) == obj["partition"]]
            count += bool(ids) and min(ids) <= ident <= max(ids)
    return count


def main():
    ingestd, catalogd, label = sys.argv[1], sys.argv[2], sys.argv[3]
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
    from pyiceberg.transforms import BucketTransform
    from pyiceberg.types import LongType

    name = f"ice_{label}_parts"
    first = make_csv(0, 240, 0)
    second = make_csv(240, 60, 1)
    answer = ingest(ingestd, name, first, "replace", f"&partition_by={PARTITION_BY}")
    check(
        f"{label}: the ingest records partition_by {PARTITION_BY}",
        answer["manifest"].get("partition_spec", {}).get("partition_by") == PARTITION_BY,
        str(answer["manifest"].get("partition_spec")),
    )
    appended = ingest(ingestd, name, second, "append")
    uploads = [(first, answer["objects"]), (second, appended["objects"])]
    rows = parse_rows(first) + parse_rows(second)
    all_ids = sorted(i for i, _ in rows)
    start = datetime.datetime.combine(DAY, datetime.time(), UTC)
    end = start + datetime.timedelta(days=1)
    day_ids = sorted(i for i, ts in rows if ts is not None and start <= ts < end)
    check(
        f"{label}: the CSVs hold rows of the day, before 1970 and null",
        0 < len(day_ids) < len(rows)
        and any(ts is not None and ts.year < 1970 for _, ts in rows)
        and any(ts is None for _, ts in rows),
    )

    manifest = catalog_json(catalogd, f"/datasets/{name}")
    objects = manifest["objects"]
    tuples = [o.get("partition") for o in objects]
    check(f"{label}: every object of the version carries a 2-field tuple",
          all(isinstance(t, list) and len(t) == 2 for t in tuples), str(tuples))
    day_files = sum(1 for t in tuples if t and t[0] == day_number(DAY))
    bucket_of = BucketTransform(4).transform(LongType())
    bucket_17 = bucket_of(17)
    bucket_files = sum(1 for t in tuples if t and t[1] == bucket_17)
    # ingestd's day and bucket (its own Murmur3) agree with pyiceberg's transforms: each
    # upload's files are the partitions of its rows, one file each.
    for n, (csv_text, own) in enumerate(uploads, start=1):
        want = sorted({str(partition_of(i, ts, bucket_of)) for i, ts in parse_rows(csv_text)})
        got = sorted(str(obj["partition"]) for obj in own)
        check(f"{label}: upload {n}'s files are its rows' {len(want)} partitions", got == want, f"{got} != {want}")
    # Within 17's bucket, pyiceberg also skips the files whose id bounds leave 17 out.
    spanning_17 = files_spanning(uploads, 17, bucket_of)
    days_seen = {t[0] for t in tuples if t}
    check(
        f"{label}: the manifest has a pre-1970 day and the null day",
        None in days_seen and any(d is not None and d < 0 for d in days_seen),
        str(sorted(days_seen, key=str)),
    )

    catalog = RestCatalog("lakehouse", uri=f"{catalogd}/iceberg")
    table = catalog.load_table(("lakehouse", name))
    spec = [(f.name, str(f.transform)) for f in table.spec().fields]
    check(f"{label}: pyiceberg sees the spec", spec == [("ts_day", "day"), ("id_bucket", "bucket[4]")], str(spec))
    all_planned = list(table.scan().plan_files())
    check(f"{label}: pyiceberg plans every object unfiltered ({len(objects)})",
          len(all_planned) == len(objects), f"planned {len(all_planned)}")
    got = sorted(table.scan().to_arrow().column("id").to_pylist())
    check(f"{label}: pyiceberg reads every row ({len(all_ids)})", got == all_ids, f"{len(got)} rows")

    day_filter = And(GreaterThanOrEqual("ts", start.isoformat()), LessThan("ts", end.isoformat()))
    planned = list(table.scan(row_filter=day_filter).plan_files())
    days = {task.file.partition[0] for task in planned}
    check(
        f"{label}: pyiceberg plans the {day_files} files of {DAY} of {len(all_planned)}",
        len(planned) == day_files and days == {day_number(DAY)} and day_files < len(all_planned),
        f"planned {len(planned)} of days {days}",
    )
    got = sorted(table.scan(row_filter=day_filter).to_arrow().column("id").to_pylist())
    check(f"{label}: pyiceberg reads exactly the {len(day_ids)} rows of {DAY}", got == day_ids, str(got))
    planned = list(table.scan(row_filter=EqualTo("id", 17)).plan_files())
    buckets = {task.file.partition[1] for task in planned}
    check(
        f"{label}: id == 17 plans only files of bucket {bucket_17} ({bucket_files} of {len(all_planned)}): "
        f"the {spanning_17} whose ids span 17",
        buckets == {bucket_17} and len(planned) == spanning_17 and bucket_files < len(all_planned),
        f"planned {len(planned)} of buckets {buckets}",
    )
    got = table.scan(row_filter=EqualTo("id", 17)).to_arrow().column("id").to_pylist()
    check(f"{label}: pyiceberg reads the row of id 17", got == [17], str(got))

    check_duckdb(label, catalogd, table, name, start, end, day_ids, all_ids)
    check_polars(label, table, start, end, day_ids, all_ids)
    print(f"iceberg partitions {label}: {check.failures} failed")
    return 1 if check.failures else 0


def check_duckdb(label, catalogd, table, name, start, end, day_ids, all_ids):
    """DuckDB's iceberg extension through ATTACH of the REST catalog (as smoke/iceberg.py)."""
    con = attach_catalog(duckdb_connection(), catalogd, table)
    relation = f'ice.lakehouse."{name}"'
    got = [r[0] for r in con.execute(
        f"SELECT id FROM {relation} WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ ORDER BY id",
        [start.isoformat(), end.isoformat()],
    ).fetchall()]
    check(f"{label}: DuckDB reads exactly the rows of {start.date()}", got == day_ids, str(got))
    got = [r[0] for r in con.execute(f"SELECT id FROM {relation} WHERE id = 17").fetchall()]
    check(f"{label}: DuckDB reads the row of id 17", got == [17], str(got))
    got = con.execute(f"SELECT count(*), sum(id) FROM {relation}").fetchone()
    want = (len(all_ids), sum(all_ids))
    check(f"{label}: DuckDB reads every row", tuple(got) == want, f"{got} != {want}")


def check_polars(label, table, start, end, day_ids, all_ids):
    """Polars scan_iceberg on the pyiceberg table (as smoke/iceberg.py)."""
    import polars as pl

    options = polars_storage_options(table)
    scan = pl.scan_iceberg(table, storage_options=options)
    frame = scan.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).select("id").sort("id").collect()
    got = frame["id"].to_list()
    check(f"{label}: Polars reads exactly the rows of {start.date()}", got == day_ids, str(got))
    got = scan.filter(pl.col("id") == 17).select("id").collect()["id"].to_list()
    check(f"{label}: Polars reads the row of id 17", got == [17], str(got))
    got = scan.select(pl.len(), pl.col("id").sum()).collect().row(0)
    want = (len(all_ids), sum(all_ids))
    check(f"{label}: Polars reads every row", tuple(got) == want, f"{got} != {want}")


if __name__ == "__main__":
    sys.exit(main())
