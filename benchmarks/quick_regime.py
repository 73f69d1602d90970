"""How each cycle's retraining moves the quick preset's model: random's gain over the cycles.

Each candidate is ``eglpp run --strategies random --runs 3`` with the quick preset's data sizes
and some cycle-training fields replaced (``--set``); every candidate starts from the same base
models (the first candidate trains them, the others copy ``run-*/base`` and ``initial.npy``,
which do not depend on the cycle recipe). The control keeps a recipe and labels one image per
cycle: what the extra training alone gives, so that "labels move the model" is measured, not
assumed. Prints a table and writes JSON; a rerun resumes every folder.

    python benchmarks/quick_regime.py --threads 1 --out benchmarks/results/quick_regime.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: name -> the --set fields of the candidate (besides the quick preset's own)
CANDIDATES = {
    "3 epochs, lr 6e-3": {"cycle_train.epochs": 3, "cycle_train.lr": 0.006},
    "3 epochs, lr 1.2e-2 (the preset)": {},
    "4 epochs, lr 6e-3": {"cycle_train.epochs": 4, "cycle_train.lr": 0.006},
    "3 epochs, lr 2.4e-2": {"cycle_train.epochs": 3, "cycle_train.lr": 0.024},
    "2 epochs, lr 1.2e-2": {"cycle_train.epochs": 2, "cycle_train.lr": 0.012},
    "control: the preset's recipe, 1 image per cycle": {"budget": 1},
}


def run(name: str, changes: dict, folder: Path, base_from: Path | None, threads: int) -> dict:
    if base_from is not None and not folder.exists():  # share the first candidate's base models
        for run_dir in sorted(base_from.glob("run-*")):
            (folder / run_dir.name).mkdir(parents=True)
            shutil.copytree(run_dir / "base", folder / run_dir.name / "base")
            shutil.copy2(run_dir / "initial.npy", folder / run_dir.name / "initial.npy")
    sets = [a for k, v in changes.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    command = ["eglpp", "run", "--out", str(folder), "--strategies", "random", "--runs", "3",
               "--threads", str(threads), *sets]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: eglpp run failed:\n{done.stderr[-3000:]}")
    results = json.loads((folder / "results.json").read_text())
    runs = results["scores"]["random"]
    means = [sum(r[i] for r in runs) / len(runs) for i in range(len(results["n_labelled"]))]
    return {"candidate": name, "changes": changes, "command": " ".join(command),
            "n_labelled": results["n_labelled"], "runs": runs, "mean": means,
            "gain": means[-1] - means[0]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=Path("runs/quick_regime"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quick_regime.json"))
    args = ap.parse_args()
    rows, first = [], None
    for i, (name, changes) in enumerate(CANDIDATES.items()):
        folder = args.folder / f"candidate-{i}"
        rows.append(run(name, changes, folder, first, args.threads))
        first = first or folder
    print("PCK@0.2 %, mean of 3 runs, at each labelled-set size (in brackets)\n")
    print("| cycle recipe | base | cycle 1 | cycle 2 | cycle 3 | gain |\n|---|---|---|---|---|---|")
    for r in rows:
        cells = " | ".join(f"{100 * m:.2f} ({n})" for m, n in zip(r["mean"], r["n_labelled"],
                                                                     strict=True))
        print(f"| {r['candidate']} | {cells} | {100 * r['gain']:+.2f} |")
    environment = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
                   "threads": args.threads}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
