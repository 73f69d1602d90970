"""Rendered people written as JPEGs, COCO files from the renderer's ground truth, a tiny model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.skeleton import LSP
from eglpp.pose.train import TrainConfig, fit
from eglpp.practitioner.coco import coco_category, coco_to_annotations, crop_to_bbox, read_coco

SIZE = 32
TINY = HourglassConfig(n_stacks=1, channels=8, depth=2)


def render(folder: Path, n: int, seed: int, prefix: str) -> tuple[list[str], SyntheticPoseDataset]:
    """Write n rendered people as JPEGs; returns their file names and the rendering."""
    data = SyntheticPoseDataset(n, RenderConfig(size=SIZE, domain="lsp"), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"{prefix}_{i:03d}.jpg"
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(folder / name, quality=95)
        names.append(name)
    return names, data


def truth_keypoints(data: SyntheticPoseDataset, i: int, order=None) -> list[float]:
    """COCO keypoints (x, y, v) of rendered person i from the renderer's ground truth."""
    v = np.where(data.visible[i], np.where(data.occluded[i], 1, 2), 0)
    kp = np.concatenate([np.where(v[:, None] > 0, data.joints[i], 0.0), v[:, None]], 1)
    if order is not None:
        kp = kp[order]
    return [round(float(x), 3) for x in kp.ravel()]


def whole_image_bbox() -> list[float]:
    """The box whose crop is the whole SIZE × SIZE image."""
    return crop_to_bbox(((SIZE - 1) / 2, (SIZE - 1) / 2), SIZE)


def write_coco(path: Path, file_names, data, indices, id_base: int = 1) -> Path:
    images, anns = [], []
    for k, i in enumerate(indices):
        images.append({"id": id_base + k, "file_name": file_names[k], "width": SIZE,
                       "height": SIZE})  # fmt: skip
        kp = truth_keypoints(data, i)
        anns.append({"id": id_base + k, "image_id": id_base + k, "category_id": 1,
                     "keypoints": kp, "bbox": whole_image_bbox()})  # fmt: skip
    doc = {"images": images, "annotations": anns, "categories": [coco_category(LSP)]}
    path.write_text(json.dumps(doc))
    return path


def train_tiny(coco_path: Path, out: Path, seed: int = 0, epochs: int = 2, aux=None) -> Path:
    """A tiny hourglass trained on a COCO file (the retraining step of the workflow)."""
    ann = coco_to_annotations(read_coco(coco_path))
    train_set = ImagePoseDataset(ann, input_size=SIZE, seed=seed, train=True)
    model = StackedHourglass(TINY).reset_parameters(torch.Generator().manual_seed(seed))
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, optimizer="adam")
    fit(model, train_set, config, seed=seed, progress=False, aux=aux)
    return save_checkpoint(out, model, aux=aux)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Labelled set (16 rendered people, COCO), pool folder (40 JPEGs), a trained tiny model."""
    root = tmp_path_factory.mktemp("practitioner")
    lab_names, lab_data = render(root / "labelled_images", 16, seed=11, prefix="lab")
    pool_names, pool_data = render(root / "pool", 40, seed=12, prefix="pool")
    labelled = write_coco(
        root / "labelled.json", [f"labelled_images/{n}" for n in lab_names], lab_data, range(16)
    )
    checkpoint = train_tiny(labelled, root / "model.pt")
    return {
        "root": root,
        "labelled": labelled,
        "pool": root / "pool",
        "pool_names": pool_names,
        "pool_data": pool_data,
        "checkpoint": checkpoint,
    }


def select_config(
    budget,
    strategy="egl++",
    hyperparameters=(),
    estimator="exact",
    n_exact=None,
    n_probes=None,
    check_approx=None,
    gradnorm="all",
    **rest,
):
    """A SelectConfig from the flags' flat view (the strategy by name, ``--param`` pairs, the
    estimator and its counts): the settings objects built as ``eglpp select`` builds them."""
    from eglpp.practitioner.select import SelectConfig
    from eglpp.practitioner.settings import build_scoring, build_strategy

    counts = {"n_exact": n_exact, "n_probes": n_probes, "approx_check": check_approx}
    counts = {k: v for k, v in counts.items() if v is not None}
    return SelectConfig(
        budget=budget,
        strategy=build_strategy(strategy, tuple(hyperparameters), estimator),
        scoring=build_scoring(gradnorm=gradnorm, **counts),
        **rest,
    )


def flat(config):
    """The flat view of a SelectConfig that :func:`select_config` takes."""
    import dataclasses

    strategy, scoring = config.strategy, config.scoring
    defaults = type(strategy)()
    rest = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    del rest["strategy"], rest["scoring"]
    hyper = tuple(
        (f.name, getattr(strategy, f.name))
        for f in dataclasses.fields(strategy)
        if f.name != "estimator" and getattr(strategy, f.name) != getattr(defaults, f.name)
    )
    return {**rest, "strategy": strategy.name, "hyperparameters": hyper,
            "estimator": getattr(strategy, "estimator", "exact"), "n_exact": scoring.n_exact,
            "n_probes": scoring.n_probes, "check_approx": scoring.approx_check,
            "gradnorm": scoring.gradnorm}  # fmt: skip


def pytest_collection_modifyitems(session, config, items):
    """The real Label Studio server's tests last: in CI the server starts while the rest run."""
    last = [item for item in items if "test_label_studio_server" in item.nodeid]
    items[:] = [item for item in items if item not in last] + last
