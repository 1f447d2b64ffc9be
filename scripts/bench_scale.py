#!/usr/bin/env python3
"""metricsd beside node_exporter (and the Collector's hostmetrics receiver) at every host size:
CPU per cycle, series and memory on generated `/proc` and `/sys` trees.

For each size (CPUs / interfaces / disks, with mounts, processes and cgroups in proportion)
scripts/scale_tree.py writes a host tree on tmpfs (/dev/shm, else /tmp), and in one window over
that tree, side by side (each sees the same machine):

* metricsd (`--binary`, default the release build) at a 1 s interval with `HOST_PROC`,
  `HOST_SYS`, `HOST_ROOT` on the tree, collectors cpu, memory, paging, load, disk, filesystem,
  network (interface counters; socket counts off), uptime and its own telemetry (the others,
  which read files the tree does not have or the real host's kernel, are off), and one exporter
  (`--exporter`, to a local sink; `none`: no exporter);
* node_exporter (Debian's, `--path.procfs/sysfs/rootfs` on the tree, its `minimal` set: cpu,
  meminfo, diskstats, filesystem, netdev from /proc/net/dev (`--no-collector.netdev.netlink`),
  loadavg), scraped once a second with `Accept-Encoding: gzip` as Prometheus scrapes;
* the Collector's hostmetrics receiver (`target/otelcol-test`, built by
  `scripts/test.sh --test collector`; left out when missing) with `root_path` on the tree,
  scrapers cpu, memory, paging, load, disk, filesystem, network (connections off), at 1 s,
  OTLP/HTTP gzip to the same sink;
* with `--baseline BINARY`, a second metricsd build with the same config.

`--process` adds metricsd's process collector (every process: `top_n: 0`) and the Collector's
process scraper (both per process), and node_exporter's processes collector (counts only: it
has no per-process metrics). `--containers` adds metricsd's containers collector over the
tree's cgroups (the others have no such collector). Once a second, before each scrape, the
script advances the tree's counters (scale_tree.Tree.tick), so rates and utilizations are
computed as on a live host.

Printed per size and side: CPU per cycle (ns from /proc/PID/task/*/schedstat over the window, as
bench_side_by_side.py takes it), series (node_exporter: sample lines of the last scrape;
metricsd and the Collector: data points per tick decoded from the OTLP requests at the sink —
for the other exporters a second metricsd with an OTLP/HTTP exporter counts them after the
window), RSS (VmRSS at the end of the window) and its peak (VmHWM), KB of RSS per series and the
marginal KB per series (RSS above the smallest size's over the series above its series), and
the ratios metricsd ÷ node_exporter; without `--markdown`, also the bytes metricsd sent a cycle
(the HTTP exporters; compressed, as on the wire). The sink for `otlp-grpc` is the Collector
(`target/otelcol-test`: otlp receiver, debug exporter at `basic`, logs at warn); the others go
to a Python HTTP sink that counts bytes.

Usage: scripts/bench_scale.py [--seconds 25] [--sizes 2/4/2,64/200/50/...]
       [--exporter otlp-http|otlp-grpc|remote-write|http-json|none] [--binary BIN]
       [--baseline BIN] [--otelcol BIN | --no-otelcol] [--process] [--containers] [--markdown]
A size is CPUS/INTERFACES/DISKS[/MOUNTS/PROCESSES/CGROUPS]. Everything listens on 127.0.0.1;
every child is stopped and the trees removed at the end, on an error and on Ctrl-C.
"""
import argparse
import gzip
import http.client
import http.server
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the working tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_side_by_side import cpu_by_thread, cpu_total_ns, free_port, rss_kb, wait_port  # noqa: E402
from scale_tree import Sizes, Tree  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The four hosts (CPUs / interfaces / disks); mounts, processes and cgroups follow them
# (see parse_sizes).
PRESETS = "2/4/2,64/200/50,256/1000/200,1024/4000/500"
NE_MINIMAL = ["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.diskstats",
              "--collector.filesystem", "--collector.netdev", "--no-collector.netdev.netlink", "--collector.loadavg"]
