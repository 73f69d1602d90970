"""benchmarks/learning_curve.py runs, writes its JSON and plot, and a rerun resumes (tiny sizes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "benchmarks/learning_curve.py", "--preset", "tiny", "--sizes", "8,16",
         "--steps", "3", "--out", str(out), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_learning_curve_writes_points_and_resumes(tmp_path):
    out = tmp_path / "curve.json"
    first = _run(out, "--seeds", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [r["n"] for r in result["summary"]] == [8, 16]
    assert {(p["n"], p["seed"]) for p in result["points"]} == {(8, 0), (16, 0)}
    assert result["window"] == [32, 64]  # the tiny preset: 32 initial, + 2 cycles × 16
    assert (tmp_path / "curve.png").stat().st_size > 0
    again = _run(out, "--seeds", "2")  # adds seed 1 only
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.startswith("2 points"), again.stdout
    points = json.loads(out.read_text())["points"]
    assert sorted((p["n"], p["seed"]) for p in points) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    seed0 = {p["n"]: p["pck"] for p in points if p["seed"] == 0}
    assert seed0 == {p["n"]: p["pck"] for p in result["points"]}  # kept, not retrained
    other = _run(out, "--seeds", "1", "--steps", "4")
    assert other.returncode != 0 and "other settings" in other.stderr
