#!/usr/bin/env bash
# The README's walkthrough, run as printed from a fresh clone (docs/contract.md section 14): the
# `sh` blocks between `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->`, in a
# `git clone` of this repository (so only committed files, examples/ included, are there),
# against a running trio. The one change made to the text: the default addresses
# 127.0.0.1:8081/8082/8083 become the trio's (it runs on free ports), and `target/release`
# in the clone is a link to BIN_DIR (the binaries already built). Then the README's links
# are checked to name files the repository has.
#
# Usage: smoke/walkthrough.sh INGESTD_URL CATALOGD_URL STORAGED_URL [BIN_DIR]
# Prints PASS/FAIL lines; exit status 1 when any check failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ingestd=$1 catalogd=$2 storaged=$3
bin=${4:-${CARGO_TARGET_DIR:-$root/target}/debug}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }

git clone --quiet "$root" "$work/clone"
clone=$work/clone
for file in examples/sales.csv examples/flights.csv examples/weather.csv; do
  if [ -s "$clone/$file" ]; then pass "the clone has $file"; else fail "the clone lacks $file"; fi
done
mkdir -p "$clone/target"
ln -s "$bin" "$clone/target/release"

# The blocks, as printed but for the addresses.
awk '/<!-- walkthrough:begin -->/ {on = 1} /<!-- walkthrough:end -->/ {on = 0}
     on && /^```sh$/ {block = 1; next} on && /^```$/ {block = 0; next} on && block {print}' \
  "$clone/README.md" |
  sed -e "s#http://127.0.0.1:8081#$ingestd#g" -e "s#http://127.0.0.1:8082#$catalogd#g" \
    -e "s#http://127.0.0.1:8083#$storaged#g" > "$work/walkthrough.sh"
lines=$(grep -cv '^\s*\(#\|$\)' "$work/walkthrough.sh")
if [ "$lines" -ge 20 ]; then pass "the walkthrough has $lines commands"; else fail "only $lines commands found"; fi

# The CLI finds the trio through the environment, as the README says.
(cd "$clone" && LAKEHOUSE_INGESTD_URL=$ingestd LAKEHOUSE_CATALOGD_URL=$catalogd \
  LAKEHOUSE_STORAGED_URL=$storaged bash "$work/walkthrough.sh") > "$work/out.txt" 2>&1
status=$?
if [ "$status" -eq 0 ]; then pass "the walkthrough ran to its end"; else fail "the walkthrough ended with status $status"; fi

expect() { # expect DESCRIPTION PATTERN: the walkthrough's output matches PATTERN
  if grep -qE -- "$2" "$work/out.txt"; then pass "$1"; else fail "$1: no match for $2"; fi
}
refuse() { # refuse DESCRIPTION PATTERN: it does not
  if grep -qE -- "$2" "$work/out.txt"; then fail "$1: $(grep -m1 -E -- "$2" "$work/out.txt")"; else pass "$1"; fi
}
refuse "no command failed to find a file, a service or itself" \
  "curl: \(|command not found|No such file|cannot read|cannot reach|Traceback"
expect "flights ingested with its 3,000 rows" '"row_count":3000'
expect "the same bytes again are existing" '"existing":true'
expect "a misspelt option names the closest known one" 'did you mean `null_values`\?'
expect "another file's columns are a drift" '"code":"schema_drift"'
expect "the CLI's drift exits 1" '\(409 schema_drift\)'
expect "the CLI's drift exit status is 1" 'exit status 1'
expect "the CLI shows the drift as a diff" '\+ temp'
expect "the CLI lists its versions as JSON" '\[3000, 1000\]'

expect "the compaction rewrote the two appended files into one" '"files_removed":2,"files_added":1'
latest=$(curl -fsS "$catalogd/datasets/flights" | python3 -c 'import json,sys; m = json.load(sys.stdin); print(m["version"], m["operation"], len(m["objects"]))')
if [ "$latest" = "4 compact 1" ]; then pass "flights is at version 4, a compaction, one file"; else fail "flights is at: $latest"; fi
if ls "$clone"/tmp/out/v1/*.parquet > /dev/null 2>&1; then
  pass "lakehouse get wrote tmp/out/v1/<sha256>.parquet"
else
  fail "no tmp/out/v1/*.parquet"
fi

# Every file the README names (`docs/...`, `scripts/...`, `examples/...`, `smoke/...`,
# `config/...`, markdown links) exists in the clone; no DESIGN.md, which it does not have.
missing=""
for ref in $(grep -oE '\]\([^)#]+\)|`(docs|scripts|examples|smoke|config)/[A-Za-z0-9_./-]+`' "$clone/README.md" |
  sed -e 's/^](//' -e 's/)$//' -e 's/`//g' | grep -v '^http' | sort -u); do
  [ -e "$clone/$ref" ] || missing="$missing $ref"
done
if [ -z "$missing" ]; then pass "every file the README names exists"; else fail "the README names missing files:$missing"; fi
if grep -q "DESIGN.md" "$clone/README.md"; then fail "the README cites DESIGN.md"; else pass "the README cites no DESIGN.md"; fi

if [ "$failed" -ne 0 ]; then echo "--- walkthrough output ---"; cat "$work/out.txt"; fi
exit "$failed"
