"""All cells of a report: metric x judge x facet level (overall, task, language, length quintile),
plus the verdict per metric x language."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .agreement import Scale, analyse_judges
from .calibration import CALIBRATED_SUFFIX
from .config import ReportConfig

FACETS = ["overall", "task", "language", "length_bin"]

VERDICT_RULE = (
    "Delta-alpha is Krippendorff's alpha when the judge replaces one human (averaged over which human) "
    "minus alpha among the humans, on the same items: those with a judge score and at least two human ratings "
    "(n in each cell; the humans' alpha shown is on these items too). The judge is <b>usable as is</b> when its "
    "Delta-alpha is at least {tol} and the upper end of its 95% CI is at least 0 (replacing a human by the "
    "judge does not lower agreement more than replacing a human by another human, within noise); "
    "<b>usable after calibration</b> when the raw judge fails that test and the cross-validated calibrated "
    "judge passes it; in both cases the judge must also carry information about the human scores: the lower "
    "end of the 95% CI of its Cohen's kappa against the human consensus (quadratic weights for ordinal metrics) "
    "must be above 0, so a judge that gives (or is calibrated to) nearly the same score to every item never "
    "passes. Checked first: when alpha among the humans is below {min_alpha}, the verdict is <b>compare on "
    "prevalence</b> if the humans still agree on the scores themselves (Gwet's AC among them at least {min_ac}): "
    "nearly every item gets the same score, so chance agreement is near total and alpha cannot rise above 0; the "
    "humans agree that the data is good but not on which rare items are flawed, so compare the judge with them "
    "on how often each score is given (the distributions), not item by item. Otherwise the verdict is "
    "<b>humans disagree</b>: without a human ceiling there is nothing for a judge to match, so fix the rubric or "
    "the annotation before trusting either. <b>Humans needed</b> when both tests fail; <b>not enough data</b> "
    "with fewer than {min_items} such items. The <b>all languages</b> verdict is never more favourable than the "
    "least favourable language with enough data: pooling lets differences between languages (and per-language "
    "calibration) raise agreement above every single language's, so a judge that fails in each language can pass "
    "pooled. Without a bootstrap (n_boot = 0) each CI bound is replaced by its point estimate."
)

VERDICT_RANK = {"usable as is": 3, "usable after calibration": 2, "humans needed": 1, "humans disagree": 1,
                "compare on prevalence": 1, "not enough data": 0}


def verdict_rule(cfg: ReportConfig) -> str:
    """:data:`VERDICT_RULE` with the configured thresholds."""
    return VERDICT_RULE.format(tol=cfg.verdict_tolerance, min_items=cfg.verdict_min_items,
                               min_alpha=cfg.verdict_min_human_alpha, min_ac=cfg.verdict_min_human_ac)


def scale_of(spec) -> Scale:
    return Scale(values=tuple(float(v) for v in spec.human.values), level=spec.measurement)


def _item_arrays(rows: pd.DataFrame, scale: Scale):
    """Items of one metric, their (I, K) human counts and a category index per rating row."""
    items = rows.drop_duplicates("item_id")[["item_id", "language", "task", "length_bin"]].reset_index(drop=True)
    pos = pd.Index(items["item_id"])
    cat = np.searchsorted(np.asarray(scale.values), rows["score"].to_numpy(float))
    idx = pos.get_indexer(rows["item_id"])
    human = (rows["rater_kind"] == "human").to_numpy()
    counts = np.zeros((len(items), scale.k), dtype=np.int64)
    np.add.at(counts, (idx[human], cat[human]), 1)
    return items, counts, idx, cat


def analyse(ratings: pd.DataFrame, specs: dict, n_boot: int = 1000, seed: int = 0, min_items: int = 10,
            consensus_min_humans: int = 1) -> tuple[list[dict], list[dict]]:
    """Statistic rows (one per metric x judge x facet level x statistic) and per-cell extras.

    Each metric x judge resamples from its own random stream (``seed``, metric, judge), so its
    intervals do not depend on the other metrics and judges in the table; a calibrated judge shares its
    raw judge's stream and resamples (:func:`~reports.agreement.analyse_judges`). The metrics are
    analysed in parallel, one thread per CPU core (numpy releases the GIL in its loops). BLAS runs
    on one thread: its products are small, and extra threads only wait for cores.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    # integer codes for the whole table once (splitting the frame by metric copied every column)
    metric_code, metric_names = pd.factorize(ratings["metric"])
    order = np.argsort(metric_code, kind="stable")
    bounds = np.searchsorted(metric_code[order], np.arange(len(metric_names) + 1))
    table = {"item": pd.factorize(ratings["item_id"])[0], "rater": pd.factorize(ratings["rater"]),
             "human": (ratings["rater_kind"] == "human").to_numpy(), "judge": (ratings["rater_kind"] == "judge").to_numpy(),
             "score": ratings["score"].to_numpy(float), **{f: pd.factorize(ratings[f], sort=True) for f in FACETS[1:]}}
    rows_of = {m: order[bounds[i]:bounds[i + 1]] for i, m in enumerate(metric_names)}
    metrics = [m for m in specs if m in rows_of]

    def one(metric: str) -> tuple[list[dict], list[dict]]:
        return _analyse_metric(metric, table, rows_of[metric], scale_of(specs[metric]), n_boot, seed, min_items,
                               consensus_min_humans)

    # the costliest metrics first (more levels, more ratings), so no core is left with a long one at the end
    longest_first = sorted(metrics, key=lambda m: (scale_of(specs[m]).k, len(rows_of[m])), reverse=True)
    rows_out, extras_out = [], []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # (not on macOS)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(cores) as pool:
        done = dict(zip(longest_first, pool.map(one, longest_first)))
    for metric in metrics:
        rows_out += done[metric][0]
        extras_out += done[metric][1]
    return rows_out, extras_out


