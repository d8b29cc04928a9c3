"""Judge calibration: a monotone map from the judge's output to the human scale, cross-validated
by item so no item is ever scored by a map fitted on it.

Input x per item: the judge's expected score under its probabilities when it gave them (``probs``
JSON), else its own-scale score. Target y: the mean human score of the item. Ordinal and binary
metrics use isotonic regression (non-decreasing), nominal metrics with more than two levels a
lookup of the most frequent human level per judge answer. Predictions are rounded to the nearest
human level. The calibrated judge is returned as extra long-format rows (rater
``"<judge> · calibrated"``) and analysed like any judge.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

CALIBRATED_SUFFIX = " · calibrated"


def judge_input(rows: pd.DataFrame) -> pd.Series:
    """The judge's expected own-scale score from ``probs`` where given, else ``raw_score``/``score``."""
    base = rows["raw_score"].where(rows["raw_score"].notna(), rows["score"]).astype(float)
    probs = rows["probs"]
    if probs.isna().all():
        return base
    def expected(text, fallback):
        if not isinstance(text, str) or not text:
            return fallback
        p = json.loads(text)
        total = sum(p.values())
        return sum(float(k) * v for k, v in p.items()) / total if total > 0 else fallback
    return pd.Series([expected(t, b) for t, b in zip(probs, base)], index=rows.index, dtype=float)


