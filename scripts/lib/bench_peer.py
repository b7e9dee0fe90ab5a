"""One file-to-file CSV -> Snappy Parquet conversion by a peer tool, for scripts/bench.

usage: bench_peer.py duckdb|polars IN.csv OUT.parquet [PARTITION_BY]
Prints one JSON line: {"wall_s": ..., "cpu_s": ..., "peak_rss_kib": ..., "out_bytes": ...,
"files": ...}. With PARTITION_BY (our syntax: `month(col)`, `day(col)`, `bucket(N,col)` or a
column, comma-separated; DuckDB only) OUT.parquet is a directory written by DuckDB's
`COPY ... (PARTITION_BY ...)` over the same values computed in SQL (DuckDB's `hash` is not
Iceberg's Murmur3, so buckets differ in content, not in count).
(cpu_s: user + system CPU of the whole process, import included). BENCH_PEER_THREADS=N
sets DuckDB's `threads`; scripts/bench sets POLARS_MAX_THREADS for Polars, which reads it at
import. The wall time
covers the conversion call only (the import of the tool is not counted); the peak RSS is the
whole process's (getrusage ru_maxrss, KiB on Linux), so run one conversion per process.
"""

import json
import os
import resource
import sys
import time

import re
import shutil

tool, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
partition_by = sys.argv[4] if len(sys.argv) > 4 else ""
threads = os.environ.get("BENCH_PEER_THREADS", "")
if os.path.isdir(dst):
    shutil.rmtree(dst)
elif os.path.exists(dst):
    os.remove(dst)


def duckdb_partition_columns(spec: str):
    """Our partition_by as DuckDB SELECT expressions named p0, p1, ..."""
    exprs = []
    for i, item in enumerate(re.split(r",(?![^(]*\))", spec)):
        item = item.strip()
        m = re.fullmatch(r"(\w+)\((?:(\d+)\s*,\s*)?(\w+)\)", item)
        if not m:
            exprs.append(f'"{item}" AS p{i}')
            continue
        fn, n, col = m.groups()
        expr = {
            "year": f"year({col})",
            "month": f"strftime({col}, '%Y-%m')",
            "day": f"CAST({col} AS DATE)",
            "hour": f"strftime({col}, '%Y-%m-%d %H')",
            "bucket": f"hash({col}) % {n}",
            "truncate": f"left({col}, {n})",
        }[fn]
        exprs.append(f"{expr} AS p{i}")
    return exprs


if tool == "duckdb" and partition_by:
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    exprs = duckdb_partition_columns(partition_by)
    names = ", ".join(f"p{i}" for i in range(len(exprs)))
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT *, {', '.join(exprs)} FROM read_csv('{src}')) TO '{dst}' "
        f"(FORMAT parquet, COMPRESSION snappy, PARTITION_BY ({names}))"
    )
    wall = time.perf_counter() - started
elif partition_by:
    sys.exit(f"{tool}: no partitioned conversion here")
elif tool == "duckdb":
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    started = time.perf_counter()
    con.execute(
        f"COPY (FROM read_csv('{src}')) TO '{dst}' (FORMAT parquet, COMPRESSION snappy)"
    )
    wall = time.perf_counter() - started
elif tool == "polars":
    import polars as pl

    started = time.perf_counter()
    pl.scan_csv(src).sink_parquet(dst, compression="snappy")
    wall = time.perf_counter() - started
else:
    sys.exit(f"unknown tool {tool}")
usage = resource.getrusage(resource.RUSAGE_SELF)
if os.path.isdir(dst):
    files = [os.path.join(d, f) for d, _, fs in os.walk(dst) for f in fs]
else:
    files = [dst]
print(
    json.dumps(
        {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_kib": usage.ru_maxrss,
            "out_bytes": sum(os.path.getsize(f) for f in files),
            "files": len(files),
        }
    )
)
