#!/usr/bin/env python3
"""Growth curves from passerelle-bench results: python3 bench/plot.py OUT.png RESULTS.json...

Needs matplotlib (e.g. python3 -m venv /tmp/v && /tmp/v/bin/pip install matplotlib).
"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = []
for path in sys.argv[2:]:
    rows += json.load(open(path))["results"]


def series(scenario, pattern):
    out = {}
    for r in rows:
        m = re.match(pattern, r["what"])
        if r["scenario"] == scenario and m:
            out.setdefault(r["backend"], []).append((float(m.group(1).replace(",", "")), r["value"]))
    return {b: sorted(v) for b, v in out.items()}


panels = [
    ("fan-out: publish → all partners verified (s)", "partners", series("fan-out", r"(\d+) partners: publish")),
    ("idle RSS of the node (MB)", "partners", series("memory", r"idle RSS with (\d+) partners(?: \(\d+ s after the set-up\))?$")),
    ("catch-up: B start → all stored (s)", "activities missed", series("catch-up", r"(\d+) missed: B start → all stored")),
    ("feed: landing page p50 (ms)", "postings", series("feed", r"(\d+) postings: landing page \([^…]*\) — p50$")),
]
fig, axes = plt.subplots(2, 2, figsize=(10, 7))
for ax, (title, xlabel, data) in zip(axes.flat, panels):
    for backend, pts in data.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=backend,
                color={"sqlite": "tab:orange", "postgres": "tab:blue"}.get(backend))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
fig.suptitle("Passerelle growth curves (2 vCPU, loaded machine, one sample per point)", fontsize=11)
fig.tight_layout()
fig.savefig(sys.argv[1], dpi=80)
