"""Appends benchmark driver (scripts/bench-appends; docs/performance.md, "Tables that live").

N appends of one ~45 KiB CSV shape (2,000 rows, each upload different) to one dataset through
ingestd's /ingest, one at a time over a kept-alive connection; prints the p50 and p90 latency
per block of versions, then p50 of a catalog lookup (GET /datasets/{name}) and of the Iceberg
LoadTable at the end, and writes the numbers as JSON to the path given.

usage: bench_appends.py INGESTD CATALOGD N BLOCK OUT_JSON [OBJECTS_ROOT]
With OBJECTS_ROOT (a local storaged root), each block also records the bytes stored under
`_catalog/` and under the dataset's Iceberg metadata directory.
Only the standard library: it runs with any python3.
"""

import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

MULTIPART_BOUNDARY = "lakehousebenchboundary"


def csv_body(seed: int) -> bytes:
    """A 2,000-row CSV of ~45 KiB whose values depend on `seed` (so each upload is new)."""
    lines = ["id,event_ts,customer,amount,status"]
    for i in range(2000):
        n = seed * 2000 + i
        lines.append(
            f"{n},2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00,"
            f"customer-{n % 997},{(n * 37) % 100000 / 100:.2f},{'open' if n % 3 else 'done'}"
        )
    return ("\n".join(lines) + "\n").encode()


def multipart(data: bytes) -> bytes:
    head = (
        f"--{MULTIPART_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="append.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{MULTIPART_BOUNDARY}--\r\n".encode()


def bytes_under(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total


def timed(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    elapsed = (time.perf_counter() - start) * 1000.0
    if response.status != 200:
        raise SystemExit(f"{method} {path} answered {response.status}: {payload[:500]!r}")
    return elapsed, payload


def main() -> None:
    ingestd, catalogd, count, block, out = sys.argv[1:6]
    root = sys.argv[6] if len(sys.argv) > 6 else None
    count, block = int(count), int(block)
    ing = http.client.HTTPConnection(ingestd, timeout=120)
    cat = http.client.HTTPConnection(catalogd, timeout=120)
    headers = {"Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"}
    latencies = []
    blocks = []
    for version in range(1, count + 1):
        body = multipart(csv_body(version))
        ms, _ = timed(ing, "POST", "/ingest?name=appends&mode=append", body, headers)
        latencies.append(ms)
        if version % block == 0:
            chunk = latencies[-block:]
            chunk_sorted = sorted(chunk)
            blocks.append(
                {
                    "versions": f"{version - block + 1}-{version}",
                    "p50_ms": round(statistics.median(chunk), 2),
                    "p90_ms": round(chunk_sorted[int(len(chunk) * 0.9) - 1], 2),
                }
            )
            if root:
                blocks[-1]["catalog_bytes"] = bytes_under(os.path.join(root, "_catalog"))
                blocks[-1]["iceberg_bytes"] = bytes_under(
                    os.path.join(root, "datasets", "appends", "metadata"))
            print(f"versions {blocks[-1]['versions']}: p50 {blocks[-1]['p50_ms']} ms, "
                  f"p90 {blocks[-1]['p90_ms']} ms, stored: _catalog "
                  f"{blocks[-1].get('catalog_bytes', '-')} B, Iceberg metadata "
                  f"{blocks[-1].get('iceberg_bytes', '-')} B", flush=True)
    lookups = [timed(cat, "GET", "/datasets/appends")[0] for _ in range(50)]
    loads = [
        timed(cat, "GET", "/iceberg/v1/namespaces/lakehouse/tables/appends")[0]
        for _ in range(20)
    ]
    result = {
        "appends": count,
        "blocks": blocks,
        "lookup_p50_ms": round(statistics.median(lookups), 2),
        "load_table_p50_ms": round(statistics.median(loads), 2),
    }
    print(f"lookup p50 {result['lookup_p50_ms']} ms, LoadTable p50 {result['load_table_p50_ms']} ms")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
