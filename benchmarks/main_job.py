"""Wall time of the README's main job, ``eglpp run --out DIR``, idle and beside a busy process.

Each mode runs the installed ``eglpp`` command exactly as the README gives it (a fresh output
folder, no other flag; extra arguments after ``--`` are passed on) and records its wall time,
the load average before and after, and the table it wrote (``table.md``). "busy" first starts
one process that spins on one core (a Python loop, as another user's job would) and stops it
when the run ends. The tables of the modes are compared: one seed, the same numbers.

    python benchmarks/main_job.py --out benchmarks/results/main_job.json
    python benchmarks/main_job.py --modes idle -- --jobs 1     # one process, for comparison
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass"


def measure(mode: str, folder: Path, extra: list[str], limit: float) -> dict:
    """One run of ``eglpp run --out folder`` (fresh), idle or beside one spinning process."""
    shutil.rmtree(folder, ignore_errors=True)
    spinner = None
    if mode == "busy":
        spinner = subprocess.Popen([sys.executable, "-c", SPIN, str(limit + 60)])
    load_before = os.getloadavg()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            ["eglpp", "run", "--out", str(folder), *extra],
            capture_output=True, text=True, timeout=limit,
        )  # fmt: skip
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{mode}: eglpp run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    workers = [line for line in done.stdout.splitlines() if "processes (torchrun)" in line]
    return {
        "mode": mode,
        "wall_seconds": seconds,
        "wall_minutes": seconds / 60,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "workers_line": workers[0].split("] ", 1)[-1] if workers else "one process",
        "table": (folder / "table.md").read_text().splitlines(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="idle,busy", help="comma-separated: idle, busy")
    ap.add_argument("--folder", type=Path, default=Path("runs/quick_bench"))
    ap.add_argument("--limit", type=float, default=3600, help="seconds before a run is stopped")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/main_job.json"))
    ap.add_argument("extra", nargs="*", help="after --: more eglpp run arguments")
    args = ap.parse_args()
    rows = []
    print("| mode | wall min | load before | workers |\n|---|---|---|---|")
    for mode in args.modes.split(","):
        row = measure(mode.strip(), args.folder, args.extra, args.limit)
        rows.append(row)
        print(f"| {row['mode']} | {row['wall_minutes']:.1f} | {row['load_average_before'][0]:.2f}"
              f" | {row['workers_line']} |", flush=True)  # fmt: skip
    same = len({json.dumps(r["table"]) for r in rows}) == 1
    print(f"tables identical across modes: {same}")
    env = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
           "command": ["eglpp", "run", "--out", str(args.folder), *args.extra]}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"environment": env, "rows": rows, "tables_identical": same}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
