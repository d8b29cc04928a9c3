"""All cells of a report: metric x judge x facet level (overall, task, language, length quintile),
plus the verdict per metric x language."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .agreement import Scale, analyse_cell
from .calibration import CALIBRATED_SUFFIX

FACETS = ["overall", "task", "language", "length_bin"]

VERDICT_RULE = (
    "Delta-alpha is Krippendorff's alpha when the judge replaces one human (averaged over which human) "
    "minus alpha among the humans, on the same items. The judge is <b>usable as is</b> when its "
    "Delta-alpha is at least {tol} and the upper end of its 95% CI is at least 0 (replacing a human by the "
    "judge does not lower agreement more than replacing a human by another human, within noise); "
    "<b>usable after calibration</b> when the raw judge fails that test and the cross-validated calibrated "
    "judge passes it; in both cases the judge must also carry information about the human scores: the lower "
    "end of the 95% CI of its Cohen's kappa against the human consensus (quadratic weights for ordinal metrics) "
    "must be above 0, so a judge that gives (or is calibrated to) nearly the same score to every item never "
    "passes. <b>Humans disagree</b> (checked first) when alpha among the humans on those items is below "
    "{min_alpha}: without a human ceiling there is nothing for a judge to match, so fix the rubric or the "
    "annotation before trusting either. <b>Humans needed</b> when both tests fail; <b>not enough data</b> with fewer than "
    "{min_items} items that have a judge score and at least two human ratings. Without a bootstrap (n_boot = 0) "
    "each CI bound is replaced by its point estimate."
)


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


def analyse(ratings: pd.DataFrame, specs: dict, n_boot: int = 1000, seed: int = 0, min_items: int = 10) -> tuple[list[dict], list[dict]]:
    """Statistic rows (one per metric x judge x facet level x statistic) and per-cell extras."""
    rng = np.random.default_rng(seed)
    rows_out, extras_out = [], []
    by_metric = dict(tuple(ratings.groupby("metric", sort=False)))
    for metric in [m for m in specs if m in by_metric]:
        scale = scale_of(specs[metric])
        sub = by_metric[metric]
        items, counts, idx, cat = _item_arrays(sub, scale)
        judge_rows = (sub["rater_kind"] == "judge").to_numpy()
        rater_code, rater_names = pd.factorize(sub["rater"])
        judges = sorted(sub.loc[judge_rows, "rater"].unique()) or [None]
        facet_levels = {"overall": [("all", np.ones(len(items), bool))]}
        for facet in FACETS[1:]:
            codes, names = pd.factorize(items[facet], sort=True)
            facet_levels[facet] = [(lvl, codes == c) for c, lvl in enumerate(names)]
        for judge in judges:
            j = np.full(len(items), -1)
            if judge is not None:
                sel = judge_rows & (rater_code == rater_names.get_loc(judge))
                j[idx[sel]] = cat[sel]
            for facet in FACETS:
                for level, mask in facet_levels[facet]:
                    stats, extras = analyse_cell(counts[mask], j[mask], scale, n_boot, rng, min_items)
                    key = {"metric": metric, "judge": judge or "", "calibrated": bool(judge and judge.endswith(CALIBRATED_SUFFIX)),
                           "facet": facet, "level": str(level)}
                    extras_out.append({**key, **extras})
                    for stat, e in stats.items():
                        rows_out.append({**key, "statistic": stat, **e})
    return rows_out, extras_out


def verdicts(cells: pd.DataFrame, min_items: int = 30, tolerance: float = -0.10, min_human_alpha: float = 0.2,
             n_boot: int = 1000) -> list[dict]:
    """Verdict per (raw) judge x metric x language (and all languages), by :data:`VERDICT_RULE`."""
    sel = cells["facet"].isin(["overall", "language"]) & (cells["judge"] != "")
    d = cells[sel & (cells["statistic"] == "delta_alpha")]
    hh = cells[sel & (cells["statistic"] == "hh_alpha")].set_index(["metric", "judge", "facet", "level"])["value"]
    kappa = cells[sel & cells["statistic"].isin(["hj_kappa", "hj_kappa_quadratic"])].sort_values("statistic")
    kappa = kappa.drop_duplicates(["metric", "judge", "facet", "level"], keep="last").set_index(["metric", "judge", "facet", "level"])
    out = []
    for (metric, judge, facet, level), raw in d[~d["calibrated"]].groupby(["metric", "judge", "facet", "level"], sort=False):
        r = raw.iloc[0]
        cal = d[(d["judge"] == judge + CALIBRATED_SUFFIX) & (d["metric"] == metric) & (d["facet"] == facet) & (d["level"] == level)]
        c = cal.iloc[0] if len(cal) else None

        def passes(e) -> bool:
            if e is None or _num(e["value"]) is None:
                return False
            k = kappa.loc[(metric, e["judge"], facet, level)]
            return e["value"] >= tolerance and _bound(e, "ci_high") >= 0 and (_bound(k, "ci_low") or 0) > 0

        human_alpha = _num(hh.get((metric, judge, facet, level)))
        if r["n_items"] < min_items or r["value"] is None or pd.isna(r["value"]):
            verdict = "not enough data"
        elif human_alpha is None or human_alpha < min_human_alpha:
            verdict = "humans disagree"
        elif passes(r):
            verdict = "usable as is"
        elif passes(c):
            verdict = "usable after calibration"
        else:
            verdict = "humans needed"
        note = "no bootstrap (n_boot = 0): CI bounds replaced by point estimates" if n_boot == 0 else ""
        out.append({"metric": metric, "judge": judge, "language": "all languages" if facet == "overall" else level,
                    "verdict": verdict, "note": note, "n_items": int(r["n_items"]), "human_alpha": human_alpha,
                    "delta_alpha": _num(r["value"]), "delta_alpha_ci": [_num(r["ci_low"]), _num(r["ci_high"])],
                    "delta_alpha_calibrated": _num(c["value"]) if c is not None else None,
                    "delta_alpha_calibrated_ci": [_num(c["ci_low"]), _num(c["ci_high"])] if c is not None else None})
    return out


def _bound(e, end: str) -> float | None:
    """A CI bound of a cell; its point estimate when there is no CI (no bootstrap)."""
    return _num(e[end]) if _num(e[end]) is not None else _num(e["value"])


def _num(x):
    return None if x is None or pd.isna(x) else float(x)
