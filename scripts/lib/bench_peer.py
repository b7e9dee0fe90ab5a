"""One file-to-file CSV -> Snappy Parquet conversion by a peer tool, for scripts/bench.

usage: bench_peer.py duckdb|polars IN.csv OUT.parquet
Prints one JSON line: {"wall_s": ..., "cpu_s": ..., "peak_rss_kib": ..., "out_bytes": ...}
(cpu_s: user + system CPU of the whole process, import included). The wall time
covers the conversion call only (the import of the tool is not counted); the peak RSS is the
whole process's (getrusage ru_maxrss, KiB on Linux), so run one conversion per process.
"""

import json
import os
import resource
import sys
import time

tool, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
if os.path.exists(dst):
    os.remove(dst)
if tool == "duckdb":
    import duckdb

    con = duckdb.connect()
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
print(
    json.dumps(
        {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_kib": usage.ru_maxrss,
            "out_bytes": os.path.getsize(dst),
        }
    )
)
