#!/usr/bin/env python3
"""Checks the three services' GET /metrics after smoke/smoke.sh ran against a fresh trio.

Usage: metrics.py INGESTD_URL CATALOGD_URL STORAGED_URL LEDGER

Each page is parsed with the Prometheus text parser of the `prometheus-client` package
(scripts/requirements-ops.txt); a page it cannot parse fails. The counters must have moved by
exactly what smoke.sh did, computed from LEDGER (smoke.sh's $WORK/ingests.tsv: one line per
POST /ingest with its status, the uploaded file and the JSON answer), not from fixed numbers.
Prints one PASS/FAIL line per check; exits 1 on any failure.
"""

import collections
import json
import os
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS metrics: {name}")
    else:
        failed += 1
        print(f"FAIL metrics: {name}{': ' + detail if detail else ''}")


def scrape(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        content_type = response.headers.get("content-type", "")
        return content_type, response.read().decode()


def samples(page):
    """{(sample name, frozenset(labels)): value} of a parsed page."""
    out = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(parsed, name, **labels):
    """The sample `name` with exactly `labels`; None when the page has no series of `name`
    at all (the checks then fail: an exported metric never vanishes), 0 when only that
    label combination is absent (a labelled counter that was never incremented)."""
    if not any(n == name for n, _ in parsed):
        return None
    return parsed.get((name, frozenset(labels.items())), 0.0)


def total(parsed, name, **labels):
    """Sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in parsed.items() if n == name and want <= ls)


def main():
    ingestd, catalogd, storaged, ledger_path = sys.argv[1:5]
    ledger = []
    with open(ledger_path) as f:
        for line in f:
            status, path, body = line.rstrip("\n").split("\t", 2)
            ledger.append((int(status), path, json.loads(body) if body else {}))

    def outcome(status, body):
        if status == 200:
            return "existing" if body["existing"] else "ok"
        return body["error"]["code"]

    outcomes = collections.Counter(outcome(s, b) for s, _, b in ledger)
    succeeded = [(p, b) for s, p, b in ledger if s == 200]
    rows = sum(b["row_count"] for _, b in succeeded)
    csv_bytes = sum(os.path.getsize(p) for p, _ in succeeded)
    parquet_bytes = sum(b["parquet_size"] for _, b in succeeded)
    committed = sum(1 for _, b in succeeded if not b["existing"])
    names = {b["manifest"]["name"] for _, b in succeeded}
    print(f"smoke made {len(ledger)} ingests: {dict(outcomes)}, {rows} rows, "
          f"{committed} versions committed")

    pages = {}
    for service, url in [("ingestd", ingestd), ("catalogd", catalogd), ("storaged", storaged)]:
        content_type, page = scrape(url)
        check(f"{service} /metrics is text/plain version 0.0.4",
              content_type.startswith("text/plain; version=0.0.4"), content_type)
        try:
            parsed = samples(page)
        except Exception as error:  # the parser's own error says what is wrong
            check(f"{service} /metrics parses as Prometheus text", False, repr(error))
            continue
        check(f"{service} /metrics parses as Prometheus text", True)
        families = {n for n, _ in parsed}
        prefix = f"lakehouse_{service}_"
        check(f"{service} families are named {prefix}*",
              all(n.startswith(prefix) for n in families),
              str(sorted(n for n in families if not n.startswith(prefix))))
        routes = {dict(ls).get("route") for _, ls in parsed} - {None}
        check(f"{service} labels routes by template, never a dataset name",
              all(r == "unmatched" or r.startswith("/") for r in routes)
              and not any(name in r for r in routes for name in names), str(sorted(routes)))
        pages[service] = parsed

    if "ingestd" in pages:
        m = pages["ingestd"]
        for o in sorted(set(outcomes) | {"ok", "existing"}):
            got = value(m, "lakehouse_ingestd_ingests_total", outcome=o)
            check(f"ingests with outcome {o} = {outcomes[o]}", got == outcomes[o], f"got {got}")
        got = total(m, "lakehouse_ingestd_ingests_total")
        check(f"ingests of every outcome = {len(ledger)}", got == len(ledger), f"got {got}")
        got = value(m, "lakehouse_ingestd_ingested_rows_total")
        check(f"rows ingested = {rows}", got == rows, f"got {got}")
        got = value(m, "lakehouse_ingestd_ingested_csv_bytes_total")
        check(f"CSV bytes ingested = {csv_bytes}", got == csv_bytes, f"got {got}")
        got = value(m, "lakehouse_ingestd_ingested_parquet_bytes_total")
        check(f"Parquet bytes ingested = {parquet_bytes}", got == parquet_bytes, f"got {got}")
        for stage in ["lookup", "receive", "pass2", "put", "register"]:
            got = value(m, "lakehouse_ingestd_ingest_stage_duration_seconds_count", stage=stage)
            check(f"stage {stage} timed once per successful ingest ({len(succeeded)})",
                  got == len(succeeded), f"got {got}")
        got = value(m, "lakehouse_ingestd_ingests_in_flight")
        check("no ingest in flight after the run", got == 0, f"got {got}")
        got = value(m, "lakehouse_ingestd_busy_refusals_total")
        check(f"busy refusals = {outcomes['busy']}", got == outcomes["busy"], f"got {got}")
        got = total(m, "lakehouse_ingestd_http_requests_total", method="POST", route="/ingest")
        check(f"POST /ingest requests = {len(ledger)}", got == len(ledger), f"got {got}")
        got = total(m, "lakehouse_ingestd_http_request_duration_seconds_count",
                    method="POST", route="/ingest")
        check(f"POST /ingest latencies = {len(ledger)}", got == len(ledger), f"got {got}")

    if "catalogd" in pages:
        m = pages["catalogd"]
        got = value(m, "lakehouse_catalogd_versions_committed_total")
        check(f"versions committed = {committed}", got == committed, f"got {got}")
        # smoke.sh ingests one at a time, so ingestd's own check (before anything is written)
        # refuses every drift; none reaches catalogd's register.
        got = value(m, "lakehouse_catalogd_drift_refusals_total")
        check("drift refusals at catalogd = 0 (ingestd refused each drift first)",
              got == 0, f"got {got}")
        got = total(m, "lakehouse_catalogd_http_requests_total", method="POST",
                    route="/datasets/{name}/versions", status="200")
        check(f"registers answered 200 = {len(succeeded)}", got == len(succeeded), f"got {got}")

    if "storaged" in pages:
        m = pages["storaged"]
        new_parquet = sum(b["parquet_size"] for _, b in succeeded if not b["existing"])
        got = value(m, "lakehouse_storaged_written_bytes_total")
        check(f"bytes written >= the new Parquet objects' {new_parquet}",
              got is not None and got >= new_parquet, f"got {got}")
        got = value(m, "lakehouse_storaged_read_bytes_total")
        first = succeeded[0][1]["parquet_size"] if succeeded else 0
        check(f"bytes read >= the object smoke.sh downloaded ({first})", got is not None and got >= first,
              f"got {got}")

    print(f"metrics: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
