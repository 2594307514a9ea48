#!/usr/bin/env python3
"""How spinning, blocked and polling servers look to the scheduler, idle and
under load: the figures behind `SpinRule` (harness/engine/src/timing.rs) and
the section "Telling a spinner from a poller" of docs/LOOPBACK-FACTS.md.

Starts each subject (spinning servers after their client closed, a blocked
server, pollers), then SPINNERS processes that are runnable all the time
(the spinning subjects count among them; busy loops make up the rest), and
reads for every thread of every subject, over windows of 600 ms like the
harness:

- running and waiting to run (`/proc/PID/task/TID/schedstat`, fields 1-2),
- times it went to sleep (`voluntary_ctxt_switches` in `.../status`) and
  whether it was ready to run when the window opened (`State:` R),
- the CPU share of the whole process tree (`/proc/PID/stat` ticks),

and prints, per subject, the lowest and highest figure of the thread that
was runnable longest. "counted" is running + waiting as the counters give
it; "runnable" is what the harness judges: the same, except that a thread
ready at the start that never slept was runnable the whole window (the
kernel adds a wait to the counter only when the wait ends).

Usage: scripts/spin_facts.py SPINNERS [WINDOWS] [SUBJECT...]
  SPINNERS 0 runs each chosen subject alone (the idle figures).
Every process it starts is killed (by process group) before it exits; it
runs about WINDOWS x 0.6 s plus a second of set-up.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

WINDOW = 0.6
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tcp-upper")
TICK = os.sysconf("SC_CLK_TCK")

# Servers written inline: the same receive loop as server_spin.py, in
# other shapes a student might give it.
ONE_CLIENT = """
import socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)
"""
INLINE = {
    # prints every receive into a pipe the measurer drains, as the harness does
    "printspin": ONE_CLIENT + """
conn, addr = s.accept()
while True:
    data = conn.recv(1024)
    print("received", data)
    conn.sendall(data.upper())
""",
    # a thread per client; the client's thread spins, the main one waits in accept
    "threadspin": ONE_CLIENT + """
def serve(conn):
    while True:
        data = conn.recv(1024)
        conn.sendall(data.upper())
while True:
    conn, addr = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
""",
    # two threads spinning in one interpreter hand the GIL to each other
    "gilspin": ONE_CLIENT + """
conn, addr = s.accept()
conn.sendall(conn.recv(1024).upper())
def spin():
    while True:
        data = conn.recv(1024)
for _ in range(2):
    threading.Thread(target=spin).start()
""",
    # the empty receive ignored, but a 0.1 ms nap in the loop
    "napspin": ONE_CLIENT + """
conn, addr = s.accept()
while True:
    data = conn.recv(1024)
    conn.sendall(data.upper())
    time.sleep(0.0001)
""",
}
# server_poll.py with a 10 ms timeout instead of 1 ms
with open(os.path.join(FIX, "server_poll.py")) as f:
    INLINE["poll10ms"] = f.read().replace("TIMEOUT = 0.001", "TIMEOUT = 0.01")
assert "TIMEOUT = 0.01 " in INLINE["poll10ms"]
SCRIPTS = {
    "spin": [os.path.join(FIX, "faulty", "server_spin.py")],
    "forkspin": [os.path.join(FIX, "faulty", "server_fork_spin.py")],
    "blocked": [os.path.join(FIX, "server.py")],
    "poll1ms": [os.path.join(FIX, "server_poll.py")],
}
# Subjects that want a whole core; the busy loops make up the rest of SPINNERS.
SPINNING = {"spin", "forkspin", "printspin", "threadspin", "gilspin"}
ORDER = ["spin", "forkspin", "printspin", "threadspin", "gilspin", "napspin", "blocked", "poll1ms", "poll10ms"]

started = []


def spawn(args, out=subprocess.DEVNULL):
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)
    started.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, within=5.0):
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listened on {port}")


def one_client(port):
    """What the harness's no-spin check does: echo, half-close, close."""
    c = connect(port)
    c.sendall(b"spin check")
    c.recv(64)
    c.shutdown(socket.SHUT_WR)
    time.sleep(0.05)
    c.close()


def drain(f):
    while f.read1(65536):
        pass


def start(name):
    port = free_port()
    args = ["python3", *(SCRIPTS.get(name) or ["-c", INLINE[name]]), str(port)]
    p = spawn(args, out=subprocess.PIPE if name == "printspin" else subprocess.DEVNULL)
    if name == "printspin":
        threading.Thread(target=drain, args=(p.stdout,), daemon=True).start()
    one_client(port)
    return p


def tree(root):
    pids = [root]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == root:
                        pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def sample(pids):
    threads, ticks = {}, 0
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run, wait, _ = f.read().split()
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    status = f.read()
                sleeps = status.split("\nvoluntary_ctxt_switches:")[1].split()[0]
                ready = status.split("\nState:")[1].split()[0] == "R"
                threads[tid] = (int(run), int(wait), int(sleeps), ready)
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return threads, ticks


def measure(subjects, windows):
    trees = {k: tree(p.pid) for k, p in subjects.items()}
    rows = {k: [] for k in subjects}
    for _ in range(windows):
        before = {k: sample(t) for k, t in trees.items()}
        t0 = time.monotonic()
        time.sleep(WINDOW)
        secs = time.monotonic() - t0
        after = {k: sample(t) for k, t in trees.items()}
        for k in subjects:
            (b, bticks), (a, aticks) = before[k], after[k]

            def d(tid, i):
                return a[tid][i] - b.get(tid, (0, 0, 0, False))[i]

            def runnable(tid):
                counted = (d(tid, 0) + d(tid, 1)) / 1e9 / secs
                ready_throughout = tid in b and b[tid][3] and d(tid, 2) == 0
                return max(d(tid, 0) / 1e9 / secs, 1.0) if ready_throughout else counted

            tid = max(a, key=runnable)
            run, wait = d(tid, 0) / 1e9 / secs, d(tid, 1) / 1e9 / secs
            share = (aticks - bticks) / TICK / secs
            rows[k].append((run, wait, run + wait, runnable(tid), share, d(tid, 2) / secs))
    return rows


def report(rows):
    names = ("running", "waiting", "counted", "runnable", "share")
    for k in [n for n in ORDER if n in rows]:
        rs = rows[k]
        span = lambda i: f"{min(r[i] for r in rs) * 100:5.1f}-{max(r[i] for r in rs) * 100:5.1f}%"
        sleeps = f"{min(r[5] for r in rs):6.0f}-{max(r[5] for r in rs):4.0f}"
        cols = "  ".join(f"{n} {span(i)}" for i, n in enumerate(names))
        print(f"  {k:10} {cols}  sleeps/s {sleeps}")


def main():
    spinners = int(sys.argv[1])
    windows = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    chosen = sys.argv[3:] or ORDER
    print(f"{spinners or 'no'} spinners at once, {windows} windows of {WINDOW * 1000:.0f} ms "
          f"(busiest thread; share = whole tree, of one core)")
    if spinners == 0:
        for name in chosen:
            p = start(name)
            time.sleep(0.3)
            report(measure({name: p}, windows))
            os.killpg(p.pid, signal.SIGKILL)
        return
    subjects = {name: start(name) for name in chosen}
    busy = spinners - sum(1 for n in chosen if n in SPINNING)
    for _ in range(max(busy, 0)):
        spawn(["python3", "-c", "while True: pass"])
    time.sleep(0.5)
    report(measure(subjects, windows))
    print(f"  load average after: {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in started:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
