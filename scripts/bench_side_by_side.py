#!/usr/bin/env python3
"""metricsd, node_exporter and the OpenTelemetry Collector's hostmetrics receiver side by side,
in the same run, on this host.

Measures, for the same collector set (cpu, memory, disk, filesystem, network, load):

* node_exporter (Debian's prometheus-node-exporter, `minimal` collector set: cpu, meminfo,
  diskstats, filesystem, netdev, loadavg): exporter CPU per scrape over N paced scrapes (one per
  second, the cost of a 1 s collection cycle) and RSS after them;
* metricsd (release build) at a 1 s interval with its default collectors and one exporter
  (OTLP HTTP/protobuf, or remote-write, to a local sink that only counts bytes): CPU per tick
  in the same window (both run side by side, so both see the same machine), and RSS;

* the OpenTelemetry Collector (the test build, target/otelcol-test from tests/peers/otelcol, which
  scripts/test.sh builds) with ONLY its hostmetrics receiver (cpu, memory, disk, filesystem,
  network, load, paging, processes; collection_interval 1s) exporting OTLP HTTP/protobuf with the
  same compression to the same sink: CPU per tick and RSS in the same window (`--no-otelcol`
  leaves it out; it is left out with a note when the binary is missing);

and prints the ratios. CPU comes from /proc/PID/task/*/schedstat (ns, summed over threads) as
the anchors take it; RSS is VmRSS. Everything listens on 127.0.0.1 and is stopped at the end.

Compression is like for like (`--compression`): with `gzip` (the default) node_exporter is
scraped with `Accept-Encoding: gzip`, as Prometheus always scrapes, and metricsd's OTLP exporter
gzips its bodies, as the Collector's otlphttp exporter does by default; with `none` neither side
compresses. Remote-write bodies are always snappy-compressed (the protocol requires it).

With `--split`, a second metricsd with no exporter runs in the same window too: its CPU is
what collecting costs (reading /proc and /sys, the callbacks, the OTLP structures), and the
difference is what exporting costs (encoding, compression, HTTP, the loopback send).

With `--baseline BINARY`, another metricsd build (e.g. the previous commit's) runs with the same
exporter in the same window, and the ratio of the two builds' CPU per tick is printed: how a
change is measured without the minute-to-minute moves of a shared machine.

With `--exporter otlp-grpc`, metricsd sends OTLP/gRPC to the Collector's otlp receiver (a
debug exporter that logs nothing behind it: the real peer, as a sink) and its deliveries are
checked on its own `/status`. With `--compare-protocols`, no node_exporter: two metricsd (and
two of `--baseline`'s build) run in the same window with the same collectors, one exporting
OTLP/gRPC and one OTLP/HTTP (both `--compression`) to that Collector, and the ratio of their
CPU per tick is printed (issue 27: gRPC within 10 % of HTTP).

Usage: scripts/bench_side_by_side.py [--seconds 30] [--exporter otlp|otlp-grpc|remote_write]
       [--compression gzip|none] [--split] [--baseline BINARY] [--otelcol BINARY | --no-otelcol]
       [--compare-protocols]
       (build first: cargo build --release; the Collector: scripts/test.sh, or go build in
       tests/peers/otelcol). scripts/bench_vs_node_exporter.py is the same script.
"""
import argparse
import http.client
import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NE_MINIMAL = ["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.diskstats",
              "--collector.filesystem", "--collector.netdev", "--collector.loadavg"]


# The Collector with only the hostmetrics receiver: the same collector set at the same interval,
# OTLP HTTP/protobuf to the same sink (otlphttp appends /v1/metrics). Its own telemetry is off
# (no :8888 listener, no self-scrape), so what is measured is collecting and exporting.
OTELCOL_CONFIG = """receivers:
  hostmetrics:
    collection_interval: 1s
    scrapers:
{scrapers}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{port}
    compression: {compression}
    headers:
      x-bench-source: otelcol
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [hostmetrics]
      exporters: [otlphttp]
"""


# The Collector as the OTLP peer of both protocols: the otlp receiver, a debug exporter that
# logs nothing at this level; so what is measured on the agent's side is a real gRPC/HTTP peer.
OTLP_SINK_CONFIG = """receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [debug]
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_by_thread(pid):
    """CPU ns of each live thread. A thread that exits takes its time with it, so a window's
    CPU is only right when no thread exited in it (see cpu_window)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return out


