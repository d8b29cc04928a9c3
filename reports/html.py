"""The self-contained HTML report: plotly.js embedded once, no network needed to open it."""

from __future__ import annotations

import html as _html

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .agreement import GLOSSARY
from .analysis import fmt, verdict_rule
from .calibration import CALIBRATED_SUFFIX

VERDICT_COLOURS = {"usable as is": "#c8e6c9", "usable after calibration": "#fff59d",
                   "humans needed": "#ffcdd2", "humans disagree": "#ffe0b2", "compare on prevalence": "#b3e5fc",
                   "not enough data": "#e0e0e0"}
SERIES = {"hh_alpha": ("humans with each other (alpha)", "#455a64"),
          "alpha_judge_sub": ("judge replacing one human (alpha)", "#1e88e5"),
          "hj_kappa": ("judge vs consensus (Cohen's kappa)", "#8e24aa"),
          "ac": ("judge vs consensus (Gwet's AC)", "#43a047")}

CAL_STATS = ["hj_exact", "hj_kappa", "hj_ac1", "hj_bias", "delta_alpha"]

EXPLAIN = [
    ("Krippendorff's alpha", "How much raters agree beyond what their overall score distribution would give by chance: 1 is perfect, 0 is chance level, below 0 is worse than chance.{ordinal} Missing ratings and different numbers of raters per item are allowed."),
    ("Human ceiling", "Alpha among the human raters. A judge cannot be expected to agree with humans better than humans agree with each other; compare every judge figure with this one."),
    ("Judge replacing one human", "Alpha recomputed after swapping one human's rating for the judge's (averaged over which human is swapped). If this is close to the human ceiling, the judge behaves like one more native speaker; Delta-alpha is the difference."),
    ("Cohen's kappa", "Agreement between the judge and the human consensus, corrected for chance. Weighted versions (linear, quadratic) give partial credit for near misses on ordinal scales."),
    ("The kappa paradox and Gwet's AC1/AC2", "When almost every item gets the same score (say 95% 'good'), chance agreement is huge and kappa/alpha collapse towards 0 even when raters agree on 98% of items. Gwet's AC1 (nominal) and AC2 (ordinal, partial credit) estimate chance differently and stay stable under such skew, so read them beside kappa, together with raw agreement and the score distributions."),
    ("Exact / within-one agreement", "Share of items where the judge gives exactly the human consensus score (or is at most one point away)."),
    ("Spearman and Kendall's tau-b", "Whether the judge ranks items in the same order as humans. A judge can rank well and still be shifted on every item: check the mean bias."),
    ("Mean bias", "Average of judge minus human consensus. Positive means the judge is more lenient (scores higher) than native speakers."),
    ("Human consensus", "The median human rating (ordinal) or the majority rating (nominal). Items whose humans split evenly, or with fewer than {min_humans} human rating(s) (report.consensus_min_humans), have no consensus and are left out of judge-vs-consensus figures (counted in n). Where an item's consensus is one human's rating, the figure's note says on how many items."),
    ("95% CI and n", "Intervals come from resampling items (not single ratings) {n_boot} times. n is the number of items behind a figure; figures on fewer than the minimum number of items are marked as too few to say much."),
    ("Calibration", "A monotone map from the judge's answer to the human scale, fitted on some items and always scored on others ({folds}-fold cross-validation by item), so 'after calibration' figures are honest out-of-sample numbers."),
]


def _glossary(meta: dict, cfg) -> list[tuple[str, str]]:
    """:data:`EXPLAIN` filled in with this report's settings and, for ordinal metrics of three or more
    levels, a near-miss example on the first such scale."""
    scale = next((m["levels"] for m in meta["metrics"].values() if m["measurement"] == "ordinal" and len(m["levels"]) > 2), None)
    ordinal = (f" Ordinal metrics count a {scale[0]}-vs-{scale[-1]} disagreement as worse than {scale[0]}-vs-{scale[1]}."
               if scale else "")
    fill = {"ordinal": ordinal, "n_boot": f"{cfg.n_boot:,}", "min_humans": cfg.consensus_min_humans, "folds": cfg.calibration_folds}
    return [(term, text.format(**fill)) for term, text in EXPLAIN]


