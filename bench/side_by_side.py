#!/usr/bin/env python3
"""Waits side by side: `gemini-files wait` (this library) and the official
@google/genai Node SDK (bench/node/wait_node.mjs, the original TypeScript's
retry loop around files.get) wait for the same N files on the same simulator.

For each N and each side, a fresh `gemini-sim` with the same seed and
settings stores N files (so both sides see the same processing times, from
the moment the simulator starts), the client waits for all of them, and the
script reads what the simulator counted. CPU time and peak memory are the
client process's own (wait4's rusage: user + system, ru_maxrss), measured the
same way for both. Prints JSON lines: one per side, then one comparison.

  bench/side_by_side.py [--build build] [--waits 1000,10000] [--processing 1s..30s]
                        [--sides ours,node] [--timeout 1200] [--limit 900]

--limit stops a side that has not finished after that many seconds (its line
then says "finished": false, and no comparison is printed for that N).

Needs `npm ci` in bench/node (scripts/setup.sh does it).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEY = "side-by-side-key-3f9a"


def start_sim(build, n, processing, seed, names_path):
    sim = subprocess.Popen(
        [os.path.join(build, "tools", "gemini-sim"), "--api-key", KEY, "--processing", processing,
         "--seed", str(seed), "--files", str(n), "--names-out", names_path],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = sim.stdout.readline().strip()
    if not url.startswith("http://"):
        sim.kill()
        sim.wait()
        sys.exit("gemini-sim did not start")
    return sim, url


def sim_stats(url):
    with urllib.request.urlopen(url + "/admin/stats", timeout=30) as r:
        return json.load(r)


def run_measured(cmd, env, out_path, limit):
    """Runs cmd, stdout to out_path, stopped after `limit` seconds; returns
    (exit status, wall s, cpu s, peak RSS KiB)."""
    with open(out_path, "w") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        stopper = threading.Timer(limit, p.terminate)
        stopper.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            stopper.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def one_side(side, n, args):
    with tempfile.TemporaryDirectory() as tmp:
        names = os.path.join(tmp, "names.txt")
        out = os.path.join(tmp, "out.txt")
        sim, url = start_sim(args.build, n, args.processing, args.seed, names)
        load_start = os.getloadavg()[0]
        try:
            env = dict(os.environ)
            if side == "ours":
                env.update(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=url)
                cmd = [os.path.join(args.build, "tools", "gemini-files"), "--timeout", str(args.timeout),
                       "wait", "--names-from", names]
            else:
                cmd = ["node", os.path.join(HERE, "node", "wait_node.mjs"), url, KEY, names]
            status, wall, cpu, rss = run_measured(cmd, env, out, args.limit)
            load_end = os.getloadavg()[0]
            st = sim_stats(url)
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait()
        with open(out) as f:
            text = f.read()
    own = None  # the Node script's own report (errors by kind, retries, its resourceUsage)
    if side == "ours":
        active = text.count(": ACTIVE\n")
        errors = len([l for l in text.splitlines() if l and not l.endswith(": ACTIVE")])
    else:
        lines = [l for l in text.splitlines() if l.startswith("{")]
        own = json.loads(lines[-1]) if lines else None
        active = own["active"] if own else 0
        errors = sum(own["errors"].values()) if own else 0
    gets = st.get("routes", {}).get("get", {})
    return {
        "name": "side_by_side/" + ("gemini_files_wait" if side == "ours" else "node_genai_sdk"),
        "waits": n, "exit_status": status, "finished": status == 0 and active > 0, "active": active,
        "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "max_rss_kb": rss,
        "requests": st.get("total_requests", 0), "get_requests": gets.get("requests", 0),
        "get_statuses": gets.get("statuses", {}),
        "requests_per_wait": round(st.get("total_requests", 0) / n, 2),
        "processing": args.processing, "errors": errors,
        "load_1min": [round(load_start, 2), round(load_end, 2)],  # the machine's load at the start and the end
        **({"client_report": own} if own else {}),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--waits", default="1000,10000")
    ap.add_argument("--processing", default="1s..30s")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sides", default="ours,node")
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--limit", type=float, default=900)
    args = ap.parse_args()
    sides = args.sides.split(",")
    for s in sides:
        if s not in ("ours", "node"):
            sys.exit("--sides takes ours and/or node")
    for n in (int(x) for x in args.waits.split(",")):
        got = {}
        for side in sides:
            got[side] = one_side(side, n, args)
            print(json.dumps(got[side]), flush=True)
        if len(got) == 2 and got["ours"]["finished"] and got["node"]["finished"]:
            o, nd = got["ours"], got["node"]
            ratio = lambda a, b: round(a / b, 3) if b else None
            print(json.dumps({
                "name": "side_by_side/comparison", "waits": n,
                "wall_ratio_ours_to_node": ratio(o["wall_s"], nd["wall_s"]),
                "cpu_ratio_ours_to_node": ratio(o["cpu_s"], nd["cpu_s"]),
                "rss_ratio_ours_to_node": ratio(o["max_rss_kb"], nd["max_rss_kb"]),
                "requests_ratio_ours_to_node": ratio(o["requests"], nd["requests"]),
                "ours_active": o["active"], "node_active": nd["active"],
                "load_1min": round(os.getloadavg()[0], 2),
            }), flush=True)


if __name__ == "__main__":
    main()
