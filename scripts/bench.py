#!/usr/bin/env python3
"""Speed of each suite against its Rust reference server.

Runs every suite that has a reference server (tcp-upper, udp-upper,
udp-chat, cmd-raw, cmd-len, cmd-json, cmd-udp) several times against `sockspec serve` and prints, for
each run, the wall time next to what the harness measured in
that same run: its deliberate waits (pauses where time is the subject, such
as the CPU-measuring window) and its waits for the kernel to confirm that
the target read a piece of a cut or settled (the target's own pace). The
ratio of wall time to deliberate waits is the harness's overhead over the
floor it chooses. Then, per check, the deliberate waits that remain and the
steps that make them.

Then the throughput of a client check: cmd-len.client.large with an
answer of 64 MiB, sent by the harness to the Rust reference client
(`sockspec connect cmd-len`), next to the same client fed the same answer
by a plain sender (listen, accept, read the command, send the answer in
large writes, no checks), the client's output discarded; the harness's
peak memory during the check; and the raw loopback copy rate (a plain
sender to a plain reader) for context.

Usage: scripts/bench.py [SOCKSPEC_BINARY] [RUNS]
"""

import json
import os
import pty
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import tty

# The suites measured, each with its reference server.
SUITES = ["tcp-upper", "udp-upper", "udp-chat", "cmd-raw", "cmd-len", "cmd-json", "cmd-udp"]

# tcp-upper's wall time against the reference server, in seconds.
AIM = 1.0

# The most a suite's wall time may exceed its deliberate waits: the
# harness's own overhead (starting a target per check, asking the kernel)
# stays under a tenth of the time the checks choose to wait.
RATIO_AIM = 1.1


def pausing_steps(check):
    """The steps of a check that wait by design, as the report prints them
    (numbered from 1)."""
    steps = [s.split(". ", 1)[-1] for s in check["steps"]]
    return [
        s
        for s in steps
        if s.startswith("pause ")
        or s.startswith("measure the target's CPU")
        or s.startswith("expect no other datagram")
    ]


def bench_suite(binary, runs, suite):
    """Runs `suite` `runs` times; returns the median wall time, deliberate
    waits and ratio, or None when the reference server failed a check."""
    server = f"{binary} serve {suite} --port {{port}}"
    print(f"{suite} suite against the reference server, {runs} runs")
    print(f"{'run':>4} {'wall s':>8} {'waits s':>8} {'kernel s':>9} {'ratio':>6}  verdicts")
    walls = []
    waited = []
    ratios = []
    per_check = {}
    for i in range(1, runs + 1):
        start = time.monotonic()
        done = subprocess.run(
            [binary, "run", suite, "--server", server, "--format", "json", "--seed", str(i)],
            capture_output=True,
            timeout=300,
        )
        wall = time.monotonic() - start
        report = json.loads(done.stdout)
        summary = report["summary"]
        waits = summary["deliberate_ms"] / 1000.0
        kernel = summary.get("confirm_ms", 0.0) / 1000.0
        ratio = wall / waits if waits > 0 else float("inf")
        walls.append(wall)
        waited.append(waits)
        ratios.append(ratio)
        for check in report["checks"]:
            entry = per_check.setdefault(
                check["id"], {"deliberate": [], "kernel": [], "wall": [], "steps": []}
            )
            entry["deliberate"].append(check["deliberate_ms"])
            entry["kernel"].append(check.get("confirm_ms", 0.0))
            entry["wall"].append(check["duration_ms"])
            entry["steps"] = pausing_steps(check)
        verdicts = ", ".join(f"{summary[v]} {v}" for v in ("pass", "fail", "warn") if summary[v])
        print(f"{i:>4} {wall:>8.3f} {waits:>8.3f} {kernel:>9.3f} {ratio:>6.3f}  {verdicts}")
        if summary["fail"]:
            print("the reference server failed a check: the figures mean nothing", file=sys.stderr)
            return None
    print()
    print("per check, median over the runs (ms):")
    print(f"{'check':<34} {'wall':>7} {'waits':>7} {'kernel':>7}  deliberate waits")
    for check_id, entry in per_check.items():
        median = lambda xs: statistics.median(xs)
        steps = "; ".join(entry["steps"]) if median(entry["deliberate"]) > 0 else "-"
        print(
            f"{check_id:<34} {median(entry['wall']):>7.1f} {median(entry['deliberate']):>7.1f} "
            f"{median(entry['kernel']):>7.1f}  {steps}"
        )
    print()
    return statistics.median(walls), statistics.median(waited), statistics.median(ratios)


