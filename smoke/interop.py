#!/usr/bin/env python3
"""Interop test: every Parquet object the catalog references is read back with pyarrow and
with DuckDB, and every value is compared with the CSV it was made from.

    interop.py CATALOGD_URL STORAGED_URL CSV_DIR

The CSV of an object is found by the SHA-256 the manifest records in `source.csv_sha256`
(the last object of each version is that version's upload; a `.csv.gz` is gunzipped, and the
text decoded with the manifest's `options.encoding`); CSV_DIR holds the uploaded
files (the smoke run's SMOKE_WORK_DIR). Expected values are computed here, independently of
the Rust converter, from the CSV text and the type the manifest gives each column
(docs/contract.md section 3). Prints one PASS/FAIL line per object and reader, then
"N passed, M failed"; exits 1 on any failure.

A latest version whose objects were written with different schemas (columns added by
schema evolution, docs/contract.md section 3) is also read whole through pyarrow's dataset API,
unifying the files' schemas by name: it must have the manifest's columns and row count, and
the columns an older object lacks must read as nulls in its rows.
"""

import csv
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import sys
import tempfile
import urllib.request

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

DUCKDB_TYPES = {
    "bool": "BOOLEAN",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "date32": "DATE",
    "time64[us]": "TIME",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
    "timestamp[us]": "TIMESTAMP",
    "utf8": "VARCHAR",
}


def get_json(url):
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def expected_value(text, type_name, null_values, order=None):
    if text == "" or text in null_values:
        return None
    if type_name.startswith(("date32", "timestamp")) and text[4:5] == "/":
        text = text[:4] + "-" + text[5:7] + "-" + text[8:]  # YYYY/MM/DD (rule set 2)
    if type_name == "bool":
        return text.lower() == "true"
    if type_name == "int64":
        return int(text)
    if type_name == "float64":
        return float(text)
    if type_name == "date32":
        if order is not None:  # P/Q/YYYY read day first or month first (rule set 2)
            p, q, y = (int(part) for part in text.replace("-", "/").replace(".", "/").split("/"))
            return dt.date(y, q, p) if order == "DMY" else dt.date(y, p, q)
        return dt.date.fromisoformat(text)
    if type_name == "time64[us]":
        return dt.time.fromisoformat(text)
    if type_name == "timestamp[us, tz=UTC]":
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    if type_name == "timestamp[us]":
        return dt.datetime.fromisoformat(text)
    return text


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def csv_text(csv_path, manifest):
    """The uploaded file as text: gunzipped when the manifest's source says gzip, decoded
    with the encoding the manifest records (docs/contract.md section 3), by Python's own codecs."""
    with open(csv_path, "rb") as f:
        data = f.read()
    if (manifest.get("source") or {}).get("compression") == "gzip":
        data = gzip.decompress(data)
    encoding = manifest["options"].get("encoding", "utf-8")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        codec = "utf-16"  # the BOM says which, and is dropped
    else:
        codec = {"utf-8": "utf-8-sig", "windows-1252": "cp1252"}.get(encoding, encoding)
    return data.decode(codec)


def expected_rows(csv_path, manifest):
    options = manifest["options"]
    nulls = set(options.get("null_values", []))
    types = [f["type"] for f in manifest["schema"]["fields"]]
    date_orders = options.get("date_orders", {})
    orders = [date_orders.get(f["name"]) for f in manifest["schema"]["fields"]]
    reader = csv.reader(io.StringIO(csv_text(csv_path, manifest), newline=""), delimiter=options["delimiter"])
    next(reader)
    for record in reader:
        if not record:
            continue
        yield tuple(expected_value(v, t, nulls, o) for v, t, o in zip(record, types, orders))


MISSING = object()


def compare(name, expected, actual):
    """Returns None when `actual` holds exactly the rows of `expected`, in order, else a
    message naming the first differing row and column, or the first row one side lacks."""
    count = 0
    for row_index, (want, got) in enumerate(itertools.zip_longest(expected, actual, fillvalue=MISSING)):
        if got is MISSING:
            return f"row {row_index} is missing: the CSV has more rows ({want!r} next)"
        if want is MISSING:
            return f"row {row_index} is extra: the CSV has {row_index} rows ({got!r})"
        count += 1
        if len(want) != len(got):
            return f"row {row_index}: {len(got)} columns, want {len(want)}"
        for column, (w, g) in enumerate(zip(want, got)):
            if not same(w, g):
                return f"row {row_index} column {name[column]}: got {g!r}, want {w!r}"
    return None if count > 0 else "no rows compared"


