#!/usr/bin/env python3
"""Figures of docs/BENCHMARKS.md, drawn from the benchmarks' JSON lines.

  scripts/plot_benchmarks.py --wait WAIT.jsonl --side SIDE.jsonl --out docs/bench

WAIT.jsonl: `bench_wait --series-bin 5` output; its {"series":...} lines give
  outage_rps.svg      files.get requests per second over time in the outage,
                      per strategy (shared breaker vs per-operation retries)
  quota_storm_rps.svg the same in the quota storm (429s per second beside)
SIDE.jsonl: `bench/side_by_side.py` output; its side_by_side/* lines give
  memory_vs_waits.svg peak memory and CPU time against the number of waits,
                      gemini-files wait vs the @google/genai Node SDK (a side
                      whose lines all carry "run": "earlier ..." is labelled so)

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


def plot_series(lines, prefix, title, out_dir, name, labels=LABELS, xlabel="virtual time (s)", window=None):
    # labels: panel titles by series kind; window: the shaded span's legend
    # (None: from the prefix; "": no span). scripts/plot_fleet.py reuses it.
    series = [l for l in lines if l.get("series", "").startswith(prefix + "/")]
    if not series:
        print(f"no {prefix} series in the input (run bench_wait with --series-bin)", file=sys.stderr)
        return
    # One panel per strategy, same axes, so that neither hides the other.
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.3 * len(series) + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    w0, w1 = series[0]["window_s"]
    for ax, s in zip(axes[:, 0], series):
        kind = s["series"].split("/", 1)[1]
        if window != "":
            ax.axvspan(w0, w1, color="0.9", label=window or ("outage" if prefix == "outage" else "quota storm"))
        ax.step(s["t_s"], s["get_per_s"], where="post", color="C0", label="all files.get")
        for key, style, color, label in (("429_per_s", ":", "C3", "429 answers"), ("503_per_s", "--", "C1", "503 answers")):
            if any(v > 0 for v in s[key]):
                ax.step(s["t_s"], s[key], where="post", linestyle=style, color=color, label=label)
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(labels.get(kind, kind), fontsize=10)
        ax.set_ylabel(f"req/s ({s['bin_s']} s bins)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(f"{title}, {series[0]['waits']:,} waits")
    fig.tight_layout()
    save(fig, out_dir, name)


def plot_memory(lines, out_dir):
    sides = {"side_by_side/gemini_files_wait": "gemini-files wait (C++)",
             "side_by_side/node_genai_sdk": "@google/genai SDK (Node)"}
    # Only runs that finished (a side stopped at the driver's --limit has no figure).
    pts = {k: sorted(((l["waits"], l) for l in lines if l.get("name") == k and l.get("exit_status") == 0),
                     key=lambda p: p[0]) for k in sides}
    if not any(pts.values()):
        print("no side_by_side lines in the input", file=sys.stderr)
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for k, label in sides.items():
        if not pts[k]:
            continue
        xs = [n for n, _ in pts[k]]
        if all(str(l.get("run", "")).startswith("earlier") for _, l in pts[k]):
            label += " (earlier run)"  # lines kept from a previous run: see their "run" field
        a1.plot(xs, [l["max_rss_kb"] / 1024 for _, l in pts[k]], marker="o", label=label)
        a2.plot(xs, [l["cpu_s"] for _, l in pts[k]], marker="o", label=label)
    # A side stopped before it finished: its figures so far, marked with an x.
    stopped = [l for l in lines if l.get("name") in sides and l.get("exit_status") != 0]
    for l in stopped:
        color = "C1" if l["name"].endswith("node_genai_sdk") else "C0"
        for a, y in ((a1, l["max_rss_kb"] / 1024), (a2, l["cpu_s"])):
            a.plot([l["waits"]], [y], marker="x", color=color, linestyle="none", markersize=9)
            a.annotate(f"stopped after {l['wall_s']:.0f} s", (l["waits"], y), textcoords="offset points",
                       xytext=(-10, -14), ha="right", fontsize=7, color=color)
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
        plot_series(lines, "outage", "files.get during an outage (503 on files.get)", args.out, "outage_rps.svg")
        plot_series(lines, "quota_storm", "files.get during a quota storm (429 + RetryInfo 10 s)", args.out,
                    "quota_storm_rps.svg")
    if args.side:
        plot_memory(read_jsonl(args.side), args.out)


if __name__ == "__main__":
    main()
