#!/usr/bin/env python3
"""Checks the layer rule of docs/architecture.md: a module imports only modules of its own
layer or below it, never one above.

Reads every `crate::<module>` path in src/ (in `use` lines and inline paths, `use crate::{a, b}`
groups included), outside `#[cfg(test)]` code: tests may reach up to build what they check.
Exits 1 and lists each import that points up, or names a top-level module the table below
does not place. Run: python3 scripts/check_layers.py [--graph]
"""

import os
import re
import sys

# Bottom to top. A module may import its own layer and every layer below it.
LAYERS = [
    # Values and platform helpers: import nothing of the crate.
    ["units", "mem", "sched", "points"],
    # Readers of the kernel's files, TLS settings, the OTel→Prometheus names, shared state types.
    ["procfs", "tls", "translate", "status"],
    # The HTTP client (and its auth helpers); the resource detectors.
    ["http", "resource"],
    # Sources of points: host collectors, scrape targets.
    ["collectors", "scrape"],
    # Meter, batches, the scheduler, queue and spool.
    ["pipeline"],
    # Exporters on the pipeline's queue; the agent's HTTP server, which reads the pipeline's state;
    # the OTLP receiver, which hands what apps push to the exporters' queues.
    # The agent's own logs and traces over OTLP.
    ["exporters", "server", "receiver", "telemetry"],
    # The configuration file: composes every component's own config type.
    ["config"],
    # The agent's wiring, the binary.
    ["agent", "main"],
]

RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
# `lib` only declares the modules.
IGNORED = {"lib"}

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def product_code(text):
    """The file without its `#[cfg(test)]` items (a test module runs to the file's end here)."""
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;")


def test_only_files(src):
    """Files declared as `#[cfg(test)] mod name;` (test helpers such as collectors/testutil.rs)."""
    found = set()
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            parent = os.path.join(dirpath, f)
            base = dirpath if f in ("mod.rs", "lib.rs", "main.rs") else os.path.join(dirpath, f[:-3])
            for name in TEST_MOD.findall(open(parent, encoding="utf-8").read()):
                found.add(os.path.normpath(os.path.join(base, name + ".rs")))
                found.add(os.path.normpath(os.path.join(base, name, "mod.rs")))
    return found


def module_of(path, src):
    rel = os.path.relpath(path, src)
    parts = rel[:-3].split(os.sep)
    return parts[0]


def imports(text):
    found = set(PATH.findall(text))
    for group in GROUP.findall(text):
        for item in re.split(r"[,\s{}]+", group):
            head = item.split("::", 1)[0].strip()
            if re.fullmatch(r"[a-z_][a-z0-9_]*", head or "-") and head not in ("self", "super"):
                found.add(head)
    return found


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    src = os.path.join(root, "src")
    problems, graph = [], {}
    tests = test_only_files(src)
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            if os.path.normpath(path) in tests:
                continue
            mod = module_of(path, src)
            if mod in IGNORED:
                continue
            if mod not in RANK:
                problems.append(f"{os.path.relpath(path, root)}: module `{mod}` has no layer in scripts/check_layers.py")
                continue
            text = strip_comments(product_code(open(path, encoding="utf-8").read()))
            for target in sorted(imports(text)):
                if target == mod or target in IGNORED:
                    continue
                graph.setdefault(mod, set()).add(target)
                if target not in RANK:
                    problems.append(f"{os.path.relpath(path, root)}: imports `crate::{target}`, which has no layer")
                elif RANK[target] > RANK[mod]:
                    problems.append(
                        f"{os.path.relpath(path, root)}: `{mod}` (layer {RANK[mod]}) imports `crate::{target}` (layer {RANK[target]}), a layer above it"
                    )
    if "--graph" in sys.argv:
        for m in sorted(graph, key=lambda m: (RANK.get(m, 99), m)):
            print(f"{m} -> {', '.join(sorted(graph[m], key=lambda t: (RANK.get(t, 99), t)))}")
    if problems:
        print("layer rule broken (docs/architecture.md, 'Layers'):")
        for p in problems:
            print("  " + p)
        return 1
    print(f"layers ok: {sum(len(v) for v in graph.values())} module imports, none pointing up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
