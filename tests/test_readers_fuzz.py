"""Property tests: every reader of a user's file, given arbitrary and mutated content, either
returns valid data or raises the project's own error naming the file — never another exception
(issue 11). The readers: COCO keypoints (labelled sets, returned annotations), pool lists (CSV,
JSON), regression CSV, LSP/LSPET ``joints.mat``, MPII's ``.mat`` release and JSON conversion,
YAML experiment configs, and the results.json that ``eglpp report`` reads.

Each example starts from a valid file and changes one to three places in it (a value replaced by
any JSON / MATLAB value, a key deleted, a list entry repeated), or is arbitrary bytes.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eglpp.experiment.config import config_from_dict, config_to_dict, preset
from eglpp.io import StateFileError
from eglpp.pose.datasets import PoseAnnotations, load_lsp, load_lspet, load_mpii_json
from eglpp.pose.datasets.mpii import load_mpii_mat
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.coco import coco_category, coco_to_annotations, read_coco
from eglpp.practitioner.pool import Pool, read_pool
from eglpp.regression.datasets import load_csv
from eglpp.report.gather import gather

N = int(os.environ.get("EGLPP_FUZZ_EXAMPLES", 40))  # more for a longer search, e.g. 1000
EXAMPLES = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OWN_ERRORS = (
    ValueError,
    FileNotFoundError,
    StateFileError,
)  # AnnotationError, PathError: ValueError

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node, prefix=()):
    """Every place in a JSON-like tree, as a tuple of keys / indices."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def mutated(data, doc):
    """``doc`` with one to three places replaced, deleted or repeated."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        places = list(_paths(doc))
        path = data.draw(st.sampled_from(places), label="place")
        if not path:
            doc = data.draw(JSON, label="document")
            continue
        *parent_path, key = path
        parent = doc
        for k in parent_path:
            parent = parent[k]
        how = data.draw(st.sampled_from(["replace", "delete", "repeat"]), label="how")
        if how == "delete":
            del parent[key]
        elif how == "repeat" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[key] = data.draw(JSON, label="value")
    return doc


def reads_or_names_the_file(read: Callable, path: Path):
    """``read(path)``, or None when it raised one of the project's errors naming the file."""
    try:
        return read(path)
    except OWN_ERRORS as exc:
        assert path.name in str(exc), f"the error does not name {path.name}: {exc}"
        return None


def _write_json(folder: Path, name: str, doc) -> Path:
    path = folder / name
    path.write_text(json.dumps(doc))  # NaN / Infinity as Python writes them
    return path


def _coco() -> dict:
    kp = [v for j in range(14) for v in (4.0 + j, 2.0 + j, 1 + j % 2)]
    return {"images": [{"id": i, "file_name": f"im{i}.jpg", "width": 40, "height": 40}
                       for i in (1, 2)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "keypoints": list(kp),
                             "bbox": [1.0, 2.0, 20.0, 30.0]} for i in (1, 2)],
            "categories": [coco_category(LSP)]}  # fmt: skip


@EXAMPLES
@given(data=st.data())
def test_coco_keypoints(data):
    doc = mutated(data, _coco())
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_json(Path(tmp), "labels.json", doc)
        ann = reads_or_names_the_file(lambda p: coco_to_annotations(read_coco(p)), path)
        assert ann is None or isinstance(ann, PoseAnnotations) and len(ann) >= 0


def _pool_json() -> list:
    return [{"image": "a.jpg", "bbox": [1, 2, 10, 20]}, {"image": "sub/b.png"}]


@EXAMPLES
@given(data=st.data(), kind=st.sampled_from(["list", "coco", "csv"]))
def test_pool_lists(data, kind):
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "csv":
            rows = data.draw(st.lists(st.lists(st.text(max_size=6), max_size=5), max_size=4))
            header = data.draw(st.sampled_from(["image,x,y,width,height", "image", "img,x"]))
            path = Path(tmp) / "pool.csv"
            path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n")
        else:
            path = _write_json(Path(tmp), "pool.json", mutated(data, _pool_json() if kind ==
                               "list" else _coco()))  # fmt: skip
        pool = reads_or_names_the_file(read_pool, path)
        if pool is not None:
            assert isinstance(pool, Pool) and len(pool) == len(pool.boxes) > 0
            assert np.all(pool.boxes[np.isfinite(pool.boxes).all(1)][:, 2:] > 0)


CELLS = st.sampled_from(["1", "2.5", "-3", "", "x", "nan", "inf", "1e400"])


@EXAMPLES
@given(cells=st.lists(st.lists(CELLS, min_size=3, max_size=3), max_size=6),
       header=st.sampled_from(["a,b,y", "a,a,y", "a,b", "y"]),
       garbage=st.binary(max_size=20))  # fmt: skip
def test_regression_csv(cells, header, garbage):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        path.write_bytes((header + "\n" + "\n".join(",".join(r) for r in cells)).encode()
                         + garbage)  # fmt: skip
        table = reads_or_names_the_file(lambda p: load_csv(p, "y"), path)
        if table is not None:
            assert np.isfinite(table.x).all() and np.isfinite(table.y).all()
            assert table.x.shape == (len(table.y), len(table.feature_names))


MAT_VALUES = st.one_of(
    st.builds(lambda shape, fill: np.full(shape, fill),
              st.tuples(st.integers(0, 4), st.sampled_from([2, 3, 14]), st.integers(0, 3)),
              st.sampled_from([0.0, 1.0, 2.0, -1.0, np.nan, np.inf, 1e30])),
    st.builds(lambda n, seed: np.random.default_rng(seed).uniform(-5, 50, (3, 14, n)),
              st.integers(1, 3), st.integers(0, 99)),
    st.text(max_size=5),
    st.integers(-3, 3),
)  # fmt: skip


