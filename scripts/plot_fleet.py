#!/usr/bin/env python3
"""Figures of docs/fleet.md, drawn from bench_fleet's JSON lines.

    build/adapters/redis/bench_fleet --series-bin 0.5 > docs/bench_fleet.jsonl
    scripts/plot_fleet.py docs/bench_fleet.jsonl docs

Its {"series": "storm/GATES", ...} lines (real processes) give
  fleet-storm.svg   files.get per second in the quota storm, per-process gates
                    above fleet gates
  fleet-outage.svg  the same in the outage
  fleet-rate.svg    the same against a simulator accepting N requests a second,
                    the adaptive rate gate per process vs shared by the fleet

Drawn by scripts/plot_benchmarks.py's plot_series (same style; needs matplotlib).
"""
import os
import sys

from plot_benchmarks import plot_series, read_jsonl

GATES = {"local": "per-process gates", "fleet_without_onset_cap": "fleet gates, onset cap off",
         "fleet": "fleet gates (Redis)"}


def main(src, out_dir):
    lines = read_jsonl(src)
    os.makedirs(out_dir, exist_ok=True)
    for kind, title, window, name in (
            ("storm", "files.get in a quota storm (429 + RetryInfo 2 s)", "quota storm", "fleet-storm.svg"),
            ("outage", "files.get in an outage (503, break 2 s)", "outage", "fleet-outage.svg"),
            ("rate", "files.get against a quota per second, adaptive rate gate", "", "fleet-rate.svg")):
        plot_series(lines, kind, title, out_dir, name, labels=GATES, xlabel="time (s)", window=window)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_fleet.py BENCH_FLEET.jsonl OUT_DIR")
    main(sys.argv[1], sys.argv[2])
