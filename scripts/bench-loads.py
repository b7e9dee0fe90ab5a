#!/usr/bin/env python3
"""Loads against curl, one by one (docs/performance.md, "Loads from object storage").

Generates FILES CSV files of MIB MiB each (distinct rows), puts them in a bucket of moto's S3
server (started here from .venv-s3), starts storaged, catalogd and ingestd (from BIN_DIR,
default target/release) on free ports with that bucket as the source `bench`, then, ROUNDS
times, interleaved (the machine is shared: medians are what is reported):

- load: `POST /loads?wait=true` of every file into a fresh dataset;
- curl: the same files from local disk, `curl -F file=@...` one after the other into another
  fresh dataset (`mode=append`, as the load does).

For each run: wall time, files/s, MB/s (CSV bytes, 10^6) and ingestd's peak RSS over the run
(VmHWM, reset through /proc/<pid>/clear_refs before the run). Run with .venv-s3/bin/python.

Usage: .venv-s3/bin/python scripts/bench-loads.py [--files 100] [--mib 10] [--rounds 3]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(cmd, env, cwd, pattern):
    """Starts cmd; returns (process, address) once a stderr line matches pattern."""
    log = open(os.path.join(cwd, os.path.basename(cmd[0]) + ".log"), "w+")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        log.seek(0)
        found = re.search(pattern, log.read())
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    log.seek(0)
    sys.exit(f"{cmd[0]} did not start:\n{log.read()}")


def make_csv(path, n, mib):
    row = 0
    with open(path, "w") as f:
        f.write("id,file,name,amount,day,flag\n")
        written = 0
        while written < mib << 20:
            line = (
                f"{n * 10_000_000 + row},{n},name-{row % 9973},{row % 100_000}.{row % 100:02},"
                f"2026-{row % 12 + 1:02}-{row % 28 + 1:02},{'true' if row % 3 else 'false'}\n"
            )
            f.write(line)
            written += len(line)
            row += 1


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def post_json(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=3600) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bin_dir = os.environ.get("BIN_DIR", os.path.join(ROOT, "target", "release"))
    work = tempfile.mkdtemp(prefix="bench-loads-")
    procs = []
    try:
        moto, endpoint = start(
            [
                os.path.join(ROOT, ".venv-s3", "bin", "python"),
                os.path.join(ROOT, "scripts", "lib", "s3_server.py"),
                "-H",
                "127.0.0.1",
                "-p",
                "0",
            ],
            dict(os.environ),
            work,
            r"Running on (http://127\.0\.0\.1:\d+)",
        )
        procs.append(moto)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket="bench")
        files_dir = os.path.join(work, "files")
        os.makedirs(files_dir)
        paths = []
        for n in range(args.files):
            path = os.path.join(files_dir, f"part-{n:04}.csv")
            make_csv(path, n, args.mib)
            s3.upload_file(path, "bench", f"drops/part-{n:04}.csv")
            paths.append(path)
        total_bytes = sum(os.path.getsize(p) for p in paths)
        env = dict(os.environ)
        env.update(
            {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "LAKEHOUSE_LOG_FORMAT": "text",
                "LAKEHOUSE_STORAGED__BIND": "127.0.0.1:0",
                "LAKEHOUSE_CATALOGD__BIND": "127.0.0.1:0",
                "LAKEHOUSE_INGESTD__BIND": "127.0.0.1:0",
            }
        )
        listening = r"listening on (\d+\.\d+\.\d+\.\d+:\d+)"
        storaged, storaged_addr = start([os.path.join(bin_dir, "storaged")], env, work, listening)
        procs.append(storaged)
        env["LAKEHOUSE_CATALOGD__STORAGED_URL"] = f"http://{storaged_addr}"
        catalogd, catalogd_addr = start([os.path.join(bin_dir, "catalogd")], env, work, listening)
        procs.append(catalogd)
        env["LAKEHOUSE_INGESTD__STORAGED_URL"] = f"http://{storaged_addr}"
        env["LAKEHOUSE_INGESTD__CATALOGD_URL"] = f"http://{catalogd_addr}"
        env["LAKEHOUSE_INGESTD__SOURCES"] = (
            f'[{{name = "bench", url = "s3://bench/drops/", endpoint = "{endpoint}", '
            f'region = "us-east-1", allow_http = true}}]'
        )
        ingestd, ingestd_addr = start([os.path.join(bin_dir, "ingestd")], env, work, listening)
        procs.append(ingestd)
        ingestd_url = f"http://{ingestd_addr}"

        results = {"load": [], "curl": []}
        for r in range(args.rounds):
            for method in ("load", "curl") if r % 2 == 0 else ("curl", "load"):
                name = f"{method}{r}"
                reset_peak(ingestd.pid)
                started = time.monotonic()
                if method == "load":
                    answer = post_json(
                        f"{ingestd_url}/loads?wait=true",
                        {"source": "bench", "pattern": "part-*.csv", "name": name},
                    )
                    loaded = sum(1 for f in answer["files"] if f["state"] == "loaded")
                    assert answer["state"] == "done" and loaded == args.files, answer
                else:
                    for path in paths:
                        subprocess.run(
                            [
                                "curl", "-sS", "--fail-with-body", "-o", "/dev/null",
                                "-F", f"file=@{path}",
                                f"{ingestd_url}/ingest?name={name}&mode=append",
                            ],
                            check=True,
                        )
                wall = time.monotonic() - started
                rss = peak_rss_kib(ingestd.pid)
                results[method].append((wall, rss))
                print(
                    f"round {r} {method}: {wall:.2f} s, {args.files / wall:.2f} files/s, "
                    f"{total_bytes / wall / 1e6:.1f} MB/s, ingestd peak RSS {rss / 1024:.0f} MiB",
                    flush=True,
                )
        print(f"{args.files} files, {total_bytes / 1e6:.0f} MB of CSV, {args.rounds} rounds (medians):")
        for method, runs in results.items():
            wall = statistics.median(w for w, _ in runs)
            rss = statistics.median(r for _, r in runs)
            print(
                f"  {method}: {wall:.2f} s, {args.files / wall:.2f} files/s, "
                f"{total_bytes / wall / 1e6:.1f} MB/s, ingestd peak RSS {rss / 1024:.0f} MiB "
                f"(runs: {', '.join(f'{w:.2f}' for w, _ in runs)} s)"
            )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
