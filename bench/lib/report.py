#!/usr/bin/env python3
"""Turn bench/run's results (proxy, metric, value lines) into the markdown table, the goal check
against issue 6, and a PNG chart of the ratios (drawn by gnuplot). Prints the table on stdout."""
import argparse
import datetime
import os
import statistics
import subprocess
import tempfile

ORDER = ["none", "baton-io_uring", "baton-epoll", "baton-nio", "haproxy", "nginx", "docker-proxy", "socat"]
LABEL = {"none": "no proxy", "haproxy": "HAProxy (nbthread 2)", "nginx": "nginx stream (2 workers, reuseport)",
         "docker-proxy": "docker-proxy", "socat": "socat (fork)"}
PEERS = ["haproxy", "nginx", "docker-proxy", "socat"]

# metric, column title, higher is better, compare with no proxy, decimals
COLUMNS = [
    ("ka_rps", "keep-alive req/s", True, True, 0),
    ("nc_cps", "new conn/s", True, True, 0),
    ("bulk_gbps", "bulk Gbit/s", True, True, 1),
    ("tcp_p99", "TCP p99 µs", False, True, 1),
    ("udp_p99", "UDP p99 µs", False, True, 1),
    ("udp_rr", "UDP req/s, 4 flows", True, True, 0),
    ("udp_pps", "UDP datagrams/s, 8 flows", True, True, 0),
    ("idle_kib", "KiB per idle conn", False, False, 1),
    ("rss_mib", "RSS MiB", False, False, 1),
    ("ka_cpu_us", "CPU µs per req", False, False, 1),
    ("nc_cpu_us", "CPU µs per new conn", False, False, 1),
    ("start_ms", "start to first relayed request, ms", False, False, 0),
]


def load(path):
    """Per proxy and metric the median of the rounds' values (bench/run --rounds), the spread
    (min, max, count) where there was more than one, and the notes."""
    runs, notes = {}, {}
    with open(path) as f:
        for line in f:
            proxy, metric, value = line.rstrip("\n").split("\t", 2)
            if metric == "note":
                notes.setdefault(proxy, []).append(value)
                continue
            try:
                runs.setdefault(proxy, {}).setdefault(metric, []).append(float(value))
            except ValueError:
                runs.setdefault(proxy, {}).setdefault(metric, [])  # "fail"
                notes.setdefault(proxy, []).append(f"{metric}: no result")
    values, spread = {}, {}
    for proxy, metrics in runs.items():
        for metric, vs in metrics.items():
            values.setdefault(proxy, {})[metric] = statistics.median(vs) if vs else None
            if len(vs) > 1:
                spread.setdefault(proxy, {})[metric] = (min(vs), max(vs), len(vs))
    return values, notes, spread


