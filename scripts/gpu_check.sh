#!/usr/bin/env bash
# Compares the GPU collector with nvidia-smi on a GPU host: runs the agent's `--once` with the
# GPU collector on beside `nvidia-smi --query-gpu=...` and `nvidia-smi -q`, and prints each
# value side by side with its difference, per GPU, as a table.
#
#   scripts/gpu_check.sh [path/to/metricsd]     (default target/release/metricsd)
#
# Bounded in time: each command runs under `timeout` (GPU_CHECK_TIMEOUT seconds, default 60).
# On a host without a GPU (no nvidia-smi, or no GPU answers) it says "no GPU" and exits 0.
# Utilization, power and clocks move between the two samples; on an idle GPU they agree.
set -u

BIN=${1:-target/release/metricsd}
LIMIT=${GPU_CHECK_TIMEOUT:-60}

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "no GPU: nvidia-smi is not installed; nothing to compare"
    exit 0
fi
if ! timeout "$LIMIT" nvidia-smi -L >/dev/null 2>&1; then
    echo "no GPU: nvidia-smi finds no GPU (or no driver); nothing to compare"
    exit 0
fi
if [ ! -x "$BIN" ]; then
    echo "no agent binary at $BIN (build it: cargo build --release)" >&2
    exit 2
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '{"collector": {"enable_gpu": true}}' >"$dir/gpu.json"

BASE=index,uuid,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,temperature.memory,power.draw,power.limit,clocks.sm,clocks.mem,pstate,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total
HEALTH=index,retired_pages.single_bit_ecc.count,retired_pages.double_bit.count,retired_pages.pending,remapped_rows.correctable,remapped_rows.uncorrectable,remapped_rows.pending,remapped_rows.failure

timeout "$LIMIT" "$BIN" --config "$dir/gpu.json" --once >"$dir/agent.txt" 2>"$dir/agent.err" || {
    echo "the agent failed (exit $?):" >&2
    cat "$dir/agent.err" >&2
    exit 1
}
timeout "$LIMIT" nvidia-smi --query-gpu="$BASE" --format=csv,noheader,nounits >"$dir/base.csv" 2>&1 || echo "nvidia-smi --query-gpu failed: $(cat "$dir/base.csv")" >&2
# Older drivers lack some health fields: the query then fails and those rows are left out.
timeout "$LIMIT" nvidia-smi --query-gpu="$HEALTH" --format=csv,noheader,nounits >"$dir/health.csv" 2>/dev/null || : >"$dir/health.csv"
timeout "$LIMIT" nvidia-smi -q >"$dir/q.txt" 2>&1 || true

python3 - "$dir" "$BASE" "$HEALTH" <<'EOF'
import re, sys

d, base_fields, health_fields = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")

# The agent's table: "  METRIC KIND UNIT VALUE ATTRIBUTES" (attribute values may hold spaces).
points = []
for line in open(f"{d}/agent.txt"):
    f = line.split(None, 4)
    if len(f) < 4 or not (f[0].startswith("hw.") or f[0].startswith("nvidia.")):
        continue
    try:
        value = float(f[3])
    except ValueError:
        continue
    rest = f[4].rstrip("\n") if len(f) > 4 else ""
    keys = list(re.finditer(r"(?:^|\s)([a-z0-9_.]+)=", rest))
    attrs = {m.group(1): rest[m.end():(keys[i + 1].start() if i + 1 < len(keys) else len(rest))].strip() for i, m in enumerate(keys)}
    points.append((f[0], attrs, value))

def agent(index, metric, **want):
    want = {k.replace("__", "."): v for k, v in want.items()}
    for m, a, v in points:
        if m == metric and a.get("gpu.index") == str(index) and all(a.get(k) == w for k, w in want.items()) and "process.pid" not in a:
            return v
    return None

def rows(path, fields):
    out = {}
    for line in open(path):
        cols = [c.strip() for c in line.split(",")]
        if len(cols) == len(fields) and cols[0].isdigit():
            out[int(cols[0])] = dict(zip(fields, cols))
    return out

