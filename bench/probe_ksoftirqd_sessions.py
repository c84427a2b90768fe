"""What ksoftirqd/0 runs under the RPS fragment load of docs/VALIDATION.md ("This machine").

Starts the load (load.sh udp, 8000-byte datagrams, RPS to CPU0, a hog on CPU0, -b RATE),
traces CPU0 for 2 s with irqlab's TraceSession (tracefs) and prints ksoftirqd/0's sessions
(switch-in to switch-out): how many there are, their length, which vector each began with, how
many NET_RX and other runs they held, and which vectors ksoftirqd ran overall. This is how the
RCU_SOFTIRQ self re-raise (sim/rcu.py) was found. Root; about 10 s.
Run: .venv/bin/python bench/probe_ksoftirqd_sessions.py [RATE]   (default 2G)
"""

from __future__ import annotations

import collections
import subprocess
import sys
import time

from irqlab.model.events import EventKind as K
from irqlab.tracing.session import TraceSession

LOAD = "/work/shared/tools/load.sh"


def main() -> None:
    rate = sys.argv[1] if len(sys.argv) > 1 else "2G"
    load = subprocess.Popen(["bash", LOAD, "-q", "-m", "udp", "-n", "1", "-l", "8000", "--pin", "cpu1", "--rps", "1",
                             "-H", "1", "--hog-cpus", "0", "-b", rate, "-d", "7"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.5)
        with TraceSession(cpus=[0], buffer_kb=16384) as s:
            s.start()
            b = s.read(timeout_s=2.0)
            s.stop()
    finally:
        load.wait(timeout=60)
    print(f"events {len(b)}, lost {b.lost}")
    kpid = next(p for p, c in b.comms.items() if c == "ksoftirqd/0")
    ts, kind, pid, a0 = b.ts_ns, b.kind, b.pid, b.arg0
    sess, sessions = None, []
    for i in range(len(b)):
        k = kind[i]
        if k == K.SCHED_SWITCH:
            if a0[i] == kpid:
                sess = {"start": ts[i], "vec": collections.Counter(), "first": None}
            elif pid[i] == kpid and sess is not None:
                sess["end"] = ts[i]
                sessions.append(sess)
                sess = None
        elif sess is not None and k == K.SOFTIRQ_ENTRY and pid[i] == kpid:
            sess["vec"][int(a0[i])] += 1
            if sess["first"] is None:
                sess["first"] = int(a0[i])
    nrx = [x["vec"].get(3, 0) for x in sessions]
    dur = sorted((x["end"] - x["start"]) / 1000 for x in sessions)
    all_nrx = int(((kind == K.SOFTIRQ_ENTRY) & (a0 == 3)).sum())
    in_ksd = int(((kind == K.SOFTIRQ_ENTRY) & (a0 == 3) & (pid == kpid)).sum())
    if dur:
        print(f"ksoftirqd/0 sessions {len(sessions)}; length us p50 {dur[len(dur) // 2]:.0f}, "
              f"p90 {dur[int(len(dur) * .9)]:.0f}, max {dur[-1]:.0f}")
    print(f"NET_RX runs on CPU0 {all_nrx}, in ksoftirqd {in_ksd}; NET_RX runs per session "
          f"{collections.Counter(nrx).most_common(8)}")
    print("first vector of a session (3 NET_RX, 9 RCU, 1 TIMER, 7 SCHED):",
          collections.Counter(x["first"] for x in sessions).most_common())
    print("vectors run in ksoftirqd:",
          dict(collections.Counter(int(v) for v in a0[(kind == K.SOFTIRQ_ENTRY) & (pid == kpid)])))
    for x in sorted(sessions, key=lambda x: -x["vec"].get(3, 0))[:5]:
        print(f"  a long NET_RX session: {(x['end'] - x['start']) / 1000:.0f} us, runs {dict(x['vec'])}")


if __name__ == "__main__":
    main()
