#!/usr/bin/env python3
"""Speed and memory of an upload the harness makes.

Uploads 1 GiB from the harness to the Rust reference upload server
(`sockspec serve file-upload`), the check being file-upload.content with
its largest size raised to 1 GiB, the server's folder on tmpfs
(/dev/shm); and, in the same run, the same header and 1 GiB of bytes from
a plain sender (a socket and sendall in 1 MiB writes, no checks and no
digests) to the same server. Prints both rates, their ratio (aim: the
harness at least 90 % of the plain sender), the harness's peak memory
(aim: under 64 MiB) and, for context, the raw loopback copy rate.

The harness's time for the upload is read from its own transcript ("wrote
the body: N bytes in S s"); the check around it also reads the stored file
back and compares it, which is not the upload's time.

Usage: scripts/bench_upload.py [SOCKSPEC_BINARY] [RUNS]
"""

import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

SIZE = 1 << 30
WRITE = 1 << 20
RATE_AIM = 0.9
MEMORY_AIM_KIB = 64 * 1024
TMPFS = "/dev/shm"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def peak_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def harness_run(binary, base):
    """The harness's upload rate (MB/s) and peak memory (KiB), or None."""
    server = f"{binary} serve file-upload --port {{port}}"
    env = dict(os.environ, TMPDIR=base)
    run = subprocess.Popen(
        [binary, "run", "file-upload", "--server", server, "--only", "file-upload.content",
         "--param", f"largest={SIZE}", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    peak = [0]

    def watch():
        while run.poll() is None:
            peak[0] = max(peak[0], peak_kib(run.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out, _ = run.communicate()
    watcher.join()
    check = json.loads(out)["checks"][0]
    if check["verdict"] != "pass":
        print(f"file-upload.content did not pass: {check['verdict']}")
        return None
    seconds = None
    for record in check["transcript"]:
        text = json.dumps(record)
        m = re.search(rf"wrote the body: {SIZE} bytes in ([0-9.]+)s", text)
        if m:
            seconds = float(m.group(1))
    if not seconds:
        print("the transcript does not say how long the 1 GiB upload took")
        return None
    return SIZE / seconds / 1e6, peak[0]


def plain_run(binary, base):
    """The plain sender's rate (MB/s) to the same server, until the
    server has stored the whole file."""
    folder = tempfile.mkdtemp(dir=base)
    port = free_port()
    server = subprocess.Popen([binary, "serve", "file-upload", "--port", str(port),
                               "--dir", folder], stderr=subprocess.DEVNULL)
    try:
        if not wait_listening(port):
            print("the reference server did not listen")
            return None
        header = json.dumps({"filename": "plain.bin", "size": SIZE}).encode()
        chunk = memoryview(bytes(WRITE))
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(struct.pack("i", len(header)) + header)
            for _ in range(SIZE // WRITE):
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
            target = os.path.join(folder, "plain.bin")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if os.path.exists(target) and os.path.getsize(target) == SIZE:
                    break
                time.sleep(0.001)
        return SIZE / (time.monotonic() - started) / 1e6
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def loopback_run():
    """A plain sender to a plain reader on loopback, 1 GiB: MB/s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def read():
        conn, _ = listener.accept()
        buf = bytearray(WRITE)
        while conn.recv_into(buf):
            pass
        conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    chunk = memoryview(bytes(WRITE))
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(SIZE // WRITE):
            s.sendall(chunk)
    reader.join()
    listener.close()
    return SIZE / (time.monotonic() - started) / 1e6


def main() -> int:
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/sockspec")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    if not os.path.isdir(TMPFS):
        print(f"{TMPFS} is missing: the upload bench stores on tmpfs")
        return 1
    base = tempfile.mkdtemp(prefix="sockspec-bench-", dir=TMPFS)
    try:
        print(f"upload of 1 GiB to the reference server, folder on tmpfs, {runs} runs")
        print(f"{'run':>4} {'harness':>8} {'plain':>7} {'ratio':>6} {'peak KiB':>9} {'loopback':>9}")
        rows = []
        for i in range(runs):
            h = harness_run(binary, base)
            p = plain_run(binary, base)
            if h is None or p is None:
                return 1
            loop = loopback_run()
            rows.append((h[0], p, h[0] / p, h[1], loop))
            print(f"{i + 1:>4} {h[0]:>8.0f} {p:>7.0f} {h[0] / p:>6.2f} {h[1]:>9} {loop:>9.0f}")
        med = [statistics.median(col) for col in zip(*rows)]
        print()
        print(f"upload of 1 GiB, medians over {runs} runs (MB/s):")
        print(f"  harness {med[0]:.0f}, plain sender {med[1]:.0f}, ratio {med[2]:.2f} "
              f"(aim at least {RATE_AIM})")
        print(f"  peak memory of the sockspec run {max(r[3] for r in rows)} KiB "
              f"(aim under {MEMORY_AIM_KIB} KiB)")
        print(f"  loopback copy, plain sender to plain reader: {med[4]:.0f} MB/s")
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
