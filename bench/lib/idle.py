#!/usr/bin/env python3
"""Open N TCP connections to 127.0.0.1:PORT, send nothing, and hold them until SIGTERM.

    idle.py PORT N

Prints "open N" on stdout once every connection is established (or "open K of N" and
the first error if some failed), then sleeps. The kernel closes the sockets when it exits.
"""
import signal
import socket
import sys
import time


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    held, error = [], None
    deadline = time.monotonic() + 60
    while len(held) < n and time.monotonic() < deadline:
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError as e:
            error = e
            time.sleep(0.01)
    line = f"open {len(held)}" if len(held) == n else f"open {len(held)} of {n}: {error}"
    print(line, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
