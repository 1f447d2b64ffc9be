#!/usr/bin/env python3
"""A generated host: a `/proc`, `/sys` and `/` tree of a given size, that metricsd
(`HOST_PROC`/`HOST_SYS`/`HOST_ROOT`), node_exporter (`--path.procfs`, `--path.sysfs`,
`--path.rootfs`) and the Collector's hostmetrics receiver (`root_path`) all read.

The sizes are CPUs, network interfaces, disks, mounts, processes and cgroups. This host's own
`/proc` files are the templates (`meminfo`, `vmstat`, `loadavg`, `swaps`, `uptime`, `filesystems`
copied as they are; a `cpuinfo` block, `/proc/self/status` and `/proc/self/stat` repeated per CPU or
process), so every reader sees the formats of the running kernel. What the tree holds:

```text
proc/stat                  cpu + cpuN lines, then intr, ctxt, btime, processes, procs_*, softirq
proc/cpuinfo               one block per CPU (processor, core id = N, physical id 0)
proc/net/dev               lo, eth0 … eth(N-2)           (proc/1/net -> ../net, proc/self -> 1)
proc/net/{tcp,tcp6,udp,udp6}  headers only
proc/diskstats             nvme0n1 … (259:N, 17 counters), plus loop0 that every side skips
proc/1/mountinfo, mounts   /proc, /sys, /dev, /run, / (ext4 on vda), /data/volN (ext4 on nvmeNn1)
proc/PID/{stat,status,statm,io,cmdline,comm,exe,fd/}   PIDs 1 … P (1 is init)
sys/devices/system/cpu/{online,possible,present}, cpuN/topology/{core_id,physical_package_id}
                           (no cpufreq, as on most VMs: the agent takes cpuinfo's `cpu MHz`)
sys/block/DEV/{size,stat}, sys/class/block/DEV -> ../../block/DEV
sys/fs/cgroup/…            a cgroup v2 node: kubepods.slice QoS levels, pods of 4 containers
                           (examples/containers_cost.rs's layout and files)
data/volN, dev/, run/      mount points, real directories so statfs works
etc/{hostname,machine-id,os-release,passwd}
```

`Tree.tick` advances the counters of `proc/stat`, `proc/net/dev`, `proc/diskstats` and
`sys/block/DEV/stat` in place (same inode, same length: a reader that keeps the file open, as
metricsd does, sees the new values; every counter keeps its width, so a reader never sees a
short file or a line change length), as one second of a busy host would.

Used by scripts/bench_scale.py and tests/scale_tree.rs; alone:
`scripts/scale_tree.py DIR --cpus 64 --interfaces 200 --disks 50 [--mounts 10]
[--processes 500] [--cgroups 100]` writes the tree into DIR (which must not exist).
"""
import argparse
import os
from dataclasses import dataclass

# Counters start here and grow by at most a few thousand a second: ten digits for days.
BASE = 1_000_000_000


@dataclass
class Sizes:
    cpus: int
    interfaces: int
    disks: int
    mounts: int = 0
    processes: int = 0
    cgroups: int = 0

    def label(self):
        return f"{self.cpus}/{self.interfaces}/{self.disks}"


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def cpuinfo_block():
    """The host's first `/proc/cpuinfo` block, as (key, value) pairs; a plain x86 block where
    the host has none. `aperfmperf` is dropped from the flags so every reader takes `cpu MHz`
    as the constant it is on a VM."""
    text = read("/proc/cpuinfo").split("\n\n")[0]
    pairs = []
    for line in text.splitlines():
        k, _, v = line.partition(":")
        k, v = k.rstrip(), v.strip()
        if k == "flags":
            v = " ".join(f for f in v.split() if f != "aperfmperf")
        pairs.append((k, v))
    if not any(k == "processor" for k, _ in pairs):
        pairs = [("processor", "0"), ("vendor_id", "GenuineIntel"), ("model name", "Generated CPU"),
                 ("cpu MHz", "2400.000"), ("physical id", "0"), ("core id", "0"), ("flags", "fpu")]
    return pairs


