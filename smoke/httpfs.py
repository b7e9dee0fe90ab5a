#!/usr/bin/env python3
"""DuckDB reads datasets straight from storaged over HTTP (httpfs, Range requests).

Usage: httpfs.py INGESTD_URL CATALOGD_URL STORAGED_URL [FLIGHTS_CSV]

Runs on the `.venv-httpfs` venv made by scripts/test: duckdb==1.5.5 plus the PyPI package
duckdb-extension-httpfs==1.5.5, whose extension file is loaded with LOAD '<path>' on a
connection with allow_unsigned_extensions (DuckDB cannot download extensions here).

1. A small CSV with every column type is ingested; DuckDB's
   read_parquet('http://<storaged>/objects/<key>') must return exactly the CSV's rows,
   value by value (compared with the CSV parsed by Python's csv module).
2. When FLIGHTS_CSV is given, it is ingested too (336,776 rows, a multi-megabyte Parquet
   that httpfs reads with several Range requests) and compared with DuckDB's own read of the
   CSV: same row count and no row in one but not the other (EXCEPT ALL both ways).

Prints PASS/FAIL lines; exits non-zero on any failure.
"""
import csv
import datetime
import glob
import io
import json
import os
import sys
import urllib.request
import uuid

import duckdb

failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures += 1


def ingest(ingestd, name, path, query=""):
    boundary = "httpfs-" + uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n"
        f"Content-Type: text/csv\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{ingestd}/ingest?name={name}{query}",
        data=body,
        method="POST",
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def connect():
    import duckdb_extension_httpfs

    base = os.path.dirname(duckdb_extension_httpfs.__file__)
    found = glob.glob(os.path.join(base, "**", "httpfs.duckdb_extension"), recursive=True)
    if not found:
        raise SystemExit(f"no httpfs.duckdb_extension under {base}")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{found[0]}'")
    return con


TYPED_CSV = "\n".join(
    [
        "id,name,price,active,day,at,local",
        "1,alpha,1.5,true,2024-01-02,2024-01-02T03:04:05Z,2024-01-02 03:04:05",
        '2,"be, ta",-2.25,FALSE,1999-12-31,2024-06-30T23:59:59.123456+02:00,2000-01-01 00:00:00.5',
        "3,,,,,,",
        '4,"quote ""q""",1e3,True,2024-02-29,1970-01-01T00:00:00Z,1970-01-01 00:00:00',
        "",
    ]
)


def expected_typed_rows():
    def parse_ts(text, zoned):
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.datetime.fromisoformat(text.replace(" ", "T"))
        if zoned:
            return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value

    rows = []
    for record in csv.DictReader(io.StringIO(TYPED_CSV)):
        null = lambda v, f: None if v == "" else f(v)  # noqa: E731
        rows.append(
            (
                int(record["id"]),
                null(record["name"], str),
                null(record["price"], float),
                null(record["active"], lambda v: v.lower() == "true"),
                null(record["day"], datetime.date.fromisoformat),
                null(record["at"], lambda v: parse_ts(v, True)),
                null(record["local"], lambda v: parse_ts(v, False)),
            )
        )
    return rows


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    ingestd, catalogd, storaged = sys.argv[1:4]
    flights = sys.argv[4] if len(sys.argv) > 4 else None
    work = os.environ.get("HTTPFS_WORK_DIR", "/tmp")
    os.makedirs(work, exist_ok=True)
    con = connect()
    con.execute("SET TimeZone = 'UTC'")

    typed_path = os.path.join(work, "typed.csv")
    with open(typed_path, "w") as f:
        f.write(TYPED_CSV)
    answer = ingest(ingestd, "httpfs_typed", typed_path)
    url = f"{storaged}/objects/{answer['parquet_key']}"
    # Zoned timestamps come back as UTC wall-clock values for the comparison.
    got = con.execute(
        """SELECT id, name, price, active, day, timezone('UTC', "at"), "local" """
        f"FROM read_parquet('{url}') ORDER BY id"
    ).fetchall()
    expected = expected_typed_rows()
    check(got == expected, f"typed dataset over http equals the CSV ({len(got)} rows)")
    if got != expected:
        print(f"  got:      {got}\n  expected: {expected}")

    if flights:
        answer = ingest(ingestd, "httpfs_flights", flights, "&null_values=NA")
        url = f"{storaged}/objects/{answer['parquet_key']}"
        remote = f"read_parquet('{url}')"
        local = f"read_csv('{flights}', nullstr='NA', header=true)"
        n_remote = con.execute(f"SELECT count(*) FROM {remote}").fetchone()[0]
        n_local = con.execute(f"SELECT count(*) FROM {local}").fetchone()[0]
        check(n_remote == n_local == answer["row_count"], f"flights row count over http: {n_remote}")
        con.execute(f"CREATE TABLE remote AS SELECT * FROM {remote}")
        con.execute(f"CREATE TABLE csv AS SELECT * FROM {local}")
        # Align column types on the Parquet's (the lakehouse's inference) before comparing.
        cols = con.execute("SELECT column_name, column_type FROM (DESCRIBE remote)").fetchall()
        cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in cols)
        only_csv = con.execute(
            f"SELECT count(*) FROM (SELECT {cast} FROM csv EXCEPT ALL SELECT * FROM remote)"
        ).fetchone()[0]
        only_remote = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM remote EXCEPT ALL SELECT {cast} FROM csv)"
        ).fetchone()[0]
        check(
            only_csv == 0 and only_remote == 0,
            f"flights rows over http equal the CSV's (only in CSV: {only_csv}, only in Parquet: {only_remote})",
        )

    print(f"httpfs: {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
