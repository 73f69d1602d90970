"""The HTML report's content against the files it was made from (no browser here)."""

import base64
import io
import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import scipy.stats as sps
from PIL import Image
from report_helpers import check_table1
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.io import StateFileError, read_json
from eglpp.report.gather import gather
from eglpp.report.html import decimals_for, render_html, write_report


class _Page(HTMLParser):
    """Collects Table 1 cells, per-joint cells, image sources and section ids of a page."""

    def __init__(self):
        super().__init__()
        self.cells, self.joints, self.images, self.sections = [], [], [], []
        self._table, self._cell, self._span, self._row = None, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a
        elif tag == "tr":
            self._row = a.get("data-joint")
        elif tag == "td" and self._table is not None and "data-strategy" in a:
            self._cell = {"source": self._table["data-source"], "strategy": a["data-strategy"]}
            self._cell.update(n=a["data-n"], mean="", std="", p="")
        elif tag == "td" and self._row is not None and "data-col" in a:
            self._cell = {"joint": self._row, "col": a["data-col"], "mean": "—"}
        elif tag == "span" and self._cell is not None:
            self._span = a.get("class", "").split()[0]
            if self._span in self._cell and self._span != "strategy":
                self._cell[self._span] = ""
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "section" and "id" in a:
            self.sections.append(a["id"])

    def handle_endtag(self, tag):
        if tag == "span":
            self._span = None
        elif tag == "td" and self._cell is not None:
            (self.joints if "joint" in self._cell else self.cells).append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None and self._span in ("mean", "std", "p"):
            self._cell[self._span] += data


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


@pytest.fixture(scope="module")
def pose_page(pose_run):
    path = write_report(pose_run)
    return path, _parse(path.read_text())


def test_table1_equals_results_json(pose_page, pose_run):
    _, page = pose_page
    results = read_json(pose_run / "results.json")
    cells = [c for c in page.cells if c["source"] == "results.json"]
    n = check_table1(cells, results, scale=100.0)
    assert n == 2 * (3 + 1)  # 2 strategies × (3 points + AUC)


def test_table1_shows_the_p_values_of_strategies_that_differ(differing_run):
    """EGL++ = random + GAINS (tests/report/conftest.py): in random's row a p-value at each
    number labelled after the base model and for the AUC, each the one-tailed paired t-test's
    that EGL++ (the reference) is better."""
    results = read_json(differing_run / "results.json")
    page = _parse(write_report(differing_run).read_text())
    cells = [c for c in page.cells if c["source"] == "results.json"]
    assert check_table1(cells, results, scale=100.0) == 2 * (3 + 1)
    p = {(c["strategy"], c["n"]): c["p"] for c in cells}
    n = [str(k) for k in results["n_labelled"]] + ["AUC"]
    assert [p["egl++", k] for k in n] == ["p=—"] * 4, "the reference has no p-value"
    assert p["random", n[0]] == "p=—", "the shared base model: no difference to test"
    assert all(re.fullmatch(r"p=0\.\d{3}", p["random", k]) for k in n[1:]), p
    runs = {s: np.array(v) for s, v in results["scores"].items()}
    t = sps.ttest_rel(runs["egl++"][:, -1], runs["random"][:, -1], alternative="greater")
    assert p["random", n[-2]] == f"p={t.pvalue:.3f}", "scipy's one-tailed paired t-test"


def test_per_joint_table_equals_metrics_json(pose_page, pose_run):
    _, page = pose_page
    cols = {"base": "base/metrics.json"}
    cols |= {s: f"{s}/cycle-02/metrics.json" for s in ("random", "egl++")}
    for col, rel in cols.items():
        files = [read_json(pose_run / f"run-{r:02d}" / rel) for r in range(2)]
        shown = {c["joint"]: c["mean"] for c in page.joints if c["col"] == col}
        assert len(shown) == len(files[0]["per_joint"]) + 1
        for joint in files[0]["per_joint"]:
            values = [f["per_joint"][joint] for f in files]
            values = [v for v in values if v is not None and not math.isnan(v)]
            if not values:
                assert shown[joint] == "—"
                continue
            assert abs(float(shown[joint]) - 100 * np.mean(values)) <= 0.5e-3 + 1e-9, joint
        pooled = 100 * np.mean([f["mean"] for f in files])
        assert abs(float(shown["mean"]) - pooled) <= 0.5e-3 + 1e-9
    # the pooled row of the last cycle is what results.json holds for that strategy
    results = read_json(pose_run / "results.json")
    last = 100 * np.mean([run[-1] for run in results["scores"]["egl++"]])
    shown = {c["joint"]: c["mean"] for c in page.joints if c["col"] == "egl++"}
    assert abs(float(shown["mean"]) - last) <= 0.5e-3 + 1e-9


