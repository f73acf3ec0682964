#!/usr/bin/env python3
"""Port-range helpers for bench/mapping.

    ports.py serve LO-HI ...
        TCP and UDP echo on 127.0.0.1, every port of every range; prints "ready" once all are bound.
    ports.py check [--tcp LO-HI] [--udp LO-HI] [--t0 EPOCH] [--timeout S] [--pid PID]
        Waits until every TCP port of the range listens and every UDP port is bound (/proc/net), then
        until each relays: a TCP connection echoes "ping", a datagram comes back. Prints one line of
        JSON: milliseconds from --t0 (default: now) until all were bound and until all relayed, and
        how many relayed. Gives up early when process PID (the proxy) is gone.
"""
import argparse
import asyncio
import json
import os
import select
import socket
import sys
import time


def port_range(text):
    lo, _, hi = text.partition("-")
    return range(int(lo), int(hi or lo) + 1)


# ------------------------------------------------------------------ serve
class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def tcp_echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(ranges):
    loop = asyncio.get_running_loop()
    servers = []
    for r in ranges:
        for port in port_range(r):
            servers.append(await asyncio.start_server(tcp_echo, "127.0.0.1", port, backlog=512))
            await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", port))
    print("ready", flush=True)
    await asyncio.Event().wait()


# ------------------------------------------------------------------ check
# 127.0.0.1 or the wildcard, as IPv4 sockets and as IPv6 ones (a JVM opens IPv6 sockets and
# binds them to v4-mapped addresses).
LOOPBACK = {"0100007F", "00000000", "0000000000000000FFFF00000100007F", "00000000000000000000000000000000"}


def bound(proto, ports):
    """Ports of `ports` with a listening TCP socket / a bound UDP socket on 127.0.0.1 or any address."""
    found = set()
    for name in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        with open(name) as f:
            next(f)
            for line in f:
                fields = line.split()
                addr, port = fields[1].split(":")
                if proto == "tcp" and fields[3] != "0A":
                    continue
                if addr in LOOPBACK:
                    found.add(int(port, 16))
    return found & set(ports)


async def tcp_relays(port):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(b"ping\n")
        data = await asyncio.wait_for(reader.readexactly(5), 1)
        return data == b"ping\n"
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()


async def tcp_round(ports):
    sem = asyncio.Semaphore(256)

    async def one(p):
        async with sem:
            return p, await tcp_relays(p)

    return {p for p, ok in await asyncio.gather(*(one(p) for p in ports)) if ok}


def udp_round(ports, socks):
    """One datagram to each port from its own socket (its own flow); the ports whose echo came back."""
    ok = set()
    for p in ports:
        if p not in socks:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.connect(("127.0.0.1", p))
            socks[p] = s
        try:
            socks[p].send(b"ping")
        except OSError:
            pass
    by_fd = {socks[p].fileno(): p for p in ports}
    deadline = time.monotonic() + 0.5
    while len(ok) < len(ports) and time.monotonic() < deadline:
        readable, _, _ = select.select(list(by_fd), [], [], max(0, deadline - time.monotonic()))
        for fd in readable:
            p = by_fd.pop(fd)
            try:
                if socks[p].recv(64) == b"ping":
                    ok.add(p)
            except OSError:
                pass
    return ok


def check(args):
    t0 = args.t0 if args.t0 is not None else time.time()
    deadline = time.monotonic() + args.timeout
    tcp = list(port_range(args.tcp)) if args.tcp else []
    udp = list(port_range(args.udp)) if args.udp else []
    ms = lambda: round((time.time() - t0) * 1000)
    result = {"bound_ms": None, "relay_ms": None, "tcp_relayed": 0, "udp_relayed": 0, "tcp": len(tcp), "udp": len(udp)}
    alive = lambda: args.pid is None or os.path.exists(f"/proc/{args.pid}")
    while time.monotonic() < deadline and alive():
        if len(bound("tcp", tcp)) == len(tcp) and len(bound("udp", udp)) == len(udp):
            result["bound_ms"] = ms()
            break
        time.sleep(0.005)
    tcp_ok, udp_ok, socks = set(), set(), {}
    while time.monotonic() < deadline and alive() and (len(tcp_ok) < len(tcp) or len(udp_ok) < len(udp)):
        tcp_ok |= asyncio.run(tcp_round([p for p in tcp if p not in tcp_ok]))
        udp_ok |= udp_round([p for p in udp if p not in udp_ok], socks)
        if len(tcp_ok) == len(tcp) and len(udp_ok) == len(udp):
            result["relay_ms"] = ms()
    for s in socks.values():
        s.close()
    result["tcp_relayed"], result["udp_relayed"] = len(tcp_ok), len(udp_ok)
    print(json.dumps(result), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("ranges", nargs="+")
    c = sub.add_parser("check")
    c.add_argument("--tcp")
    c.add_argument("--udp")
    c.add_argument("--t0", type=float)
    c.add_argument("--timeout", type=float, default=60)
    c.add_argument("--pid", type=int)
    args = ap.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args.ranges))
    else:
        check(args)


if __name__ == "__main__":
    main()
