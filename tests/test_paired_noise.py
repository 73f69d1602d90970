"""benchmarks/paired_noise.py: paired differences and cycle-1 changes read from results.json."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]


def test_paired_differences_and_dips_against_a_hand_computation(tmp_path):
    rng = np.random.default_rng(0)
    ref, other = rng.uniform(0.3, 0.4, (4, 3)), rng.uniform(0.3, 0.4, (4, 3))
    results = {
        "task": "pose",
        "metric": "PCK@0.2",
        "higher_is_better": True,
        "config": {},
        "n_labelled": [10, 20, 30],
        "scores": {"egl++": ref.tolist(), "random": other.tolist()},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    out = tmp_path / "noise.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "paired_noise.py"),
        f"a={tmp_path}",
        "--out",
        str(out),
    ]
    printed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    got = json.loads(out.read_text())["a"]
    diff = 100 * (ref - other)
    np.testing.assert_allclose(got["diff_mean"], diff[:, 1:].mean(0))
    np.testing.assert_allclose(got["diff_std"], diff[:, 1:].std(0, ddof=1))
    t = scipy.stats.t.ppf(0.9, df=3)  # one-tailed p < 0.1 with 4 pairs
    np.testing.assert_allclose(got["detectable_p0.1"], t * diff[:, 1:].std(0, ddof=1) / 2)
    assert np.isclose(got["dip_cycle1"]["random"]["mean"], 100 * (other[:, 1] - other[:, 0]).mean())
    assert "| 1 |" in printed and "cycle-1 change from the base model" in printed
    (tmp_path / "results.json").write_text(json.dumps({**results, "scores": []}))
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode != 0 and "results.json" in bad.stderr and "scores" in bad.stderr