def test_images_are_embedded_pngs_that_are_not_blank(pose_page, pose_run):
    path, page = pose_page
    on_disk = sorted(pose_run.glob("run-*/*/cycle-*/explain_*.png"))
    assert len(on_disk) == 4  # random and egl++: a gallery and a t-SNE map each (run 0, cycle 1)
    assert len(page.images) == 1 + len(on_disk)  # plus the learning curves
    embedded = set()
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        raw = base64.b64decode(src.split(",", 1)[1])
        embedded.add(raw)
        pixels = np.asarray(Image.open(io.BytesIO(raw)).convert("L"), dtype=float)
        assert pixels.std() > 5.0, "an embedded image is (almost) uniform"
    assert {p.read_bytes() for p in on_disk} <= embedded
    text = path.read_text()
    assert "http://" not in text and "https://" not in text, "the page must not reach the network"
    assert page.sections[:3] == ["results-0", "joints", "selections"]


def test_selection_table_lists_highest_scores_and_neighbours(pose_page, pose_run):
    """The gallery's rows (explain_gallery.json) are the selection's highest and lowest scores
    with EGL++'s most probable neighbours, named by pool index, and the page's table shows
    them."""
    path, _ = pose_page
    cycle = pose_run / "run-00" / "egl++" / "cycle-01"
    with np.load(cycle / "selection.npz") as z:
        scores, unlabelled = z["scores"], z["unlabelled"]
        p, chosen = z["detail_p"], set(z["query_indices"].tolist())
    rows = read_json(cycle / "explain_gallery.json")
    assert rows["weight"] == "p(j|i)"
    order = np.argsort(-scores, kind="stable")
    shown = [int(r["image"].removeprefix("pool #")) for r in rows["rows"]]
    assert shown == unlabelled[np.concatenate([order[:3], order[::-1][:3]])].tolist()
    top = rows["rows"][0]
    assert top["shown_as"] == "highest score" and top["selected"] == (shown[0] in chosen)
    assert top["score"] == pytest.approx(scores[order[0]])
    weights = [w for _, w in top["neighbours"]]
    assert weights == pytest.approx(np.sort(p[order[0]])[::-1][:3].tolist())
    labelled_pool = set(np.setdiff1d(np.arange(40), unlabelled).tolist())
    for name, _ in top["neighbours"]:  # pool images labelled before the cycle
        assert int(name.removeprefix("pool #")) in labelled_pool
    text = path.read_text()
    assert f"pool #{shown[0]}" in text and f"{top['neighbours'][0][0]} <small>" in text


def test_every_strategy_gets_poses_and_a_map_random_shows_what_it_selected(pose_run):
    with np.load(pose_run / "run-00" / "random" / "cycle-01" / "selection.npz") as z:
        selected = z["query_indices"][:6].tolist()
    rows = read_json(pose_run / "run-00" / "random" / "cycle-01" / "explain_gallery.json")
    assert [r["shown_as"] for r in rows["rows"]] == ["selected"] * 6
    assert [int(r["image"].removeprefix("pool #")) for r in rows["rows"]] == selected
    assert rows["weight"] == "distance" and all(len(r["neighbours"]) == 3 for r in rows["rows"])
    assert (pose_run / "run-00" / "random" / "cycle-01" / "explain_tsne.png").is_file()


def test_regression_folder_shows_both_metrics_and_skips_pose_parts(regression_run):
    data = gather(regression_run)
    assert [p.source for p in data.parts] == ["results.json", "results_nll.json"]
    assert data.joints is None and not data.figures
    assert not data.notes, "a regression folder lacks nothing a pose run has: no note"
    html = render_html(data)
    assert "Left out" not in html and "Not in this folder" not in html
    page = _parse(html)
    for part in data.parts:
        cells = [c for c in page.cells if c["source"] == part.source]
        assert check_table1(cells, part.results, scale=1.0) == 3 * (4 + 1)
    assert page.sections[:3] == ["results-0", "results-1", "config"]
    assert len(page.images) == 2


def test_unfinished_strategy_left_out_with_a_note(regression_run):
    results = json.loads((regression_run / "results.json").read_text())
    results["scores"]["egl++"] = []
    (regression_run / "results.json").write_text(json.dumps(results))
    data = gather(regression_run)
    assert "egl++" not in data.parts[0].summary.strategies


def test_bad_input_names_the_file(tmp_path, regression_run):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        gather(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="results.json: file not found"):
        gather(tmp_path / "empty")
    (regression_run / "results.json").write_text("{not json")
    with pytest.raises(StateFileError, match="results.json: not valid JSON"):
        gather(regression_run)
    (regression_run / "results.json").write_text(json.dumps({"task": "t"}))
    with pytest.raises(ValueError, match="results.json: missing field 'metric'"):
        gather(regression_run)


