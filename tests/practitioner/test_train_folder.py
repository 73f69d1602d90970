"""Issue 21 items 2-3: `eglpp train --out` never replaces another model unasked, and a COCO
labelled set is tested on held-out images that stay the same across rounds; `eglpp evaluate`
scores any model on them, every PCK with its standard error."""

import json
import re

import numpy as np
import pytest
from conftest import SIZE, render, write_coco
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.practitioner.heldout import choose, record_path

TINY = ["--stacks", "1", "--channels", "8", "--depth", "2", "--input-size", str(SIZE),
        "--epochs", "1", "--batch-size", "8", "--val-fraction", "0", "--no-progress"]  # fmt: skip


def _train(data, out, *extra):
    return CliRunner().invoke(app, ["train", str(data), *TINY, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def rounds(world, tmp_path_factory):
    """labelled.json (16 images) and labelled2.json: the same 16 plus 10 new ones, as a round
    of eglpp import leaves them, in a folder of their own."""
    root = tmp_path_factory.mktemp("rounds")
    names, data = render(root / "new_images", 10, seed=21, prefix="new")
    lab = json.loads(world["labelled"].read_text())
    folder = world["labelled"].parent
    for image in lab["images"]:
        image["file_name"] = str(folder / image["file_name"])
    one = root / "labelled.json"
    one.write_text(json.dumps(lab))
    extra = json.loads(write_coco(root / "x.json", [f"new_images/{n}" for n in names], data,
                                  range(10), id_base=100).read_text())  # fmt: skip
    two = {**lab, "images": lab["images"] + extra["images"],
           "annotations": lab["annotations"] + extra["annotations"]}  # fmt: skip
    (root / "labelled2.json").write_text(json.dumps(two))
    return root


def _tested(out):
    return json.loads((out / "train.json").read_text())


def test_held_out_images_stay_the_same_when_the_labelled_set_grows(rounds, tmp_path):
    from eglpp.practitioner.heldout import carry_record

    one, two = rounds / "labelled.json", rounds / "labelled2.json"
    first = _train(one, tmp_path / "r1")
    assert first.exit_code == 0, first.output
    assert "chosen now and recorded in" in first.output and record_path(one).is_file()
    carry_record(one, two)  # what eglpp import does after merging
    second = _train(two, tmp_path / "r2")
    assert second.exit_code == 0, second.output
    assert "the same as in earlier rounds" in second.output
    t1, t2 = _tested(tmp_path / "r1"), _tested(tmp_path / "r2")
    assert t1["n_test"] == t2["n_test"] == 2
    assert t1["test_images"] == t2["test_images"]
    # the record chose by file-name hash: what a fresh choice on round 2's set would differ from
    all_two = [rounds / i["file_name"] for i in json.loads(two.read_text())["images"]]
    assert sorted(map(str, choose(all_two))) != sorted(t1["test_images"]), "the test can fail"
    # the same numbers from eglpp evaluate on the recorded images, with a standard error
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r1" / "model.pt"), str(two),
                                   "--held-out"])  # fmt: skip
    assert res.exit_code == 0, res.output
    value = re.search(r"PCK@0.2 ([\d.]+) ± ([\d.]+) % \(± standard error, (\d+) joints\)",
                      res.output)  # fmt: skip
    assert value and "on 2 images (2 people)" in res.output, res.output
    assert float(value.group(1)) == pytest.approx(100 * t1["test"]["mean"], abs=0.006)
    assert float(value.group(2)) == pytest.approx(100 * t1["test"]["se"], abs=0.006)
    assert " ± " in first.output.split("on 2 test images")[0].splitlines()[-1]


def test_a_record_whose_images_left_the_set_is_named(rounds, tmp_path):
    one = rounds / "labelled.json"
    record = tmp_path / "other.heldout.json"
    record.write_text(json.dumps({"held_out": [str(tmp_path / "gone.jpg")]}))
    res = _train(one, tmp_path / "r", "--held-out", str(record))
    assert res.exit_code != 0
    assert f"{record}: 1 of its 1 held-out images are not in {one}" in str(res.exception)


def test_a_second_train_into_the_folder_of_another_model_is_refused(rounds, tmp_path):
    one, two = rounds / "labelled.json", rounds / "labelled2.json"
    out = tmp_path / "runs" / "train"
    assert _train(one, out).exit_code == 0
    weights = (out / "model.pt").read_bytes()
    res = _train(two, out)
    assert res.exit_code != 0
    message = str(res.exception)
    assert message.startswith(f"--out {out}: holds a model trained with other options (dataset ")
    assert "(train.json); give another --out to keep it, or add --overwrite" in message
    assert (out / "model.pt").read_bytes() == weights, "the model is untouched"
    assert _train(one, out, "--threads", "1").exit_code == 0, "the same command trains again"
    assert _train(two, out, "--overwrite").exit_code == 0
    assert _tested(out)["dataset"] == str(two)


def test_train_refuses_a_model_without_record_and_other_outputs(rounds, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "model.pt").write_bytes(b"weights")
    res = _train(rounds / "labelled.json", lone)
    assert "holds a model.pt that no train.json describes" in str(res.exception)
    sel = tmp_path / "sel1"
    sel.mkdir()
    (sel / "select_config.json").write_text("{}")
    res = _train(rounds / "labelled.json", sel)
    assert "holds a selection (eglpp select) (select_config.json)" in str(res.exception)
    assert (lone / "model.pt").read_bytes() == b"weights"


def test_run_without_out_has_a_folder_per_preset_and_refuses_other_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "train.json").write_text("{}")
    res = CliRunner().invoke(app, ["run", "--preset", "tiny"])
    assert res.exit_code != 0
    assert str(res.exception) == (
        "--out runs/tiny: holds a trained model (eglpp train) (train.json); give another --out "
        "to keep it (or delete it)"
    )


def test_pooled_standard_error_against_hand_worked_and_scipy():
    from scipy import stats as sps

    from eglpp.significance import pooled_se

    assert pooled_se([1, 3], [2, 4]) == pytest.approx(1 / 9)  # p 2/3, residuals ∓1/3
    rng = np.random.default_rng(0)
    hits = rng.integers(0, 15, size=30)
    assert pooled_se(hits, np.full(30, 14)) == pytest.approx(sps.sem(hits / 14))
    assert np.isnan(pooled_se([3], [14])) and np.isnan(pooled_se([3, 0], [14, 0]))