def _cell(e: dict | None, digits: int = 2) -> str:
    if e is None:
        return "<td class='nc'>-</td>"
    if e["value"] is None or pd.isna(e["value"]):
        return f"<td class='nc' title='{_html.escape(str(e['note']))}'>not computable<br><small>{_html.escape(str(e['note']).replace('not computable: ', ''))}</small></td>"
    ci = f" [{fmt(e['ci_low'], digits)}, {fmt(e['ci_high'], digits)}]" if e["ci_low"] is not None and not pd.isna(e["ci_low"]) else ""
    flag = " class='small'" if e["small"] else ""
    note = f" title='{_html.escape(str(e['note']))}'" if e["note"] else ""
    return f"<td{flag}{note}>{fmt(e['value'], digits)}{ci}<br><small>n={int(e['n_items'])}</small></td>"


class _Charts:
    """Collects figures; plotly.js is embedded with the first one only."""

    def __init__(self):
        self.count = 0

    def add(self, fig: go.Figure, caption: str) -> str:
        fig.update_layout(margin=dict(l=60, r=20, t=50, b=50), font=dict(size=12))
        div = pio.to_html(fig, full_html=False, include_plotlyjs=self.count == 0,
                          config={"displaylogo": False, "responsive": True}, div_id=f"chart-{self.count}")
        self.count += 1
        return f"<figure>{div}<figcaption>{caption}</figcaption></figure>"


def _ac(meta: dict, metric: str) -> str:
    return "hj_ac2" if meta["metrics"][metric]["measurement"] == "ordinal" else "hj_ac1"


def render_html(meta: dict, imp, cells: pd.DataFrame, extras: list[dict], verdict_rows: list[dict], cal_info: list[dict], cfg,
                pairwise: dict | None = None, pw_frames: dict | None = None, decisions: dict | None = None,
                system: dict | None = None) -> tuple[str, int]:
    """The report page and the number of charts in it, in plotly's 'plotly_white' template."""
    before = pio.templates.default
    pio.templates.default = "plotly_white"  # once for all figures: a template set per figure is deep-copied each time
    try:
        return _page(meta, imp, cells, extras, verdict_rows, cal_info, cfg, pairwise or {}, pw_frames or {}, decisions or {},
                     system or {})
    finally:
        pio.templates.default = before