def fmt(v, decimals):
    if v is None:
        return "–"
    return f"{v:,.{decimals}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def table(values):
    proxies = [p for p in ORDER if p in values] + sorted(p for p in values if p not in ORDER)
    head = "| proxy | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    none, hap = values.get("none", {}), values.get("haproxy", {})
    for p in proxies:
        cells = []
        for metric, _, _, vs_none, dec in COLUMNS:
            if metric not in values[p]:
                cells.append("–")
                continue
            v = values[p][metric]
            parts = []
            if vs_none and p != "none":
                r = ratio(v, none.get(metric))
                parts.append(f"{r:.2f}×np" if r is not None else "")
            if p not in ("none", "haproxy"):
                r = ratio(v, hap.get(metric))
                parts.append(f"{r:.2f}×H" if r is not None else "")
            parts = [x for x in parts if x]
            cells.append(fmt(v, dec) + (f" ({', '.join(parts)})" if parts else ""))
        rows.append(f"| {LABEL.get(p, p)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def spread_table(spread):
    """min–max of each figure over the rounds, where there was more than one."""
    proxies = [p for p in ORDER if p in spread] + sorted(p for p in spread if p not in ORDER)
    rows = ["| proxy | " + " | ".join(c[1] for c in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for p in proxies:
        cells = []
        for metric, _, _, _, dec in COLUMNS:
            lo_hi = spread[p].get(metric)
            cells.append(f"{fmt(lo_hi[0], dec)}–{fmt(lo_hi[1], dec)}" if lo_hi else "–")
        rows.append(f"| {LABEL.get(p, p)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def cold_table(values):
    proxies = [p for p in ORDER if p in values and p != "none"]
    rows = ["| proxy | start to first relayed request, ms (first start, second start) | CPU by then, ms | keep-alive req/s, first run | keep-alive req/s, measured | new conn/s, first run | new conn/s, measured |",
            "|---|---|---|---|---|---|---|"]
    for p in proxies:
        v = values[p]
        rows.append(f"| {LABEL.get(p, p)} | {fmt(v.get('start_ms'), 0)}, {fmt(v.get('start2_ms'), 0)} | "
                    f"{fmt(v.get('start_cpu_ms'), 0)}, {fmt(v.get('start2_cpu_ms'), 0)} | "
                    f"{fmt(v.get('ka_cold'), 0)} | {fmt(v.get('ka_rps'), 0)} | {fmt(v.get('nc_cold'), 0)} | {fmt(v.get('nc_cps'), 0)} |")
    return "\n".join(rows)


def goals(values, spread):
    """Issue 6's goals, checked for each baton transport measured (medians over the rounds)."""
    def best(metric, higher):
        vs = [(values[p][metric], p) for p in PEERS if values.get(p, {}).get(metric) is not None]
        if not vs:
            return None, "no peer measured"
        return (max if higher else min)(vs)

    out = []
    none = values.get("none", {})
    hap = values.get("haproxy", {})
    dp = values.get("docker-proxy", {})
    for b in [p for p in ORDER if p.startswith("baton-") and p in values]:
        v = values[b]
        checks = []

        def check(text, ok):
            checks.append(f"  - {'met' if ok else '**not met**' if ok is not None else 'not measured'}: {text}")

        def get(d, m):
            return d.get(m)

        for m, what in (("ka_rps", "keep-alive req/s"), ("nc_cps", "new conn/s")):
            a, h = get(v, m), get(hap, m)
            check(f"{what} ≥ HAProxy's: {fmt(a, 0)} vs {fmt(h, 0)}", None if a is None or h is None else a >= h)
        a, d, n = get(v, "bulk_gbps"), get(dp, "bulk_gbps"), get(none, "bulk_gbps")
        check(f"bulk ≥ docker-proxy's and ≥ 70% of no proxy: {fmt(a, 1)} Gbit/s vs {fmt(d, 1)} and 0.7 × {fmt(n, 1)}",
              None if None in (a, d, n) else a >= d and a >= 0.7 * n)
        for m, what in (("tcp_p99", "TCP p99"), ("udp_p99", "UDP p99")):
            a, (bv, bp) = get(v, m), best(m, False)
            check(f"{what} ≤ the best peer's: {fmt(a, 1)} µs vs {fmt(bv, 1)} ({bp})", None if a is None or bv is None else a <= bv)
        for m, what in (("udp_rr", "UDP request/response rate"), ("udp_pps", "UDP throughput (datagrams/s)")):
            a, (bv, bp) = get(v, m), best(m, True)
            check(f"{what} ≥ the best peer's: {fmt(a, 0)} vs {fmt(bv, 0)} ({bp})", None if a is None or bv is None else a >= bv)
        a = get(v, "idle_kib")
        check(f"≤ 4 KiB per idle proxied connection: {fmt(a, 2)} KiB", None if a is None else a <= 4)
        a, a2 = get(v, "start_ms"), get(v, "start2_ms")
        slowest = spread.get(b, {}).get("start_ms", (None, None))[1]
        worst = max(x for x in (a, a2, slowest, 0) if x is not None)
        check(f"start to first relayed request ≤ 1 s: {fmt(a, 0)} ms (second start: {fmt(a2, 0)} ms)",
              None if a is None else worst <= 1000)
        out.append(f"- **{b}**\n" + "\n".join(checks))
    return "\n".join(out)


def chart(values, png):
    none, hap = values.get("none", {}), values.get("haproxy", {})
    proxies = [p for p in ORDER if p in values and p != "none"]
    panels = [
        ("ratio to no proxy, log scale (higher is better; latency as no-proxy p99 / proxy p99)", none,
         [("ka_rps", "keep-alive", True), ("nc_cps", "new conn", True), ("bulk_gbps", "bulk", True),
          ("tcp_p99", "TCP p99", False), ("udp_p99", "UDP p99", False), ("udp_rr", "UDP req/resp", True),
          ("udp_pps", "UDP datagrams", True)]),
        ("ratio to HAProxy, log scale (higher is better; latency, memory and CPU inverted: HAProxy's / the proxy's)", hap,
         [("ka_rps", "keep-alive", True), ("nc_cps", "new conn", True), ("bulk_gbps", "bulk", True),
          ("tcp_p99", "TCP p99", False), ("idle_kib", "KiB/idle conn", False), ("ka_cpu_us", "CPU/req", False),
          ("nc_cpu_us", "CPU/new conn", False)]),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-chart.") as tmp:
        draw(values, png, panels, proxies, tmp)


def draw(values, png, panels, proxies, tmp):
    script = [f"set terminal pngcairo noenhanced size 1400,1000 font 'sans,10'", f"set output '{png}'",
              "set multiplot layout 2,1", "set style data histograms", "set style histogram clustered gap 1",
              "set style fill solid 0.85 border -1", "set boxwidth 0.9", "set datafile missing '-'",
              "set logscale y", "set yrange [0.01:20]", "set grid ytics mytics", "set key outside right top vertical",
              "set xtics nomirror", "set ylabel 'ratio'"]
    for i, (title, ref, metrics) in enumerate(panels):
        data = os.path.join(tmp, f"panel{i}.dat")
        with open(data, "w") as f:
            f.write("workload " + " ".join(f'"{p}"' for p in proxies) + "\n")
            for m, label, higher in metrics:
                cells = []
                for p in proxies:
                    v, r = values[p].get(m), ref.get(m)
                    if v in (None, 0) or r in (None, 0):
                        cells.append("-")
                    else:
                        cells.append(f"{(v / r) if higher else (r / v):.3f}")
                f.write(f'"{label}" ' + " ".join(cells) + "\n")
        script.append(f'set title "{title}"')
        plots = ", ".join(f"'{data}' using {j + 2}:xtic(1) title columnheader({j + 2})" for j in range(len(proxies)))
        script.append(f"plot {plots}, 1 with lines lc rgb 'black' dt 2 notitle")
    script.append("unset multiplot")
    path = os.path.join(tmp, "chart.gp")
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", path], check=True)


def main():
    ap = argparse.ArgumentParser()
    for a in ("--results", "--versions", "--md", "--png", "--command", "--duration", "--idle", "--elapsed"):
        ap.add_argument(a, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    values, notes, spread = load(a.results)
    t = table(values)
    print(t)
    chart(values, a.png)
    with open(a.versions) as f:
        versions = f.read().rstrip()
    pp = min(3, int(a.duration))   # bench/run's sockperf slices: 3 s, or the whole run if shorter
    note_lines = "\n".join(f"- {LABEL.get(p, p)}: {n}" for p in values for n in notes.get(p, [])) or "- none"
    method = ("all proxies running at once, each workload run against each proxy in turn, in slices "
              "(every proxy's run spread over the same minute as the others'); start time and idle memory "
              "measured on each proxy alone")
    if a.rounds > 1:
        rounds_text = (f"{method}; {a.rounds} rounds of the workloads, every cell the median of the rounds "
                       f"(start time and idle memory: once)")
        spread_text = f"\n## Spread over the {a.rounds} rounds (lowest–highest)\n\n{spread_table(spread)}\n"
    else:
        rounds_text, spread_text = f"{method}; one run of each workload", ""
    md = f"""# baton next to HAProxy, nginx, docker-proxy and socat

Measured {datetime.date.today().isoformat()} by `{a.command}` in {a.elapsed} s; {a.duration} s per measured run (wrk in slices of 1 s, sockperf of {pp} s),
{rounds_text}, loopback only. This is a shared 2-core machine: absolute numbers drift from run to
run, the ratios within one run are what to read (issue 6 states its goals as ratios).

{versions}

Each cell: the value, then (×np) the ratio to no proxy and (×H) the ratio to HAProxy in this run.
For latency, memory, CPU and start time lower is better; for the rest higher is better.

{t}

![ratios](benchmarks.png)
{spread_text}
## Right after the start

The first keep-alive and new-connection runs after a proxy starts are its warm-up; they are not in
the table above. A JVM interprets, then compiles, its hot paths during these seconds.

{cold_table(values)}

## Issue 6's goals
{goals(values, spread)}

## What each column is
- **keep-alive req/s**: `wrk -t1 -c32` for {a.duration} × 1 s against an nginx `return 200` backend (1 worker,
  keep-alive) through the proxy.
- **new conn/s**: the same with `-H 'Connection: close'`: the backend closes after each response, so
  every request is a new client connection and a new upstream connection.
- **bulk Gbit/s**: `iperf3 -c` for {a.duration} s, one TCP stream, the receiver's rate (one run, not in slices:
  a stream through a proxy takes most of a second to reach its rate).
- **TCP / UDP p99 µs**: `sockperf ping-pong -m 64` in slices of {pp} s, as many as make up {a.duration} s
  (rounded up), 99th percentile of the one-way latency (half the round trip) over every sample of the
  run's slices (`--full-log`). sockperf leaves out each slice's first 400 ms and last 50 ms: a warm-up
  of the path after other traffic, and a new connection for TCP. (Its client sleeps 2 s before it
  measures, so slices of 1 s would make these runs three times as long.)
- **UDP req/s, 4 flows**: four `sockperf ping-pong -m 64` clients at once, in the same slices (four client sockets, so four
  flows through the proxy), replies per second summed (a flow's replies over its time, times four).
- **UDP datagrams/s, 8 flows**: `iperf3 -u -b 0 -l 64 -P 8` for {a.duration} s (one run): eight flows of 64-byte datagrams sent as fast
  as the client can; what the iperf3 server received per second.
- **KiB per idle conn**: {a.idle} idle connections opened through a freshly started proxy (each with its upstream
  connection to the backend); (RSS after − RSS before) / {a.idle}, summed over the proxy's processes.
  Each snapshot follows the same 3 s of new connections (`wrk -c4`, `Connection: close`) and 10 s of
  quiet: "before" then excludes one-time start-up costs (a JVM compiling its accept path), and "after"
  includes what any traffic makes resident (a JVM's young generation grown with the heap).
  The open-files limit here is 20,000 per process and cannot be raised (no CAP_SYS_RESOURCE), and a
  single-process proxy holds two sockets per connection, so the run uses {a.idle} rather than 10,000;
  docker-proxy gets 3,000 (see the notes). socat forks a process per connection and is left out.
  Socket buffers are kernel memory and not in RSS, for every proxy alike.
- **RSS MiB**: resident memory of all the proxy's processes after the workloads above.
- **CPU µs per req / per new conn**: utime+stime from /proc/PID/stat of all the proxy's processes
  (plus reaped children) over the keep-alive and the new-connection run, divided by the requests.
- **start**: from launching the proxy, alone on the machine besides the backends, to the first HTTP
  request answered through it (the idle-memory figure is taken on a second, fresh start of the proxy;
  that start's time is under "Right after the start", with the CPU time its processes had used by
  then: a slow start with the usual CPU waited, one with more CPU did more work).

Settings: each proxy listens on four ports of its own, 127.0.0.1:18000-18003 for the first of the list
(no proxy not counted), 18010-18013 for the next, and so on, and relays to the backends on 19000-19003;
2 workers or threads (baton `workers = 2`, HAProxy `nbthread 2`, nginx `worker_processes 2` with
`reuseport`; docker-proxy is a Go program using both cores; socat forks), backlog 4096, TCP keep-alive
on, TCP idle timeout 1 h, UDP flow timeout 60 s. HAProxy has no UDP. docker-proxy runs one process per
port and protocol, as dockerd does. Once all are running, each gets the same warm-up: three
keep-alive and three new-connection runs of {a.duration} s, alternating (the first pair's figures are under
"Right after the start"); a JVM is still compiling after the first pair, and a daemon runs for days.
Then each workload runs against every proxy in turn (no proxy included) in slices (wrk 1 s, sockperf
{pp} s; iperf3 in one run): a pass of slices goes through all of them, the next pass starts one proxy
later and goes the other way round (the next round starts one proxy later again), and a run's
figure is made of its slices (all requests over all time; for p99 all samples in one pool). A
proxy's figure is then spread over the same minute as everyone else's instead of taking a few
seconds of its own: this host's speed changes from one 5 s to the next.

## Notes from this run
{note_lines}
"""
    with open(a.md, "w") as f:
        f.write(md)


if __name__ == "__main__":
    main()
