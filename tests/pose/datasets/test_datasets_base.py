"""PoseAnnotations validation and the ImagePoseDataset item contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pose_dataset_fixtures import lsp_arrays, make_lsp
from torch.utils.data import DataLoader

from eglpp.pose.datasets import (
    AnnotationError,
    CropAugment,
    ImageError,
    PoseAnnotations,
    check_image_headers,
    load_lsp,
)
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.skeleton import LSP, MPII


def small_annotations(n: int = 4) -> PoseAnnotations:
    rng = np.random.default_rng(0)
    return PoseAnnotations(
        skeleton=LSP,
        joints=rng.uniform(0, 10, (n, 14, 2)),
        visible=np.ones((n, 14), bool),
        source="memory.mat",
    )


def test_annotations_validation_names_source_and_field():
    ann = small_annotations()
    assert ann.joints.dtype == np.float32 and ann.occluded.shape == (4, 14)
    assert not ann.occluded.any()
    with pytest.raises(AnnotationError, match=r"memory\.mat: field 'joints' has shape .*16"):
        PoseAnnotations(MPII, ann.joints, ann.visible, source="memory.mat")
    with pytest.raises(AnnotationError, match=r"memory\.mat: field 'visible'"):
        PoseAnnotations(LSP, ann.joints, ann.visible[:3], source="memory.mat")
    with pytest.raises(AnnotationError, match=r"memory\.mat: field 'visible' is required"):
        PoseAnnotations(LSP, ann.joints, None, source="memory.mat")
    with pytest.raises(AnnotationError, match=r"x\.json: field 'occluded' marks joints"):
        PoseAnnotations(LSP, ann.joints, ~ann.visible, occluded=ann.visible, source="x.json")
    with pytest.raises(AnnotationError, match=r"x\.json: field 'image_paths' has 2 entries"):
        PoseAnnotations(LSP, ann.joints, ann.visible, image_paths=["a", "b"], source="x.json")
    with pytest.raises(AnnotationError, match=r"field 'scales' must be > 0"):
        PoseAnnotations(LSP, ann.joints, ann.visible, scales=[1.0, 0.0, 1.0, 1.0])
    with pytest.raises(AnnotationError, match=r"field 'centers'"):
        PoseAnnotations(LSP, ann.joints, ann.visible, centers=np.zeros((4, 3)))
    bad = ann.joints.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(AnnotationError, match=r"field 'joints' holds non-finite"):
        PoseAnnotations(LSP, bad, ann.visible)


def test_subset():
    ann = small_annotations(5)
    sub = ann.subset([3, 1])
    np.testing.assert_array_equal(sub.joints, ann.joints[[3, 1]])
    mask = np.array([True, False, False, True, False])
    np.testing.assert_array_equal(ann.subset(mask).joints, ann.joints[[0, 3]])
    with pytest.raises(IndexError):
        ann.subset([5])


@pytest.fixture
def lsp_root(tmp_path):
    xy, flags = lsp_arrays(5, np.random.default_rng(3))
    return make_lsp(tmp_path / "lsp", xy, flags)


def test_items_follow_the_contract(lsp_root):
    ann = load_lsp(lsp_root)
    ds = ImagePoseDataset(ann, CropAugment(), input_size=32, seed=1, train=False)
    assert ds.skeleton is LSP and ds.input_size == 32 and len(ds) == 5
    item = ds[2]
    assert set(item) == {"image", "joints", "visible", "index", "head_size", "area"}
    assert torch.isnan(item["area"])  # LSP gives no areas (COCO's do: tests/pose/test_oks_evaluate)
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["joints"].shape == (14, 2) and item["joints"].dtype == torch.float32
    assert item["visible"].dtype == torch.bool and item["index"].dtype == torch.int64
    assert int(item["index"]) == 2 and torch.isnan(item["head_size"])
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 3, 32, 32) and batch["index"].tolist() == [0, 1, 2]
    with pytest.raises(IndexError):
        ds[5]


def test_augmentation_is_deterministic_per_seed_epoch_index(lsp_root):
    ann = load_lsp(lsp_root)
    a = ImagePoseDataset(ann, input_size=16, seed=4, train=True)
    b = ImagePoseDataset(ann, input_size=16, seed=4, train=True)
    draws = [a.augmentation(i) for i in range(5)]
    assert draws == [b.augmentation(i) for i in range(5)]
    assert len(set(draws)) == 5
    torch.testing.assert_close(a[3], b[3], equal_nan=True)
    a.set_epoch(1)
    assert [a.augmentation(i) for i in range(5)] != draws
    assert ImagePoseDataset(ann, input_size=16, seed=5, train=True).augmentation(0) != draws[0]
    evaluation = ImagePoseDataset(ann, input_size=16, seed=4, train=False)
    evaluation.set_epoch(3)
    assert evaluation.augmentation(0) == evaluation.augmentation(1)  # the identity
    with pytest.raises(ValueError, match="epoch"):
        a.set_epoch(-1)


def test_image_errors_name_the_file(lsp_root):
    ann = load_lsp(lsp_root)
    (lsp_root / "images" / "im0002.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (lsp_root / "images" / "im0004.jpg").unlink()
    ds = ImagePoseDataset(ann, input_size=16)
    with pytest.raises(OSError, match=r"cannot decode image .*im0002\.jpg"):
        ds[1]
    with pytest.raises(FileNotFoundError, match=r"im0004\.jpg"):
        ds[3]
    with pytest.raises(ValueError, match=r"memory\.mat carry no image paths"):
        ImagePoseDataset(small_annotations(), input_size=16)
    with pytest.raises(ValueError, match="seed"):
        ImagePoseDataset(ann, input_size=16, seed=-1)


def test_image_headers_are_checked_before_any_decoding(lsp_root):
    images = lsp_root / "images"
    paths = sorted(images.glob("im*.jpg"))
    check_image_headers(paths + paths[:1], "joints.mat")  # every header reads
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(images / "im0005.jpg")
    whole = (images / "im0005.jpg").read_bytes()
    (images / "im0005.jpg").write_bytes(whole[: len(whole) // 2])  # pixels cut, header intact
    check_image_headers(paths, "joints.mat")  # a header check cannot see this one ...
    with pytest.raises(ImageError, match=r"cannot decode image .*im0005\.jpg"):
        ImagePoseDataset(load_lsp(lsp_root), input_size=16)[4]  # ... decoding does
    (images / "im0003.jpg").write_bytes(b"")
    (images / "im0004.jpg").write_text("<html>not found</html>")
    (images / "im0002.jpg").unlink()
    (images / "im0002.jpg").mkdir()
    with pytest.raises(ImageError, match=r"^test: 3 image file\(s\) cannot be read, first "
                       r".*im0002\.jpg \(a folder, not a file\)$"):  # fmt: skip
        check_image_headers(paths, "test")
    with pytest.raises(ImageError, match=r"im0003\.jpg \(empty\)"):
        check_image_headers(paths[2:], "test")
    with pytest.raises(ImageError, match=r"im0004\.jpg \(not an image PIL can read\)"):
        check_image_headers(paths[3:], "test")
    with pytest.raises(ImageError, match=r"im0009\.jpg \(file not found\)"):
        check_image_headers([images / "im0009.jpg"], "test")
    assert issubclass(ImageError, OSError)