def test_decimals_show_four_significant_digits():
    assert decimals_for([55.21, 3.0]) == 2
    assert decimals_for([0.0123]) == 5
    assert decimals_for([1234.5]) == 0
    assert decimals_for([math.nan, 0.0]) == 3


def test_cli_writes_the_report(regression_run, tmp_path):
    out = tmp_path / "page.html"
    res = CliRunner().invoke(app, ["report", str(regression_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and out.read_text().startswith("<!DOCTYPE html>")
    res = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code != 0 and "not a directory" in str(res.exception)


def test_tiny_p_values_shown_as_a_bound_and_escaped(regression_run):
    results = json.loads((regression_run / "results.json").read_text())
    runs = np.array(results["scores"]["egl"])
    results["scores"]["random"] = (runs + 5.0 + 1e-3 * np.arange(4)[:, None]).tolist()
    (regression_run / "results.json").write_text(json.dumps(results))
    text = render_html(gather(regression_run))
    assert 'data-strategy="random" data-n="30"' in text
    assert "p&lt;0.001" in text and "p<0.001" not in text
    page = _parse(text)
    cells = [c for c in page.cells if c["source"] == "results.json"]
    assert sum(c["p"] == "p<0.001" for c in cells) == 5  # every point of random, and its AUC
    first = text.split('data-source="results_nll.json"')[0]  # the RMSE table
    assert first.count('class="num lost" data-strategy="random"') == 5, "random lost: red"
    check_table1(cells, results, scale=1.0)


def test_table1_states_what_the_runs_can_detect(pose_run):
    html = write_report(pose_run).read_text()
    assert 'id="power"' in html and "runs detect at p &lt; 0.1" in html


def test_p_values_are_coloured_by_who_is_better_and_auc_comes_first(regression_run):
    """▼ red where the reference wins significantly, ▲ green where the row's strategy does."""
    results = json.loads((regression_run / "results.json").read_text())
    runs = np.array(results["scores"]["egl"])  # lower is better (RMSE)
    results["scores"]["random"] = (runs + 5.0 + 1e-3 * np.arange(4)[:, None]).tolist()
    results["scores"]["emcm"] = (runs - 5.0 + 1e-3 * np.arange(4)[:, None]).tolist()
    (regression_run / "results.json").write_text(json.dumps(results))
    text = render_html(gather(regression_run)).split('data-source="results_nll.json"')[0]
    assert len(re.findall(r'class="num[\w ]* lost" data-strategy="random"', text)) == 5
    assert len(re.findall(r'class="num[\w ]* won" data-strategy="emcm"', text)) == 5
    assert 'data-strategy="egl"' in text and 'lost" data-strategy="egl"' not in text
    assert "▼ red</span>: egl is significantly better" in text
    head = text[text.index('<table class="table1"') :]
    assert head.index(">AUC</th>") < head.index(">20</th>"), "AUC first: wide tables scroll"


def test_header_cards_use_words_not_keys(pose_run):
    text = write_report(pose_run).read_text()
    assert "<b>input size (px)</b>" in text and "<b>input_size</b>" not in text
    assert "text-transform:uppercase" not in text


def test_colours_follow_holms_correction_over_the_tables_tests(regression_run):
    """Issue 21 item 5: among many cells, a raw p < 0.05 colours nothing by itself; the
    coloured cells are those Holm's correction keeps (statsmodels as the oracle)."""
    from statsmodels.stats.multitest import multipletests

    from eglpp.stats import summarize

    results = json.loads((regression_run / "results.json").read_text())
    runs = np.array(results["scores"]["egl"])
    rng = np.random.default_rng(1)
    results["scores"]["random"] = (runs + 1.0 + rng.normal(size=runs.shape)).tolist()
    (regression_run / "results.json").write_text(json.dumps(results))
    summary = summarize(results)
    others = [st for st in summary.strategies if st != summary.reference]
    raw = np.array([summary.pvalue[st] + [summary.auc_pvalue[st]] for st in others])
    tested = np.isfinite(raw)
    two = 2 * np.minimum(raw[tested], 1 - raw[tested])
    adjusted = np.full(raw.shape, np.nan)  # the family: every tested cell of the table
    adjusted[tested] = multipletests(two, method="holm")[1]
    mine = adjusted[others.index("random")]
    assert ((two < 0.05) & (adjusted[tested] >= 0.05)).any(), "a cell only raw p colours"
    text = render_html(gather(regression_run)).split('data-source="results_nll.json"')[0]
    coloured = re.findall(r'class="num[\w ]* (?:lost|won)" data-strategy="random" data-n="(\w+)"',
                          text)  # fmt: skip
    names = [*map(str, results["n_labelled"]), "AUC"]
    assert sorted(coloured) == sorted(n for n, a in zip(names, mine, strict=True) if a < 0.05)
    assert coloured, "some cell survives the correction"
    assert "Holm&#x27;s correction over all" in text or "Holm's correction over all" in text
