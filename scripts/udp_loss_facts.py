#!/usr/bin/env python3
"""How many datagrams sent back to back a Python UDP server takes without loss.

Loopback drops a datagram only when the receiver's socket buffer is full.
A course server reads with recvfrom(1024) on a socket with the default
buffer; this starts one such server (an uppercase echo), sends it bursts of
N datagrams of one size as fast as one socket can, and counts the replies.
For each size it prints the largest burst that lost nothing in every one
of ROUNDS tries, idle and with two busy loops competing for the CPU.

Usage: scripts/udp_loss_facts.py [ROUNDS]
"""

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(1024)
    s.sendto(data.upper(), addr)
"""

SIZES = [0, 64, 1024, 2048, 8192, 65507]
BURSTS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bound(port):
    # The server is ready once its socket shows in the kernel's table.
    hexport = f"{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1].endswith(":" + hexport) for line in f.readlines()[1:])


def burst_arrives(port, size, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    payload = b"x" * size
    for _ in range(n):
        s.sendto(payload, ("127.0.0.1", port))
    s.settimeout(0.3)
    got = 0
    try:
        while got < n:
            s.recvfrom(65536)
            got += 1
    except socket.timeout:
        pass
    s.close()
    return got == n


def spin(stop_at):
    while time.monotonic() < stop_at:
        pass


def measure(rounds, label):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        deadline = time.monotonic() + 10
        while not bound(port) and time.monotonic() < deadline:
            time.sleep(0.01)
        for size in SIZES:
            best = 0
            for n in BURSTS:
                if all(burst_arrives(port, size, n) for _ in range(rounds)):
                    best = n
                else:
                    break
            print(f"{label:>8} {size:>6} bytes: {best:>4} datagrams back to back, none lost in {rounds} tries")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    measure(rounds, "idle")
    stop_at = time.monotonic() + 120
    loops = [multiprocessing.Process(target=spin, args=(stop_at,)) for _ in range(2)]
    for p in loops:
        p.start()
    try:
        measure(rounds, "2 busy")
    finally:
        for p in loops:
            p.kill()
            p.join()


if __name__ == "__main__":
    main()