# metricsd's collectors that read what the tree does not hold (or the real host's kernel).
MD_OFF = ["processes", "netstat", "softnet", "conntrack", "filefd", "entropy", "timex", "hwmon", "thermal", "rapl",
          "edac", "nvme", "mdadm", "pressure"]
OTELCOL_SCRAPERS = """      cpu:
      memory:
      paging:
      load:
      disk:
      filesystem:
      network:
        metrics:
          system.network.connections:
            enabled: false
"""
OTELCOL_PROCESS = """      process:
        mute_process_all_errors: true
"""
OTELCOL_HOSTMETRICS = """receivers:
  hostmetrics:
    collection_interval: 1s
    root_path: {root}
    scrapers:
{scrapers}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{port}/otelcol
    compression: gzip
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
OTELCOL_GRPC_SINK = """receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{port}
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


# ---- counting OTLP data points in a request, without a protobuf library -------------------

def pb_fields(buf):
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(buf, i)
        elif w == 1:
            v, i = None, i + 8
        elif w == 5:
            v, i = None, i + 4
        elif w == 2:
            ln, i = varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        else:
            raise ValueError(f"wire type {w}")
        yield f, w, v


def varint(buf, i):
    out = shift = 0
    while True:
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, i
        shift += 7


def count_points(body):
    """Data points in an ExportMetricsServiceRequest: resource_metrics(1) → scope_metrics(2) →
    metrics(2) → gauge(5) | sum(7) | histogram(9) | exponential_histogram(10) | summary(11) →
    data_points(1)."""
    n = 0
    for f, w, rm in pb_fields(body):
        if f != 1 or w != 2:
            continue
        for f2, w2, sm in pb_fields(rm):
            if f2 != 2 or w2 != 2:
                continue
            for f3, w3, m in pb_fields(sm):
                if f3 != 2 or w3 != 2:
                    continue
                for f4, w4, data in pb_fields(m):
                    if f4 in (5, 7, 9, 10, 11) and w4 == 2:
                        n += sum(1 for f5, w5, _ in pb_fields(data) if f5 == 1 and w5 == 2)
    return n


def points_per_tick(requests):
    """Median of the data points per tick: requests less than 0.3 s apart are one tick's (a
    large batch is split into several requests)."""
    ticks, last = [], None
    for t, body in sorted(requests, key=lambda r: r[0]):
        n = count_points(body)
        if last is None or t - last > 0.3:
            ticks.append(0)
        ticks[-1] += n
        last = t
    # The first tick has no utilization yet; leave it out when there are others.
    return int(statistics.median(ticks[1:] or ticks)) if ticks else 0


# ---- the sink ------------------------------------------------------------------------------

