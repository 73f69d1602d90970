"""The GPU session's benchmark scripts still run: ``benchmarks/gpu_checks.sh`` on the CPU.

``gpu_checks.sh`` is only ever run for real on a lent GPU, so its four steps (``egl_speed.py``,
``affinity_scale.py``, ``pose_train.py``, ``al_cycle.py``) are run here through its CPU dry-run
mode (``GPU_CHECKS_DEVICE=cpu GPU_CHECKS_SMALL=1``: the same commands at tiny sizes, one
thread), each as its own subprocess; every step must exit 0 and write the JSON the GPU run
writes. Nothing is timed: the figures are only checked to be there and finite.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = {  # summary.json step → the JSON it writes in the CPU dry run
    "egl_speed": "egl_speed_cpu_small.json",
    "egl_memory": "egl_memory_cpu_small.json",
    "affinity": "affinity_scale_cpu_small.json",
    "train": "pose_train_cpu_small.json",
    "al_cycle": "al_cycle_cpu_small.json",
    "grid": "gpu_grid_cpu_small.json",
}
pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("timeout") is None,
    reason="gpu_checks.sh needs bash and coreutils' timeout",
)


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> Path:
    """``gpu_checks.sh`` in its CPU dry-run mode; the folder it wrote."""
    out = tmp_path_factory.mktemp("gpu_checks")
    env = _env(GPU_CHECKS_DEVICE="cpu", GPU_CHECKS_SMALL="1", PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_checks.sh", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed check
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _step_log(out: Path, step: str) -> str:
    """The lines that ``step`` wrote to gpu_checks.log (for failure messages)."""
    text = (out / "gpu_checks.log").read_text()
    section = text[text.find(f"=== {step} (") :]
    end = section.find("\n=== ", section.find(f"=== {step}: exit"))
    return section[: end if end >= 0 else None][-4000:]


def _finite(x, name: str, *, positive: bool = False) -> None:
    assert isinstance(x, (int, float)) and math.isfinite(x), f"{name} = {x!r}"
    assert not positive or x > 0, f"{name} = {x!r} (expected > 0)"


def test_summary_lists_every_step_with_exit_0(dry_run):
    summary = json.loads((dry_run / "summary.json").read_text())
    assert list(summary) == list(STEPS)
    for step, row in summary.items():
        assert row["exit"] == 0, _step_log(dry_run, step)
        _finite(row["seconds"], f"{step} seconds")
    log = (dry_run / "gpu_checks.log").read_text()
    assert "nvidia-smi skipped" in log and "--device cpu" in log


def _check_egl_speed(d: dict) -> None:
    assert {"device", "threads", "torch", "args", "gradnorms", "rank_agreement"} <= set(d)
    assert d["threads"] == 1 and d["args"]["device"] == "cpu" and d["affinity"] == []
    methods = {row["method"] for row in d["gradnorms"]}
    expected = {"naive", "k-copies", "exact vmap all", "exact hooks all", "approx 1+1 hooks"}
    expected |= {"exact auto all", "peer torch.func vjp"}
    assert expected <= methods, methods
    assert any(m.startswith("bound") for m in methods), methods
    for row in d["gradnorms"]:
        _finite(row["images_per_s"], row["method"], positive=True)
    rank = d["rank_agreement"]
    assert rank["n_images"] == 4 and 0 <= rank["model_pck"] <= 1
    for name in ("approx 0+1", "approx 2+0", "conv_linear"):
        assert -1 <= rank[name]["spearman"] <= 1 and 0 <= rank[name]["top_overlap"] <= 1


def _check_egl_memory(d: dict) -> None:
    rows = {row["method"]: row for row in d["gradnorms"]}
    assert "exact auto all" in rows and d["args"]["max_memory"] == "64MiB"
    _finite(rows["exact auto all"]["images_per_s"], "auto", positive=True)
    assert d["rank_agreement"]["auto_chooses"].startswith("hooks")


def _check_affinity(d: dict) -> None:
    assert {"machine", "threads", "perplexity", "k", "dim", "rows", "agreement"} <= set(d)
    assert [(r["method"], r["U"], r["L"]) for r in d["rows"]] == [
        ("eglpp", 200, 500),
        ("eglpp", 2000, 500),
    ]
    for r in d["rows"]:
        _finite(r["seconds"], "seconds", positive=True)
        for key in ("peak_bytes_above_inputs", "peak_rss_bytes_above_inputs", "output_bytes"):
            _finite(r[key], key)
        assert r["output_bytes"] == r["U"] * 30 * (8 + 8 + 8) + r["U"] * 8  # (U, K) ×3 + beta
        assert r["perplexity_calibration"]["rows_off_by_more_than_1pct"] == 0


def _check_train(d: dict) -> None:
    assert {"environment", "rows"} <= set(d)
    assert d["environment"]["device"] == "cpu" and d["environment"]["threads"] == 1
    assert [(r["size"], r["loop"]) for r in d["rows"]] == [("cpu", "plain"), ("cpu", "project")]
    for r in d["rows"]:
        _finite(r["train_images_per_s"], "train_images_per_s", positive=True)
        _finite(r["predict_images_per_s"], "predict_images_per_s", positive=True)


def _check_al_cycle(d: dict) -> None:
    assert {"device", "wall_seconds", "log", "scores", "n_labelled", "config"} <= set(d)
    _finite(d["wall_seconds"], "wall_seconds", positive=True)
    assert d["n_labelled"] == [16, 24] and d["config"]["device"] == "cpu"
    assert set(d["scores"]) == {"egl++", "random"}
    for curves in d["scores"].values():
        assert len(curves) == 1 and len(curves[0]) == 2
        for v in curves[0]:
            _finite(v, "PCK")
            assert 0.0 <= v <= 1.0
    assert any("egl++ cycle 1: scoring" in line for _, line in d["log"])


def _check_grid(d: dict) -> None:
    """2 CPU ranks against 1 (the GPU run: all GPUs against one), the same scores; the match
    check (the device's EGL++ selections against the CPU's) finds the CPU equal to itself."""
    assert [r["ranks"] for r in d["rows"]] == [1, 2] and d["same_scores"] is True
    for r in d["rows"]:
        assert r["exit"] == 0, r.get("tail")
        for key in ("wall_seconds", "train_images_per_s", "egl_pp_images_per_s"):
            _finite(r[key], key, positive=True)
        assert set(r["scores"]) == {"egl++", "random"} and len(r["scores"]["egl++"]) == 1
    match = d["match"]
    assert match["exit"] == 0 and match["within_tolerance"] is True, match
    assert [(c["run"], c["cycle"]) for c in match["cycles"]] == [(0, 1), (0, 2)]
    for c in match["cycles"]:
        assert c["max_relative_difference"] == 0.0  # the same device: the same numbers
        assert c["spearman"] == pytest.approx(1.0, abs=1e-12) and c["selected_overlap"] == 1.0


@pytest.mark.parametrize(
    "step, check",
    [
        ("egl_speed", _check_egl_speed),
        ("egl_memory", _check_egl_memory),
        ("affinity", _check_affinity),
        ("train", _check_train),
        ("al_cycle", _check_al_cycle),
        ("grid", _check_grid),
    ],
)
def test_step_writes_its_json(dry_run, step, check):
    path = dry_run / STEPS[step]
    assert path.exists(), _step_log(dry_run, step)
    check(json.loads(path.read_text()))


def test_affinity_scale_compares_with_opentsne(tmp_path):
    """The path the CPU results use (gpu_checks.sh skips openTSNE): eglpp vs openTSNE exact."""
    out = tmp_path / "affinity.json"
    cmd = [sys.executable, "benchmarks/affinity_scale.py", "--threads", "1"]
    cmd += ["--unlabelled", "1500", "--labelled", "300", "--opentsne-methods", "exact"]
    proc = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    d = json.loads(out.read_text())
    assert [r["method"] for r in d["rows"]] == ["eglpp", "eglpp", "exact"]
    agreement = d["agreement"]["exact"]
    assert agreement["neighbour_overlap"] >= 0.99, agreement  # both exact nearest neighbours
    _finite(agreement["max_abs_p_diff"], "max_abs_p_diff")
    for r in d["rows"]:
        _finite(r["seconds"], f"{r['method']} seconds", positive=True)
        _finite(r["peak_bytes_above_inputs"], "peak_bytes_above_inputs")
