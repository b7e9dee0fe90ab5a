"""The peer of scripts/bench-merge: the same merge through pyiceberg's `Table.upsert`, on a
table of the same bench CSV in a local SQLite catalog (a warehouse directory of plain
files), each step in a process of its own so that its peak RSS is its own.

Usage:
  bench_merge_pyiceberg.py load WAREHOUSE BENCH_CSV     -> the table `bench.t` from the CSV
  bench_merge_pyiceberg.py upsert WAREHOUSE DELTA_CSV   -> upsert by `id`
Each prints one JSON line: {wall_s, peak_rss_kib, rows_updated, rows_inserted}.
"""

import json
import resource
import sys
import time


def catalog(warehouse):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("bench", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")


def main():
    import pyarrow as pa
    import pyarrow.csv as pacsv

    step, warehouse, path = sys.argv[1], sys.argv[2], sys.argv[3]
    started = time.monotonic()
    result = {}
    cat = catalog(warehouse)
    if step == "load":
        # The bench file's comments hold line breaks inside quotes.
        data = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
        # Iceberg (v2) timestamps are microseconds; pyarrow reads nanoseconds.
        data = data.cast(pa.schema([
            pa.field(f.name, pa.timestamp("us", f.type.tz)) if pa.types.is_timestamp(f.type) else f
            for f in data.schema
        ]))
        cat.create_namespace_if_not_exists("bench")
        table = cat.create_table("bench.t", schema=data.schema)
        table.append(data)
    else:
        table = cat.load_table("bench.t")
        schema = table.schema().as_arrow()
        types = {field.name: field.type for field in schema}
        delta = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
        delta = delta.select(schema.names).cast(schema)
        outcome = table.upsert(delta, join_cols=["id"])
        result = {"rows_updated": outcome.rows_updated, "rows_inserted": outcome.rows_inserted}
    result["wall_s"] = round(time.monotonic() - started, 3)
    result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