class Sink(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP sink: counts bytes, keeps OTLP bodies (decompressed) by path prefix."""
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    bytes_by = {}
    bodies = {}
    keep = set()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        who = self.path.split("/")[1] or "metricsd"
        with Sink.lock:
            Sink.bytes_by[who] = Sink.bytes_by.get(who, 0) + n
            if who in Sink.keep:
                Sink.bodies.setdefault(who, []).append((time.time(), body, self.headers.get("Content-Encoding")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass

    @staticmethod
    def take(who):
        with Sink.lock:
            out = Sink.bodies.pop(who, [])
        return [(t, gzip.decompress(b) if enc == "gzip" else b) for t, b, enc in out]


# ---- the processes -------------------------------------------------------------------------

class Children:
    """Every process started, stopped at the end (SIGTERM, then SIGKILL), in reverse order."""

    def __init__(self):
        self.procs = []

    def start(self, who, argv, env=None, log=None):
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
        p.who = who
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = []


def metricsd_config(path, exporter, sink_port, grpc_port, tree, who, process, containers, server_port=None):
    lines = ["server:"]
    lines += [f"  enabled: true\n  host: 127.0.0.1\n  port: {server_port}"] if server_port else ["  enabled: false"]
    lines += ["collector:", "  interval: 1s", "  network:", "    connections: false"]
    for c in MD_OFF:
        lines.append(f"  {c}:\n    enabled: false")
    if process:
        lines.append("  process:\n    enabled: true\n    top_n: 0")
    if containers:
        lines.append(f"  containers:\n    enabled: true\n    root: {tree.p('sys/fs/cgroup')}")
    url = f"http://127.0.0.1:{sink_port}/{who}"
    exp = {
        "otlp-http": f"  - type: otlp\n    protocol: http/protobuf\n    compression: gzip\n    endpoint: {url}/v1/metrics",
        "otlp-plain": f"  - type: otlp\n    protocol: http/protobuf\n    compression: none\n    endpoint: {url}/v1/metrics",
        "otlp-grpc": f"  - type: otlp\n    protocol: grpc\n    compression: gzip\n    endpoint: http://127.0.0.1:{grpc_port}",
        "remote-write": f"  - type: prometheus_remote_write\n    endpoint: {url}/api/v1/write",
        "http-json": f"  - type: http_json\n    endpoint: {url}/ingest\n    format: metricsd\n    gzip: true",
        "none": None,
    }[exporter]
    lines += ["exporters:", exp] if exp else ["exporters: []"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def host_env(tree):
    env = dict(os.environ)
    env.update(HOST_PROC=tree.p("proc"), HOST_SYS=tree.p("sys"), HOST_ROOT=tree.root)
    return env


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_ms(before, after, n):
    """CPU ms per cycle between two (threads, whole-process) snapshots: the threads' schedstat
    sum, or the whole-process ticks when a thread exited in the window (its time went with it)."""
    if set(before[0]) - set(after[0]):
        print("note: a thread exited in the window; CPU from /proc/PID/stat (10 ms ticks)", file=sys.stderr)
        return (after[1] - before[1]) / 1e6 / n
    return sum(after[0][t] - before[0].get(t, 0) for t in after[0]) / 1e6 / n


def snapshot(p):
    return cpu_by_thread(p.pid), cpu_total_ns(p.pid)


def comm_of(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def cpu_by_comm(p, before, after, n):
    """CPU ms per cycle of each thread name (metricsd: `tick`, `export NAME`, the async workers)."""
    out = {}
    for tid, ns in after[0].items():
        name = comm_of(p.pid, tid)
        out[name] = out.get(name, 0.0) + (ns - before[0].get(tid, 0)) / 1e6 / n
    return out


def measure(sizes, args, base_dir, sink_port, children):
    """One size: writes the tree, runs every side over one window, returns the figures."""
    tree = Tree(os.path.join(base_dir, sizes.label().replace("/", "-")), sizes)
    tree.write()
    tree.tick()
    env = host_env(tree)
    cfg_dir = os.path.join(base_dir, "cfg")
    os.makedirs(cfg_dir, exist_ok=True)
    grpc_port = free_port()
    if args.exporter == "otlp-grpc":
        c = os.path.join(cfg_dir, "grpc-sink.yaml")
        with open(c, "w") as f:
            f.write(OTELCOL_GRPC_SINK.format(port=grpc_port))
        children.start("the gRPC sink", [args.otelcol, f"--config={c}"])
        wait_port(grpc_port, 60)

    ne_port = free_port()
    ne_argv = [args.node_exporter, f"--web.listen-address=127.0.0.1:{ne_port}", f"--path.procfs={tree.p('proc')}",
               f"--path.sysfs={tree.p('sys')}", f"--path.rootfs={tree.root}"] + NE_MINIMAL
    if args.process:
        ne_argv.append("--collector.processes")
    sides = {"node_exporter": children.start("node_exporter", ne_argv)}
    Sink.keep = {"metricsd", "otelcol", "count"}
    for who, binary in (("metricsd", args.binary), ("baseline", args.baseline)):
        if binary:
            c = os.path.join(cfg_dir, f"{who}.yaml")
            metricsd_config(c, args.exporter, sink_port, grpc_port, tree, who, args.process, args.containers)
            sides[who] = children.start(who, [binary, "-c", c, "--log-level", "error"], env=env)
    if not args.no_otelcol:
        c = os.path.join(cfg_dir, "otelcol.yaml")
        scrapers = OTELCOL_SCRAPERS + (OTELCOL_PROCESS if args.process else "")
        with open(c, "w") as f:
            f.write(OTELCOL_HOSTMETRICS.format(root=tree.root, port=sink_port, scrapers=scrapers))
        sides["otelcol"] = children.start("the Collector", [args.otelcol, f"--config={c}"])

    wait_port(ne_port)
    conn = http.client.HTTPConnection("127.0.0.1", ne_port, timeout=30)
    last = {}

    def scrape():
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        body = r.read()
        if r.getheader("Content-Encoding") != "gzip":
            raise SystemExit(f"node_exporter answered Content-Encoding {r.getheader('Content-Encoding')!r}")
        last["ne"] = body

    def paced(seconds):
        t0 = time.time()
        for i in range(seconds):
            tree.tick()
            scrape()
            time.sleep(max(0, t0 + i + 1 - time.time()))

    paced(args.warmup)
    time.sleep(0.5)  # scrapes half-way between the agents' ticks
    for who, p in sides.items():
        if p.poll() is not None:
            raise SystemExit(f"{who} exited with status {p.returncode} during the warm-up (run it by hand to see why)")
    Sink.take("metricsd"), Sink.take("otelcol"), Sink.take("baseline")
    before = {who: snapshot(p) for who, p in sides.items()}
    sent0 = Sink.bytes_by.get("metricsd", 0)
    paced(args.seconds)
    after = {who: snapshot(p) for who, p in sides.items()}
    sent = (Sink.bytes_by.get("metricsd", 0) - sent0) / args.seconds
    out = {}
    for who, p in sides.items():
        out[who] = {"cpu_ms": cpu_ms(before[who], after[who], args.seconds),
                    "rss_kb": status_kb(p.pid, "VmRSS"), "hwm_kb": status_kb(p.pid, "VmHWM")}
        if who in ("metricsd", "baseline"):
            out[who]["threads"] = cpu_by_comm(p, before[who], after[who], args.seconds)
    text = gzip.decompress(last["ne"]).decode()
    out["node_exporter"]["series"] = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    if "otelcol" in out:
        out["otelcol"]["series"] = points_per_tick(Sink.take("otelcol"))
        if not out["otelcol"]["series"]:
            raise SystemExit("the Collector sent nothing to the sink in the window")
    got = Sink.take("metricsd")
    if args.exporter == "otlp-http":
        out["metricsd"]["series"] = points_per_tick(got)
    else:
        if args.exporter in ("remote-write", "http-json") and not Sink.bytes_by.get("metricsd"):
            raise SystemExit(f"metricsd sent nothing to the sink over {args.exporter}")
        # A second metricsd, same collectors, OTLP/HTTP uncompressed, counts the series.
        c = os.path.join(cfg_dir, "count.yaml")
        metricsd_config(c, "otlp-plain", sink_port, grpc_port, tree, "count", args.process, args.containers)
        children.start("the counting metricsd", [args.binary, "-c", c, "--log-level", "error"], env=env)
        paced(4)
        out["metricsd"]["series"] = points_per_tick(Sink.take("count"))
    out["metricsd"]["sent_bytes"] = sent
    if "baseline" in out:
        out["baseline"]["series"] = out["metricsd"]["series"]
    if not out["metricsd"]["series"]:
        raise SystemExit("metricsd sent no data points (run it by hand on the tree to see why)")
    conn.close()
    children.stop_all()
    shutil.rmtree(tree.root)
    return out


def parse_sizes(text):
    out = []
    for part in text.split(","):
        v = [int(x) for x in part.split("/")]
        if len(v) not in (3, 6):
            raise SystemExit(f"--sizes: {part!r} is not CPUS/INTERFACES/DISKS[/MOUNTS/PROCESSES/CGROUPS]")
        if len(v) == 3:
            # a mount per five disks, two processes per CPU, a cgroup per disk (small hosts more)
            v += [max(2, v[2] // 5), max(100, v[0] * 2), max(20, v[2])]
        out.append(Sizes(*v))
    return out


def fmt_cpu(ms):
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def report(results, args):
    first = results[0][1]
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {os.uname().release} nproc={os.cpu_count()} window={args.seconds}s "
          f"exporter={args.exporter} binary={args.binary}" + (f" baseline={args.baseline}" if args.baseline else "")
          + ("" if args.no_otelcol else f" otelcol={args.otelcol}") + (" +process" if args.process else "")
          + (" +containers" if args.containers else ""))
    rows = []
    for sizes, r in results:
        for who, v in r.items():
            kb = v["rss_kb"] / max(1, v["series"])
            d_series = v["series"] - first[who]["series"]
            marginal = (v["rss_kb"] - first[who]["rss_kb"]) / d_series if d_series > 0 else None
            v["kb_per_series"], v["marginal_kb"] = kb, marginal
        md, ne = r["metricsd"], r["node_exporter"]
        rows.append((sizes, r, md["cpu_ms"] / ne["cpu_ms"], md["rss_kb"] / ne["rss_kb"]))
    if args.markdown:
        oc = not args.no_otelcol
        head = ("| host (CPUs / interfaces / disks) | metricsd CPU/cycle (series) | node_exporter | "
                + ("Collector hostmetrics | " if oc else "") + "CPU ratio | metricsd RSS (peak) | node_exporter RSS | "
                + ("Collector RSS | " if oc else "") + "RSS ratio | KB/series metricsd / node_exporter | marginal KB/series |")
        print(head)
        print("|" + " --- |" * (head.count("|") - 1))
        for sizes, r, cr, rr in rows:
            md, ne = r["metricsd"], r["node_exporter"]
            host = f"{sizes.cpus:,} / {sizes.interfaces:,} / {sizes.disks:,} ({sizes.mounts:,} mounts"
            host += (f", {sizes.processes:,} processes" if args.process else "")
            host += (f", {sizes.cgroups:,} cgroups)" if args.containers else ")")
            cells = [host, f"{fmt_cpu(md['cpu_ms'])} ({md['series']:,})", f"{fmt_cpu(ne['cpu_ms'])} ({ne['series']:,})"]
            if oc:
                cells.append(f"{fmt_cpu(r['otelcol']['cpu_ms'])} ({r['otelcol']['series']:,})")
            cells += [f"{cr:.2f}", f"{md['rss_kb'] / 1024:.1f} MiB ({md['hwm_kb'] / 1024:.1f})", f"{ne['rss_kb'] / 1024:.1f} MiB"]
            if oc:
                cells.append(f"{r['otelcol']['rss_kb'] / 1024:.1f} MiB")
            marg = "—" if md["marginal_kb"] is None else f"{md['marginal_kb']:.2f} / {ne['marginal_kb']:.2f}"
            cells += [f"{rr:.2f}", f"{md['kb_per_series']:.2f} / {ne['kb_per_series']:.2f}", marg]
            print("| " + " | ".join(cells) + " |")
    else:
        print(f"{'host':>26} {'side':>13} {'CPU ms/cycle':>12} {'series':>8} {'RSS MiB':>8} {'peak MiB':>8} "
              f"{'KB/series':>9} {'marginal':>8}")
        for sizes, r, cr, rr in rows:
            host = f"{sizes.label()}/{sizes.mounts}/{sizes.processes}/{sizes.cgroups}"
            for who, v in r.items():
                marg = "" if v["marginal_kb"] is None else f"{v['marginal_kb']:.2f}"
                print(f"{host:>26} {who:>13} {v['cpu_ms']:>12.3f} {v['series']:>8} {v['rss_kb'] / 1024:>8.1f} "
                      f"{v['hwm_kb'] / 1024:>8.1f} {v['kb_per_series']:>9.2f} {marg:>8}")
            print(f"{host:>26} {'ratio':>13} metricsd/node_exporter: CPU {cr:.3f}, RSS {rr:.3f}")
            for who in ("metricsd", "baseline"):
                if who in r:
                    by = ", ".join(f"{name} {ms:.3f}" for name, ms in sorted(r[who]["threads"].items(), key=lambda x: -x[1]) if ms >= 0.0005)
                    print(f"{host:>26} {'threads':>13} {who} ms/cycle: {by}")
            if r["metricsd"]["sent_bytes"]:
                print(f"{host:>26} {'sent':>13} metricsd over {args.exporter}: {r['metricsd']['sent_bytes'] / 1024:.1f} KiB "
                      f"a cycle on the wire")
    cpu_ok = all(cr <= 0.15 for _, _, cr, _ in rows)
    rss_ok = all(rr <= 0.5 for _, _, _, rr in rows)
    kb_ok = all(r["metricsd"]["kb_per_series"] <= 0.4 or (r["metricsd"]["marginal_kb"] or 99) <= 0.4 for _, r, _, _ in rows[1:])
    print(f"target CPU <= 0.15 x node_exporter at every size: {'met' if cpu_ok else 'NOT met'}")
    print(f"target RSS <= 1/2 node_exporter at every size: {'met' if rss_ok else 'NOT met'}")
    kb_verdict = ("met" if kb_ok else "NOT met") if len(rows) > 1 else "n/a (needs two sizes)"
    print(f"target <= ~0.4 KB per series (or marginal) above the smallest size: {kb_verdict}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=25, help="the measured window per size")
    ap.add_argument("--warmup", type=int, default=6, help="seconds before the window")
    ap.add_argument("--sizes", help="CPUS/INTERFACES/DISKS[/MOUNTS/PROCESSES/CGROUPS],... (default the four presets)")
    ap.add_argument("--exporter", choices=["otlp-http", "otlp-grpc", "remote-write", "http-json", "none"], default="otlp-http")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/metricsd"))
    ap.add_argument("--baseline", help="another metricsd build, run with the same config in the same window")
    ap.add_argument("--node-exporter", default="/usr/bin/prometheus-node-exporter")
    ap.add_argument("--otelcol", default=os.environ.get("METRICSD_OTELCOL", os.path.join(ROOT, "target/otelcol-test")))
    ap.add_argument("--no-otelcol", action="store_true", help="leave the Collector's hostmetrics receiver out")
    ap.add_argument("--process", action="store_true", help="per-process collectors on every side that has one")
    ap.add_argument("--containers", action="store_true", help="metricsd's containers collector over the tree's cgroups")
    ap.add_argument("--markdown", action="store_true", help="print the table in docs/performance.md's format")
    ap.add_argument("--tmp", help="where the trees go (default /dev/shm, else the temp dir)")
    args = ap.parse_args()
    for b in (args.binary, args.baseline, args.node_exporter):
        if b and not os.access(b, os.X_OK):
            raise SystemExit(f"{b} missing (metricsd: cargo build --release)")
    if not os.access(args.otelcol, os.X_OK):
        if args.exporter == "otlp-grpc":
            raise SystemExit(f"{args.otelcol} missing: the gRPC sink is the Collector (scripts/test.sh --test collector builds it)")
        if not args.no_otelcol:
            print(f"note: {args.otelcol} missing (scripts/test.sh --test collector builds it); the Collector is left out",
                  file=sys.stderr)
        args.no_otelcol = True
    sizes = parse_sizes(args.sizes or PRESETS)

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    tmp = args.tmp or ("/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None)
    base = tempfile.mkdtemp(prefix="metricsd-scale-", dir=tmp)
    children = Children()
    results = []
    try:
        for s in sizes:
            print(f"# {s.label()}/{s.mounts}/{s.processes}/{s.cgroups}: measuring {args.seconds} s", file=sys.stderr)
            results.append((s, measure(s, args, base, sink.server_address[1], children)))
    except KeyboardInterrupt:
        raise SystemExit("interrupted: every child stopped, the trees removed")
    finally:
        children.stop_all()
        shutil.rmtree(base, ignore_errors=True)
        sink.shutdown()
    report(results, args)


if __name__ == "__main__":
    main()