class Tree:
    """A generated host of `sizes` under `root` (created; removed by the caller)."""

    def __init__(self, root, sizes):
        self.root = root
        self.sizes = sizes
        self.seconds = 0
        self.interfaces = ["lo"] + [f"eth{i}" for i in range(max(0, sizes.interfaces - 1))]
        self.disks = [f"nvme{i}n1" for i in range(sizes.disks)]
        self.mount_points = ["/data/vol%d" % i for i in range(sizes.mounts)]

    def p(self, rel):
        return os.path.join(self.root, rel)

    # ---- the files that change every second -------------------------------------------------

    def stat_text(self):
        t = self.seconds
        # user nice system idle iowait irq softirq steal guest guest_nice, per CPU; a second of
        # a CPU is 100 jiffies: 20 user, 5 system, 73 idle, 1 iowait, 1 softirq.
        per = [20, 0, 5, 73, 1, 0, 1, 0, 0, 0]
        lines = []
        n = self.sizes.cpus
        total = [BASE * n + d * t * n for d in per]
        lines.append("cpu  " + " ".join(str(v) for v in total))
        for c in range(n):
            lines.append(f"cpu{c} " + " ".join(str(BASE + d * t) for d in per))
        lines += [
            f"intr {BASE + 1000 * t} 0 0 0",
            f"ctxt {BASE + 5000 * t}",
            "btime 1796652254",
            f"processes {BASE + 10 * t}",
            "procs_running 3",
            "procs_blocked 0",
            f"softirq {BASE + 800 * t} 0 {BASE + 100 * t} 0 0 0 0 0 0 0 0",
        ]
        return "\n".join(lines) + "\n"

    def netdev_text(self):
        t = self.seconds
        lines = [
            "Inter-|   Receive                                                |  Transmit",
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
        ]
        for name in self.interfaces:
            rx = [BASE + 125_000 * t, BASE + 100 * t, BASE, BASE, BASE, BASE, BASE, BASE + t]
            tx = [BASE + 62_500 * t, BASE + 50 * t, BASE, BASE, BASE, BASE, BASE, BASE]
            lines.append(f"{name:>6}: " + " ".join(str(v) for v in rx + tx))
        return "\n".join(lines) + "\n"

    def disk_counters(self):
        t = self.seconds
        # reads merged sectors ms, writes merged sectors ms, in_flight, io_ticks, time_in_queue,
        # discards merged sectors ms, flushes ms (17, as kernel 5.5+ prints them)
        return [BASE + 50 * t, BASE + 5 * t, BASE + 800 * t, BASE + 40 * t,
                BASE + 30 * t, BASE + 3 * t, BASE + 600 * t, BASE + 60 * t,
                0, BASE + 90 * t, BASE + 100 * t,
                BASE, BASE, BASE, BASE, BASE + t, BASE + t]

    def diskstats_text(self):
        c = " ".join(str(v) for v in self.disk_counters())
        lines = ["   7       0 loop0 " + " ".join("0" for _ in range(17))]
        for i, d in enumerate(self.disks):
            lines.append(f" 259 {i:>7} {d} {c}")
        return "\n".join(lines) + "\n"

    def block_stat_text(self):
        # /sys/block/DEV/stat: the same counters (without the name), padded as the kernel pads.
        return " ".join(f"{v:>8}" for v in self.disk_counters()) + "\n"

    def tick(self, seconds=1):
        """Advances the changing counters by `seconds` and rewrites their files in place."""
        self.seconds += seconds
        self._rewrite("proc/stat", self.stat_text())
        self._rewrite("proc/net/dev", self.netdev_text())
        self._rewrite("proc/diskstats", self.diskstats_text())
        stat = self.block_stat_text()
        for d in self.disks:
            self._rewrite(f"sys/block/{d}/stat", stat)

    def _rewrite(self, rel, text):
        # Same inode (readers keep the file open), same length (see the module docs).
        with open(self.p(rel), "r+") as f:
            f.write(text)

    # ---- the whole tree ----------------------------------------------------------------------

    def write(self):
        os.makedirs(self.root)
        self.write_proc()
        self.write_cpus()
        self.write_disks()
        self.write_mounts()
        self.write_processes()
        self.write_cgroups()
        self.write_etc()

    def write_proc(self):
        for name in ("meminfo", "vmstat", "loadavg", "swaps", "uptime", "filesystems"):
            write(self.p(f"proc/{name}"), read(f"/proc/{name}"))
        write(self.p("proc/stat"), self.stat_text())
        write(self.p("proc/net/dev"), self.netdev_text())
        tcp = read("/proc/net/tcp").split("\n")[0] + "\n"
        udp = read("/proc/net/udp").split("\n")[0] + "\n"
        for name, text in (("tcp", tcp), ("tcp6", tcp), ("udp", udp), ("udp6", udp)):
            write(self.p(f"proc/net/{name}"), text)
        write(self.p("proc/diskstats"), self.diskstats_text())
        write(self.p("proc/sys/kernel/osrelease"), read("/proc/sys/kernel/osrelease", "6.1.0\n"))
        write(self.p("proc/sys/kernel/hostname"), "scale-host\n")
        write(self.p("proc/sys/kernel/random/boot_id"), "0f1e2d3c-4b5a-4968-8776-655443322110\n")
        write(self.p("proc/sys/kernel/pid_max"), "4194304\n")
        write(self.p("proc/sys/kernel/threads-max"), "192000\n")
        os.makedirs(self.p("proc/1"), exist_ok=True)
        os.symlink("../net", self.p("proc/1/net"))
        os.symlink("1", self.p("proc/self"))
        os.symlink("self/mounts", self.p("proc/mounts"))

    def write_cpus(self):
        n = self.sizes.cpus
        block = cpuinfo_block()
        out = []
        for c in range(n):
            fields = {"processor": str(c), "core id": str(c), "physical id": "0", "apicid": str(c),
                      "initial apicid": str(c), "siblings": str(n), "cpu cores": str(n)}
            out.append("\n".join(f"{k}\t: {fields.get(k, v)}" if v or k in fields else f"{k}\t:"
                                 for k, v in block))
        write(self.p("proc/cpuinfo"), "\n\n".join(out) + "\n\n")
        base = "sys/devices/system/cpu"
        cpus = f"0-{n - 1}\n" if n > 1 else "0\n"
        for name in ("online", "possible", "present"):
            write(self.p(f"{base}/{name}"), cpus)
        for c in range(n):
            write(self.p(f"{base}/cpu{c}/topology/core_id"), f"{c}\n")
            write(self.p(f"{base}/cpu{c}/topology/physical_package_id"), "0\n")

    def write_disks(self):
        os.makedirs(self.p("sys/class/block"), exist_ok=True)
        stat = self.block_stat_text()
        for d in self.disks:
            write(self.p(f"sys/block/{d}/size"), "1953525168\n")  # 1 TB in 512-byte sectors
            write(self.p(f"sys/block/{d}/stat"), stat)
            write(self.p(f"sys/block/{d}/queue/rotational"), "0\n")
            write(self.p(f"sys/block/{d}/queue/logical_block_size"), "512\n")
            os.symlink(f"../../block/{d}", self.p(f"sys/class/block/{d}"))

    def write_mounts(self):
        # (source, mount point, type, options); the pseudo filesystems every side skips by type.
        mounts = [("proc", "/proc", "proc", "rw,nosuid,nodev,noexec,relatime"),
                  ("sysfs", "/sys", "sysfs", "rw,nosuid,nodev,noexec,relatime"),
                  ("udev", "/dev", "devtmpfs", "rw,nosuid,relatime,size=12334760k,mode=755"),
                  ("tmpfs", "/run", "tmpfs", "rw,nosuid,nodev,size=2467000k,mode=755"),
                  ("/dev/vda", "/", "ext4", "rw,relatime")]
        for i, mp in enumerate(self.mount_points):
            dev = f"/dev/{self.disks[i % len(self.disks)]}" if self.disks else f"/dev/vdb{i}"
            mounts.append((dev, mp, "ext4", "rw,relatime"))
        info, plain = [], []
        for i, (src, mp, fs, opts) in enumerate(mounts):
            os.makedirs(self.p(mp.lstrip("/")) if mp != "/" else self.root, exist_ok=True)
            parent = 1 if mp == "/" else 6
            info.append(f"{i + 2} {parent} 0:{i + 20} / {mp} {opts} - {fs} {src} rw")
            plain.append(f"{src} {mp} {fs} {opts} 0 0")
        write(self.p("proc/1/mountinfo"), "\n".join(info) + "\n")
        write(self.p("proc/1/mounts"), "\n".join(plain) + "\n")

    def write_processes(self):
        status = read("/proc/self/status")
        stat = read("/proc/self/stat").strip()
        # Fields after "(comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime … (the host's own line, with ours put in).
        rest = stat.rsplit(")", 1)[1].split()
        for pid in range(1, self.sizes.processes + 1):
            comm = "init" if pid == 1 else f"worker{pid % 50}"
            d = f"proc/{pid}"
            f = list(rest)
            f[0], f[1] = "S", "0" if pid == 1 else "1"
            f[11], f[12] = str(1000 + pid), str(100 + pid)  # utime, stime
            f[17] = "1"  # num_threads
            write(self.p(f"{d}/stat"), f"{pid} ({comm}) " + " ".join(f) + "\n")
            s = []
            for line in status.splitlines():
                k = line.split(":", 1)[0]
                if k == "Name":
                    line = f"Name:\t{comm}"
                elif k in ("Pid", "Tgid", "NStgid", "NSpid"):
                    line = f"{k}:\t{pid}"
                elif k == "PPid":
                    line = f"PPid:\t{0 if pid == 1 else 1}"
                elif k == "State":
                    line = "State:\tS (sleeping)"
                s.append(line)
            write(self.p(f"{d}/status"), "\n".join(s) + "\n")
            write(self.p(f"{d}/statm"), f"{2000 + pid} {400 + pid} 300 5 0 123 0\n")
            write(self.p(f"{d}/io"), "rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\nread_bytes: 4096\n"
                                     "write_bytes: 0\ncancelled_write_bytes: 0\n")
            write(self.p(f"{d}/cmdline"), f"/usr/bin/{comm}\0--serve\0")
            write(self.p(f"{d}/comm"), f"{comm}\n")
            if pid != 1:
                os.symlink(f"/usr/bin/{comm}", self.p(f"{d}/exe"))
            os.makedirs(self.p(f"{d}/fd"), exist_ok=True)
            for fd in range(3):
                os.symlink("/dev/null", self.p(f"{d}/fd/{fd}"))
        if self.sizes.processes == 0:
            write(self.p("proc/1/stat"), "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 1 1 0 0 20 0 1 0 1 0 0\n")
        write(self.p("proc/1/cgroup"), "0::/\n")

    def write_cgroups(self):
        """`sizes.cgroups` cgroups in the kubelet's systemd-driver layout (pods of four
        containers, examples/containers_cost.rs's files), at least the root and its QoS slices."""
        root = self.p("sys/fs/cgroup")
        cgroup_files(root, 0)
        if self.sizes.cgroups <= 0:
            return
        qos = ["kubepods.slice", "kubepods.slice/kubepods-burstable.slice", "kubepods.slice/kubepods-besteffort.slice"]
        for q in qos:
            cgroup_files(os.path.join(root, q), 0)
        made, p = 4, 0
        while made < self.sizes.cgroups:
            uid = f"{p:08x}-0000-4000-8000-000000000000"
            level, prefix = [(qos[0], "kubepods"), (qos[1], "kubepods-burstable"), (qos[2], "kubepods-besteffort")][p % 3]
            pod = os.path.join(root, level, f"{prefix}-pod{uid.replace('-', '_')}.slice")
            cgroup_files(pod, p)
            made += 1
            for c in range(4):
                if made >= self.sizes.cgroups:
                    break
                cgroup_files(os.path.join(pod, f"cri-containerd-{p:08x}{c:08x}{'0' * 48}.scope"), p * 4 + c)
                made += 1
            p += 1

    def write_etc(self):
        write(self.p("etc/hostname"), "scale-host\n")
        write(self.p("etc/machine-id"), "5ca1e0005ca1e0005ca1e0005ca1e000\n")
        write(self.p("etc/os-release"), read("/etc/os-release", 'NAME="Linux"\nID=linux\n'))
        write(self.p("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")


MEMORY_STAT_KEYS = ["anon", "file", "kernel", "kernel_stack", "pagetables", "sock", "shmem", "file_mapped",
                    "file_dirty", "file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file",
                    "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable", "slab", "pgfault",
                    "pgmajfault", "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
                    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc"]


def cgroup_files(d, n):
    """One cgroup v2 directory with the files the containers collector reads."""
    os.makedirs(d, exist_ok=True)
    files = {
        "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
        "cpu.stat": f"usage_usec {n * 3}\nuser_usec {n * 2}\nsystem_usec {n}\nnr_periods 1205\nnr_throttled 37\n"
                    "throttled_usec 1825490\nnr_bursts 0\nburst_usec 0\n",
        "cpu.max": "50000 100000\n",
        "memory.current": f"{100_000_000 + n}\n",
        "memory.max": "268435456\n",
        "memory.stat": "".join(f"{k} {1_000_000 * (i + 1) + n}\n" for i, k in enumerate(MEMORY_STAT_KEYS)),
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        "io.stat": "259:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n",
        "pids.current": "7\n",
        "pids.max": "max\n",
    }
    for r in ("cpu", "memory", "io"):
        files[f"{r}.pressure"] = f"some avg10=0.00 avg60=0.00 avg300=0.00 total={n}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="where to write the tree (must not exist)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--interfaces", type=int, default=4)
    ap.add_argument("--disks", type=int, default=2)
    ap.add_argument("--mounts", type=int, default=2)
    ap.add_argument("--processes", type=int, default=20)
    ap.add_argument("--cgroups", type=int, default=10)
    ap.add_argument("--ticks", type=int, default=0, help="advance the counters this many seconds after writing")
    a = ap.parse_args()
    t = Tree(a.dir, Sizes(a.cpus, a.interfaces, a.disks, a.mounts, a.processes, a.cgroups))
    t.write()
    if a.ticks:
        t.tick(a.ticks)


if __name__ == "__main__":
    main()
