"""`eglpp import` refuses uncorrected pre-annotations unless --accept-unchanged, and counts them."""

import json

import pytest
from conftest import SIZE, select_config, truth_keypoints
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.datasets.base import AnnotationError
from eglpp.practitioner.coco import read_coco
from eglpp.practitioner.merge import merge_annotations
from eglpp.practitioner.run import run_select

CONFIG = select_config(budget=4, strategy="random", input_size=SIZE, chunk_size=16)


@pytest.fixture
def selection(world, tmp_path):
    run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "sel", CONFIG,
               progress=False, log=lambda m: None)  # fmt: skip
    return tmp_path / "sel"


def _returned(world, selection, path, corrected):
    """The selection exported back with the first ``corrected`` people given their true
    keypoints and the others left as the tool received them (the predictions)."""
    doc = json.loads((selection / "selection_coco.json").read_text())
    for k, (im, ann) in enumerate(zip(doc["images"], doc["annotations"], strict=True)):
        if k < corrected:
            ann["keypoints"] = truth_keypoints(world["pool_data"], world["pool_names"].index(
                im["file_name"]))  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def _import(world, selection, returned, out, *extra):
    args = ["import", "--labelled", world["labelled"], "--annotations", returned,
            "--selection", selection, "--out", out, *extra]  # fmt: skip
    return CliRunner().invoke(app, [str(a) for a in args])


def test_unchanged_pre_annotations_are_refused(world, selection, tmp_path):
    returned = _returned(world, selection, tmp_path / "export.json", corrected=0)
    with pytest.raises(AnnotationError, match=r"4 of 4 returned people are the unchanged"):
        merge_annotations(world["labelled"], returned, selection, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()
    result = _import(world, selection, returned, tmp_path / "m.json")
    assert result.exit_code != 0 and not (tmp_path / "m.json").exists()


def test_one_unchanged_person_is_enough_to_refuse(world, selection, tmp_path):
    returned = _returned(world, selection, tmp_path / "export.json", corrected=3)
    with pytest.raises(AnnotationError, match=r"1 of 4 .*--accept-unchanged") as info:
        merge_annotations(world["labelled"], returned, selection, tmp_path / "m.json")
    last = json.loads((selection / "selection_coco.json").read_text())["images"][3]["file_name"]
    assert last in str(info.value), "the error names the unchanged image"


def test_accept_unchanged_merges_and_counts_them(world, selection, tmp_path):
    returned = _returned(world, selection, tmp_path / "export.json", corrected=1)
    result = _import(world, selection, returned, tmp_path / "m.json", "--accept-unchanged")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "added 4 people" in result.output and "3 of them unchanged" in result.output
    assert len(read_coco(tmp_path / "m.json").annotations) == 16 + 4
    report = merge_annotations(world["labelled"], returned, selection, tmp_path / "m2.json",
                               accept_unchanged=True)  # fmt: skip
    assert report["unchanged_pre_annotations"] == 3 and report["accepted_unchanged"]


def test_corrected_people_merge_without_the_flag(world, selection, tmp_path):
    returned = _returned(world, selection, tmp_path / "export.json", corrected=4)
    report = merge_annotations(world["labelled"], returned, selection, tmp_path / "m.json")
    assert report["added_people"] == 4 and report["unchanged_pre_annotations"] == 0


def test_an_import_into_the_merged_file_skips_what_it_merged(world, selection, tmp_path):
    """Importing the same export again into the file the first import wrote: the people merged
    there are skipped and named (not refused as already labelled); changed ones are refused."""
    returned = _returned(world, selection, tmp_path / "export.json", corrected=4)
    assert _import(world, selection, returned, tmp_path / "m1.json").exit_code == 0
    args = ["import", "--labelled", tmp_path / "m1.json", "--annotations", returned,
            "--selection", selection, "--out", tmp_path / "m2.json"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "added 0 people on 0 images to 20 labelled images" in result.output
    assert f"skipped 4 returned images already merged into {tmp_path / 'm1.json'}" in result.output
    doc = json.loads(returned.read_text())
    kp = doc["annotations"][2]["keypoints"]
    kp[3 * next(j for j in range(14) if kp[3 * j + 2] > 0)] += 2.0  # edited since it was merged
    returned.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"images\[2\] .* already in the labelled set .*"
                       r"m1\.json with other keypoints"):  # fmt: skip
        merge_annotations(tmp_path / "m1.json", returned, selection, tmp_path / "m3.json")


def test_an_existing_out_is_never_replaced_silently(world, selection, tmp_path):
    """A file at --out (another merge, the user's labelled set itself) is refused before any
    work unless --overwrite; with it, the merge is written."""
    returned = _returned(world, selection, tmp_path / "export.json", corrected=4)
    other = tmp_path / "labelled2.json"
    other.write_text('{"mine": 1}')
    result = _import(world, selection, returned, other)
    assert result.exit_code != 0 and "already exists" in str(result.exception)
    assert "--overwrite" in str(result.exception) and other.read_text() == '{"mine": 1}'
    before = world["labelled"].read_bytes()
    result = _import(world, selection, returned, world["labelled"])
    assert result.exit_code != 0 and "is also --labelled" in str(result.exception)
    assert world["labelled"].read_bytes() == before
    result = _import(world, selection, returned, other, "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(read_coco(other).annotations) == len(read_coco(world["labelled"]).annotations) + 4
