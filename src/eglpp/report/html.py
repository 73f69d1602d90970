"""``eglpp report``: one self-contained static HTML page of an experiment.

The page needs no network: its style is inline, its images are PNG data URIs, and a
Content-Security-Policy forbids anything else. It shows, for whatever the run directory holds
(see :mod:`eglpp.report.gather`): a header with the task, metric, runs and configuration; the
Table 1 analogue (mean ± std over runs and the one-tailed paired t-test p-value against the
reference, per number labelled, and the area under the curve) and the learning curves with
±1 std bands for each results file; the per-joint metric table; and, for each explained
selection, the highest/lowest-score gallery with neighbours, its score table and the t-SNE map.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from eglpp import __version__
from eglpp.experiment.timing import NOTE
from eglpp.io import atomic_write_text
from eglpp.report.gallery import weight_text
from eglpp.report.gather import (
    Figure,
    JointTable,
    ReportData,
    ResultsPart,
    SelectionTable,
    gather,
)
from eglpp.report.html_style import CSS, PAGE
from eglpp.significance import ALPHA, p_text
from eglpp.tables import holm_line, note, power_lines

__all__ = ["decimals_for", "render_html", "write_report"]

#: The header's cards: configuration key -> what the card says.
FACTS = {
    "dataset": "data set",
    "family": "model family",
    "cycles": "cycles",
    "budget": "labelled per cycle",
    "initial": "initial labelled",
    "input_size": "input size (px)",
    "seed": "seed",
    "device": "device",
}
TSNE_CAPTION = (
    "t-SNE of the embeddings of the model that scored the cycle: grey unlabelled, blue "
    "labelled, red × selected."
)


def decimals_for(values: list[float]) -> int:
    """Decimals that show about four significant digits of the largest finite ``values``."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite:
        return 3
    return int(min(6, max(0, 3 - math.floor(math.log10(max(finite))))))


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _best(value: float, column: list[float], pick) -> bool:
    """``value`` is the column's best (by ``pick``) and the column's values are not all equal."""
    finite = [v for v in column if math.isfinite(v)]
    return len(set(finite)) > 1 and value == pick(finite)


def _verdict(p: float, adjusted: float) -> tuple[str, str]:
    """(css class, mark) of a cell's test: coloured where it stays significant after Holm's
    correction over the table (``adjusted``, two-sided, < ALPHA), red (▼) where the reference
    is the better one (one-tailed ``p`` < 0.5), green (▲) where the row's strategy is."""
    if not adjusted < ALPHA:
        return "", ""
    if p < 0.5:
        return " lost", ' <span class="mark" title="the reference is better">▼</span>'
    return " won", ' <span class="mark" title="better than the reference">▲</span>'


def _cell(part: ResultsPart, st: str, i: int | None, dec: int, best: bool) -> str:
    """One cell of Table 1 (``i`` None: the AUC): mean ± std, p, and the test in words."""
    s, k, auc = part.summary, part.scale, i is None
    m = (s.auc_mean[st] if auc else s.mean[st][i]) * k
    sd = (s.auc_std[st] if auc else s.std[st][i]) * k
    p = s.auc_pvalue[st] if auc else s.pvalue[st][i]
    holm = (s.auc_holm or {}).get(st) if auc else (s.holm or {}).get(st, [None] * (i + 1))[i]
    cls, mark = _verdict(p, math.nan if holm is None else holm)
    words = note(s, st, i, k, dec).removeprefix(p_text(p)).lstrip(": ")  # the p is shown
    says = f' <span class="says">{_e(words)}</span>' if words else ""
    n = "AUC" if auc else str(s.n_labelled[i])
    return (
        f'<td class="num{" best" if best else ""}{cls}" data-strategy="{_e(st)}" data-n="{n}">'
        f'<span class="mean">{m:.{dec}f}</span> ± <span class="std">{sd:.{dec}f}</span>'
        f'<span class="pline"><span class="p">{_e(p_text(p))}</span>{mark}{says}</span></td>'
    )


