#!/usr/bin/env python3
"""Measures what each concurrency model costs, with servelab's release binary.

For every model: throughput, p99 latency, server CPU time per request and
connection fairness under `servelab load -t1 -c100` (server pinned to CPU 0,
the client to CPU 1; runs interleaved across models, median reported), then RSS
and thread count with N idle keep-alive connections open (each has completed
one request where the model serves it). Every number printed is measured here.

Usage: scripts/model-costs.py [--runs 3] [--duration 5] [--idle 1000]
Needs: cargo build --release.
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, time

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "servelab")
MODELS = ["sequential", "threaded", "pool", "event"]
TICK = os.sysconf("SC_CLK_TCK")


def start(model, port, extra=()):
    p = subprocess.Popen(["taskset", "-c", "0", BIN, "serve", "--model", model,
                          "--addr", f"127.0.0.1:{port}", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "listening" not in line:
        sys.exit(f"server did not start: {line!r}")
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def status(pid):
    text = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))
    return rss, threads


def load(port, duration):
    out = subprocess.run(["taskset", "-c", "1", BIN, "load", "-t1", "-c100", f"-d{duration}s",
                          "--json", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def throughput(args):
    rows = {m: [] for m in MODELS}
    for run in range(args.runs):
        for i, model in enumerate(MODELS):
            port = 9300 + i
            p = start(model, port)
            before = cpu_ticks(p.pid)
            r = load(port, args.duration)
            used = cpu_ticks(p.pid) - before
            stop(p)
            e = r["errors"]
            errors = e["connect"] + e["read"] + e["write"] + e["aborted"]
            rows[model].append((r["requests_per_sec"], r["latency_us"]["p99"] / 1000,
                                used / TICK * 1e6 / max(r["responses"], 1),
                                r["responses"] - r["responses_2xx_3xx"], errors,
                                r["fairness"]["served"], r["fairness"]["jain"], e["timeout"]))
    print(f"## Throughput: servelab load -t1 -c100 -d{args.duration}s, "
          f"median of {args.runs} interleaved runs\n")
    print("| model | req/s | p99 ms | server CPU µs/req | connections served | Jain fairness "
          "| timeouts (all runs) | non-2xx (all runs) | other errors (all runs) |")
    print("|---|---|---|---|---|---|---|---|---|")
    med = statistics.median
    for model in MODELS:
        r = rows[model]
        print(f"| {model} | {med(x[0] for x in r):,.0f} | {med(x[1] for x in r):.2f} | "
              f"{med(x[2] for x in r):.2f} | {med(x[5] for x in r):.0f}/100 | "
              f"{med(x[6] for x in r):.3f} | {sum(x[7] for x in r)} | {sum(x[3] for x in r)} | "
              f"{sum(x[4] for x in r)} |")
    print()


def idle(args):
    print(f"## {args.idle} idle keep-alive connections (each served one request where the model serves it)\n")
    print("| model | RSS before | RSS after | RSS per connection | threads before | threads after | answered |")
    print("|---|---|---|---|---|---|---|")
    for i, model in enumerate(MODELS):
        port = 9310 + i
        p = start(model, port, ["--idle-timeout", "120s", "--backlog", "4096",
                                "--max-connections", "100000", "--queue", "100000"])
        time.sleep(0.2)
        rss0, th0 = status(p.pid)
        socks, answered = [], 0
        for _ in range(args.idle):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            s.settimeout(0.05 if model != "threaded" else 2)
            try:
                if s.recv(4096).startswith(b"HTTP/1.1 200"):
                    answered += 1
            except socket.timeout:
                pass
        time.sleep(0.5)
        rss1, th1 = status(p.pid)
        for s in socks:
            s.close()
        stop(p)
        print(f"| {model} | {rss0} KiB | {rss1} KiB | {(rss1 - rss0) * 1024 / args.idle:,.0f} B | "
              f"{th0} | {th1} | {answered}/{args.idle} |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if not args.skip_throughput:
        throughput(args)
    idle(args)


if __name__ == "__main__":
    main()