def _analyse_metric(metric: str, table: dict, rows: np.ndarray, scale: Scale, n_boot: int, seed: int, min_items: int,
                    consensus_min_humans: int) -> tuple[list[dict], list[dict]]:
    """:func:`analyse` for one metric's rating rows (positions in ``table``: the ratings' columns as arrays and codes)."""
    rows_out, extras_out = [], []
    item_ids, first, idx = np.unique(table["item"][rows], return_index=True, return_inverse=True)
    n_items = len(item_ids)
    cat = np.searchsorted(np.asarray(scale.values), table["score"][rows])
    human = table["human"][rows]
    counts = np.bincount(idx[human] * scale.k + cat[human], minlength=n_items * scale.k).reshape(n_items, scale.k)
    judge_rows = table["judge"][rows]
    rater_code, rater_names = table["rater"][0][rows], table["rater"][1]
    judges = sorted(rater_names[np.unique(rater_code[judge_rows])]) or [None]
    facet_levels = {"overall": [("all", np.ones(n_items, bool))]}
    for facet in FACETS[1:]:
        codes, names = table[facet]
        item_codes = codes[rows[first]]
        facet_levels[facet] = [(names[c], item_codes == c) for c in np.unique(item_codes[item_codes >= 0])]
    cells = [(facet, level, mask) for facet in FACETS for level, mask in facet_levels[facet]]
    results = {}
    for base, group in _judge_groups(judges).items():
        js = []
        for judge in group:
            j = np.full(n_items, -1)
            if judge is not None:
                sel = judge_rows & (rater_code == rater_names.get_loc(judge))
                j[idx[sel]] = cat[sel]
            js.append(j)
        rng = np.random.default_rng([seed, *f"{metric}\0{base}".encode()])
        results.update(zip(group, analyse_judges(counts, js, [mask for _, _, mask in cells], scale, n_boot, rng, min_items,
                                                 consensus_min_humans)))
    for judge in judges:
        for (facet, level, _), (stats, extras) in zip(cells, results[judge]):
            key = {"metric": metric, "judge": judge or "", "calibrated": bool(judge and judge.endswith(CALIBRATED_SUFFIX)),
                   "facet": facet, "level": str(level)}
            extras_out.append({**key, **extras})
            for stat, e in stats.items():
                rows_out.append({**key, "statistic": stat, **e})
    return rows_out, extras_out


