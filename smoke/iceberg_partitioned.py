"""pyiceberg reads the Iceberg projection of a partitioned dataset (docs/contract.md section
10), metadata only: no service, no data file.

Usage:
    LAKEHOUSE_ICEBERG_DUMP=DIR cargo test -p lakehouse-iceberg --test partitioned dump
    .venv-iceberg/bin/python smoke/iceberg_partitioned.py DIR

The test writes a table `events` (columns id long, name string, ts timestamptz; partition_by
`day(ts),bucket(4,id),name`) of ten versions: nine appends of one object each (object n:
day 19725 + n % 3, bucket n % 4, name `n<n>`, null when n % 5 == 0), merged down to at most 4
manifests, then a compaction of objects 1 and 2 into object 10. Checks that pyiceberg finds
the spec, the summaries of each manifest, each live file's partition tuple, and prunes with
filters on the source columns (through the partition values and the summaries). Prints one
PASS/FAIL line per check; exit status 1 on a failure.
"""

import datetime
import struct
import sys

from pyiceberg.expressions import EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.table import StaticTable

from checks import Checks



check = Checks()


def tuple_of(n):
    return (19725 + n % 3, n % 4, None if n % 5 == 0 else f"n{n}")


root = sys.argv[1]
table = StaticTable.from_metadata(f"file://{root}/datasets/events/metadata/v10.metadata.json")
spec = table.spec()
check(
    "spec",
    [(f.field_id, f.name, f.source_id, str(f.transform)) for f in spec.fields]
    == [(1000, "ts_day", 3, "day"), (1001, "id_bucket", 1, "bucket[4]"), (1002, "name", 2, "identity")],
    str(spec),
)

live = {3, 4, 5, 6, 7, 8, 9, 10}
files = list(table.scan().plan_files())
numbers = {}
for task in files:
    n = int(task.file.file_path.rsplit("/", 1)[1].split(".")[0], 16)
    numbers[n] = task.file.partition
check("live files", set(numbers) == live, str(sorted(numbers)))
for n, partition in sorted(numbers.items()):
    day, bucket, name = tuple_of(n)
    got = (partition[0], partition[1], partition[2])
    check(f"object {n}'s partition", got == (day, bucket, name), str(got))

for manifest in table.current_snapshot().manifests(table.io):
    entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
    tuples = [tuple_of(int(e.data_file.file_path.rsplit("/", 1)[1].split(".")[0], 16)) for e in entries]
    summaries = manifest.partitions or []
    check(f"{manifest.manifest_path.rsplit('/', 1)[1]}: 3 summaries", len(summaries) == 3)
    days = [t[0] for t in tuples]
    buckets = [t[1] for t in tuples]
    names = [t[2] for t in tuples if t[2] is not None]
    expected = [
        (False, struct.pack("<i", min(days)), struct.pack("<i", max(days))),
        (False, struct.pack("<i", min(buckets)), struct.pack("<i", max(buckets))),
        (
            len(names) < len(tuples),
            min(names).encode() if names else None,
            max(names).encode() if names else None,
        ),
    ]
    got = [(s.contains_null, s.lower_bound, s.upper_bound) for s in summaries]
    check("  summaries", got == expected, f"{got} != {expected}")


def planned(expr):
    return len(list(table.scan(row_filter=expr).plan_files()))


epoch = datetime.date(1970, 1, 1)
day_19726 = (epoch + datetime.timedelta(days=19726)).isoformat()
check("name = n3 plans 1 file", planned(EqualTo("name", "n3")) == 1)
check("name = n1 (compacted away) plans none", planned(EqualTo("name", "n1")) == 0)
check(
    "ts >= day 19726 plans the 5 files of days 19726-19727",
    planned(GreaterThanOrEqual("ts", f"{day_19726}T00:00:00+00:00")) == 5,
)
check("ts before day 19725 plans none", planned(LessThan("ts", "2024-01-03T00:00:00+00:00")) == 0)
sys.exit(1 if check.failures else 0)
