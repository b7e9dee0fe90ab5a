"""Per-thread CPU time of running processes, for scripts/bench (docs/performance.md).

usage: thread_cpu.py OUT.json PID [PID ...]

Samples /proc/<pid>/task/*/stat of every PID every 10 ms until SIGTERM, SIGINT or every PID
has exited, then writes OUT.json: {"total_s": ..., "busiest_s": ..., "busiest": "pid/comm",
"top": [["pid/comm", s], ...] (the six busiest threads), "processes": {pid: {"total_s": ...,
"busiest_s": ..., "busiest": comm}}}. A thread's CPU is
its utime + stime at its last sample minus that at the first sample (0 for a thread born
after the first), so threads that end between samples lose at most 10 ms each; a process's
total is read from /proc/<pid>/stat, which counts its ended threads in full. A job whose
busiest thread took T cannot finish in less than T on any number of cores.
"""

import json
import os
import signal
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu(path):
    """(comm, utime + stime in ticks) of a /proc stat file, or None once it is gone."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm is in parentheses and may hold spaces; the fields after it are space-separated.
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return comm, int(fields[11]) + int(fields[12])


def sample(pid):
    """{tid: (comm, ticks)} of the live threads of pid."""
    threads = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return threads
    for tid in tids:
        got = stat_cpu(f"/proc/{pid}/task/{tid}/stat")
        if got is not None:
            threads[tid] = got
    return threads


def main():
    out, pids = sys.argv[1], sys.argv[2:]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    first = {pid: sample(pid) for pid in pids}
    start_total = {pid: (stat_cpu(f"/proc/{pid}/stat") or ("", 0))[1] for pid in pids}
    last = {pid: dict(first[pid]) for pid in pids}
    end_total = dict(start_total)
    while not stop:
        alive = False
        for pid in pids:
            threads = sample(pid)
            alive |= bool(threads)
            last[pid].update(threads)
            total = stat_cpu(f"/proc/{pid}/stat")
            if total is not None:
                end_total[pid] = total[1]
        if not alive:
            break
        time.sleep(0.01)
    report = {"total_s": 0.0, "busiest_s": 0.0, "busiest": "", "top": [], "processes": {}}
    for pid in pids:
        used = {
            tid: (comm, ticks - first[pid].get(tid, (comm, 0))[1])
            for tid, (comm, ticks) in last[pid].items()
        }
        tid, (comm, ticks) = max(used.items(), key=lambda kv: kv[1][1], default=("", ("", 0)))
        total_s = (end_total[pid] - start_total[pid]) / TICKS
        busiest_s = ticks / TICKS
        report["processes"][pid] = {"total_s": total_s, "busiest_s": busiest_s, "busiest": comm}
        report["total_s"] += total_s
        report["top"] += [(f"{pid}/{c}", t / TICKS) for c, t in used.values() if t > 0]
        if busiest_s >= report["busiest_s"]:
            report["busiest_s"] = busiest_s
            report["busiest"] = f"{pid}/{comm}"
    report["top"] = sorted(report["top"], key=lambda x: -x[1])[:6]
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