@EXAMPLES
@given(joints=MAT_VALUES, name=st.sampled_from(["joints", "joints", "poses"]),
       raw=st.none() | st.binary(max_size=64), cut=st.integers(0, 400),
       reader=st.sampled_from([load_lsp, load_lspet]))  # fmt: skip
def test_lsp_and_lspet_joints_mat(joints, name, raw, cut, reader):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "joints.mat"
        scipy.io.savemat(path, {name: joints})
        if raw is not None:  # arbitrary bytes, or a valid file cut short
            path.write_bytes(raw if len(raw) % 2 else path.read_bytes()[:cut])
        ann = reads_or_names_the_file(lambda p: reader(p, check_images=False), path)
        assert ann is None or np.isfinite(ann.joints).all() and len(ann) >= 1


def _struct(records: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    array = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for k, record in enumerate(records):
        for f in fields:
            array[f][0, k] = record.get(f, np.zeros((0, 0)))
    return array


def _release(person: dict, point: dict) -> dict:
    """An MPII RELEASE with two training images of one person each, fields as given."""
    points = _struct([{"id": j, "x": 10.0 + j, "y": 20.0, "is_visible": 1, **point}
                      for j in range(16)], ("id", "x", "y", "is_visible"))  # fmt: skip
    rect = {
        "x1": 1.0,
        "y1": 2.0,
        "x2": 9.0,
        "y2": 12.0,
        "scale": 1.5,
        "objpos": {"x": 30.0, "y": 40.0},
        "annopoints": {"point": points},
        **person,
    }
    rects = _struct([rect], tuple(rect))
    annolist = _struct([{"image": {"name": f"{i}.jpg"}, "annorect": rects} for i in (1, 2)],
                       ("image", "annorect"))  # fmt: skip
    return {"annolist": annolist, "img_train": np.array([[1.0, 1.0]]),
            "single_person": np.array([[1.0], [1.0]], dtype=object)}  # fmt: skip


MAT_FIELD = st.sampled_from(["x", "y", "id", "is_visible"]) | st.sampled_from(
    ["scale", "x1", "objpos", "annopoints"]
)
MAT_ANY = st.one_of(st.text(max_size=3), st.floats(allow_nan=True), st.integers(-20, 20),
                    st.just(np.zeros((0, 0))), st.just(np.ones((2, 2))))  # fmt: skip


@EXAMPLES
@given(field=MAT_FIELD, value=MAT_ANY, drop=st.sampled_from([None, "annolist", "img_train"]),
       img_train=st.none() | st.just(np.array([[1.0]])))  # fmt: skip
def test_mpii_official_mat(field, value, drop, img_train):
    in_point = field in ("x", "y", "id", "is_visible")
    release = _release({} if in_point else {field: value}, {field: value} if in_point else {})
    if drop is not None:
        del release[drop]
    if img_train is not None:
        release["img_train"] = img_train
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mpii_human_pose_v1_u12_1.mat"
        scipy.io.savemat(path, {"RELEASE": release})
        ann = reads_or_names_the_file(lambda p: load_mpii_mat(p, check_images=False), path)
        assert ann is None or np.isfinite(ann.joints).all()


def _mpii_json() -> list:
    return [{"image": f"{i}.jpg", "joints": [[5.0 + j, 6.0] for j in range(16)],
             "joints_vis": [1] * 16, "center": [10, 12], "scale": 1.2,
             "head_box": [1, 1, 9, 9], "isValidation": i % 2} for i in range(3)]  # fmt: skip


@EXAMPLES
@given(data=st.data(), split=st.sampled_from(["all", "train", "valid"]))
def test_mpii_json(data, split):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_json(Path(tmp), "trainval.json", mutated(data, _mpii_json()))
        ann = reads_or_names_the_file(lambda p: load_mpii_json(p, split, check_images=False), path)
        assert ann is None or np.isfinite(ann.joints).all() and len(ann) >= 1


@EXAMPLES
@given(data=st.data())
def test_yaml_experiment_configs(data):
    settings_ = {"runs": 2, "model": {"channels": 8}, "strategy": {"egl++": {"k": 4}},
                 "scoring": {"n_exact": 3}, "dataset": "synthetic"}  # fmt: skip
    doc = mutated(data, settings_)
    try:
        text = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        return  # eglpp run refuses a YAML file that is not a mapping (tests/cli)
    try:
        cfg = config_from_dict(loaded, base=preset("tiny"), where="exp.yaml")
    except ValueError as exc:
        assert "exp.yaml" in str(exc), exc
        return
    assert config_from_dict(config_to_dict(cfg), base=preset("tiny")) == cfg


def _results() -> dict:
    return {"task": "diabetes", "metric": "RMSE", "higher_is_better": False,
            "n_labelled": [10, 20, 30],
            "scores": {"egl": [[3.0, 2.5, 2.0], [3.1, 2.4, 2.2]],
                       "random": [[3.0, 2.9, 2.7], [3.1, 2.8, 2.6]]},
            "config": {"reference": "egl"}}  # fmt: skip


@settings(max_examples=max(N // 2, 20), deadline=None)
@given(data=st.data())
def test_results_json_for_the_report(data):
    doc = mutated(data, _results())
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_json(Path(tmp), "results.json", doc)
        report = reads_or_names_the_file(lambda p: gather(p.parent), path)
        if report is not None:  # parts: the files with a finished run (none: a note says so)
            assert report.parts or report.notes
            assert all(math.isfinite(v) or math.isnan(v) for part in report.parts
                                        for v in part.summary.auc_mean.values())  # fmt: skip