def _nearest(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each value rounded to the nearest level (halfway: the lower level)."""
    return levels[np.abs(values[:, None] - levels[None, :]).argmin(1)]


def _fit_predict(x_tr, y_tr, x_te, levels: np.ndarray, monotone: bool) -> np.ndarray:
    if monotone:
        ux, codes = np.unique(x_tr, return_inverse=True)
        return _nearest(_isotonic(ux, codes, y_tr, x_te), levels)
    table = pd.DataFrame({"x": x_tr, "y": y_tr}).groupby("x")["y"].agg(lambda s: s.round().mode().iloc[0])
    fallback = pd.Series(y_tr).round().mode().iloc[0]
    return np.array([table.get(v, fallback) for v in x_te], dtype=float)


def _isotonic(ux: np.ndarray, codes: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The non-decreasing least-squares fit of y on x = ``ux[codes]`` (``ux`` sorted; items with equal x pooled),
    at ``at``: linear between the fitted points, clipped outside them (scikit-learn's
    IsotonicRegression(out_of_bounds="clip"), without its import and per-call checks)."""
    from scipy.optimize import isotonic_regression

    weight = np.bincount(codes, minlength=len(ux)).astype(float)
    seen = weight > 0  # the x values among these items
    fit = isotonic_regression(np.bincount(codes, weights=y, minlength=len(ux))[seen] / weight[seen], weights=weight[seen]).x
    return np.interp(at, ux[seen], fit)


def _folds(n: int, k: int, seed: int):
    """(train, test) index arrays of k folds over n items, shuffled by ``seed``: scikit-learn's
    ``KFold(k, shuffle=True, random_state=seed)`` splits."""
    order = np.random.RandomState(seed).permutation(n)
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    start = 0
    for size in sizes:
        test = np.zeros(n, bool)
        test[order[start:start + size]] = True
        start += size
        yield np.flatnonzero(~test), np.flatnonzero(test)


def cross_validated(x: np.ndarray, y: np.ndarray, levels: np.ndarray, monotone: bool, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold calibrated predictions (k folds over items). Monotone: x is sorted once; each fold's
    map is fitted on its items' codes and evaluated at the distinct x values."""
    pred = np.empty(len(x))
    ux, codes = np.unique(x, return_inverse=True)
    for tr, te in _folds(len(x), min(folds, len(x)), seed):
        pred[te] = _nearest(_isotonic(ux, codes[tr], y[tr], ux), levels)[codes[te]] if monotone else \
            _fit_predict(x[tr], y[tr], x[te], levels, monotone)
    return pred


def calibrate(ratings: pd.DataFrame, specs: dict, min_items: int = 30, min_items_language: int = 60,
              folds: int = 5, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Calibrated-judge rows for every (judge, metric) with enough items, and what was fitted.

    Per language when that language has at least ``min_items_language`` items with a judge score
    and a human rating; otherwise the language gets the pooled (all languages) out-of-fold map.
    The rows are found by integer codes (item x metric, judge x metric), not string-keyed groupings.
    """
    from .ppi import human_means, row_codes

    key = row_codes([ratings["metric"], ratings["item_id"]])
    target = human_means(ratings, key)  # an item x metric whose humans gave no score: NaN
    rated = np.bincount(key[(ratings["rater_kind"] == "human").to_numpy()], minlength=len(target)) > 0
    rows = np.flatnonzero((ratings["rater_kind"] == "judge").to_numpy() & ~ratings["rater"].str.endswith(CALIBRATED_SUFFIX).to_numpy(bool))
    (judge_code, judges), (metric_code, metrics), (lang_code, langs) = (
        (codes[rows], uniques) for codes, uniques in (pd.factorize(ratings[c], sort=True) for c in ("rater", "metric", "language")))
    group = judge_code.astype(np.int64) * len(metrics) + metric_code
    order = np.argsort(group, kind="stable")  # per judge x metric (sorted), the rows in table order
    bounds = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1], True]) if len(order) else np.array([0])
    x_all = judge_input(ratings[["raw_score", "score", "probs"]].iloc[rows]).to_numpy()
    taken, preds, names, info = [], [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        judge, metric = judges[group[order[a]] // len(metrics)], metrics[group[order[a]] % len(metrics)]
        spec = specs[metric]
        levels = np.array(spec.human.values, dtype=float)
        monotone = spec.measurement == "ordinal" or len(levels) == 2
        at = order[a:b][rated[key[rows[order[a:b]]]]]  # positions in ``rows`` of the items humans rated
        if len(at) < min_items:
            info.append({"judge": judge, "metric": metric, "language": "all", "n_items": len(at),
                         "method": None, "note": f"not calibrated: only {len(at)} items with a judge score and a human rating (need {min_items})"})
            continue
        x, y = x_all[at], target[key[rows[at]]]
        pred = cross_validated(x, y, levels, monotone, folds, seed)
        method = "isotonic regression" if monotone else "majority human level per judge answer"
        info.append({"judge": judge, "metric": metric, "language": "all", "n_items": len(at), "method": method,
                     "mapping": _mapping(x, y, levels, monotone), "note": "pooled over languages"})
        lang = lang_code[at]
        for c in np.unique(lang[lang >= 0]):  # (no language: the pooled map)
            pos = np.flatnonzero(lang == c)
            if len(pos) < min_items_language:
                info.append({"judge": judge, "metric": metric, "language": langs[c], "n_items": len(pos), "method": method,
                             "note": f"pooled map used: only {len(pos)} items (need {min_items_language} for a per-language fit)"})
                continue
            xl, yl = x[pos], y[pos]
            pred[pos] = cross_validated(xl, yl, levels, monotone, folds, seed)
            info.append({"judge": judge, "metric": metric, "language": langs[c], "n_items": len(pos), "method": method,
                         "mapping": _mapping(xl, yl, levels, monotone), "note": "fitted on this language"})
        taken.append(at)
        preds.append(pred)
        names.append(judge + CALIBRATED_SUFFIX)
    if not taken:
        return ratings.iloc[:0], info
    cal = ratings.iloc[rows[np.concatenate(taken)]].reset_index(drop=True)
    cal["rater"] = np.repeat(np.array(names, dtype=object), [len(t) for t in taken])
    cal["score"] = np.concatenate(preds)
    cal["probs"] = None
    return cal, info


def _mapping(x: np.ndarray, y: np.ndarray, levels: np.ndarray, monotone: bool) -> dict[str, float]:
    """The map fitted on all given items, for display: judge answer -> calibrated human level."""
    grid = np.unique(x)
    pred = _fit_predict(x, y, grid, levels, monotone)
    return {f"{g:g}": float(p) for g, p in zip(grid, pred)}