# The answer of the client throughput bench: cmd-len's large answer to a
# client (a line repeated, then the line that marks its end), 64 MiB.
LARGE_SIZE = 64 << 20
LARGE_LINE = b"large answer line\n"
LARGE_END = b"END OF THE LARGE ANSWER\n"

# The harness's rate aims at this share of the plain sender's, and its peak
# memory during the check stays under the answer's size.
RATE_AIM = 0.8
MEMORY_AIM_KIB = 64 * 1024



def large_answer():
    """The bytes of the large answer, as the check describes them."""
    lines = LARGE_LINE * ((LARGE_SIZE - len(LARGE_END)) // len(LARGE_LINE) + 1)
    return lines[: LARGE_SIZE - len(LARGE_END)] + LARGE_END


def plain_sender(answer, then_read=False):
    """A listening socket on loopback and the thread that accepts one
    connection, reads the command and sends `struct.pack("i", N)` and
    `answer` in writes of 1 MiB; with `then_read`, it connects a plain
    reader itself and returns how long the copy took. Returns the port
    and the thread (and a list that gets the reader's time)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        listener.close()
        with conn:
            if not then_read:
                conn.recv(1024)
            conn.sendall(struct.pack("i", len(answer)))
            view = memoryview(answer)
            for at in range(0, len(view), 1 << 20):
                conn.sendall(view[at : at + (1 << 20)])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def rate(seconds):
    """MB/s of the large answer moved in `seconds`."""
    return LARGE_SIZE / seconds / 1e6 if seconds > 0 else float("inf")


def plain_run(binary, answer, terminal=False):
    """Seconds from starting the reference client to its exit, fed by the
    plain sender, its output discarded: into /dev/null, or with `terminal`
    into a terminal in raw mode that a thread reads and drops, as the
    harness gives a client (a terminal carries a few KiB per read)."""
    port, thread = plain_sender(answer)
    out, reader = subprocess.DEVNULL, None
    if terminal:
        master, out = pty.openpty()
        tty.setraw(out)

        def drop():
            while True:
                try:
                    if not os.read(master, 1 << 16):
                        return
                except OSError:
                    return

        reader = threading.Thread(target=drop, daemon=True)
        reader.start()
    start = time.monotonic()
    client = subprocess.run(
        [binary, "connect", "cmd-len", "--port", str(port)],
        input=b"printf large\n",
        stdout=out,
        timeout=120,
    )
    seconds = time.monotonic() - start
    thread.join()
    if terminal:
        os.close(out)
        reader.join(5)
        os.close(master)
    return seconds if client.returncode == 0 else None


def loopback_run(answer):
    """Seconds for the plain sender to copy the answer to a plain reader
    that discards it."""
    port, thread = plain_sender(answer, then_read=True)
    buf = bytearray(1 << 20)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as reader:
        left = 4 + len(answer)
        while left > 0:
            n = reader.recv_into(buf)
            if n == 0:
                break
            left -= n
    seconds = time.monotonic() - start
    thread.join()
    return seconds


def peak_kib(pid):
    """The process's resident high-water mark (VmHWM), in KiB; None once
    it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def harness_run(binary):
    """The check's own time (seconds) and the peak resident memory of the
    sockspec process (KiB, its VmHWM read every 20 ms until it exits), or
    None when the check did not pass."""
    client = f"{binary} connect cmd-len --port {{port}}"
    run = subprocess.Popen(
        [binary, "run", "cmd-len", "--client", client, "--only", "cmd-len.client.large",
         "--param", f"large_size={LARGE_SIZE}",
         "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    peak = [0]

    def watch():
        while run.poll() is None:
            seen = peak_kib(run.pid)
            if seen is not None:
                peak[0] = max(peak[0], seen)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = run.communicate(timeout=300)
    watcher.join()
    report = json.loads(out)
    check = report["checks"][0]
    if check["verdict"] != "pass":
        print(f"the reference client failed {check['id']}: {check.get('detail', '')}",
              file=sys.stderr)
        return None
    return check["duration_ms"] / 1000.0, peak[0]


def bench_client_large(binary, runs):
    """The client throughput bench; returns the median rates (harness,
    plain sender, plain sender through a terminal, loopback), the ratio of
    the harness to each plain sender and the peak memory, or None when the
    check failed."""
    answer = large_answer()
    print(f"cmd-len.client.large with a {LARGE_SIZE >> 20} MiB answer to the reference client, "
          f"{runs} runs, its output discarded (the harness reads it from a terminal: the plain "
          f"sender is measured both ways)")
    print(f"{'run':>4} {'harness':>8} {'plain':>6} {'ratio':>6} {'plain+tty':>10} {'ratio':>6} "
          f"{'loopback':>9} {'peak KiB':>9}   (MB/s)")
    harness, plain, plain_tty, loop, peaks = [], [], [], [], []
    for i in range(1, runs + 1):
        measured = harness_run(binary)
        if measured is None:
            return None
        seconds, peak = measured
        plain_seconds = plain_run(binary, answer)
        tty_seconds = plain_run(binary, answer, terminal=True)
        if plain_seconds is None or tty_seconds is None:
            print("the reference client failed against the plain sender", file=sys.stderr)
            return None
        harness.append(rate(seconds))
        plain.append(rate(plain_seconds))
        plain_tty.append(rate(tty_seconds))
        loop.append(rate(loopback_run(answer)))
        peaks.append(peak)
        print(f"{i:>4} {harness[-1]:>8.0f} {plain[-1]:>6.0f} {harness[-1] / plain[-1]:>6.2f} "
              f"{plain_tty[-1]:>10.0f} {harness[-1] / plain_tty[-1]:>6.2f} {loop[-1]:>9.0f} "
              f"{peak:>9}")
    print()
    h = statistics.median(harness)
    p, t = statistics.median(plain), statistics.median(plain_tty)
    return h, p, h / p, t, h / t, max(peaks), statistics.median(loop)


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sockspec"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    figures = {}
    for suite in SUITES:
        result = bench_suite(binary, runs, suite)
        if result is None:
            return 1
        figures[suite] = result
    large = bench_client_large(binary, runs)
    if large is None:
        return 1
    print(f"medians over {runs} runs of each suite:")
    print(f"{'suite':<10} {'wall s':>8} {'waits s':>8} {'ratio':>6}  aim")
    for suite, (wall, waits, ratio) in figures.items():
        aim = f"ratio at most {RATIO_AIM}"
        if suite == "tcp-upper":
            aim = f"wall at most {AIM} s, " + aim
        if waits == 0:
            # A suite that waits on purpose nowhere has no floor to be
            # measured against: its wall time is all work.
            print(f"{suite:<10} {wall:>8.3f} {waits:>8.3f} {'-':>6}  no deliberate waits")
            continue
        print(f"{suite:<10} {wall:>8.3f} {waits:>8.3f} {ratio:>6.3f}  {aim}")
    if large is not None:
        h, p, ratio, t, tty_ratio, peak, loop = large
        print()
        print(f"client check cmd-len.client.large, {LARGE_SIZE >> 20} MiB, medians over {runs} runs:")
        print(f"  harness {h:.0f} MB/s, plain sender {p:.0f} MB/s, ratio {ratio:.2f} "
              f"(aim at least {RATE_AIM})")
        print(f"  plain sender with the client's output through a terminal {t:.0f} MB/s, "
              f"ratio {tty_ratio:.2f}")
        print(f"  peak memory of the sockspec run {peak} KiB (aim under {MEMORY_AIM_KIB} KiB)")
        print(f"  loopback copy, plain sender to plain reader: {loop:.0f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
