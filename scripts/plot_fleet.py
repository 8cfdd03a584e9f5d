#!/usr/bin/env python3
"""Draws bench_fleet's JSON lines as an SVG bar chart (no dependency).

    build/adapters/redis/bench_fleet > docs/bench_fleet.jsonl
    scripts/plot_fleet.py docs/bench_fleet.jsonl docs/fleet-storm.svg

Bars: 429s per cooldown period (quota storm) and failing requests per open
period (outage), per-process gates against fleet gates.
"""
import json
import sys


def main(src, dst):
    rows = [json.loads(line) for line in open(src) if line.strip().startswith("{")]
    get = lambda bench, gates, field: next(r[field] for r in rows if r["bench"] == bench and r["gates"] == gates)
    groups = [
        ("quota storm: 429s per cooldown period", "storm", "429_per_period"),
        ("outage: failing requests per open period", "outage", "failing_per_period"),
    ]
    members = rows[0].get("members", 0)
    width, height, top, bottom, left = 640, 300, 50, 60, 50
    vmax = max(get(b, g, f) for _, b, f in groups for g in ("local", "fleet")) * 1.15
    scale = (height - top - bottom) / vmax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{members} members, per-process gates vs fleet gates (bench_fleet)</text>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="black"/>']
    colours = {"local": "#c0504d", "fleet": "#4f81bd"}
    slot = (width - left - 20) / len(groups)
    for i, (title, bench, field) in enumerate(groups):
        x0 = left + i * slot + slot * 0.2
        for j, gates in enumerate(("local", "fleet")):
            v = get(bench, gates, field)
            h = v * scale
            x = x0 + j * slot * 0.3
            y = height - bottom - h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.25:.1f}" height="{h:.1f}" fill="{colours[gates]}"/>')
            out.append(f'<text x="{x + slot * 0.125:.1f}" y="{y - 4:.1f}" text-anchor="middle">{v:.2f}</text>')
            out.append(f'<text x="{x + slot * 0.125:.1f}" y="{height - bottom + 15}" text-anchor="middle">{gates}</text>')
        out.append(f'<text x="{x0 + slot * 0.275:.1f}" y="{height - bottom + 35}" text-anchor="middle">{title}</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_fleet.py BENCH_FLEET.jsonl OUT.svg")
    main(sys.argv[1], sys.argv[2])
