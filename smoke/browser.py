#!/usr/bin/env python3
"""The catalog page in a real browser: headless Chromium loads catalogd's /ui and dataset
pages after the smoke run, and the DOM it built is checked for what a reader must see.

    smoke/browser.py INGESTD_URL CATALOGD_URL OUT_DIR

First ingests a small dataset whose column name holds `<`, `&` and quotes (two versions),
then, with `chromium --headless --dump-dom`, checks that
  - /ui lists every dataset of GET /datasets,
  - each checked dataset page holds every column with its type, every version (a time
    travel link each), and the preview rows (the first rows of the latest version),
  - the nasty column name and values are shown as text (escaped), and no <script> exists,
and writes screenshots of /ui and of the nasty dataset's page at desktop and phone width to
OUT_DIR. Standard library only. Prints one PASS/FAIL line per check and exits 1 on any
failure.
"""

import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_TIMEOUT_S = 60
NASTY_COLUMN = "a<b&c \"q\" 'x'"
NASTY_VALUE = "<i>not italic</i> & \"quoted\""

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}")
    sys.stdout.flush()


def csv_field(text):
    return '"' + text.replace('"', '""') + '"'


def ingest(ingestd, name, csv_text, mode="replace", **options):
    boundary = "browser-" + uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}.csv\"\r\n"
        f"Content-Type: text/csv\r\n\r\n"
    ).encode() + csv_text.encode() + f"\r\n--{boundary}--\r\n".encode()
    query = urllib.parse.urlencode({"name": name, "mode": mode, **options})
    request = urllib.request.Request(
        f"{ingestd}/ingest?{query}",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def chromium(args, profile):
    command = [
        "timeout", str(BROWSER_TIMEOUT_S), CHROMIUM, "--headless", "--no-sandbox",
        # --disable-dev-shm-usage: a container's /dev/shm is often 64 MiB, too small for
        # Chromium's renderer, which then crashes.
        "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ] + args
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S + 10)


def dump_dom(url):
    profile = tempfile.mkdtemp(prefix="lakehouse-chromium-")
    try:
        done = chromium(["--dump-dom", url], profile)
        return done.returncode, done.stdout, done.stderr
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url, path, width, height):
    # A screenshot left by an earlier run must not pass for this one.
    if os.path.exists(path):
        os.remove(path)
    profile = tempfile.mkdtemp(prefix="lakehouse-chromium-")
    try:
        done = chromium([f"--screenshot={path}", f"--window-size={width},{height}", url], profile)
        return done.returncode == 0 and os.path.getsize(path) > 1000 if os.path.exists(path) else False
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Dom(html.parser.HTMLParser):
    """Collects, per table id, its rows as lists of (class, text) cells; every link; every
    element name."""

    def __init__(self):
        super().__init__()
        self.tables = {}
        self.links = []
        self.tags = set()
        self._table = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "table":
            self._table = attrs.get("id", "")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = [tag, attrs.get("class", ""), ""]
        elif tag == "a":
            self.links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data


def parse(dom_text):
    dom = Dom()
    dom.feed(dom_text)
    return dom


def body_rows(dom, table):
    return [row for row in dom.tables.get(table, []) if row and row[0][0] == "td"]


def check_dataset_page(catalogd, name, preview_expected):
    url = f"{catalogd}/ui/datasets/{name}"
    status, text, err = dump_dom(url)
    check(f"{name}: chromium dumps the dataset page", status == 0 and "<table" in text, err[-300:])
    dom = parse(text)
    manifest = get_json(f"{catalogd}/datasets/{name}")
    versions = get_json(f"{catalogd}/datasets/{name}/versions")["versions"]
    schema_rows = {(r[0][2], r[1][2]) for r in body_rows(dom, "schema") if len(r) >= 2}
    missing = [
        (f["name"], f["type"]) for f in manifest["schema"]["fields"]
        if (f["name"], f["type"]) not in schema_rows
    ]
    check(f"{name}: every column is shown with its type ({len(manifest['schema']['fields'])})",
          not missing, f"missing {missing}")
    links = set(dom.links)
    missing = [v["version"] for v in versions
               if f"/ui/datasets/{name}?version={v['version']}" not in links]
    check(f"{name}: every version has a time travel link ({len(versions)})", not missing,
          f"missing {missing}")
    preview = [[cell[2] for cell in row] for row in body_rows(dom, "preview")]
    expected_rows = min(20, manifest["objects"][0]["row_count"]) if manifest["objects"] else 0
    check(f"{name}: the preview shows the first {expected_rows} rows", len(preview) == expected_rows,
          f"{len(preview)} rows")
    if preview_expected is not None:
        check(f"{name}: the preview holds the ingested values",
              all(row in preview for row in preview_expected), f"{preview[:3]}")
    check(f"{name}: the page has no script element", "script" not in dom.tags)
    check(f"{name}: the page declares a phone-width viewport",
          '<meta name="viewport" content="width=device-width, initial-scale=1">' in text)
    return text, dom