def _page(meta: dict, imp, cells: pd.DataFrame, extras: list[dict], verdict_rows: list[dict], cal_info: list[dict], cfg,
          pairwise: dict, pw_frames: dict, decisions: dict, system: dict) -> tuple[str, int]:
    charts = _Charts()
    metrics = list(meta["metrics"])
    judges = sorted(j for j in cells["judge"].unique() if j and not j.endswith(CALIBRATED_SUFFIX))
    ex = pd.DataFrame(extras)
    warning = [f"<p class='warning'><b>Warning.</b> {_html.escape(imp.warning)}. See <a href='#input'>input checks</a>.</p>"] if imp.warning else []
    body = [f"<h1>{_html.escape(meta['title'])}</h1>", *warning,
            f"<p class='meta'>Rubric set {_html.escape(meta['rubric_set'])}; created {meta['created']}; "
            f"{imp.counts.get('items rated', 0)} items rated, {imp.counts.get('human ratings used', 0)} human and "
            f"{imp.counts.get('judge ratings used', 0)} judge ratings used; {cfg.n_boot} bootstrap resamples over items per figure.</p>",
            "<p>This report answers one question: <b>for which metrics and languages can an LLM judge stand in for native "
            "speakers, and where must humans stay?</b> Start with the verdicts; every later section shows the evidence. "
            "Terms are explained at the end (<a href='#glossary'>glossary</a>).</p>"]
    body.append(_verdict_section(verdict_rows, meta, cfg))
    by_judge = dict(tuple(cells.groupby("judge", sort=False)))
    by_judge_extras = dict(tuple(ex.groupby("judge", sort=False)))
    for judge in judges:
        jc = _JudgeCells(by_judge[judge])
        cc = _JudgeCells(by_judge.get(judge + CALIBRATED_SUFFIX, cells.iloc[:0]))
        je = by_judge_extras[judge]
        body.append(f"<h2>Judge: {_html.escape(judge)}</h2>")
        body.append(_overview(charts, jc, metrics, meta))
        body.append(_confusion(charts, je, metrics, meta))
        for facet, name in (("language", "language"), ("task", "task")):
            body.append(_heatmap(charts, jc, metrics, meta, facet, name))
        body.append(_distributions(charts, je, metrics, meta))
        body.append(_length(charts, jc, metrics, meta))
        body.append(_calibration(charts, jc, cc, metrics, meta, [c for c in cal_info if c["judge"] == judge]))
    if not judges:
        body.append("<h2>Humans only</h2><p>No judge ratings were given; only human-human agreement is shown.</p>")
        body.append(_overview(charts, _JudgeCells(cells[cells["judge"] == ""]), metrics, meta))
    body.append(_pairwise_section(charts, pairwise, pw_frames))
    body.append(_decisions_section(decisions))
    body.append(_system_section(system))
    body.append(_import_section(imp))
    body.append("<h2 id='glossary'>Glossary: how to read the figures</h2><dl>"
                + "".join(f"<dt>{t}</dt><dd>{d}</dd>" for t, d in _glossary(meta, cfg)) + "</dl>"
                + "<p>The same numbers are in <code>report.json</code> and <code>report.csv</code> beside this file "
                "(one row per metric x judge x breakdown x statistic, with CI, n and notes).</p>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_html.escape(meta['title'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: "Noto Sans", system-ui, sans-serif; max-width: 1200px; margin: 0 auto; padding: 1em 2em; color: #212121; line-height: 1.45; }}
h1 {{ font-size: 1.7em; }} h2 {{ border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }}
th, td {{ border: 1px solid #ccc; padding: .3em .5em; text-align: center; vertical-align: top; }}
th {{ background: #f5f5f5; }} td.nc {{ color: #757575; font-style: italic; }} td.small {{ background: #fafafa; color: #616161; }}
figure {{ margin: 1em 0 2em; }} figcaption {{ font-size: .9em; color: #424242; margin-top: .3em; }}
.meta {{ color: #616161; }} .rule {{ background: #f5f5f5; padding: .6em .8em; border-left: 4px solid #90a4ae; font-size: .9em; }}
dt {{ font-weight: bold; margin-top: .6em; }}
.warning {{ background: #ffebee; border-left: 6px solid #c62828; padding: .6em .8em; }}
</style></head><body>
{''.join(body)}
</body></html>"""
    return page, charts.count


def _verdict_section(rows: list[dict], meta: dict, cfg) -> str:
    if not rows:
        return "<h2>Verdicts</h2><p>No judge ratings: no verdicts.</p>"
    df = pd.DataFrame(rows)
    out = ["<h2>Verdicts: can the judge replace a native speaker?</h2>",
           f"<p class='rule'><b>Rule.</b> {verdict_rule(cfg)}</p>"]
    for judge, jd in df.groupby("judge", sort=True):
        langs = ["all languages"] + sorted(x for x in jd["language"].unique() if x != "all languages")
        out.append(f"<p>Judge <b>{_html.escape(judge)}</b>. Each cell: verdict, alpha and Gwet's AC among humans, Delta-alpha raw / "
                   "after calibration (95% CI), all on the n items with a judge score and at least two human ratings; what a verdict "
                   "other than the rule's tests rests on, and any note, follow (hover a cell for both).</p><table><tr><th>metric</th>"
                   + "".join(f"<th>{_html.escape(lang)}</th>" for lang in langs) + "</tr>")
        by_cell = {(r["metric"], r["language"]): r for r in jd.to_dict("records")}
        for metric in meta["metrics"]:
            tds = []
            for lang in langs:
                r = by_cell.get((metric, lang))
                if r is None:
                    tds.append("<td class='nc'>-</td>")
                    continue
                cal = "" if r["delta_alpha_calibrated"] is None else f" / {fmt(r['delta_alpha_calibrated'])}"
                ci = r["delta_alpha_ci"]
                why = _html.escape("; ".join(filter(None, [r["basis"], r["note"]])), quote=True)
                prev = "" if r["prevalence"] is None else "<br>" + ", ".join(
                    f"{lv}: humans {h:.1%} / judge {j:.1%}" for lv, h, j in
                    zip(meta["metrics"][metric]["levels"], r["prevalence"]["humans"], r["prevalence"]["judge"]))
                note = f"<br><i>{_html.escape(r['note'])}</i>" if r["note"] else ""
                # the usual basis (Delta-alpha and kappa) is in the rule above; others are spelt out
                basis = f"<br>rests on: {_html.escape(r['basis'])}" if r["verdict"] in ("compare on prevalence", "humans disagree") else ""
                tds.append(f"<td style='background:{VERDICT_COLOURS[r['verdict']]}' title=\"{why}\"><b>{r['verdict']}</b><br>"
                           f"<small>humans &alpha; {fmt(r['human_alpha'])}, AC {fmt(r['human_ac'])}<br>&Delta;&alpha; {fmt(r['delta_alpha'])}{cal}"
                           f"<br>[{fmt(ci[0])}, {fmt(ci[1])}] n={r['n_items']}{basis}{prev}{note}</small></td>")
            out.append(f"<tr><th>{_html.escape(meta['metrics'][metric]['title'])}</th>{''.join(tds)}</tr>")
        out.append("</table>")
    return "".join(out)


def _ci_bar(e: dict | None) -> tuple[float, float]:
    """Error-bar lengths (below, above) of a cell's value; 0 where there is no value or no CI."""
    if e is None or any(e[k] is None or pd.isna(e[k]) for k in ("value", "ci_low", "ci_high")):
        return 0.0, 0.0
    return e["value"] - e["ci_low"], e["ci_high"] - e["value"]


class _JudgeCells:
    """One judge's statistic rows, looked up by (metric, statistic, facet, level) in constant time."""

    def __init__(self, cells: pd.DataFrame):
        self.empty = cells.empty
        self._rows = {(r["metric"], r["statistic"], r["facet"], r["level"]): r for r in cells.to_dict("records")}
        self._levels = {facet: sorted(levels.unique()) for facet, levels in cells.groupby("facet")["level"]}

    def get(self, metric: str, stat: str, facet: str = "overall", level: str = "all") -> dict | None:
        return self._rows.get((metric, stat, facet, level))

    def levels(self, facet: str) -> list[str]:
        return self._levels.get(facet, [])


def _overview(charts: _Charts, jc: _JudgeCells, metrics: list[str], meta: dict) -> str:
    fig = go.Figure()
    titles = [meta["metrics"][m]["title"] for m in metrics]
    ns = []
    for key, (label, colour) in SERIES.items():
        ys, lo, hi, text = [], [], [], []
        for m in metrics:
            e = jc.get(m, _ac(meta, m) if key == "ac" else key)
            ok = e is not None and e["value"] is not None and not pd.isna(e["value"])
            ys.append(e["value"] if ok else None)
            minus, plus = _ci_bar(e)
            lo.append(minus)
            hi.append(plus)
            text.append(f"n={int(e['n_items'])}" if e is not None else "")
            if e is not None:
                ns.append(int(e["n_items"]))
        fig.add_bar(name=label, x=titles, y=ys, marker_color=colour, text=text, textposition="inside", insidetextanchor="start",
                    textfont=dict(color="white", size=10),
                    error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo))
    fig.update_layout(barmode="group", title="Agreement per metric, with the human-human ceiling", yaxis_title="coefficient (1 = perfect, 0 = chance)",
                      legend=dict(orientation="h", y=-0.15), height=460)
    caption = ("Grey bars: agreement among humans (the ceiling). Blue: the same coefficient when the judge replaces one human; a blue bar "
               "close to the grey one means the judge behaves like another native speaker. Purple/green: judge against the human consensus "
               f"(kappa; Gwet's AC, which resists skewed score distributions). Error bars are 95% bootstrap CIs over items; n on each bar "
               f"(between {min(ns, default=0)} and {max(ns, default=0)} items).")
    table = ["<table><tr><th>statistic</th>" + "".join(f"<th>{_html.escape(t)}</th>" for t in titles) + "</tr>"]
    for stat, label in GLOSSARY.items():
        row = [jc.get(m, stat) for m in metrics]
        if any(r is not None for r in row):
            table.append(f"<tr><th style='text-align:left'>{label}</th>" + "".join(_cell(r) for r in row) + "</tr>")
    table.append("</table>")
    return "<h3>Agreement per metric (all items)</h3>" + charts.add(fig, caption) + "".join(table)


def _confusion(charts: _Charts, je: pd.DataFrame, metrics: list[str], meta: dict) -> str:
    rows = [je[(je["metric"] == m) & (je["facet"] == "overall")].iloc[0] for m in metrics]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[meta["metrics"][m]["title"] for m in metrics],
                        horizontal_spacing=min(0.08, 0.5 / max(len(metrics) - 1, 1)))  # plotly: at most 1 / (cols - 1)
    ns = []
    for i, (m, r) in enumerate(zip(metrics, rows), start=1):
        labels = [f"{v} {lab}" for v, lab in zip(meta["metrics"][m]["levels"], meta["metrics"][m]["labels"])]
        z = r["confusion"]
        ns.append(int(sum(map(sum, z))))
        fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", showscale=False, text=z, texttemplate="%{text}",
                                 hovertemplate="human %{y}<br>judge %{x}<br>%{z} items<extra></extra>"), row=1, col=i)
        fig.update_xaxes(title_text="judge", row=1, col=i)
        fig.update_yaxes(title_text="human consensus" if i == 1 else None, row=1, col=i, autorange="reversed")
    fig.update_layout(title="Confusion matrices: human consensus (rows) x judge (columns)", height=380)
    caption = ("Each cell counts items with that human consensus score (row) and judge score (column); the diagonal is exact agreement. "
               "Mass to the right of the diagonal means the judge is more lenient than native speakers. Items: "
               + ", ".join(f"{meta['metrics'][m]['title']} n={n}" + (f" ({r['consensus_single_human']} with a single human's rating as the consensus)"
                           if r["consensus_single_human"] else "") for m, n, r in zip(metrics, ns, rows)) + ".")
    return "<h3>Confusion matrices</h3>" + charts.add(fig, caption)


def _heatmap(charts: _Charts, jc: _JudgeCells, metrics: list[str], meta: dict, facet: str, name: str) -> str:
    levels = jc.levels(facet)
    if not levels:
        return ""
    ylabels, z, text = [], [], []
    for m in metrics:
        for key in ("hh_alpha", "alpha_judge_sub", "ac"):
            stat = _ac(meta, m) if key == "ac" else key
            ylabels.append(f"{meta['metrics'][m]['title']}: {SERIES[key][0]}")
            zr, tr = [], []
            for lvl in levels:
                e = jc.get(m, stat, facet, lvl)
                ok = e is not None and e["value"] is not None and not pd.isna(e["value"])
                zr.append(e["value"] if ok else None)
                tr.append((f"{e['value']:.2f}" if ok else "n/c") + (f"<br>n={int(e['n_items'])}" if e is not None else "") + ("*" if e is not None and e["small"] else ""))
            z.append(zr)
            text.append(tr)
    fig = go.Figure(go.Heatmap(z=z, x=levels, y=ylabels, text=text, texttemplate="%{text}", colorscale="RdYlGn", zmin=-0.2, zmax=1,
                               colorbar=dict(title="coef."), hovertemplate="%{y}<br>" + name + " %{x}: %{text}<extra></extra>"))
    fig.update_layout(title=f"Agreement by {name}", height=120 + 34 * len(ylabels), yaxis=dict(autorange="reversed"), margin=dict(l=380))
    caption = (f"Rows: per metric, alpha among humans, alpha with the judge replacing one human, and Gwet's AC of judge vs consensus; columns: {name}. "
               "Each cell shows the value and the number of items behind it; * marks cells with too few items to say much; n/c = not computable "
               "(see report.json for the reason).")
    return f"<h3>Agreement by {name}</h3>" + charts.add(fig, caption)


def _distributions(charts: _Charts, je: pd.DataFrame, metrics: list[str], meta: dict) -> str:
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[meta["metrics"][m]["title"] for m in metrics])
    parts = []
    for i, m in enumerate(metrics, start=1):
        r = je[(je["metric"] == m) & (je["facet"] == "overall")].iloc[0]
        labels = [f"{v} {lab}" for v, lab in zip(meta["metrics"][m]["levels"], meta["metrics"][m]["labels"])]
        for name, dist, colour in (("human ratings", r["human_dist"], "#455a64"), ("judge", r["judge_dist"], "#1e88e5")):
            total = sum(dist)
            share = [d / total if total else 0 for d in dist]
            fig.add_bar(x=labels, y=share, name=name, marker_color=colour, showlegend=i == 1, text=[f"{s:.0%}" for s in share],
                        textposition="outside", row=1, col=i)
        parts.append(f"{meta['metrics'][m]['title']}: {sum(r['human_dist'])} human ratings, {sum(r['judge_dist'])} judge ratings")
    fig.update_layout(barmode="group", title="Score distributions (prevalence): humans vs judge", yaxis_tickformat=".0%", height=380)
    caption = ("Share of ratings at each level. A judge whose bars sit to the right of the humans' is lenient; heavy skew to one level "
               "is what makes kappa and alpha unstable (see the glossary). " + "; ".join(parts) + ".")
    return "<h3>Human vs judge score distributions</h3>" + charts.add(fig, caption)


def _length(charts: _Charts, jc: _JudgeCells, metrics: list[str], meta: dict) -> str:
    levels = sorted(jc.levels("length_bin"), key=lambda s: int(s) if s.isdigit() else 99)
    if not levels:
        return "<h3>Agreement by length quintile</h3><p>No length bins were given for the items.</p>"
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[meta["metrics"][m]["title"] for m in metrics], shared_yaxes=True)
    ns = []
    for i, m in enumerate(metrics, start=1):
        for key in ("hh_alpha", "alpha_judge_sub", "ac"):
            stat = _ac(meta, m) if key == "ac" else key
            es = [jc.get(m, stat, "length_bin", lvl) for lvl in levels]
            ys = [e["value"] if e is not None and e["value"] is not None and not pd.isna(e["value"]) else None for e in es]
            ns += [int(e["n_items"]) for e in es if e is not None and key == "alpha_judge_sub"]
            fig.add_scatter(x=[f"Q{lvl}" for lvl in levels], y=ys, mode="lines+markers", name=SERIES[key][0], line_color=SERIES[key][1],
                            showlegend=i == 1, row=1, col=i,
                            text=[f"n={int(e['n_items'])}" if e is not None else "" for e in es], hovertemplate="%{x}: %{y:.2f} (%{text})<extra></extra>")
    fig.update_layout(title="Agreement by response-length quintile (Q1 shortest)", height=380, legend=dict(orientation="h", y=-0.2))
    caption = ("Quintiles of response length (graphemes) within each language x task. Does agreement, or the judge's place relative to the "
               f"human ceiling, change with length? Items per quintile (judge and >= 2 humans): {min(ns, default=0)}-{max(ns, default=0)}.")
    return "<h3>Agreement by length quintile</h3>" + charts.add(fig, caption)


def _calibration(charts: _Charts, jc: _JudgeCells, cc: _JudgeCells, metrics: list[str], meta: dict, info: list[dict]) -> str:
    if cc.empty:
        notes = "".join(f"<li>{_html.escape(i['metric'])}: {_html.escape(i['note'])}</li>" for i in info)
        return f"<h3>Calibration</h3><p>No calibrated judge was fitted.</p><ul>{notes}</ul>"
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[meta["metrics"][m]["title"] for m in metrics], shared_yaxes=True)
    for i, m in enumerate(metrics, start=1):
        levels = ["all"] + jc.levels("language")
        for name, src, colour in (("before", jc, "#90a4ae"), ("after calibration", cc, "#fb8c00")):
            es = [src.get(m, _ac(meta, m), "overall" if lvl == "all" else "language", lvl) for lvl in levels]
            ok = [e is not None and e["value"] is not None and not pd.isna(e["value"]) for e in es]
            fig.add_bar(x=levels, y=[e["value"] if k else None for e, k in zip(es, ok)], name=name, marker_color=colour,
                        showlegend=i == 1, row=1, col=i,
                        error_y=dict(type="data", symmetric=False, array=[_ci_bar(e)[1] for e in es],
                                     arrayminus=[_ci_bar(e)[0] for e in es]))
    fig.update_layout(barmode="group", title="Judge vs human consensus (Gwet's AC) before and after calibration", height=420,
                      legend=dict(orientation="h", y=-0.25))
    n = [int(i["n_items"]) for i in info if i["language"] == "all"]
    caption = ("Gwet's AC (AC2 for ordinal metrics, AC1 for nominal) between the judge and the human consensus, raw and after a "
               f"monotone calibration map fitted by {meta['config']['calibration_folds']}-fold cross-validation over items (never scored on items it was fitted on). "
               f"Items with a judge score and a human rating: {', '.join(map(str, n))} per metric.")
    before_after = ["<p>Agreement with the human consensus before &rarr; after calibration (n items):</p><table><tr><th>metric</th><th>language</th>"
                    + "".join(f"<th>{GLOSSARY[s].replace('judge vs human consensus: ', '')}</th>" for s in CAL_STATS) + "</tr>"]
    for m in metrics:
        for lvl in ["all"] + jc.levels("language"):
            facet = "overall" if lvl == "all" else "language"
            tds = []
            for stat in CAL_STATS:
                b, a = jc.get(m, stat, facet, lvl), cc.get(m, stat, facet, lvl)
                tds.append("<td>-</td>" if b is None or a is None else
                           f"<td>{fmt(b['value'])} &rarr; <b>{fmt(a['value'])}</b><br><small>n={int(a['n_items'])}</small></td>")
            before_after.append(f"<tr><td>{_html.escape(meta['metrics'][m]['title'])}</td><td>{_html.escape(lvl)}</td>{''.join(tds)}</tr>")
    before_after.append("</table>")
    rows = ["<table><tr><th>metric</th><th>language</th><th>n</th><th>method</th><th>map (judge answer &rarr; human level)</th><th>note</th></tr>"]
    for i in info:
        mapping = ", ".join(f"{k}&rarr;{v:g}" for k, v in list(i.get("mapping", {}).items())[:12])
        rows.append(f"<tr><td>{_html.escape(i['metric'])}</td><td>{_html.escape(str(i['language']))}</td><td>{i['n_items']}</td>"
                    f"<td>{i['method'] or '-'}</td><td>{mapping}</td><td>{_html.escape(i['note'])}</td></tr>")
    rows.append("</table>")
    return "<h3>Calibration before / after</h3>" + charts.add(fig, caption) + "".join(before_after) + "".join(rows)


def _import_section(imp) -> str:
    counts = "".join(f"<tr><th style='text-align:left'>{_html.escape(k)}</th><td>{v}</td></tr>" for k, v in imp.counts.items())
    if imp.issues:
        issues = "".join(f"<tr><td style='text-align:left'>{_html.escape(i.kind)}</td><td>{i.count}</td><td>{_html.escape(i.action)}</td>"
                         f"<td style='text-align:left'><small>{_html.escape('; '.join(i.examples))}</small></td></tr>" for i in imp.issues)
        issues = f"<table><tr><th>what</th><th>count</th><th>action</th><th>examples</th></tr>{issues}</table>"
    else:
        issues = "<p>Nothing was unmatched, duplicated or out of scale.</p>"
    ignored = (f"<p>Columns not used by the report (ignored): {_html.escape(', '.join(imp.ignored_columns))}.</p>"
               if imp.ignored_columns else "")
    return (f"<h2 id='input'>Input checks</h2>{ignored}<p>Source: <code>{_html.escape(imp.source)}</code>. Every rating that could not be used and every item "
            f"without ratings is counted here.</p><table>{counts}</table>{issues}")


def _table(records: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """A table of ``records`` (all their keys, or ``columns``); numbers to ``digits`` places, every text escaped."""
    if not records:
        return "<p>None.</p>"
    cols = columns or list(dict.fromkeys(k for r in records for k in r))

    def cell(v) -> str:
        if isinstance(v, float):
            return fmt(v, digits)
        if isinstance(v, list):
            return "[" + ", ".join(cell(x) for x in v) + "]"
        return "-" if v is None else _html.escape(str(v))

    head = "".join(f"<th>{_html.escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in records)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _pairwise_section(charts: _Charts, summary: dict, frames: dict) -> str:
    """Leaderboards, their agreement, pair agreement and position/length biases of the pairwise comparisons."""
    head = "<h2 id='pairwise'>Pairwise</h2>"
    if "leaderboards" not in summary:
        return head + f"<p>{_html.escape(summary.get('note', 'no pairwise comparisons'))}.</p>"
    from .pairwise.report import rank_figure

    c = summary["counts"]
    parts = [head, f"<p>{c['rows_used']} of {c['rows']} comparisons used ({c['rows_not_submitted']} not submitted); "
             f"Bradley-Terry ({_html.escape(summary['model'])} ties, prior {summary['prior']}), {summary['n_boot']} "
             "prompt-bootstrap resamples. The same numbers are in <code>report.json</code> (<code>pairwise</code>) "
             "and the <code>pairwise_*.csv</code> files.</p>"]
    lb = frames.get("leaderboards", pd.DataFrame())
    if len(lb) and lb["raters"].nunique() > 1:
        for criterion in sorted(lb["criterion"].unique()):
            parts.append(charts.add(rank_figure(lb, criterion), f"Criterion {_html.escape(str(criterion))}: each model's "
                                    "rank by the humans (x) and by each judge (y); on the diagonal both rank it alike."))
    titles = {"win_rates": "Win rate (ties count half; 95% prompt-bootstrap CIs) and share of decisive comparisons won",
              "leaderboards": "Leaderboards (per language and overall)", "leaderboard_agreement":
              "Leaderboard agreement: humans vs each judge (Kendall tau-b, Spearman, top-k)",
              "pair_agreement": "Agreement on pairs", "consistency": "Position consistency (the same pair shown both ways)",
              "first_position": "First-position win rate", "length_bias": "Length bias (the longer response wins)",
              "notes": "Leaderboards that could not be fitted"}
    for name, title in titles.items():
        if summary.get(name):
            parts.append(f"<h3>{title}</h3>" + _table(summary[name]))
    return "".join(parts)


def _system_section(summary: dict) -> str:
    """Per judge x metric x language: how the judge's mean scores per source model order the systems vs the humans'."""
    head = "<h2 id='system'>System-level agreement</h2>"
    if "agreement" not in summary:
        return head + f"<p>{_html.escape(summary.get('note', 'no system-level agreement'))}.</p>"
    return "".join([
        head, "<p>Per source model (system): the mean human score and the mean judge score over the items with both; "
        "Spearman, Kendall tau-b and Pearson across systems, with percentile CIs from "
        f"{summary['n_boot']} item resamples within each system. The same numbers are in <code>report.json</code> "
        "(<code>system</code>) and <code>system_agreement.csv</code>.</p>",
        _table(summary["agreement"], ["judge", "metric", "language", "n_systems", "n_items", "statistic", "value",
                                      "ci_low", "ci_high"]),
    ])


def _decisions_section(summary: dict) -> str:
    """PPI++ estimates, escalation thresholds, bias tables and the panel of judges."""
    head = "<h2 id='decisions'>Decisions</h2>"
    if "ppi" not in summary:
        return head + f"<p>{_html.escape(summary.get('note', 'no decision statistics'))}.</p>"
    ppi_cols = ["target", "judge", "metric", "language", "acceptable_at", "n_labelled", "n_unlabelled", "estimate", "ci_low",
                "ci_high", "classical", "classical_ci_low", "classical_ci_high", "judge_only", "n_effective",
                "labels_saved", "note"]
    esc = (_table(summary["escalation"]) if summary["escalation"] else f"<p>{_html.escape(summary['escalation_note'] or 'None')}.</p>")
    panel = summary["panel"]
    return "".join([
        head, "<p>The same numbers are in <code>report.json</code> (<code>decisions</code>) and the "
        "<code>decisions_*.csv</code> files.</p>",
        "<h3>Mean human score and share acceptable (PPI++)</h3><p>Human-rated items are the labelled ones, items only the "
        "judge scored the unlabelled ones. <i>classical</i>: the human-only estimate and interval; <i>judge_only</i>: the "
        "judge's (biased) mean; <i>n_effective</i>: how many human labels the human-only estimate would need for the "
        "PPI++ interval's width (<i>labels_saved</i>: the judge's worth in human labels).</p>",
        _table(summary["ppi"], [c for c in ppi_cols if any(c in r for r in summary["ppi"])]),
        f"<h3>Escalation thresholds (target agreement {summary['escalation_target']:g}, delta {summary['escalation_delta']:g})</h3>",
        esc,
        "<h3>Bias by length bin</h3>", _table(summary["length_bias"]), "<h4>Trend per length bin</h4>", _table(summary["length_trend"]),
        "<h3>Self-preference</h3>", _table(summary["self_preference"]),
        "<h3>Panel of judges</h3>",
        f"<p>{_html.escape(panel['note'])}.</p>" if "note" in panel else
        "<p>The panel is evaluated like a judge in the sections above.</p>" + _table([{"count": k, "items": v} for k, v in panel.items()]),
    ])
