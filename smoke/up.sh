#!/usr/bin/env bash
# scripts/up against prebuilt binaries (docs/contract.md section 14): it names the service that
# exited and stops the other two, appends to the logs instead of truncating them, and a
# Ctrl-C (SIGINT to its whole process group, as a terminal sends it) stops the trio quietly
# with exit status 0.
#
# Usage: smoke/up.sh [BIN_DIR]   (default target/debug: scripts/up's release build is not
# made; LAKEHOUSE_UP_BIN_DIR points it at these binaries). Prints PASS/FAIL lines; exit
# status 1 when any check failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug}
work=$(mktemp -d)
up_pid=""
cleanup() {
  if [ -n "$up_pid" ]; then kill -TERM "$up_pid" 2>/dev/null || true; fi
  if [ -s "$work/pids" ]; then
    for pid in $(cut -d' ' -f1 "$work/pids"); do kill -TERM "$pid" 2>/dev/null || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export LAKEHOUSE_UP_BIN_DIR=$bin LAKEHOUSE_UP_LOG_DIR=$work/logs SERVICE_PID_FILE=$work/pids
export LAKEHOUSE_STORAGED__BIND=127.0.0.1:0 LAKEHOUSE_CATALOGD__BIND=127.0.0.1:0 \
  LAKEHOUSE_INGESTD__BIND=127.0.0.1:0 LAKEHOUSE_STORAGED__ROOT=$work/objects \
  LAKEHOUSE_INGESTD__SPOOL_DIR=$work/spool LAKEHOUSE_INGESTD__MIN_FREE_SPOOL_BYTES=0

failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }

# up RUN: starts scripts/up in a session of its own (its PID is then its process group),
# output to $work/up-RUN.out, and waits until it says the trio is up.
up() {
  : > "$work/pids"
  # A background job of a script starts with SIGINT ignored, which a shell cannot trap:
  # python puts back the default a terminal's foreground job has, then runs scripts/up.
  setsid python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$root/scripts/up" > "$work/up-$1.out" 2>&1 &
  up_pid=$!
  local deadline=$((SECONDS + 90))
  until grep -q "lakehouse trio is up" "$work/up-$1.out"; do
    if ! kill -0 "$up_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      fail "up $1: scripts/up did not come up: $(cat "$work/up-$1.out")"
      return 1
    fi
    sleep 0.1
  done
}

# ended: waits (up to 60 s) for scripts/up to exit; its status in $status.
ended() {
  local deadline=$((SECONDS + 60))
  while kill -0 "$up_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$up_pid" 2>/dev/null; then
    echo "scripts/up still runs after 60 s; killing it"
    kill -KILL "$up_pid"
  fi
  wait "$up_pid"
  status=$?
  up_pid=""
}

pid_of() { grep " $1 " "$work/pids" | cut -d' ' -f1; }
all_gone() {
  local pid
  for pid in $(cut -d' ' -f1 "$work/pids" 2>/dev/null); do
    if kill -0 "$pid" 2>/dev/null; then return 1; fi
  done
}

# 1. A service that exits on its own is named, with its log, and the other two stop.
if up first; then
  catalogd_pid=$(pid_of catalogd)
  pids_before=$(cut -d' ' -f1 "$work/pids")
  kill -TERM "$catalogd_pid"
  ended
  if [ "$status" -ne 0 ] && grep -q "catalogd (pid $catalogd_pid) exited; its log: $work/logs/catalogd.log" "$work/up-first.out"; then
    pass "a service that exits is named with its log (exit status $status)"
  else
    fail "the exit of catalogd was not named: status $status, output: $(cat "$work/up-first.out")"
  fi
  echo "$pids_before" | sed 's/$/ x x/' > "$work/pids"
  if all_gone; then pass "the other two services were stopped"; else fail "a service still runs"; fi
fi

# 2. A restart appends to the logs.
if up second; then
  starts=$(grep -c "^---- .* starting catalogd ----$" "$work/logs/catalogd.log")
  listening=$(grep -c "listening on" "$work/logs/catalogd.log")
  if [ "$starts" -eq 2 ] && [ "$listening" -eq 2 ]; then
    pass "the logs keep the earlier run (2 starts, 2 'listening on' in catalogd.log)"
  else
    fail "catalogd.log has $starts starts and $listening 'listening on' lines"
  fi
  # 3. Ctrl-C: SIGINT to the process group, as the terminal sends it.
  kill -INT -- "-$up_pid"
  ended
  if [ "$status" -eq 0 ] && grep -q "^stopped$" "$work/up-second.out" &&
    ! grep -q "exited" "$work/up-second.out"; then
    pass "Ctrl-C stops the trio quietly (exit status 0, no service reported as exited)"
  else
    fail "Ctrl-C: status $status, output: $(cat "$work/up-second.out")"
  fi
  if all_gone; then pass "no service outlives Ctrl-C"; else fail "a service still runs after Ctrl-C"; fi
fi
exit "$failed"
