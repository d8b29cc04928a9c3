"""The self-contained HTML report: plotly.js embedded once, no network needed to open it.

The page is rendered from the Jinja2 templates in ``reports/templates/`` with autoescape on, so every
text from the data (rubric set, metric, level, language, task, judge and model names, notes, paths)
is escaped there. Taken as is: plotly's own chart HTML (:meth:`_Charts.add`) and the verdict rule's
wording (code, with the config's numbers).
"""

from __future__ import annotations

import copy
from functools import lru_cache

import jinja2
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.subplots import make_subplots

from .agreement import GLOSSARY
from .analysis import fmt, records, verdict_rule
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


def _missing(v) -> bool:
    """Jinja test ``missing``: None or NaN."""
    return v is None or pd.isna(v)


def _value(v, digits: int = 3) -> str:
    """A table value as text: numbers to ``digits`` places, lists bracketed, None as '-'."""
    if isinstance(v, float):
        return fmt(v, digits)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x, digits) for x in v) + "]"
    return "-" if v is None else str(v)


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters.update(fmt=fmt, value=_value)
_ENV.tests["missing"] = _missing
_ENV.globals.update(zip=zip, columns_of=lambda records: list(dict.fromkeys(k for r in records for k in r)),
                    # all cells' texts in one call: a Jinja call per cell was the slowest part of the page at Updesh scale
                    texts_of=lambda records, cols, digits: [[_value(r.get(c), digits) for c in cols] for r in records],
                    VERDICT_COLOURS=VERDICT_COLOURS, GLOSSARY=GLOSSARY, CAL_STATS=CAL_STATS)


@lru_cache(maxsize=None)
def _subplots(titles: tuple[str, ...], shared_yaxes: bool = False, spacing: float | None = None) -> dict:
    """The layout plotly's ``make_subplots`` gives one row of ``len(titles)`` panels (axes, domains, titles),
    without the template; copy it before changing it."""
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=list(titles), shared_yaxes=shared_yaxes,
                        **({} if spacing is None else {"horizontal_spacing": spacing}))
    layout = fig.to_plotly_json()["layout"]
    layout.pop("template", None)
    return layout


def _panels(titles: list[str], **kwargs) -> dict:
    """A figure dict of one row of subplots (:func:`_subplots`), no traces yet."""
    return {"data": [], "layout": copy.deepcopy(_subplots(tuple(titles), **kwargs))}


