"""HTTP helpers the Python smoke scripts share (iceberg.py, appends.py): an upload to
ingestd's `POST /ingest` (docs/contract.md section 6) and a GET of catalogd's JSON API.

The scripts run as `python smoke/<script>.py`, so this directory is first on sys.path and
`from lakehouse_http import ...` finds this module. Standard library only: it runs on any of
the venvs scripts/test makes.
"""

import json
import urllib.request
import uuid


def ingest(ingestd, name, csv_text, mode, extra="", filename=None):
    """Uploads csv_text as dataset `name` with `mode` (replace or append); `extra` is more of
    the query string ("&schema_evolution=add_columns"), `filename` the multipart file name
    (default `<name>.csv`). Returns ingestd's JSON answer; an error status raises."""
    filename = filename or f"{name}.csv"
    boundary = "smoke-" + uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + csv_text.encode() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{ingestd}/ingest?name={name}&mode={mode}{extra}",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def catalog_json(catalogd, path):
    """The JSON answer of catalogd to GET `path` (e.g. /datasets/<name>)."""
    with urllib.request.urlopen(f"{catalogd}{path}", timeout=30) as response:
        return json.load(response)
