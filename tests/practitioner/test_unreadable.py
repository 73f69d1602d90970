"""Unreadable pool images are skipped, listed and never selected; labelled ones are errors."""

import csv
import io
import json
import shutil

import pytest
from conftest import SIZE, flat, select_config
from PIL import Image

from eglpp.practitioner.run import run_select

EGL = select_config(
    budget=8, strategy="egl++", hyperparameters=(("k", 4), ("perplexity", 2.0)),
    input_size=SIZE, chunk_size=3, batch_size=8,
)  # fmt: skip
BROKEN = ("cut.jpg", "cut.png", "empty.jpg")


def _run(world, out, config=EGL, *, pool=None, labelled=None, warnings=None):
    warn = warnings.append if warnings is not None else None
    return run_select(world["checkpoint"], labelled or world["labelled"], pool or world["pool"],
                      out, config, progress=False, log=lambda m: None, warn=warn)  # fmt: skip


def _good(world, folder, n):
    folder.mkdir()
    for name in world["pool_names"][:n]:
        shutil.copy(world["pool"] / name, folder / name)
    return folder


def _broken(world, folder):
    """A truncated JPEG, a truncated PNG and a zero-byte file: the first in sorted order."""
    jpeg = (world["pool"] / world["pool_names"][30]).read_bytes()
    (folder / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    buf = io.BytesIO()
    Image.fromarray(world["pool_data"].images[31].permute(1, 2, 0).numpy()).save(buf, "PNG")
    (folder / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def _names(out, table):
    with open(out / table) as f:
        return [row["image"] for row in csv.DictReader(f)]


def test_unreadable_pool_images_are_skipped_and_listed(world, tmp_path):
    pool = _broken(world, _good(world, tmp_path / "pool", 8))
    warnings: list[str] = []
    out = tmp_path / "out"
    summary = _run(world, out, pool=pool, warnings=warnings)  # chunk 0 holds only broken ones
    good = set(world["pool_names"][:8])
    assert set(summary["selected"]) == good  # budget = every readable image, none of the others
    assert set(_names(out, "scores.csv")) == good and set(_names(out, "selection.csv")) == good
    assert summary["n_candidates"] == 11 and summary["n_skipped"] == 3
    warnings[:] = [w for w in warnings if "skipped pool image" in w]  # (not the fit warning)
    assert len(warnings) == 3
    reasons = {"cut.jpg": "truncated", "cut.png": "truncated", "empty.jpg": "cannot identify"}
    for message, name in zip(warnings, BROKEN, strict=True):
        assert str((pool / name).resolve()) in message and reasons[name] in message, message
    skipped = json.loads((out / "skipped.json").read_text())
    assert [s["image"] for s in skipped] == list(BROKEN)
    assert all(reasons[s["image"]] in s["reason"] for s in skipped)
    coco = json.loads((out / "selection_coco.json").read_text())
    assert {im["file_name"] for im in coco["images"]} == good

    too_many = select_config(**{**flat(EGL), "budget": 9})
    with pytest.raises(
        ValueError, match=r"--budget 9: only 8 of the 11 .*\(3 skipped.*skipped.json"
    ):
        _run(world, tmp_path / "too_many", too_many, pool=pool)

    shutil.copy(world["pool"] / world["pool_names"][20], pool / "empty.jpg")  # repaired
    again = _run(world, tmp_path / "too_many", too_many, pool=pool, warnings=warnings)
    assert again["chunks_computed"] == 1 and again["chunks_reused"] == 3
    assert "empty.jpg" in again["selected"] and again["n_skipped"] == 2
    skipped = json.loads((tmp_path / "too_many" / "skipped.json").read_text())
    assert [s["image"] for s in skipped] == list(BROKEN[:2])


def test_jointly_selecting_strategy_never_gets_skipped_images(world, tmp_path):
    pool = _broken(world, _good(world, tmp_path / "pool", 5))
    config = select_config(budget=5, strategy="coreset", input_size=SIZE, chunk_size=4)
    summary = _run(world, tmp_path / "out", config, pool=pool)
    assert set(summary["selected"]) == set(world["pool_names"][:5])


def test_missing_listed_image_is_skipped(world, tmp_path):
    listed = tmp_path / "pool.csv"
    rows = [str(world["pool"] / n) for n in world["pool_names"][:4]]
    listed.write_text("image\n" + "\n".join([rows[0], "gone.jpg", *rows[1:]]) + "\n")
    warnings: list[str] = []
    config = select_config(budget=4, strategy="random", input_size=SIZE)
    summary = _run(world, tmp_path / "out", config, pool=listed, warnings=warnings)
    assert "gone.jpg" not in summary["selected"] and len(summary["selected"]) == 4
    gone = (tmp_path / "gone.jpg").resolve()
    warnings = [w for w in warnings if "skipped pool image" in w]  # (not the fit warning)
    assert warnings == [f"warning: skipped pool image {gone} (pool.csv line 3): file not found"]


def test_no_readable_pool_image_is_an_error_naming_the_pool(world, tmp_path):
    (tmp_path / "broken_pool").mkdir()
    pool = _broken(world, tmp_path / "broken_pool")
    with pytest.raises(ValueError, match=r"--pool .*broken_pool: none of the 3 candidate images"):
        _run(world, tmp_path / "out", select_config(budget=1, strategy="random", input_size=SIZE),
             pool=pool)  # fmt: skip


def test_unreadable_labelled_image_is_an_error_naming_it(world, tmp_path):
    shutil.copytree(world["root"] / "labelled_images", tmp_path / "labelled_images")
    labelled = shutil.copy(world["labelled"], tmp_path / "labelled.json")
    image = tmp_path / "labelled_images" / "lab_005.jpg"
    image.write_bytes(image.read_bytes()[:200])
    config = select_config(budget=2, strategy="random", input_size=SIZE)
    with pytest.raises(ValueError, match=r"--labelled .*labelled.json: cannot decode image "
                       r".*lab_005.jpg.*every labelled image must be readable"):  # fmt: skip
        _run(world, tmp_path / "out", config, labelled=labelled)
    image.unlink()
    with pytest.raises(FileNotFoundError, match=r"--labelled .*image file not found: .*lab_005"):
        _run(world, tmp_path / "out", config, labelled=labelled)