def _judge_groups(judges: list[str | None]) -> dict[str, list[str | None]]:
    """The judges resampled together, by their raw judge's name: a raw judge (first) and its calibrated version."""
    groups: dict[str, list[str | None]] = {}
    for judge in sorted(judges, key=lambda j: (j or "").endswith(CALIBRATED_SUFFIX)):
        groups.setdefault((judge or "").removesuffix(CALIBRATED_SUFFIX), []).append(judge)
    return groups


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows as dicts of Python values, missing ones (NaN, NA, None) as None (JSON's null); one object
    array per column."""
    columns = frame.columns.tolist()
    lists = [frame.iloc[:, i].to_numpy(object, na_value=None).tolist() for i in range(len(columns))]
    return [dict(zip(columns, row)) for row in zip(*lists)]


def verdicts(cells: pd.DataFrame, extras: list[dict], cfg: ReportConfig) -> list[dict]:
    """Verdict per (raw) judge x metric x language (and all languages), by :data:`VERDICT_RULE`.

    Each row says which statistic the verdict rests on (``basis``) and why it was changed
    (``note``): a pooled verdict capped at its languages', or no bootstrap.
    """
    sel = cells["facet"].isin(["overall", "language"]) & (cells["judge"] != "")
    if not sel.any():
        return []
    keys = ["metric", "judge", "facet", "level"]
    stat = {name: {tuple(r[k] for k in keys): r for r in records(g)}  # statistic -> cell key -> row
            for name, g in cells[sel].groupby("statistic")}
    kappa = {**stat.get("hj_kappa", {}), **stat.get("hj_kappa_quadratic", {})}  # quadratic where there is one
    dist = {tuple(e[k] for k in keys): e for e in extras if e["facet"] in ("overall", "language")}
    delta = stat.get("delta_alpha", {})
    out = []
    for (metric, judge, facet, level), r in delta.items():
        if r["calibrated"]:
            continue
        c = delta.get((metric, judge + CALIBRATED_SUFFIX, facet, level))

        def passes(e) -> bool:
            if e is None or _num(e["value"]) is None:
                return False
            k = kappa[(metric, e["judge"], facet, level)]
            return e["value"] >= cfg.verdict_tolerance and _bound(e, "ci_high") >= 0 and (_bound(k, "ci_low") or 0) > 0

        key = (metric, judge, facet, level)
        human_alpha = _num(stat["hh_alpha_judged"][key]["value"])
        human_ac = _num(stat["hh_ac_judged"][key]["value"])
        basis = "Delta-alpha (Krippendorff's alpha, judge replacing a human vs humans) and Cohen's kappa against the human consensus"
        prevalence = None
        if r["n_items"] < cfg.verdict_min_items or _num(r["value"]) is None:
            verdict, basis = "not enough data", f"fewer than {cfg.verdict_min_items} items with a judge score and >= 2 human ratings"
        elif human_alpha is None or human_alpha < cfg.verdict_min_human_alpha:
            if human_ac is not None and human_ac >= cfg.verdict_min_human_ac:
                verdict = "compare on prevalence"
                basis = (f"humans agree on quality (Gwet's AC {human_ac:.2f}) but not on which items are flawed "
                         f"(alpha {fmt(human_alpha)}): compare the judge on prevalence, not item by item")
                ex = dist[key]
                prevalence = {"humans": _shares(ex["human_dist"]), "judge": _shares(ex["judge_dist"])}
            else:
                verdict = "humans disagree"
                basis = f"Krippendorff's alpha among humans {fmt(human_alpha)} and Gwet's AC {fmt(human_ac)}"
        elif passes(r):
            verdict = "usable as is"
        elif passes(c):
            verdict = "usable after calibration"
        else:
            verdict = "humans needed"
        note = "no bootstrap (n_boot = 0): CI bounds replaced by point estimates" if cfg.n_boot == 0 else ""
        out.append({"metric": metric, "judge": judge, "language": "all languages" if facet == "overall" else level,
                    "verdict": verdict, "basis": basis, "note": note, "n_items": int(r["n_items"]),
                    "human_alpha": human_alpha, "human_ac": human_ac, "prevalence": prevalence,
                    "delta_alpha": _num(r["value"]), "delta_alpha_ci": [_num(r["ci_low"]), _num(r["ci_high"])],
                    "delta_alpha_calibrated": _num(c["value"]) if c is not None else None,
                    "delta_alpha_calibrated_ci": [_num(c["ci_low"]), _num(c["ci_high"])] if c is not None else None})
    _cap_pooled(out)
    return out


def _cap_pooled(rows: list[dict]) -> None:
    """An all-languages verdict never more favourable than its least favourable language with enough data."""
    for pooled in (r for r in rows if r["language"] == "all languages"):
        langs = [r for r in rows if r["metric"] == pooled["metric"] and r["judge"] == pooled["judge"]
                 and r["language"] != "all languages" and r["verdict"] != "not enough data"]
        worst = min(langs, key=lambda r: VERDICT_RANK[r["verdict"]], default=None)
        if worst is not None and VERDICT_RANK[pooled["verdict"]] > VERDICT_RANK[worst["verdict"]]:
            pooled["note"] = "; ".join(filter(None, [pooled["note"], (
                f"pooled over languages the judge would be '{pooled['verdict']}', but in {worst['language']} it is "
                f"'{worst['verdict']}': differences between languages (and per-language calibration) can raise pooled "
                "agreement above every language's, so the pooled verdict is capped at the least favourable language")]))
            pooled["verdict"], pooled["basis"] = worst["verdict"], f"capped at {worst['language']}: {worst['basis']}"


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def fmt(v, digits: int = 2) -> str:
    """A figure for display: 'n/a' when missing."""
    return "n/a" if v is None or pd.isna(v) else f"{v:.{digits}f}"


def _bound(e, end: str) -> float | None:
    """A CI bound of a cell; its point estimate when there is no CI (no bootstrap)."""
    return _num(e[end]) if _num(e[end]) is not None else _num(e["value"])


def _num(x):
    return None if x is None or pd.isna(x) else float(x)
