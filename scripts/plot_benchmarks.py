#!/usr/bin/env python3
"""Figures of docs/BENCHMARKS.md, drawn from the benchmarks' JSON lines.

  scripts/plot_benchmarks.py --wait WAIT.jsonl --side SIDE.jsonl --out docs/bench

WAIT.jsonl: `bench_wait --series-bin 5` output; its {"series":...} lines give
  outage_rps.svg      files.get requests per second over time in the outage,
                      per strategy (shared breaker vs per-operation retries)
  quota_storm_rps.svg the same in the quota storm (429s per second beside)
SIDE.jsonl: `bench/side_by_side.py` output; its side_by_side/* lines give
  memory_vs_waits.svg peak memory and CPU time against the number of waits,
                      gemini-files wait vs the @google/genai Node SDK

Needs matplotlib (Debian: python3-matplotlib). Lines that are not JSON (the
summary) are skipped. The SVGs keep their text as text and carry no date, so
a rerun on the same input gives the same file.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "asio-resilience", "font.size": 10})
LABELS = {
    "client_shared_breaker": "client (shared breaker, cooldown, budget)",
    "client_shared_cooldown": "client (shared breaker, cooldown, budget)",
    "per_operation_retries": "per-operation retries (no shared gates)",
}


def read_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    print("wrote", path)


def plot_series(lines, prefix, title, out_dir, name, with_429):
    series = [l for l in lines if l.get("series", "").startswith(prefix + "/")]
    if not series:
        print(f"no {prefix} series in the input (run bench_wait with --series-bin)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 3.6))
    w0, w1 = series[0]["window_s"]
    ax.axvspan(w0, w1, color="0.9", label=("outage" if prefix == "outage" else "quota storm"))
    for s in series:
        kind = s["series"].split("/", 1)[1]
        ln, = ax.step(s["t_s"], s["get_per_s"], where="post", label=LABELS.get(kind, kind) + ": all files.get")
        if with_429:
            ax.step(s["t_s"], s["429_per_s"], where="post", linestyle=":", color=ln.get_color(),
                    label=LABELS.get(kind, kind) + ": 429 answers")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(f"requests per second ({series[0]['bin_s']} s bins)")
    ax.set_title(f"{title}, {series[0]['waits']:,} waits")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir, name)


def plot_memory(lines, out_dir):
    sides = {"side_by_side/gemini_files_wait": "gemini-files wait (C++)",
             "side_by_side/node_genai_sdk": "@google/genai SDK (Node)"}
    pts = {k: sorted((l["waits"], l) for l in lines if l.get("name") == k) for k in sides}
    if not any(pts.values()):
        print("no side_by_side lines in the input", file=sys.stderr)
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for k, label in sides.items():
        if not pts[k]:
            continue
        xs = [n for n, _ in pts[k]]
        a1.plot(xs, [l["max_rss_kb"] / 1024 for _, l in pts[k]], marker="o", label=label)
        a2.plot(xs, [l["cpu_s"] for _, l in pts[k]], marker="o", label=label)
    for a, yl in ((a1, "peak RSS (MiB)"), (a2, "CPU time, user + system (s)")):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("concurrent waits")
        a.set_ylabel(yl)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    a1.set_title("memory against the number of waits")
    a2.set_title("CPU time against the number of waits")
    fig.tight_layout()
    save(fig, out_dir, "memory_vs_waits.svg")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wait", help="bench_wait --series-bin output")
    ap.add_argument("--side", help="bench/side_by_side.py output")
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    if not args.wait and not args.side:
        ap.error("give --wait and/or --side")
    os.makedirs(args.out, exist_ok=True)
    if args.wait:
        lines = read_jsonl(args.wait)
        plot_series(lines, "outage", "files.get during an outage", args.out, "outage_rps.svg", False)
        plot_series(lines, "quota_storm", "files.get during a quota storm (429 + RetryInfo 10 s)", args.out,
                    "quota_storm_rps.svg", True)
    if args.side:
        plot_memory(read_jsonl(args.side), args.out)


if __name__ == "__main__":
    main()
