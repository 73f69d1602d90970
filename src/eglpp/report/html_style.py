"""The report page's stylesheet and skeleton (plain strings; no template engine)."""

from __future__ import annotations

__all__ = ["CSS", "PAGE"]

CSS = """
:root { --ink:#1d2330; --muted:#5c6577; --line:#dde1e8; --bg:#f4f5f8; --card:#fff;
        --accent:#2c5cc5; --good:#1a7f37; --bad:#b42318; --hi:#eef3ff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { background:#1f2a44; color:#fff; padding:22px 0 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .sub { color:#c5cde0; font-size:13px; }
.wrap { max-width:1180px; margin:0 auto; padding:0 24px; }
.facts { display:grid; grid-template-columns:repeat(auto-fill, minmax(170px, 1fr)); gap:8px;
         margin-top:14px; }
.fact { background:rgba(255,255,255,.08); border-radius:6px; padding:6px 10px; }
.fact b { display:block; font-size:12px; font-weight:500; color:#aeb8cf; }
.fact span { font-size:14px; overflow-wrap:anywhere; }
.fact.wide { grid-column:span 2; }
nav { margin:14px 0 0; font-size:13px; }
nav a { color:#dfe6f7; margin-right:14px; text-decoration:none; border-bottom:1px dotted #8a97b5; }
main { padding:8px 0 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px;
          padding:16px 20px 18px; margin:18px 0; }
h2 { font-size:18px; margin:0 0 4px; }
h3 { font-size:15px; margin:16px 0 6px; }
p.caption, .caption { color:var(--muted); font-size:13px; margin:2px 0 10px; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:right;
         white-space:nowrap; vertical-align:top; }
th { background:#f0f2f6; font-weight:600; }
th:first-child, td:first-child { text-align:left; position:sticky; left:0; background:inherit; }
thead th:first-child { background:#f0f2f6; }
tbody tr { background:#fff; }
tbody tr:nth-child(even) { background:#fafbfc; }
tr.reference td { background:var(--hi); }
td .pline { display:block; color:var(--muted); font-size:11px; }
td.lost .pline, span.lost { color:var(--bad); font-weight:600; }
td.won .pline, span.won { color:var(--good); font-weight:600; }
th.auc, td[data-n="AUC"] { border-right:2px solid #b9c0cc; }
td.best .mean { font-weight:700; }
td.na { color:var(--muted); }
th.left, td.left { text-align:left; }
tr.pooled td { border-top:2px solid #b9c0cc; font-weight:600; }
.fig { margin:8px 0 4px; }
.fig img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px;
           background:#fff; }
.explained { display:flex; flex-wrap:wrap; gap:18px; align-items:flex-start; }
.explained .gallery { flex:0 0 auto; max-width:100%; margin-top:0; }
.explained .gallery img { width:auto; }
.explained .side { flex:1 1 300px; min-width:0; }
.explained .side img { width:100%; max-width:400px; }
table.selection { margin-bottom:6px; }
table.selection small { color:var(--muted); }
.notes { background:#fff8e6; border-color:#f0d48a; }
.notes li { font-size:13px; }
details { margin-top:10px; }
summary { cursor:pointer; color:var(--muted); font-size:13px; }
dl.config { display:grid; grid-template-columns:max-content 1fr; gap:2px 16px; font-size:12px;
            margin:8px 0 0; }
dl.config dt { color:var(--muted); font-family:ui-monospace, "DejaVu Sans Mono", monospace; }
dl.config dd { margin:0; font-family:ui-monospace, "DejaVu Sans Mono", monospace;
               overflow-wrap:anywhere; }
.tag { display:inline-block; font-size:11px; padding:0 6px; border-radius:9px;
       background:#e3ecff; color:var(--accent); margin-left:4px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 0 24px; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><div class="wrap">
<h1>{title}</h1>
<div class="sub">{subtitle}</div>
<div class="facts">{facts}</div>
<nav>{nav}</nav>
</div></header>
<main class="wrap">
{body}
</main>
<footer>{footer}</footer>
</body>
</html>
"""
