#!/usr/bin/env python3
"""Speed of a whole suite against the Rust reference server.

Runs the full tcp-upper suite several times against `sockspec serve` and
prints, for each run, the wall time next to the suite's deliberate waits
(cut pauses, settling pauses and CPU-measuring windows, as measured by the
harness in that same run). Their ratio is the harness's own overhead: 1.0
would mean the suite takes exactly as long as the waits it chooses to make.

Usage: scripts/bench.py [SOCKSPEC_BINARY] [RUNS]
"""

import json
import statistics
import subprocess
import sys
import time

AIM = 1.2


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sockspec"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    server = f"{binary} serve tcp-upper --port {{port}}"
    print(f"tcp-upper suite against the reference server, {runs} runs")
    print(f"{'run':>4} {'wall s':>8} {'waits s':>8} {'ratio':>6}  verdicts")
    ratios = []
    for i in range(1, runs + 1):
        start = time.monotonic()
        done = subprocess.run(
            [binary, "run", "tcp-upper", "--server", server, "--format", "json", "--seed", str(i)],
            capture_output=True,
            timeout=300,
        )
        wall = time.monotonic() - start
        report = json.loads(done.stdout)
        summary = report["summary"]
        waits = summary["deliberate_ms"] / 1000.0
        ratio = wall / waits
        ratios.append(ratio)
        verdicts = ", ".join(f"{summary[v]} {v}" for v in ("pass", "fail", "warn") if summary[v])
        print(f"{i:>4} {wall:>8.3f} {waits:>8.3f} {ratio:>6.3f}  {verdicts}")
        if summary["fail"]:
            print("the reference server failed a check: the figures mean nothing", file=sys.stderr)
            return 1
    median = statistics.median(ratios)
    print(f"median ratio wall/waits: {median:.3f} (aim: under {AIM})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