def _in_panel(trace: dict, col: int) -> dict:
    """``trace`` placed in subplot ``col`` (1-based) of a row: plotly's ``add_trace(row=1, col=col)``."""
    suffix = "" if col == 1 else str(col)
    return {**trace, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def _axis(layout: dict, name: str, col: int) -> dict:
    """The layout's ``xaxis``/``yaxis`` dict of subplot ``col``."""
    return layout.setdefault(name + ("" if col == 1 else str(col)), {})


class _Charts:
    """Collects figures (plotly figures, or figure dicts in plotly's JSON form, written without plotly's
    validation); plotly.js is embedded with the first one only."""

    def __init__(self):
        self.count = 0
        self.template = pio.templates["plotly_white"].to_plotly_json()

    def add(self, fig: go.Figure | dict, caption: str) -> dict:
        """The figure for the template's ``figure`` macro: its HTML and its caption (escaped there)."""
        if isinstance(fig, dict):  # what update_layout and the default template do to a plotly figure
            layout = fig["layout"]
            layout["margin"] = {**layout.get("margin", {}), **dict(l=60, r=20, t=50, b=50)}
            layout["font"] = {**layout.get("font", {}), "size": 12}
            layout.setdefault("template", self.template)
        else:
            fig.update_layout(margin=dict(l=60, r=20, t=50, b=50), font=dict(size=12))
        div = pio.to_html(fig, full_html=False, include_plotlyjs=self.count == 0, validate=not isinstance(fig, dict),
                          config={"displaylogo": False, "responsive": True}, div_id=f"chart-{self.count}")
        self.count += 1
        # plotly's own generated HTML, trusted as is: its JSON escapes <, > and / in every string from the data
        return {"html": Markup(div), "caption": caption}


@lru_cache(maxsize=None)
def _colorscale(name: str) -> list:
    """A named colour scale as the [position, colour] pairs plotly writes for it."""
    return [list(pair) for pair in go.Heatmap(colorscale=name).colorscale]


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
    """The figures in page order (plotly.js goes with the first), then the page from ``report.html.j2``."""
    charts = _Charts()
    metrics = list(meta["metrics"])
    judges = sorted(j for j in cells["judge"].unique() if j and not j.endswith(CALIBRATED_SUFFIX))
    by_judge = dict(tuple(cells.groupby("judge", sort=False)))
    by_judge_extras = dict(tuple(pd.DataFrame(extras).groupby("judge", sort=False)))
    sections = []
    for judge in judges:
        jc = _JudgeCells(by_judge[judge])
        cc = _JudgeCells(by_judge.get(judge + CALIBRATED_SUFFIX, cells.iloc[:0]))
        je = by_judge_extras[judge]
        sections.append({"judge": judge, "overview": _overview(charts, jc, metrics, meta),
                         "confusion": _confusion(charts, je, metrics, meta),
                         "heatmaps": [h for h in (_heatmap(charts, jc, metrics, meta, facet) for facet in ("language", "task")) if h],
                         "distributions": _distributions(charts, je, metrics, meta), "length": _length(charts, jc, metrics, meta),
                         "calibration": _calibration(charts, jc, cc, metrics, meta, [c for c in cal_info if c["judge"] == judge])})
    humans_only = None if judges else _overview(charts, _JudgeCells(cells[cells["judge"] == ""]), metrics, meta)
    rank_charts = _rank_charts(charts, pairwise, pw_frames)
    rule = Markup(verdict_rule(cfg))  # the code's own wording and <b> tags around the config's numbers
    page = _ENV.get_template("report.html.j2").render(
        meta=meta, imp=imp, cfg=cfg, rule=rule, verdicts=_verdict_tables(verdict_rows, meta), judges=sections,
        humans_only=humans_only, pairwise=pairwise, rank_charts=rank_charts, decisions=decisions, system=system,
        glossary=_glossary(meta, cfg))
    return page, charts.count


def _verdict_tables(rows: list[dict], meta: dict) -> list[dict]:
    """Per judge: the languages (columns) and per metric its title, levels and verdict per language (None: no verdict)."""
    tables = []
    for judge, jd in pd.DataFrame(rows).groupby("judge", sort=True) if rows else ():
        langs = ["all languages"] + sorted(x for x in jd["language"].unique() if x != "all languages")
        by_cell = {(r["metric"], r["language"]): r for r in records(jd)}
        tables.append({"judge": judge, "languages": langs,
                       "rows": [(spec["title"], spec["levels"], [by_cell.get((metric, lang)) for lang in langs])
                                for metric, spec in meta["metrics"].items()]})
    return tables


def _ci_bar(e: dict | None) -> tuple[float, float]:
    """Error-bar lengths (below, above) of a cell's value; 0 where there is no value or no CI."""
    if e is None or any(e[k] is None or pd.isna(e[k]) for k in ("value", "ci_low", "ci_high")):
        return 0.0, 0.0
    return e["value"] - e["ci_low"], e["ci_high"] - e["value"]


class _JudgeCells:
    """One judge's statistic rows, looked up by (metric, statistic, facet, level) in constant time."""

    def __init__(self, cells: pd.DataFrame):
        self.empty = cells.empty
        self._rows = {(r["metric"], r["statistic"], r["facet"], r["level"]): r for r in records(cells)}
        self._levels = {facet: sorted(levels.unique()) for facet, levels in cells.groupby("facet")["level"]}

    def get(self, metric: str, stat: str, facet: str = "overall", level: str = "all") -> dict | None:
        return self._rows.get((metric, stat, facet, level))

    def levels(self, facet: str) -> list[str]:
        return self._levels.get(facet, [])


def _overview(charts: _Charts, jc: _JudgeCells, metrics: list[str], meta: dict) -> dict:
    """The chart of the main coefficients per metric and the table of every statistic (rows: statistics with a value)."""
    fig = {"data": [], "layout": {}}
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
        fig["data"].append({"type": "bar", "name": label, "x": titles, "y": ys, "marker": {"color": colour}, "text": text,
                            "textposition": "inside", "insidetextanchor": "start", "textfont": {"color": "white", "size": 10},
                            "error_y": {"type": "data", "symmetric": False, "array": hi, "arrayminus": lo}})
    fig["layout"].update(barmode="group", title={"text": "Agreement per metric, with the human-human ceiling"},
                         yaxis={"title": {"text": "coefficient (1 = perfect, 0 = chance)"}}, legend={"orientation": "h", "y": -0.15},
                         height=460)
    caption = ("Grey bars: agreement among humans (the ceiling). Blue: the same coefficient when the judge replaces one human; a blue bar "
               "close to the grey one means the judge behaves like another native speaker. Purple/green: judge against the human consensus "
               f"(kappa; Gwet's AC, which resists skewed score distributions). Error bars are 95% bootstrap CIs over items; n on each bar "
               f"(between {min(ns, default=0)} and {max(ns, default=0)} items).")
    rows = [(label, row) for label, row in ((label, [jc.get(m, stat) for m in metrics]) for stat, label in GLOSSARY.items())
            if any(r is not None for r in row)]
    return {"chart": charts.add(fig, caption), "titles": titles, "rows": rows}


def _confusion(charts: _Charts, je: pd.DataFrame, metrics: list[str], meta: dict) -> dict:
    rows = [je[(je["metric"] == m) & (je["facet"] == "overall")].iloc[0] for m in metrics]
    fig = _panels([meta["metrics"][m]["title"] for m in metrics],
                  spacing=min(0.08, 0.5 / max(len(metrics) - 1, 1)))  # plotly: at most 1 / (cols - 1)
    ns = []
    for i, (m, r) in enumerate(zip(metrics, rows), start=1):
        labels = [f"{v} {lab}" for v, lab in zip(meta["metrics"][m]["levels"], meta["metrics"][m]["labels"])]
        z = r["confusion"]
        ns.append(int(sum(map(sum, z))))
        fig["data"].append(_in_panel({"type": "heatmap", "z": z, "x": labels, "y": labels, "colorscale": _colorscale("Blues"),
                                      "showscale": False, "text": z, "texttemplate": "%{text}",
                                      "hovertemplate": "human %{y}<br>judge %{x}<br>%{z} items<extra></extra>"}, i))
        _axis(fig["layout"], "xaxis", i)["title"] = {"text": "judge"}
        _axis(fig["layout"], "yaxis", i).update(autorange="reversed", **({"title": {"text": "human consensus"}} if i == 1 else {}))
    fig["layout"].update(title={"text": "Confusion matrices: human consensus (rows) x judge (columns)"}, height=380)
    caption = ("Each cell counts items with that human consensus score (row) and judge score (column); the diagonal is exact agreement. "
               "Mass to the right of the diagonal means the judge is more lenient than native speakers. Items: "
               + ", ".join(f"{meta['metrics'][m]['title']} n={n}" + (f" ({r['consensus_single_human']} with a single human's rating as the consensus)"
                           if r["consensus_single_human"] else "") for m, n, r in zip(metrics, ns, rows)) + ".")
    return charts.add(fig, caption)


def _heatmap(charts: _Charts, jc: _JudgeCells, metrics: list[str], meta: dict, name: str) -> dict | None:
    """The main coefficients per level of facet ``name`` (language, task); None without levels."""
    levels = jc.levels(name)
    if not levels:
        return None
    ylabels, z, text = [], [], []
    for m in metrics:
        for key in ("hh_alpha", "alpha_judge_sub", "ac"):
            stat = _ac(meta, m) if key == "ac" else key
            ylabels.append(f"{meta['metrics'][m]['title']}: {SERIES[key][0]}")
            zr, tr = [], []
            for lvl in levels:
                e = jc.get(m, stat, name, lvl)
                ok = e is not None and e["value"] is not None and not pd.isna(e["value"])
                zr.append(e["value"] if ok else None)
                tr.append((f"{e['value']:.2f}" if ok else "n/c") + (f"<br>n={int(e['n_items'])}" if e is not None else "") + ("*" if e is not None and e["small"] else ""))
            z.append(zr)
            text.append(tr)
    fig = {"data": [{"type": "heatmap", "z": z, "x": levels, "y": ylabels, "text": text, "texttemplate": "%{text}",
                     "colorscale": _colorscale("RdYlGn"), "zmin": -0.2, "zmax": 1, "colorbar": {"title": {"text": "coef."}},
                     "hovertemplate": "%{y}<br>" + name + " %{x}: %{text}<extra></extra>"}],
           "layout": {"title": {"text": f"Agreement by {name}"}, "height": 120 + 34 * len(ylabels),
                      "yaxis": {"autorange": "reversed"}, "margin": {"l": 380}}}
    caption = (f"Rows: per metric, alpha among humans, alpha with the judge replacing one human, and Gwet's AC of judge vs consensus; columns: {name}. "
               "Each cell shows the value and the number of items behind it; * marks cells with too few items to say much; n/c = not computable "
               "(see report.json for the reason).")
    return {"facet": name, "chart": charts.add(fig, caption)}


def _distributions(charts: _Charts, je: pd.DataFrame, metrics: list[str], meta: dict) -> dict:
    fig = _panels([meta["metrics"][m]["title"] for m in metrics])
    parts = []
    for i, m in enumerate(metrics, start=1):
        r = je[(je["metric"] == m) & (je["facet"] == "overall")].iloc[0]
        labels = [f"{v} {lab}" for v, lab in zip(meta["metrics"][m]["levels"], meta["metrics"][m]["labels"])]
        for name, dist, colour in (("human ratings", r["human_dist"], "#455a64"), ("judge", r["judge_dist"], "#1e88e5")):
            total = sum(dist)
            share = [d / total if total else 0 for d in dist]
            fig["data"].append(_in_panel({"type": "bar", "x": labels, "y": share, "name": name, "marker": {"color": colour},
                                          "showlegend": i == 1, "text": [f"{s:.0%}" for s in share], "textposition": "outside"}, i))
        parts.append(f"{meta['metrics'][m]['title']}: {sum(r['human_dist'])} human ratings, {sum(r['judge_dist'])} judge ratings")
    fig["layout"].update(barmode="group", title={"text": "Score distributions (prevalence): humans vs judge"}, height=380)
    fig["layout"]["yaxis"]["tickformat"] = ".0%"
    caption = ("Share of ratings at each level. A judge whose bars sit to the right of the humans' is lenient; heavy skew to one level "
               "is what makes kappa and alpha unstable (see the glossary). " + "; ".join(parts) + ".")
    return charts.add(fig, caption)


def _length(charts: _Charts, jc: _JudgeCells, metrics: list[str], meta: dict) -> dict | None:
    """The main coefficients per length quintile; None without length bins."""
    levels = sorted(jc.levels("length_bin"), key=lambda s: int(s) if s.isdigit() else 99)
    if not levels:
        return None
    fig = _panels([meta["metrics"][m]["title"] for m in metrics], shared_yaxes=True)
    ns = []
    for i, m in enumerate(metrics, start=1):
        for key in ("hh_alpha", "alpha_judge_sub", "ac"):
            stat = _ac(meta, m) if key == "ac" else key
            es = [jc.get(m, stat, "length_bin", lvl) for lvl in levels]
            ys = [e["value"] if e is not None and e["value"] is not None and not pd.isna(e["value"]) else None for e in es]
            ns += [int(e["n_items"]) for e in es if e is not None and key == "alpha_judge_sub"]
            fig["data"].append(_in_panel({"type": "scatter", "x": [f"Q{lvl}" for lvl in levels], "y": ys, "mode": "lines+markers",
                                          "name": SERIES[key][0], "line": {"color": SERIES[key][1]}, "showlegend": i == 1,
                                          "text": [f"n={int(e['n_items'])}" if e is not None else "" for e in es],
                                          "hovertemplate": "%{x}: %{y:.2f} (%{text})<extra></extra>"}, i))
    fig["layout"].update(title={"text": "Agreement by response-length quintile (Q1 shortest)"}, height=380,
                         legend={"orientation": "h", "y": -0.2})
    caption = ("Quintiles of response length (graphemes) within each language x task. Does agreement, or the judge's place relative to the "
               f"human ceiling, change with length? Items per quintile (judge and >= 2 humans): {min(ns, default=0)}-{max(ns, default=0)}.")
    return charts.add(fig, caption)


def _calibration(charts: _Charts, jc: _JudgeCells, cc: _JudgeCells, metrics: list[str], meta: dict, info: list[dict]) -> dict:
    """The chart of Gwet's AC before and after calibration (None without a calibrated judge), the rows of the
    before / after table, and ``info``: the fitted maps or why there is none."""
    if cc.empty:
        return {"chart": None, "info": info}
    fig = _panels([meta["metrics"][m]["title"] for m in metrics], shared_yaxes=True)
    for i, m in enumerate(metrics, start=1):
        levels = ["all"] + jc.levels("language")
        for name, src, colour in (("before", jc, "#90a4ae"), ("after calibration", cc, "#fb8c00")):
            es = [src.get(m, _ac(meta, m), "overall" if lvl == "all" else "language", lvl) for lvl in levels]
            ok = [e is not None and e["value"] is not None and not pd.isna(e["value"]) for e in es]
            fig["data"].append(_in_panel({"type": "bar", "x": levels, "y": [e["value"] if k else None for e, k in zip(es, ok)],
                                          "name": name, "marker": {"color": colour}, "showlegend": i == 1,
                                          "error_y": {"type": "data", "symmetric": False, "array": [_ci_bar(e)[1] for e in es],
                                                      "arrayminus": [_ci_bar(e)[0] for e in es]}}, i))
    fig["layout"].update(barmode="group", title={"text": "Judge vs human consensus (Gwet's AC) before and after calibration"},
                         height=420, legend={"orientation": "h", "y": -0.25})
    n = [int(i["n_items"]) for i in info if i["language"] == "all"]
    caption = ("Gwet's AC (AC2 for ordinal metrics, AC1 for nominal) between the judge and the human consensus, raw and after a "
               f"monotone calibration map fitted by {meta['config']['calibration_folds']}-fold cross-validation over items (never scored on items it was fitted on). "
               f"Items with a judge score and a human rating: {', '.join(map(str, n))} per metric.")
    rows = []
    for m in metrics:
        for lvl in ["all"] + jc.levels("language"):
            facet = "overall" if lvl == "all" else "language"
            pairs = [(jc.get(m, stat, facet, lvl), cc.get(m, stat, facet, lvl)) for stat in CAL_STATS]
            rows.append((meta["metrics"][m]["title"], lvl, [None if b is None or a is None else (b, a) for b, a in pairs]))
    return {"chart": charts.add(fig, caption), "rows": rows, "info": info}


def _rank_charts(charts: _Charts, summary: dict, frames: dict) -> list[dict]:
    """Per criterion, each model's rank by the humans vs by each judge (when the leaderboards have more than one rater)."""
    lb = frames.get("leaderboards", pd.DataFrame())
    if "leaderboards" not in summary or not len(lb) or lb["raters"].nunique() < 2:
        return []
    from .pairwise.report import rank_figure

    return [charts.add(rank_figure(lb, criterion), f"Criterion {criterion}: each model's rank by the humans (x) and by each "
                       "judge (y); on the diagonal both rank it alike.") for criterion in sorted(lb["criterion"].unique())]
