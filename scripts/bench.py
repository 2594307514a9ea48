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

Usage: scripts/bench.py [SOCKSPEC_BINARY] [RUNS]
"""

import json
import statistics
import subprocess
import sys
import time

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


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sockspec"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    figures = {}
    for suite in SUITES:
        result = bench_suite(binary, runs, suite)
        if result is None:
            return 1
        figures[suite] = result
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