def check_evolved(manifest, storaged, tmp):
    """None when the latest version `manifest` reads whole through pyarrow's dataset API with
    its objects' schemas unified by name, else what is wrong; "skip" when all its objects
    share one schema."""
    names = [f["name"] for f in manifest["schema"]["fields"]]
    files = []
    for obj in manifest["objects"]:
        local = os.path.join(tmp, obj["sha256"] + ".parquet")
        if not os.path.exists(local):
            urllib.request.urlretrieve(f"{storaged}/objects/{obj['key']}", local)
        files.append(local)
    schemas = [pq.read_schema(f) for f in files]
    if all(s.names == names for s in schemas):
        return "skip"
    unified = pa.unify_schemas(schemas)
    if unified.names != names:
        return f"unified columns {unified.names}, want {names}"
    dataset = ds.dataset(files, format="parquet", schema=unified)
    table = dataset.to_table()
    if table.num_rows != manifest["row_count"]:
        return f"{table.num_rows} rows, manifest says {manifest['row_count']}"
    for fragment, schema in zip(dataset.get_fragments(), schemas):
        rows = fragment.to_table(schema=unified)
        for name in names:
            if name not in schema.names and rows.column(name).null_count != rows.num_rows:
                return f"{os.path.basename(fragment.path)[:12]}: column {name} is not all null"
    return None


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    catalogd, storaged, csv_dir = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3]
    csv_by_sha = {}
    for entry in os.listdir(csv_dir):
        path = os.path.join(csv_dir, entry)
        if entry.endswith((".csv", ".csv.gz")) and os.path.isfile(path):
            with open(path, "rb") as f:
                csv_by_sha[hashlib.sha256(f.read()).hexdigest()] = path

    passed = failed = 0

    def result(label, error):
        nonlocal passed, failed
        if error is None:
            print(f"PASS {label}")
            passed += 1
        else:
            print(f"FAIL {label}: {error}")
            failed += 1

    checked = set()
    cursor = None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    with tempfile.TemporaryDirectory() as tmp:
        while True:
            url = f"{catalogd}/datasets?limit=100" + (f"&cursor={cursor}" if cursor else "")
            page = get_json(url)
            for dataset in page["datasets"]:
                name = dataset["name"]
                versions = get_json(f"{catalogd}/datasets/{name}/versions")["versions"]
                latest = get_json(f"{catalogd}/datasets/{name}")
                error = check_evolved(latest, storaged, tmp)
                if error != "skip":
                    result(f"{name} v{latest['version']} pyarrow dataset, schemas unified by name", error)
                for summary in versions:
                    manifest = get_json(f"{catalogd}/datasets/{name}/versions/{summary['version']}")
                    obj = manifest["objects"][-1]
                    if obj["key"] in checked:
                        continue
                    checked.add(obj["key"])
                    csv_path = csv_by_sha.get((manifest.get("source") or {}).get("csv_sha256"))
                    label = f"{name} v{manifest['version']} {obj['key'].rsplit('/', 1)[-1][:12]}"
                    if csv_path is None:
                        result(label, "its source CSV is not in " + csv_dir)
                        continue
                    local = os.path.join(tmp, obj["sha256"] + ".parquet")
                    urllib.request.urlretrieve(f"{storaged}/objects/{obj['key']}", local)
                    with open(local, "rb") as f:
                        digest = hashlib.sha256(f.read()).hexdigest()
                    result(f"{label} bytes hash to the key", None if digest == obj["sha256"] else digest)
                    names = [f["name"] for f in manifest["schema"]["fields"]]
                    types = [f["type"] for f in manifest["schema"]["fields"]]

                    # The row count comes from the CSV, never from the manifest under test.
                    expected = list(expected_rows(csv_path, manifest))
                    result(
                        f"{label} manifest row count",
                        None if obj["row_count"] == len(expected)
                        else f"manifest says {obj['row_count']}, the CSV has {len(expected)} rows",
                    )
                    table = pq.read_table(local)
                    error = None
                    if table.num_rows != len(expected):
                        error = f"{table.num_rows} rows, the CSV has {len(expected)}"
                    elif table.column_names != names:
                        error = f"columns {table.column_names}, want {names}"
                    else:
                        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
                        error = compare(names, expected, zip(*columns))
                    result(f"{label} pyarrow ({table.num_rows} rows, {os.path.basename(csv_path)})", error)

                    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{local}')").fetchall()
                    got_types = [row[1] for row in described]
                    want_types = [DUCKDB_TYPES[t] for t in types]
                    if got_types != want_types:
                        result(f"{label} duckdb types", f"{got_types}, want {want_types}")
                        continue
                    rows = con.execute(f"SELECT * FROM read_parquet('{local}')").fetchall()
                    error = None if len(rows) == len(expected) else f"{len(rows)} rows, the CSV has {len(expected)}"
                    error = error or compare(names, expected, rows)
                    result(f"{label} duckdb ({len(rows)} rows)", error)
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if passed + failed == 0:
        print("FAIL no objects found in the catalog")
        failed += 1
    print(f"interop: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
