"""Writes the delta CSVs of scripts/bench-merge from the bench CSV (ids 1..N in order), with
Polars reading every column as text (so the values keep the bench file's spelling and the
delta infers to the table's schema): for each fraction f, f*N/2 updates (existing ids,
`qty` plus one) and f*N/2 inserts (rows copied from random rows with new ids after N),
shuffled. `random` picks the updated ids uniformly (a feed that touches any record);
`recent` picks them among the last max(f/2, 2%) of the ids (records that change while
they are young, such as orders), so a merge can leave most files alone.

Usage: bench_merge_delta.py BENCH_CSV OUT_DIR SEED FRACTION...
Prints one JSON line: {rows, deltas: {"<fraction>-<kind>": {path, updates, inserts}}}.
"""

import json
import sys

import polars as pl


def main():
    source, out_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fractions = [float(f) for f in sys.argv[4:]]
    table = pl.read_csv(source, infer_schema=False)
    rows = table.height
    out = {"rows": rows, "deltas": {}}
    next_id = rows
    for n, fraction in enumerate(fractions):
        half = int(rows * fraction / 2)
        for k, kind in enumerate(("random", "recent")):
            pool = table if kind == "random" else table.tail(max(half, rows // 50))
            updates = pool.sample(half, seed=seed + 10 * n + k).with_columns(
                (pl.col("qty").cast(pl.Int64) + 1).cast(pl.Utf8).alias("qty")
            )
            inserts = table.sample(half, seed=seed + 10 * n + k + 5).with_columns(
                pl.Series("id", [str(i) for i in range(next_id + 1, next_id + 1 + half)])
            )
            next_id += half
            delta = pl.concat([updates, inserts]).sample(fraction=1.0, shuffle=True, seed=seed)
            path = f"{out_dir}/delta-{fraction}-{kind}.csv"
            delta.write_csv(path)
            out["deltas"][f"{fraction}-{kind}"] = {"path": path, "updates": half, "inserts": half}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