def main():
    if len(sys.argv) != 4:
        print("usage: browser.py INGESTD_URL CATALOGD_URL OUT_DIR", file=sys.stderr)
        return 2
    ingestd, catalogd, out = (a.rstrip("/") for a in sys.argv[1:4])
    os.makedirs(out, exist_ok=True)
    if not os.access(CHROMIUM, os.X_OK):
        check("chromium is installed", False, f"{CHROMIUM} missing")
        return 1

    nasty = f"ui_nasty_{os.getpid()}_{int(time.time())}"
    header = f"id,{csv_field(NASTY_COLUMN)},when\n"
    ingest(ingestd, nasty, header + f"1,{csv_field(NASTY_VALUE)},2024-05-01\n2,plain,2024-05-02\n")
    ingest(ingestd, nasty, header + "3,third,2024-05-03\n", mode="append")

    # /ui lists every dataset (following the JSON API's pages; the page shows 50 a page).
    names, cursor = [], None
    while True:
        query = "?limit=1000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        listing = get_json(f"{catalogd}/datasets{query}")
        names += [d["name"] for d in listing["datasets"]]
        cursor = listing.get("next_cursor")
        if not cursor:
            break
    status, text, err = dump_dom(f"{catalogd}/ui")
    check("chromium dumps /ui", status == 0 and "<table" in text, err[-300:])
    listed = {r[0][2] for r in body_rows(parse(text), "datasets")}
    shown = names[:50]
    check(f"/ui lists every dataset ({len(shown)})", nasty in names and set(shown) <= listed,
          f"missing {sorted(set(shown) - listed)}")

    text, dom = check_dataset_page(
        catalogd, nasty,
        [["1", NASTY_VALUE, "2024-05-01"], ["2", "plain", "2024-05-02"]],
    )
    escaped = "a&lt;b&amp;c \"q\" 'x'"
    check("the nasty column name is escaped in the DOM", escaped in text and NASTY_COLUMN not in text,
          "raw or missing")
    check("the nasty value is text, not markup",
          "&lt;i&gt;not italic&lt;/i&gt; &amp;" in text and "i" not in dom.tags)
    for other in [n for n in names if n != nasty][:3]:
        check_dataset_page(catalogd, other, None)

    # The page after schema evolution (docs/contract.md section 14): statistics per column of the
    # latest schema, the older object's rows counted as nulls of the added column, and the
    # preview in the latest schema.
    evolved = f"ui_evolved_{os.getpid()}_{int(time.time())}"
    ingest(ingestd, evolved, "id,amount\n" + "".join(f"{i},{i}.5\n" for i in range(1, 1201)))
    ingest(ingestd, evolved, "id,amount,currency\n9001,1.5,EUR\n9002,2.5,USD\n",
           mode="append", schema_evolution="add_columns")
    text, dom = check_dataset_page(catalogd, evolved, [["1", "1.5", "null"]])
    check("evolved: the statistics are shown", "statistics unavailable" not in text,
          "the page says the statistics are unavailable")
    schema = {r[0][2]: [c[2] for c in r] for r in body_rows(dom, "schema")}
    currency = schema.get("currency", [])
    check("evolved: the added column has its nulls, min and max",
          len(currency) == 5 and currency[3:] == ["EUR", "USD"] and "99.8%" in currency[2],
          f"{currency}")
    headers = [c[2] for r in dom.tables.get("preview", []) for c in r if c[0] == "th"]
    check("evolved: the preview is in the latest schema", headers == ["id", "amount", "currency"],
          f"{headers}")
    check("evolved: counts have thousands separators", "1,202" in text)

    shots = [
        ("ui-evolved-desktop.png", f"{catalogd}/ui/datasets/{evolved}", 1280, 1800),
        ("ui-list-desktop.png", f"{catalogd}/ui", 1280, 900),
        ("ui-list-phone.png", f"{catalogd}/ui", 390, 844),
        ("ui-dataset-desktop.png", f"{catalogd}/ui/datasets/{nasty}", 1280, 1600),
        ("ui-dataset-phone.png", f"{catalogd}/ui/datasets/{nasty}", 390, 1800),
    ]
    flights = [n for n in names if n.startswith("flights_smoke")]
    if flights:
        shots.append(("ui-flights-desktop.png", f"{catalogd}/ui/datasets/{flights[0]}", 1280, 2000))
    for file, url, width, height in shots:
        path = os.path.join(out, file)
        check(f"screenshot {file} ({width}x{height})", screenshot(url, path, width, height))
    print(f"screenshots in {out}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