def cpu_window(before, after, who):
    """CPU ns between two cpu_by_thread snapshots; fails if a thread exited in between."""
    gone = set(before) - set(after)
    if gone:
        raise SystemExit(f"{who}: threads {sorted(gone)} exited during the window; their CPU would be lost, rerun")
    return sum(after[t] - before.get(t, 0) for t in after)


def cpu_total_ns(pid):
    """CPU ns of the whole process from /proc/PID/stat (utime + stime, exited threads included;
    clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_port(port, limit=20):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def otlp_sink(otelcol, dirname):
    """The Collector's otlp receiver on both protocols: (process, grpc port, http port)."""
    grpc, http_port = free_port(), free_port()
    cfg = os.path.join(dirname, "otlp-sink.yaml")
    with open(cfg, "w") as f:
        f.write(OTLP_SINK_CONFIG.format(grpc=grpc, http=http_port))
    p = subprocess.Popen([otelcol, f"--config={cfg}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(grpc)
        wait_port(http_port)
    except SystemExit:
        p.kill()
        raise
    return p, grpc, http_port


def otlp_exporter(protocol, compression, port):
    if protocol == "grpc":
        return f"  - type: otlp\n    protocol: grpc\n    compression: {compression}\n    endpoint: http://127.0.0.1:{port}\n"
    return f"  - type: otlp\n    protocol: http/protobuf\n    compression: {compression}\n    endpoint: http://127.0.0.1:{port}/v1/metrics\n"


def exports(status_port):
    """(payloads sent, dropped, failed attempts) of an agent, from its /status."""
    import json
    conn = http.client.HTTPConnection("127.0.0.1", status_port, timeout=10)
    conn.request("GET", "/status")
    ex = json.loads(conn.getresponse().read())["exporters"]
    return tuple(sum(e[k] for e in ex) for k in ("sent_payloads", "dropped_payloads", "failed_attempts"))


def compare_protocols(args):
    """metricsd over OTLP/gRPC and over OTLP/HTTP (and the baseline's build likewise), side by
    side in one window, all to the same Collector: CPU per tick, RSS, and the gRPC/HTTP ratio."""
    n = args.seconds
    d = tempfile.TemporaryDirectory()
    procs = []
    agents = []  # (label, process, status port)
    try:
        sink, grpc, http_port = otlp_sink(args.otelcol, d.name)
        procs.append(sink)
        builds = [("after", args.binary)] + ([("before", args.baseline)] if args.baseline else [])
        for build, binary in builds:
            for protocol, port in (("grpc", grpc), ("http", http_port)):
                status_port = free_port()
                cfg = os.path.join(d.name, f"{build}-{protocol}.yaml")
                with open(cfg, "w") as f:
                    f.write(f"server:\n  port: {status_port}\ncollector:\n  interval: 1s\n"
                            f"exporters:\n{otlp_exporter(protocol, args.compression, port)}")
                p = subprocess.Popen([binary, "-c", cfg, "--log-level", "warn"], stdout=subprocess.DEVNULL)
                procs.append(p)
                agents.append((f"{build} {protocol}", p, status_port))
        # Warm-up: first ticks, connections, the compressors' state; and past the 10 s after which
        # Tokio lets the start's blocking threads go (a thread that exits takes its CPU time along).
        time.sleep(20)
        for label, p, _ in agents:
            if p.poll() is not None:
                raise SystemExit(f"metricsd ({label}) exited with status {p.returncode} during the warm-up")
        sent0 = [exports(port) for _, _, port in agents]
        # Serving /status takes a blocking thread that Tokio lets go 10 s later: not in the window.
        time.sleep(12)
        cpu0 = [(cpu_by_thread(p.pid), cpu_total_ns(p.pid)) for _, p, _ in agents]
        time.sleep(n)
        cpu1 = [(cpu_by_thread(p.pid), cpu_total_ns(p.pid)) for _, p, _ in agents]
        sent1 = [exports(port) for _, _, port in agents]
        rows = {}
        for (label, p, _), c0, c1, s0, s1 in zip(agents, cpu0, cpu1, sent0, sent1):
            sent, dropped, failed = (b - a for a, b in zip(s0, s1))
            if sent < n - 2 or dropped or failed:
                raise SystemExit(f"metricsd ({label}): {sent} payloads sent, {dropped} dropped, {failed} failed in {n} s")
            # A thread that exited in the window: the whole-process figure (10 ms ticks) keeps its time.
            if set(c0[0]) - set(c1[0]):
                print(f"note: a thread of metricsd ({label}) exited in the window; its CPU is counted in clock ticks", file=sys.stderr)
                ns = c1[1] - c0[1]
            else:
                ns = cpu_window(c0[0], c1[0], label)
            rows[label] = (ns / 1e6 / n, rss_kb(p.pid) / 1024, sent)
    finally:
        for p in reversed(procs):  # the agents first, the sink last
            p.send_signal(signal.SIGTERM)
            p.wait(15)
        d.cleanup()
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {os.uname().release} nproc={os.cpu_count()} window={n}s "
          f"compare-protocols compression={args.compression} peer=otelcol-otlp-receiver")
    for label, (cpu, rss, sent) in rows.items():
        print(f"metricsd_{label.replace(' ', '_')}: {cpu:.3f} ms/tick, {rss:.1f} MB RSS, {sent} payloads")
    for build, _ in builds:
        g, h = rows[f"{build} grpc"][0], rows[f"{build} http"][0]
        print(f"ratio_cpu_grpc_over_http_{build}: {g / h:.3f}")
    if args.baseline:
        for protocol in ("grpc", "http"):
            print(f"ratio_cpu_{protocol}_after_over_before: {rows[f'after {protocol}'][0] / rows[f'before {protocol}'][0]:.3f}")


class Sink(http.server.BaseHTTPRequestHandler):
    # Keep-alive, as the OpenTelemetry Collector and Prometheus do: with HTTP/1.0 every request
    # would pay a new connection (and a resolver thread hop) that no real deployment pays.
    protocol_version = "HTTP/1.1"
    received = 0
    requests = 0
    encoding = None
    otel_requests = 0
    otel_encoding = None

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        # The Collector's exporter is configured to say who it is.
        if self.headers.get("X-Bench-Source") == "otelcol":
            Sink.otel_encoding = self.headers.get("Content-Encoding")
            Sink.otel_requests += 1
        else:
            Sink.encoding = self.headers.get("Content-Encoding")
            Sink.received += n
            Sink.requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--exporter", choices=["otlp", "otlp-grpc", "remote_write"], default="otlp")
    ap.add_argument("--compression", choices=["gzip", "none"], default="gzip")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/metricsd"))
    ap.add_argument("--node-exporter", default="/usr/bin/prometheus-node-exporter")
    ap.add_argument("--split", action="store_true", help="also measure a metricsd without exporter: collect vs export")
    ap.add_argument("--baseline", help="another metricsd binary, measured with the same exporter in the same window")
    ap.add_argument("--otelcol", default=os.environ.get("METRICSD_OTELCOL", os.path.join(ROOT, "target/otelcol-test")),
                    help="the Collector binary (hostmetrics receiver only)")
    ap.add_argument("--no-otelcol", action="store_true", help="leave the Collector out")
    ap.add_argument("--compare-protocols", action="store_true",
                    help="metricsd over OTLP/gRPC beside metricsd over OTLP/HTTP (and --baseline's build likewise), to the Collector")
    ap.add_argument("--otelcol-scrapers", default="cpu,memory,disk,filesystem,network,load,paging,processes",
                    help="the hostmetrics scrapers, comma-separated (to see what one costs)")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary} missing: run cargo build --release")
    grpc_peer = args.compare_protocols or args.exporter == "otlp-grpc"
    if grpc_peer and not os.path.exists(args.otelcol):
        raise SystemExit(f"{args.otelcol} missing: the OTLP/gRPC peer is the Collector (scripts/test.sh builds it with Go)")
    if args.compare_protocols:
        return compare_protocols(args)
    if not args.no_otelcol and not os.path.exists(args.otelcol):
        print(f"note: {args.otelcol} missing (scripts/test.sh builds it with Go); the Collector is left out", file=sys.stderr)
        args.no_otelcol = True
    n = args.seconds

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_port = sink.server_address[1]

    # node_exporter (minimal set, one scrape a second) and metricsd (default collectors, one
    # exporter, 1 s interval) run side by side and are measured over the same window, so both
    # see the same machine: on a shared VM the cost of the same work moves by 20 % from one
    # minute to the next, and two windows one after the other would compare those moves.
    ne_port = free_port()
    ne = subprocess.Popen([args.node_exporter, f"--web.listen-address=127.0.0.1:{ne_port}"] + NE_MINIMAL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = tempfile.TemporaryDirectory()
    md = bare = base = oc = grpc_sink = None
    status_port = None
    try:
        wait_port(ne_port)
        conn = http.client.HTTPConnection("127.0.0.1", ne_port, timeout=10)
        headers = {"Accept-Encoding": "gzip"} if args.compression == "gzip" else {}

        def scrape():
            conn.request("GET", "/metrics", headers=headers)
            r = conn.getresponse()
            r.read()
            if (r.getheader("Content-Encoding") == "gzip") != (args.compression == "gzip"):
                raise SystemExit(f"node_exporter answered Content-Encoding {r.getheader('Content-Encoding')!r}")

        cfg = os.path.join(d.name, "bench.yaml")
        server = "server:\n  enabled: false\n"
        if args.exporter == "otlp-grpc":
            grpc_sink, grpc_port, _ = otlp_sink(args.otelcol, d.name)
            exp = otlp_exporter("grpc", args.compression, grpc_port)
            # Deliveries are checked on the agent's /status (the Python sink speaks no gRPC).
            status_port = free_port()
            server = f"server:\n  port: {status_port}\n"
        elif args.exporter == "otlp":
            exp = (f"  - type: otlp\n    protocol: http/protobuf\n    compression: {args.compression}\n"
                   f"    endpoint: http://127.0.0.1:{sink_port}/v1/metrics\n")
        else:
            exp = f"  - type: prometheus_remote_write\n    endpoint: http://127.0.0.1:{sink_port}/api/v1/write\n"
        with open(cfg, "w") as f:
            f.write(f"{server}collector:\n  interval: 1s\nexporters:\n{exp}")
        md = subprocess.Popen([args.binary, "-c", cfg, "--log-level", "warn"], stdout=subprocess.DEVNULL)
        if args.split:
            bare_cfg = os.path.join(d.name, "bare.yaml")
            with open(bare_cfg, "w") as f:
                f.write("server:\n  enabled: false\ncollector:\n  interval: 1s\nexporters: []\n")
            bare = subprocess.Popen([args.binary, "-c", bare_cfg, "--log-level", "error"], stdout=subprocess.DEVNULL)
        if args.baseline:
            base_cfg = cfg
            if status_port:
                base_cfg = os.path.join(d.name, "baseline.yaml")
                with open(base_cfg, "w") as f:
                    f.write(f"server:\n  port: {free_port()}\ncollector:\n  interval: 1s\nexporters:\n{exp}")
            base = subprocess.Popen([args.baseline, "-c", base_cfg, "--log-level", "warn"], stdout=subprocess.DEVNULL)
        if not args.no_otelcol:
            oc_cfg = os.path.join(d.name, "otelcol.yaml")
            with open(oc_cfg, "w") as f:
                scrapers = "\n".join(f"      {x}:" for x in args.otelcol_scrapers.split(","))
                f.write(OTELCOL_CONFIG.format(port=sink_port, compression=args.compression, scrapers=scrapers))
            oc = subprocess.Popen([args.otelcol, f"--config={oc_cfg}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # Warm-up: node_exporter's first scrapes, metricsd's first ticks, connection pools.
        t0 = time.time()
        for i in range(6):
            scrape()
            time.sleep(max(0, t0 + i + 1 - time.time()))
        # Scrapes land half-way between metricsd's ticks (both paced at 1 s).
        time.sleep(0.5)
        before = Sink.requests
        otel_before = Sink.otel_requests
        grpc_before = exports(status_port) if status_port else None
        for p, who in ((md, "metricsd"), (bare, "metricsd without exporter"), (base, "the baseline metricsd"), (oc, "the Collector")):
            if p is not None and p.poll() is not None:
                raise SystemExit(f"{who} exited with status {p.returncode} during the warm-up (run it by hand to see why)")
        b0 = cpu_by_thread(bare.pid) if bare else None
        base0 = cpu_by_thread(base.pid) if base else None
        oc0 = (cpu_by_thread(oc.pid), cpu_total_ns(oc.pid)) if oc else None
        ne0, md0, t0 = cpu_by_thread(ne.pid), cpu_by_thread(md.pid), time.time()
        for i in range(n):
            scrape()
            time.sleep(max(0, t0 + i + 1 - time.time()))
        ne1, md1 = cpu_by_thread(ne.pid), cpu_by_thread(md.pid)
        oc_cpu_ms = oc_rss = None
        if oc:
            oc1 = (cpu_by_thread(oc.pid), cpu_total_ns(oc.pid))
            if set(oc0[0]) - set(oc1[0]):
                # The Go runtime let a thread go: the whole-process figure keeps its time.
                oc_cpu_ms = (oc1[1] - oc0[1]) / 1e6 / n
            else:
                oc_cpu_ms = cpu_window(oc0[0], oc1[0], "the Collector") / 1e6 / n
            oc_rss = rss_kb(oc.pid) / 1024
            otel_sent = Sink.otel_requests - otel_before
            if otel_sent == 0:
                raise SystemExit("the Collector sent nothing to the sink in the window")
            if Sink.otel_encoding != {"gzip": "gzip", "none": None}[args.compression]:
                raise SystemExit(f"the Collector sent Content-Encoding {Sink.otel_encoding!r}")
        bare_cpu_ms = cpu_window(b0, cpu_by_thread(bare.pid), "metricsd without exporter") / 1e6 / n if bare else None
        base_cpu_ms = cpu_window(base0, cpu_by_thread(base.pid), "the baseline metricsd") / 1e6 / n if base else None
        base_rss = rss_kb(base.pid) / 1024 if base else None
        ne_cpu_ms = cpu_window(ne0, ne1, "node_exporter") / 1e6 / n
        md_cpu_ms = cpu_window(md0, md1, "metricsd") / 1e6 / n
        ne_rss, md_rss = rss_kb(ne.pid) / 1024, rss_kb(md.pid) / 1024
        if grpc_before is not None:
            sent, dropped, failed = (b - a for a, b in zip(grpc_before, exports(status_port)))
            if dropped or failed:
                raise SystemExit(f"metricsd over gRPC: {dropped} payloads dropped, {failed} failed attempts in the window")
        else:
            sent = Sink.requests - before
            want = {"gzip": "gzip", "none": None}[args.compression] if args.exporter == "otlp" else "snappy"
            if Sink.encoding != want:
                raise SystemExit(f"metricsd sent Content-Encoding {Sink.encoding!r}, expected {want!r}")
    finally:
        ne.send_signal(signal.SIGTERM)
        ne.wait(10)
        for p in (md, bare, base, oc, grpc_sink):
            if p is not None:
                p.send_signal(signal.SIGTERM)
                p.wait(15)
        d.cleanup()
    sink.shutdown()

    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {os.uname().release} nproc={os.cpu_count()} window={n}s exporter={args.exporter} compression={args.compression}"
          + ("" if args.no_otelcol else f" otelcol_scrapers={args.otelcol_scrapers}"))
    print(f"node_exporter_cpu_ms_per_cycle: {ne_cpu_ms:.3f} ms")
    print(f"node_exporter_rss: {ne_rss:.1f} MB")
    print(f"metricsd_cpu_ms_per_tick: {md_cpu_ms:.3f} ms")
    print(f"metricsd_rss: {md_rss:.1f} MB")
    print(f"metricsd_requests_in_window: {sent}")
    if bare_cpu_ms is not None:
        print(f"metricsd_collect_only_cpu_ms_per_tick: {bare_cpu_ms:.3f} ms")
        print(f"metricsd_export_cpu_ms_per_tick: {md_cpu_ms - bare_cpu_ms:.3f} ms (the difference)")
    if base_cpu_ms is not None:
        print(f"baseline_cpu_ms_per_tick: {base_cpu_ms:.3f} ms ({args.baseline})")
        print(f"baseline_rss: {base_rss:.1f} MB")
        print(f"ratio_cpu_metricsd_over_baseline: {md_cpu_ms / base_cpu_ms:.3f}")
    if oc_cpu_ms is not None:
        print(f"otelcol_hostmetrics_cpu_ms_per_tick: {oc_cpu_ms:.3f} ms")
        print(f"otelcol_hostmetrics_rss: {oc_rss:.1f} MB")
        print(f"otelcol_requests_in_window: {otel_sent}")
        print(f"ratio_cpu_otelcol_over_metricsd: {oc_cpu_ms / md_cpu_ms:.1f}x")
        print(f"ratio_rss_otelcol_over_metricsd: {oc_rss / md_rss:.1f}x")
    print(f"ratio_cpu_node_exporter_over_metricsd: {ne_cpu_ms / md_cpu_ms:.1f}x")
    print(f"ratio_rss_node_exporter_over_metricsd: {ne_rss / md_rss:.1f}x")
    ok = md_cpu_ms <= ne_cpu_ms / 5 and md_rss <= ne_rss / 2
    print(f"target (<= 1/5 CPU, <= 1/2 RSS of node_exporter): {'met' if ok else 'NOT met'}")
    print(f"target (<= 0.6 ms CPU, <= 6 MB RSS per tick): {'met' if md_cpu_ms <= 0.6 and md_rss <= 6 else 'NOT met'}")


if __name__ == "__main__":
    main()