base, health = rows(f"{d}/base.csv", base_fields), rows(f"{d}/health.csv", health_fields)
q = open(f"{d}/q.txt").read()
replays = [int(x) for x in re.findall(r"Replays Since Reset\s*:\s*(\d+)", q)]

MIB, MHZ = 1 / 1048576, 1e-6
# (nvidia-smi field, agent metric, attributes, factor: agent value × factor = nvidia-smi unit)
CHECKS = [
    ("utilization.gpu", "hw.gpu.utilization", {"hw.gpu.task": "general"}, 100),
    ("utilization.memory", "nvidia.gpu.memory_controller.utilization", {}, 100),
    ("memory.used", "hw.gpu.memory.usage", {}, MIB),
    ("memory.total", "hw.gpu.memory.limit", {}, MIB),
    ("temperature.gpu", "hw.temperature", {"hw.sensor_location": "gpu"}, 1),
    ("temperature.memory", "hw.temperature", {"hw.sensor_location": "memory"}, 1),
    ("power.draw", "hw.power", {}, 1),
    ("power.limit", "nvidia.gpu.power.limit", {}, 1),
    ("clocks.sm", "nvidia.gpu.clock.sm", {}, MHZ),
    ("clocks.mem", "nvidia.gpu.clock.memory", {}, MHZ),
    ("pstate", "nvidia.gpu.pstate", {}, 1),
    ("ecc.errors.corrected.volatile.total", "hw.errors", {"error.type": "corrected"}, 1),
    ("ecc.errors.uncorrected.volatile.total", "hw.errors", {"error.type": "uncorrected"}, 1),
    ("retired_pages.single_bit_ecc.count", "nvidia.gpu.memory.retired_pages", {"nvidia.gpu.retirement.cause": "multiple_single_bit_ecc"}, 1),
    ("retired_pages.double_bit.count", "nvidia.gpu.memory.retired_pages", {"nvidia.gpu.retirement.cause": "double_bit_ecc"}, 1),
    ("retired_pages.pending", "nvidia.gpu.memory.retired_pages.pending", {}, 1),
    ("remapped_rows.correctable", "nvidia.gpu.memory.remapped_rows", {"error.type": "corrected"}, 1),
    ("remapped_rows.uncorrectable", "nvidia.gpu.memory.remapped_rows", {"error.type": "uncorrected"}, 1),
    ("remapped_rows.pending", "nvidia.gpu.memory.remap.pending", {}, 1),
    ("remapped_rows.failure", "nvidia.gpu.memory.remap.failed", {}, 1),
]

def smi_number(s):
    s = s.strip()
    if s in ("Yes", "No"):
        return float(s == "Yes")
    if re.fullmatch(r"P\d+", s):
        return float(s[1:])
    try:
        return float(s)
    except ValueError:
        return None  # [N/A], [Not Supported]

print(f"{'gpu':>3}  {'nvidia-smi field':<40} {'nvidia-smi':>14}  {'agent metric':<42} {'agent':>14}  {'difference':>12}")
for i in sorted(set(base) | set(health)):
    row = {**base.get(i, {}), **health.get(i, {})}
    table = [(f, m, a, k, row.get(f, "")) for f, m, a, k in CHECKS]
    if i < len(replays):
        table.append(("-q: Replays Since Reset", "nvidia.gpu.pcie.replay", {}, 1, str(replays[i])))
    for field, metric, attrs, factor, raw in table:
        s = smi_number(raw) if raw else None
        a = agent(i, metric, **{k.replace(".", "__"): v for k, v in attrs.items()})
        a = None if a is None else a * factor
        diff = f"{a - s:+.3f}" if a is not None and s is not None else "-"
        shown = lambda v: "absent" if v is None else f"{v:.3f}".rstrip("0").rstrip(".")
        print(f"{i:>3}  {field:<40} {raw or 'absent':>14}  {metric:<42} {shown(a):>14}  {diff:>12}")
xids = [(m, a, v) for m, a, v in points if m == "nvidia.gpu.xid.errors"]
print(f"\nXID errors counted by the agent since it started: {len(xids) and sum(v for _, _, v in xids):.0f} (nvidia-smi keeps no count; see the kernel log's 'NVRM: Xid' lines)")
EOF
