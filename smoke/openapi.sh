#!/usr/bin/env bash
# Checks the OpenAPI documents of a running trio (docs/contract.md section 9):
#   openapi.sh INGESTD_URL CATALOGD_URL STORAGED_URL
# Each GET /openapi.json must be an OpenAPI 3.1 document that openapi-spec-validator accepts,
# and a bounded schemathesis run against each service (20 examples per operation,
# deterministic, at most 120 s per service) must find no 5xx and no answer that contradicts
# the document (status codes, content types, bodies, headers, schema-violating requests
# accepted). Three checks are left out, because no JSON schema can state what they would
# need: `positive_data_acceptance` (the services check more than a schema says: a CSV's
# content, a fingerprint against its schema, a body against its checksum),
# `ignored_auth` and `missing_required_header` (the trio runs without tokens, so the bearer
# scheme is optional, as the documents say). Run it on a trio of its own: it writes datasets
# and objects with random names.
# Uses .venv-ops (scripts/requirements-ops.txt). Prints PASS/FAIL lines; exits 1 on any FAIL.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-ops/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
# Prefixes each embedded log line with "  | ", so no line of a FAIL's detail starts with PASS
# or FAIL (scripts/test counts those).
quote() { printf '\n'; sed 's/^/  | /'; }

for pair in "ingestd=$1" "catalogd=$2" "storaged=$3"; do
  service=${pair%%=*} url=${pair#*=}
  doc="$work/$service.json"
  if ! curl -fsS --max-time 10 -o "$doc" "$url/openapi.json"; then
    fail "$service serves /openapi.json"; continue
  fi
  version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("openapi"))' "$doc")
  if [ "${version%.*}" = "3.1" ]; then pass "$service /openapi.json is OpenAPI 3.1"; else fail "$service /openapi.json is OpenAPI 3.1" "got $version"; fi
  if out=$(timeout 60 "$venv/openapi-spec-validator" "$doc" 2>&1); then
    pass "$service /openapi.json validates (openapi-spec-validator)"
  else
    fail "$service /openapi.json validates (openapi-spec-validator)" "$(printf '%s\n' "$out" | quote)"
  fi
  if timeout 120 "$venv/schemathesis" run "$doc" --url "$url" --max-examples 20 \
    --generation-deterministic --request-timeout 10 --checks all \
    --exclude-checks positive_data_acceptance,ignored_auth,missing_required_header \
    --no-color >"$work/$service-schemathesis.log" 2>&1; then
    pass "$service: schemathesis finds no 5xx and no answer contradicting the document ($(grep -m1 -oE '[0-9]+ generated' "$work/$service-schemathesis.log") cases)"
  else
    fail "$service: schemathesis finds no 5xx and no answer contradicting the document" \
      "$(grep -v '^\s*$' "$work/$service-schemathesis.log" | tail -n 40 | quote)"
  fi
done
[ "$failed" -eq 0 ]
