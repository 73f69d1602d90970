"""Property tests: annotations written in each official format read back as written.

Each example writes a small file in the format (LSP's 3×14×N ``joints.mat``, LSPET's 14×3×N,
MPII's JSON conversion) from random people and checks what the reader returns against the
format's conventions, worked out here independently of the readers: MATLAB's 1-based pixels,
which flag means occluded and which means annotated, the image numbering, the split halves,
MPII's centre and scale correction. The COCO reader is checked the same way in
``tests/practitioner/test_coco_roundtrip.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st

from eglpp.pose.datasets import load_lsp, load_lspet, load_mpii_json
from eglpp.pose.skeleton import LSP, MPII

EXAMPLES = settings(max_examples=40, deadline=None)


@st.composite
def people(draw, n_joints: int, max_n: int = 7):
    """(N, J, 2) 1-based coordinates, (N, J) 0/1 flags and a seed, N in 1..max_n."""
    n = draw(st.integers(1, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    xy = np.round(rng.uniform(1.0, 400.0, size=(n, n_joints, 2)), 2)
    flags = (rng.random((n, n_joints)) < draw(st.floats(0.0, 1.0))).astype(np.float64)
    return xy, flags, seed


def _write_mat(folder: Path, xy: np.ndarray, flags: np.ndarray, layout: str) -> Path:
    xyf = np.concatenate([xy, flags[..., None]], axis=2)  # (N, J, 3)
    joints = xyf.transpose(2, 1, 0) if layout == "3xJxN" else xyf.transpose(1, 2, 0)
    if len(xy) == 1:  # MATLAB drops a trailing singleton dimension: one person is 3×14
        joints = joints[:, :, 0]
    scipy.io.savemat(folder / "joints.mat", {"joints": joints})
    return folder / "joints.mat"


@EXAMPLES
@given(data=people(LSP.n_joints), layout=st.sampled_from(["3xJxN", "Jx3xN"]))
def test_lsp_joints_mat_reads_back(data, layout):
    xy, flags, _ = data
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_mat(Path(tmp), xy, flags, layout)
        ann = load_lsp(path, check_images=False)
        n = len(xy)
        assert ann.skeleton is LSP and len(ann) == n
        assert ann.visible.all()  # LSP: every joint is annotated, flag 1 = occluded
        np.testing.assert_array_equal(ann.occluded, flags == 1)
        np.testing.assert_allclose(ann.joints, xy - 1, atol=1e-4)  # 1-based -> 0-based
        assert [p.name for p in ann.image_paths] == [f"im{i:04d}.jpg" for i in range(1, n + 1)]
        assert all(p.parent == Path(tmp) / "images" for p in ann.image_paths)
        if n >= 2:  # the official split: first half train, last half test
            train, test = (load_lsp(path, s, check_images=False) for s in ("train", "test"))
            assert len(train) == n // 2 and len(test) == n - n // 2
            np.testing.assert_allclose(test.joints, xy[n // 2 :] - 1, atol=1e-4)
            assert test.image_paths[0].name == f"im{n // 2 + 1:04d}.jpg"


@EXAMPLES
@given(data=people(LSP.n_joints), layout=st.sampled_from(["Jx3xN", "3xJxN"]))
def test_lspet_joints_mat_reads_back(data, layout):
    xy, flags, seed = data
    rng = np.random.default_rng(seed)
    missing = flags == 0
    xy = xy.copy()
    xy[missing] = rng.choice([0.0, -1.0, -50.0], size=(int(missing.sum()), 2))  # LSPET: <= 0
    with tempfile.TemporaryDirectory() as tmp:
        ann = load_lspet(_write_mat(Path(tmp), xy, flags, layout), check_images=False)
        np.testing.assert_array_equal(ann.visible, flags == 1)  # LSPET: flag 1 = annotated
        assert not ann.occluded.any()
        np.testing.assert_allclose(ann.joints[~missing], xy[~missing] - 1, atol=1e-4)
        assert np.all(ann.joints[missing] == 0)
        assert ann.image_paths[-1].name == f"im{len(xy):05d}.jpg"


def _mpii_entry(name, xy, vis, center, scale, head) -> dict:
    """One JSON-conversion entry, raw (1-based) as the converters write it."""
    joints = [
        [float(x), float(y)] if v else [-1.0, -1.0] for (x, y), v in zip(xy, vis, strict=True)
    ]
    return {"image": name, "joints": joints, "joints_vis": [int(v) for v in vis],
            "center": [float(c) for c in center], "scale": float(scale),
            "head_box": [float(h) for h in head]}  # fmt: skip


@EXAMPLES
@given(data=people(MPII.n_joints), valid_every=st.integers(1, 4))
def test_mpii_json_reads_back(data, valid_every):
    xy, flags, seed = data
    rng = np.random.default_rng(seed)
    n = len(xy)
    centers = rng.uniform(50.0, 300.0, size=(n, 2))
    scales = rng.uniform(0.5, 4.0, size=n)
    corner = rng.uniform(1.0, 300.0, size=(n, 2))
    heads = np.concatenate([corner, corner + rng.uniform(5.0, 60.0, size=(n, 2))], axis=1)
    names = [f"{1000 + i // 2:09d}.jpg" for i in range(n)]  # two people per image
    entries = [_mpii_entry(names[i], xy[i], flags[i], centers[i], scales[i], heads[i])
               for i in range(n)]  # fmt: skip
    valid_names = sorted(set(names))[::valid_every]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trainval.json"
        path.write_text(json.dumps(entries))
        (Path(tmp) / "valid.txt").write_text("\n".join(valid_names) + "\n")
        ann = load_mpii_json(path, check_images=False)
        visible = flags == 1
        np.testing.assert_array_equal(ann.visible, visible)
        np.testing.assert_allclose(ann.joints[visible], xy[visible] - 1, atol=1e-4)
        assert np.all(ann.joints[~visible] == 0)
        # MPII's objpos moved down by 15·scale, the scale enlarged 1.25×, then 0-based
        np.testing.assert_allclose(ann.centers[:, 0], centers[:, 0] - 1, rtol=1e-5)
        np.testing.assert_allclose(ann.centers[:, 1], centers[:, 1] + 15 * scales - 1, rtol=1e-5)
        np.testing.assert_allclose(ann.scales, 1.25 * scales, rtol=1e-5)
        np.testing.assert_allclose(ann.head_boxes, heads - 1, rtol=1e-5)
        in_valid = np.array([name in valid_names for name in names])
        splits = ("train", "valid") if not in_valid.all() else ("valid",)
        for split in splits:  # every person of a listed image is in 'valid', the rest 'train'
            part = load_mpii_json(path, split, valid_images=Path(tmp) / "valid.txt",
                                  check_images=False)  # fmt: skip
            keep = in_valid if split == "valid" else ~in_valid
            assert [p.name for p in part.image_paths] == [
                m for m, k in zip(names, keep, strict=True) if k
            ]
            np.testing.assert_allclose(part.joints, ann.joints[keep])
