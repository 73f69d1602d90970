"""``eglpp select --model PKG.MODULE:FACTORY`` end to end with networks eglpp did not design.

The SimpleBaseline (``tests/foreign/foreign_networks.py``) is trained by the test's own loop
(the user's: eglpp never trains a foreign model), selects from the rendered pool, the
simulated annotator answers, ``eglpp import`` merges, the user's loop retrains and saves new
weights, and ``eglpp select`` runs again with them. Bad ``--model`` input ends in one line
naming the flag.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SIZE
from PIL import Image
from test_workflow import annotate
from typer.testing import CliRunner

from eglpp.cli import app, main
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.heatmaps import decode_heatmaps, heatmap_loss_per_example, target_heatmaps
from eglpp.practitioner.coco import coco_to_annotations, read_coco

FOREIGN = Path(__file__).parents[1] / "foreign"
sys.path.insert(0, str(FOREIGN))
from foreign_networks import coordinate_net, simple_baseline  # noqa: E402

EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]
SB = ["--model", "foreign_networks:simple_baseline", "--embedding", "layer4"]


def user_training(coco: Path, weights: Path, epochs: int = 2, seed: int = 0) -> Path:
    """The user's own loop: heatmap MSE on the labelled COCO set, weights saved as a state dict."""
    ann = coco_to_annotations(read_coco(coco))
    data = ImagePoseDataset(ann, input_size=SIZE, seed=seed, train=True)
    model = simple_baseline(seed=seed).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    for _ in range(epochs):
        for b in loader:
            target = target_heatmaps(b["joints"], b["visible"], SIZE, 1.0, 4)
            pred = model(b["image"])[:, None]
            loss = heatmap_loss_per_example(pred, target, b["visible"]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(model.state_dict(), weights)
    return weights


def _select(world, labelled, out, *flags, budget=6):
    args = ["select", "--labelled", str(labelled), "--pool", str(world["pool"]),
            "--budget", str(budget), "--out", str(out), "--input-size", str(SIZE),
            "--chunk-size", "16", "--no-progress", *flags]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out / "selection.csv") as f:
        return list(csv.DictReader(f))


def test_simple_baseline_select_import_retrain_select(world, tmp_path, monkeypatch):
    monkeypatch.chdir(FOREIGN)  # PKG.MODULE is imported from the current folder
    w1 = user_training(world["labelled"], tmp_path / "w1.pt")
    first = _select(world, world["labelled"], tmp_path / "sel1", *SB, "--weights", str(w1), *EGL)
    assert len(first) == 6 and [float(r["score"]) for r in first] == sorted(
        (float(r["score"]) for r in first), reverse=True
    )
    sel = json.loads((tmp_path / "sel1" / "selection_coco.json").read_text())
    assert all(a["num_keypoints"] == 14 for a in sel["annotations"])
    # the pre-annotations are the argmax decode of the model's own heatmaps (the pool images
    # are SIZE px and have no boxes: the crop is the image)
    model = simple_baseline()
    model.load_state_dict(torch.load(w1, weights_only=True))
    x = torch.from_numpy(np.array(Image.open(world["pool"] / first[0]["image"]))).permute(2, 0, 1)
    with torch.no_grad():
        coords, _ = decode_heatmaps(model(x[None].float() / 255))
    ours = np.asarray(sel["annotations"][0]["keypoints"]).reshape(14, 3)[:, :2]
    np.testing.assert_allclose(ours, (coords[0].numpy() + 0.5) * 4 - 0.5, atol=0.6)

    annotate(world, tmp_path / "sel1" / "selection_coco.json", tmp_path / "returned.json")
    merged = tmp_path / "labelled2.json"
    result = CliRunner().invoke(app, [
        "import", "--labelled", str(world["labelled"]), "--annotations",
        str(tmp_path / "returned.json"), "--selection", str(tmp_path / "sel1"),
        "--out", str(merged),
    ])  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    w2 = user_training(merged, tmp_path / "w2.pt", seed=1)
    second = _select(world, merged, tmp_path / "sel2", *SB, "--weights", str(w2), *EGL)
    assert len(second) == 6 and not {r["image"] for r in first} & {r["image"] for r in second}
    summary = json.loads((tmp_path / "sel2" / "summary.json").read_text())
    assert summary["n_candidates"] == 34 and summary["n_labelled"] == 22
    assert summary["chunks_reused"] == 0


def test_simple_baseline_approx_estimator_checked_against_exact(world, tmp_path, monkeypatch):
    monkeypatch.chdir(FOREIGN)
    flags = [*SB, *EGL, "--estimator", "approx", "--exact-neighbours", "2", "--check-approx", "8"]
    _select(world, world["labelled"], tmp_path, *flags, budget=3)
    check = json.loads((tmp_path / "summary.json").read_text())["approx_check"]
    assert check["n"] == 8 and -1 <= check["spearman"] <= 1


@pytest.mark.parametrize("strategy", ["coreset", "multipeak", "random"])
def test_simple_baseline_other_strategies(world, tmp_path, monkeypatch, strategy):
    monkeypatch.chdir(FOREIGN)
    rows = _select(world, world["labelled"], tmp_path, *SB, "--strategy", strategy, budget=4)
    assert len({r["image"] for r in rows}) == 4


