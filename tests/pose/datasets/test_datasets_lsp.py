"""LSP and LSPET loaders on fixtures in the official formats, bad input, the real annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from pose_dataset_fixtures import lsp_arrays, make_lsp, write_jpeg

from eglpp.pose.datasets import AnnotationError, load_lsp, load_lspet
from eglpp.pose.skeleton import LSP

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def test_lsp_occlusion_flags_and_split(tmp_path):
    xy, flags = lsp_arrays(6, np.random.default_rng(0))
    root = make_lsp(tmp_path / "lsp", xy, flags)
    ann = load_lsp(root)
    assert ann.skeleton is LSP and len(ann) == 6
    np.testing.assert_allclose(ann.joints, xy - 1, atol=1e-5)  # 1-based -> 0-based
    assert ann.visible.all()  # LSP's flag 1 = occluded but annotated
    np.testing.assert_array_equal(ann.occluded, flags == 1)
    assert ann.occluded.any() and not ann.occluded.all()
    assert [p.name for p in ann.image_paths][:2] == ["im0001.jpg", "im0002.jpg"]

    train, test = load_lsp(root, "train"), load_lsp(root / "joints.mat", "test")
    assert [p.name for p in train.image_paths] == ["im0001.jpg", "im0002.jpg", "im0003.jpg"]
    assert [p.name for p in test.image_paths] == ["im0004.jpg", "im0005.jpg", "im0006.jpg"]
    np.testing.assert_array_equal(test.occluded, flags[3:] == 1)
    raw = load_lsp(root, one_based=False)
    np.testing.assert_allclose(raw.joints, xy, atol=1e-5)


def test_lsp_accepts_the_lspet_layout(tmp_path):
    xy, flags = lsp_arrays(4, np.random.default_rng(1))
    a = load_lsp(make_lsp(tmp_path / "a", xy, flags, layout="xyf"))
    b = load_lsp(make_lsp(tmp_path / "b", xy, flags, layout="jxf"))
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.occluded, b.occluded)


def test_lspet_missing_joints(tmp_path):
    rng = np.random.default_rng(2)
    xy, _ = lsp_arrays(5, rng)
    annotated = rng.random((5, 14)) > 0.25
    xy[~annotated] = rng.choice([0.0, -1.0], size=((~annotated).sum(), 2))  # coordinates <= 0
    root = make_lsp(tmp_path / "lsp", xy, annotated.astype(float), layout="jxf", digits=5)
    ann = load_lspet(root)
    np.testing.assert_array_equal(ann.visible, annotated)  # LSPET's flag 1 = annotated
    assert not ann.occluded.any()
    np.testing.assert_allclose(ann.joints[annotated], xy[annotated] - 1, atol=1e-5)
    assert np.all(ann.joints[~annotated] == 0)
    assert ann.image_paths[4].name == "im00005.jpg"


def test_single_person_file(tmp_path):
    xy, flags = lsp_arrays(1, np.random.default_rng(3))
    ann = load_lsp(make_lsp(tmp_path / "lsp", xy, flags))
    assert len(ann) == 1
    with pytest.raises(AnnotationError, match=r"joints\.mat: split 'train' is empty"):
        load_lsp(make_lsp(tmp_path / "again", xy, flags), "train")


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="joints.mat"):
        load_lsp(tmp_path)
    (tmp_path / "joints.mat").write_bytes(b"this is not a MATLAB file at all" * 8)
    with pytest.raises(AnnotationError, match=r"joints\.mat: not a readable MATLAB"):
        load_lsp(tmp_path, check_images=False)
    scipy.io.savemat(tmp_path / "other.mat", {"points": np.zeros((3, 14, 2))})
    with pytest.raises(AnnotationError, match=r"other\.mat: no variable 'joints'.*points"):
        load_lsp(tmp_path / "other.mat", check_images=False)
    scipy.io.savemat(tmp_path / "thirteen.mat", {"joints": np.zeros((3, 13, 2))})
    with pytest.raises(AnnotationError, match=r"thirteen\.mat: variable 'joints' has shape"):
        load_lspet(tmp_path / "thirteen.mat", check_images=False)
    scipy.io.savemat(tmp_path / "text.mat", {"joints": "abc"})
    with pytest.raises(AnnotationError, match=r"text\.mat: variable 'joints' is not a numeric"):
        load_lsp(tmp_path / "text.mat", check_images=False)
    xy, flags = lsp_arrays(2, np.random.default_rng(4))
    flags[0, 0] = 2
    with pytest.raises(AnnotationError, match=r"joints\.mat: 'joints' flags must be 0 or 1"):
        load_lsp(make_lsp(tmp_path / "lsp", xy, flags), check_images=False)
    with pytest.raises(ValueError, match="split must be one of"):
        load_lsp(make_lsp(tmp_path / "ok", xy, flags * 0), "val")


def test_images_mismatch(tmp_path):
    xy, flags = lsp_arrays(3, np.random.default_rng(5))
    root = make_lsp(tmp_path / "lsp", xy, flags, n_images=4)  # one image too many
    with pytest.raises(AnnotationError, match=r"joints\.mat: variable 'joints' has N=3"):
        load_lsp(root)
    (root / "images" / "im0002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing, first .*im0002\.jpg"):
        load_lsp(root)
    with pytest.raises(FileNotFoundError, match=r"image folder .*images not found"):
        load_lspet(make_lsp(tmp_path / "noimages", xy, flags, n_images=0), check_images=True)
    ann = load_lsp(root, check_images=False)  # paths kept; the dataset raises on load
    assert ann.image_paths[1].name == "im0002.jpg"
    write_jpeg(root / "images" / "im0002.jpg")
    assert len(load_lsp(root, images_dir=root / "images", check_images=False)) == 3


@pytest.mark.skipif(not (SHARED / "lsp" / "joints.mat").is_file(), reason="no ../shared/data/lsp")
def test_real_lsp_annotations():
    ann = load_lsp(SHARED / "lsp", check_images=False)
    assert ann.joints.shape == (2000, 14, 2) and ann.visible.all()
    assert 0.06 < ann.occluded.mean() < 0.085  # the README: about 7% are flagged occluded
    assert len(load_lsp(SHARED / "lsp", "train", check_images=False)) == 1000
    test = load_lsp(SHARED / "lsp", "test", check_images=False)
    assert test.image_paths[0].name == "im1001.jpg"
    # LSP people are ~150 px tall: the joints' vertical extent is of that order
    height = np.ptp(ann.joints[:, :, 1], axis=1)
    assert 80 < np.median(height) < 220


@pytest.mark.skipif(
    not (SHARED / "lspet" / "joints.mat").is_file(), reason="no ../shared/data/lspet"
)
def test_real_lspet_annotations():
    ann = load_lspet(SHARED / "lspet", check_images=False)
    assert ann.joints.shape == (10000, 14, 2)
    missing = 1 - ann.visible.mean()
    assert 0.10 < missing < 0.14  # the README: about 12% are not annotated
    assert np.all(ann.joints[~ann.visible] == 0)
    assert ann.image_paths[-1].name == "im10000.jpg"