def _row(part: ResultsPart, st: str, dec: int, pick) -> str:
    """One strategy's row of Table 1: its AUC first (wide tables scroll), then each point."""
    s = part.summary
    best = _best(s.auc_mean[st], [s.auc_mean[x] for x in s.strategies], pick)
    cells = [_cell(part, st, None, dec, best)]
    for i in range(len(s.n_labelled)):
        best = _best(s.mean[st][i], [s.mean[x][i] for x in s.strategies], pick)
        cells.append(_cell(part, st, i, dec, best))
    ref = ' class="reference"' if st == s.reference else ""
    tag = '<span class="tag">reference</span>' if st == s.reference else ""
    return f"<tr{ref}><td>{_e(st)}{tag}</td>{''.join(cells)}</tr>"


def _table1(part: ResultsPart) -> str:
    s, k = part.summary, part.scale
    means = [v * k for st in s.strategies for v in s.mean[st] + [s.auc_mean[st]]]
    dec = decimals_for(means)
    pick = max if s.higher_is_better else min
    head = '<th class="auc">AUC</th>' + "".join(f"<th>{n}</th>" for n in s.n_labelled)
    rows = [_row(part, st, dec, pick) for st in s.strategies]
    unit = " (%)" if k == 100 else ""
    arrow = "higher is better" if s.higher_is_better else "lower is better"
    ref = _e(s.reference) if s.reference else "none"
    return (
        f'<p class="caption">{_e(s.metric)}{unit}, {arrow}: the area under the learning curve '
        f"(AUC, in the metric's unit), then the mean ± std over {s.n_runs} runs at each number "
        f"of labelled items. p: one-tailed paired t-test (pairs = runs) that <b>{ref}</b> is "
        f"better than the row's strategy (where the row's strategy is better, the reverse "
        f"test's p too). Bold: the best mean of a column. Coloured: significant after Holm's "
        f"correction over all the table's tests (two-sided, familywise {ALPHA:g}): "
        f'<span class="lost">▼ red</span>: {ref} is significantly better; '
        f'<span class="won">▲ green</span>: the row\'s strategy is significantly better than '
        f"{ref}. {_e(holm_line(s))}</p>"
        f'<div class="scroll"><table class="table1" data-source="{_e(part.source)}" '
        f'data-scale="{k:g}"><thead><tr><th>strategy \\ labelled</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _power(part: ResultsPart) -> str:
    """What the runs can detect, under Table 1 (empty without a reference or two runs)."""
    s, k = part.summary, part.scale
    dec = decimals_for([v * k for st in s.strategies for v in s.mean[st] + [s.auc_mean[st]]])
    lines = power_lines(s, k, dec)
    if not lines:
        return ""
    items = "".join(f"<li>{_e(line.removeprefix('- '))}</li>" for line in lines[1:])
    return f'<p class="caption" id="power">{_e(lines[0])}</p><ul class="caption">{items}</ul>'


def _results_section(part: ResultsPart, idx: int) -> str:
    s = part.summary
    return (
        f'<section id="results-{idx}"><h2>{_e(s.metric)}: Table 1 analogue</h2>'
        f"{_table1(part)}{_power(part)}"
        f"<h3>Learning curves</h3>"
        f'<p class="caption">Mean over runs with a ±1 standard deviation band '
        f"(from {_e(part.source)}).</p>"
        f'<div class="fig">{_img(part.curves_png, f"learning curves, {s.metric}")}</div>'
        f"</section>"
    )


def _joint_section(t: JointTable, scale: float) -> str:
    dec = decimals_for([v * scale for c in t.columns for v in t.per_joint[c]])
    head = "".join(
        f"<th>{_e(c)}<br><small>n={n if n is not None else '?'}, {r} run{'s' * (r != 1)}</small>"
        f"</th>"
        for c, n, r in zip(t.columns, t.n_labelled, t.n_runs, strict=True)
    )
    rows = []
    for j, joint in enumerate(t.joints):
        vals = [t.per_joint[c][j] for c in t.columns]
        finite = [v for v in vals if math.isfinite(v)]
        cells = "".join(
            f'<td class="na" data-col="{_e(c)}">—</td>'
            if not math.isfinite(v)
            else f'<td class="{"best" if _best(v, finite, max) else ""}" '
            f'data-col="{_e(c)}"><span class="mean">{v * scale:.{dec}f}</span></td>'
            for c, v in zip(t.columns, vals, strict=True)
        )
        rows.append(f'<tr data-joint="{_e(joint)}"><td>{_e(joint)}</td>{cells}</tr>')
    pooled = "".join(
        f'<td data-col="{_e(c)}"><span class="mean">{t.mean[c] * scale:.{dec}f}</span></td>'
        for c in t.columns
    )
    rows.append(f'<tr class="pooled" data-joint="mean"><td>mean (pooled)</td>{pooled}</tr>')
    unit = " (%)" if scale == 100 else ""
    return (
        f'<section id="joints"><h2>Per joint: {_e(t.metric)}{unit}</h2>'
        f'<p class="caption">The base model and each strategy after its last cycle, mean over '
        f"runs. The last row is the metric of results.json (pooled over joints, not the mean of "
        f"the rows). Bold: the best of a row.</p>"
        f'<div class="scroll"><table class="joints"><thead><tr><th>joint</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _selection_table(table: SelectionTable) -> str:
    """The gallery's rows as a table: one index system (pool #i, base #k), its neighbours."""
    with_nb = any(r.neighbours for r in table.rows)
    body = []
    for r in table.rows:
        mark = (
            "" if not r.selected or r.shown_as == "selected" else " <span class=tag>selected</span>"
        )
        nb = " · ".join(
            f"{_e(n)} <small>{weight_text(table.weight, w)}</small>" for n, w in r.neighbours
        )
        body.append(
            f'<tr><td class="left">{_e(r.shown_as)}</td><td class="left">{_e(r.image)}{mark}</td>'
            f"<td>{r.score:.4g}</td>"
            + (f'<td class="left">{nb or "—"}</td>' if with_nb else "")
            + "</tr>"
        )
    weight = f", {_e(table.weight)}" if table.weight else ""
    nb_head = f'<th class="left">labelled neighbours (pool image{weight})</th>' if with_nb else ""
    return (
        '<table class="selection"><thead><tr><th class="left">row of the gallery</th>'
        f'<th class="left">pool image</th><th>score</th>{nb_head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _explained_block(st: str, run: int, cycle: int, figs: list[Figure], table) -> str:
    """A strategy's explained cycle: the gallery beside the t-SNE map, the gallery's table
    below."""
    by_kind = {f.kind: f for f in figs}
    parts = []
    if "gallery" in by_kind:
        png = _img(by_kind["gallery"].png, f"{st} run {run} cycle {cycle} gallery")
        parts.append(f'<div class="fig gallery">{png}</div>')
    if "tsne" in by_kind:
        png = _img(by_kind["tsne"].png, f"{st} run {run} cycle {cycle} tsne")
        parts.append(f'<div class="fig side">{png}<div class="caption">{TSNE_CAPTION}</div></div>')
    below = "" if table is None else f'<div class="scroll">{_selection_table(table)}</div>'
    return (
        f'<h3 id="sel-{_e(st)}">{_e(st)} <small>run {run}, cycle {cycle}</small></h3>'
        f'<div class="explained">{"".join(parts)}</div>{below}'
    )


def _figures_section(data: ReportData) -> str:
    groups: dict[tuple[str, int, int], list[Figure]] = {}
    for f in data.figures:
        groups.setdefault((f.strategy, f.run, f.cycle), []).append(f)
    blocks = [
        _explained_block(st, run, cycle, figs, data.selections.get((st, run, cycle)))
        for (st, run, cycle), figs in groups.items()
    ]
    same = {cycle for _, _, cycle in groups} == {1}
    return (
        '<section id="selections"><h2>What was selected, and why</h2>'
        '<p class="caption">For the explained cycle of each strategy: the pool images with the '
        "highest and lowest scores (random sampling, whose scores are draws: images it "
        "selected), each with the pose predicted by the model that scored them (yellow), "
        "beside its labelled neighbours with their labelled poses (cyan): EGL++'s most "
        "probable neighbours with p(j|i) of Eq. 13, the other strategies' nearest labelled "
        "images in embedding space. Images are named by their index in the pool (pool #i; "
        "base #k for a separate base set), in the pictures and the tables alike."
        + (
            " Cycle 1 of every strategy is scored by the same base model on the same pool, so "
            "their t-SNE maps are the same map: compare where each strategy selects."
            if same
            else ""
        )
        + "</p>"
        + "".join(blocks)
        + "</section>"
    )


def _timing_section(phases: list[str], rows: list) -> str:
    head = "".join(f"<th>{_e(p)} s</th>" for p in phases)
    body = "".join(
        f'<tr><td class="left">{_e(name)}</td><td>{n}</td>'
        + "".join("<td>—</td>" if m is None else f"<td>{m:.2f}</td>" for m in means)
        + f"<td>{sum(m for m in means if m is not None):.2f}</td></tr>"
        for name, n, means in rows
    )
    return (
        '<section id="timings"><h2>Where the time went</h2><div class="scroll"><table>'
        f'<thead><tr><th class="left">step</th><th>timed</th>{head}<th>total s</th></tr>'
        f'</thead><tbody>{body}</tbody></table></div><p class="caption">{_e(NOTE)}</p></section>'
    )


def _facts(data: ReportData) -> list[tuple[str, str]]:
    if not data.parts:
        return [("run directory", str(data.run_dir))]
    res, s = data.parts[0].results, data.parts[0].summary
    n = s.n_labelled
    facts = [
        ("task", res["task"]),
        ("metric", ", ".join(p.summary.metric for p in data.parts)),
        ("runs", str(s.n_runs)),
        ("strategies", ", ".join(s.strategies)),
        ("reference", s.reference or "none"),
        ("labelled", f"{n[0]} → {n[-1]} ({len(n)} points)"),
    ]
    cfg = res["config"]
    facts += [(label, str(cfg[k])) for k, label in FACTS.items()
              if k in cfg and not isinstance(cfg[k], dict)]  # fmt: skip
    model = cfg.get("model")
    if isinstance(model, dict) and {"n_stacks", "channels"} <= set(model):
        facts.append(("model", f"{model['n_stacks']}-stack hourglass, {model['channels']} ch"))
    return facts


def render_html(data: ReportData, title: str | None = None) -> str:
    """The report page of ``data`` as one HTML string (no external resources)."""
    task = data.parts[0].results["task"] if data.parts else data.run_dir.name
    title = title or f"eglpp report — {task}"
    body, nav = [], []
    for i, part in enumerate(data.parts):
        body.append(_results_section(part, i))
        nav.append((f"results-{i}", part.summary.metric))
    scale = data.parts[0].scale if data.parts else 1.0
    if data.joints is not None:
        body.append(_joint_section(data.joints, scale))
        nav.append(("joints", "per joint"))
    if data.figures:
        body.append(_figures_section(data))
        nav.append(("selections", "selections"))
    if data.timings[1]:
        body.append(_timing_section(*data.timings))
        nav.append(("timings", "time"))
    if data.parts:
        cfg = _flatten(data.parts[0].results["config"])
        rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in cfg)
        body.append(
            '<section id="config"><h2>Configuration</h2>'
            f"<details><summary>all {len(cfg)} settings (from {_e(data.parts[0].source)})"
            f'</summary><dl class="config">{rows}</dl></details></section>'
        )
        nav.append(("config", "configuration"))
    if data.notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in data.notes)
        body.append(
            f'<section id="left-out" class="notes"><h2>Left out of this page</h2><ul>{items}</ul>'
            "</section>"
        )
    facts = "".join(
        f'<div class="fact{" wide" * (len(str(v)) > 40)}"><b>{_e(k)}</b><span>{_e(v)}</span></div>'
        for k, v in _facts(data)
    )
    return PAGE.format(
        title=_e(title),
        subtitle=f"run directory <code>{_e(data.run_dir)}</code>",
        facts=facts,
        nav="".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in nav),
        css=CSS,
        body="\n".join(body),
        footer=f"eglpp {_e(__version__)} · self-contained page: no network, images embedded",
    )


def write_report(
    run_dir: str | Path, out: str | Path | None = None, title: str | None = None
) -> Path:
    """Gather ``run_dir``, write its report (default ``run_dir/report.html``); return the path."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    page = render_html(gather(run_dir), title=title)
    atomic_write_text(out, page)
    return out