def test_coordinate_model_pre_annotations_are_its_coordinates(world, tmp_path, monkeypatch):
    monkeypatch.chdir(FOREIGN)
    torch.save(coordinate_net().state_dict(), tmp_path / "c.pt")
    flags = ["--model", "foreign_networks:coordinate_net", "--weights", str(tmp_path / "c.pt"),
             "--prediction", "coords", "--embedding", "features", *EGL]  # fmt: skip
    rows = _select(world, world["labelled"], tmp_path / "sel", *flags, budget=3)
    sel = json.loads((tmp_path / "sel" / "selection_coco.json").read_text())
    x = torch.from_numpy(np.array(Image.open(world["pool"] / rows[0]["image"]))).permute(2, 0, 1)
    with torch.no_grad():
        coords = coordinate_net()(x[None].float() / 255)["coords"][0].numpy()
    ours = np.asarray(sel["annotations"][0]["keypoints"]).reshape(14, 3)[:, :2]
    np.testing.assert_allclose(ours, coords, atol=0.05)


def _bad(tmp: Path) -> dict:
    torch.save({**simple_baseline().state_dict(), "extra.weight": torch.zeros(1)}, tmp / "x.pt")
    torch.save(simple_baseline(width=4).state_dict(), tmp / "narrow.pt")
    return {"extra": tmp / "x.pt", "narrow": tmp / "narrow.pt"}


CASES = {
    "not found": (["--model", "no_such_package.nets:build"], r"--model .*cannot import"),
    "no factory": (["--model", "foreign_networks:nothing"], r"--model .*no function 'nothing'"),
    "bad spec": (["--model", "foreign_networks"], r"--model .*PKG\.MODULE:FACTORY"),
    "not a module": (["--model", "foreign_networks:not_a_module"], r"--model .*dict, not a torch"),
    "output key": (["--model", "foreign_networks:coordinate_net", "--prediction", "joints"],
                   r"--prediction 'joints'.*no such key; its keys: 'coords', 'features'"),
    "embedding": (["--model", "foreign_networks:simple_baseline", "--embedding", "layer9"],
                  r"--embedding 'layer9'.*its modules: stem, stem\.0.*layer4"),
    "weights keys": (["--model", "foreign_networks:simple_baseline", "--weights", "{extra}"],
                     r"--weights .*does not fit.*unexpected extra\.weight"),
    "weights shapes": (["--model", "foreign_networks:simple_baseline", "--weights", "{narrow}"],
                       r"--weights .*other shapes stem\.0\.weight \(4, 3, 7, 7\) in the file"),
    "both": (["--model", "foreign_networks:simple_baseline", "--checkpoint", "{extra}"],
             r"--checkpoint or --model: give exactly one"),
    "flag without model": (["--checkpoint", "{extra}", "--embedding", "layer4"],
                           r"--embedding: applies to --model only"),
    "factory needs arguments": (["--model", "foreign_networks:BasicBlock"],
                                r"^error: --model foreign_networks:BasicBlock: the factory needs "
                                r"arguments \(cin, cout, stride\) but eglpp calls it with none"),
    "dict output": (["--model", "foreign_networks:coordinate_net"],
                    r"^error: --model foreign_networks:coordinate_net: its output is a dict with "
                    r"keys 'coords', 'features', not the prediction tensor: name the prediction "
                    r"with --prediction \(a dict key, a NamedTuple field or a tuple index\)$"),
    "tuple output": (["--model", "output_kinds:tuple_output"],
                     r"^error: --model output_kinds:tuple_output: its output is a tuple of 2, not "
                     r"the prediction tensor: name the prediction with --prediction"),
    "prediction no tensor": (["--model", "output_kinds:tuple_output", "--prediction", "1"],
                             r"^error: --prediction 1: that output of --model "
                             r"output_kinds:tuple_output is a dict with keys 'aux', not a tensor"),
    "learning loss": (["--model", "foreign_networks:simple_baseline", "--strategy",
                       "learning-loss", "--embedding", "layer4"], r"--strategy learning-loss"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_model_input_is_one_line_naming_the_flag(world, tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(FOREIGN)
    files = _bad(tmp_path)
    flags, says = CASES[case]
    flags = [f.format(**files) for f in flags]
    argv = ["eglpp", "select", "--labelled", str(world["labelled"]), "--pool",
            str(world["pool"]), "--budget", "2", "--out", str(tmp_path / "out"),
            "--input-size", str(SIZE), "--no-progress", *flags]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert __import__("re").search(says, err), err


def test_a_rerun_reuses_chunks_only_for_the_same_model_flags(world, tmp_path, monkeypatch):
    monkeypatch.chdir(FOREIGN)
    out = tmp_path / "sel"
    _select(world, world["labelled"], out, *SB, "--strategy", "coreset", budget=2)
    _select(world, world["labelled"], out, *SB, "--strategy", "coreset", budget=2)
    assert json.loads((out / "summary.json").read_text())["chunks_reused"] == 3
    other = ["--model", "foreign_networks:simple_baseline", "--embedding", "layer3"]
    refused = CliRunner().invoke(app, ["select", "--labelled", str(world["labelled"]), "--pool",
                                       str(world["pool"]), "--budget", "2", "--out", str(out),
                                       "--input-size", str(SIZE), "--chunk-size", "16",
                                       *other, "--strategy", "coreset"])  # fmt: skip
    assert "holds another selection" in str(refused.exception), "another model: replaced unasked"
    _select(world, world["labelled"], out, *other, "--strategy", "coreset", "--overwrite", budget=2)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chunks_reused"] == 0 and summary["config"]["strategy"] == "coreset"


def test_help_says_how_model_is_imported():
    result = CliRunner().invoke(app, ["select", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "PKG.MODULE:FACTORY" in text and "uvicorn app:main" in text
    assert "weights_only=True" in text
