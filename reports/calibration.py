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


def _fit_predict(x_tr, y_tr, x_te, levels: np.ndarray, monotone: bool) -> np.ndarray:
    if monotone:
        pred = _isotonic(x_tr, y_tr, x_te)
        return levels[np.abs(pred[:, None] - levels[None, :]).argmin(1)]
    table = pd.DataFrame({"x": x_tr, "y": y_tr}).groupby("x")["y"].agg(lambda s: s.round().mode().iloc[0])
    fallback = pd.Series(y_tr).round().mode().iloc[0]
    return np.array([table.get(v, fallback) for v in x_te], dtype=float)


def _isotonic(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
    """The non-decreasing least-squares fit of y on x (items with equal x pooled), at x_te: linear between the
    fitted points, clipped outside them (scikit-learn's IsotonicRegression(out_of_bounds="clip"), without
    its import and per-call checks)."""
    from scipy.optimize import isotonic_regression

    ux, inverse = np.unique(x_tr, return_inverse=True)
    weight = np.bincount(inverse).astype(float)
    fit = isotonic_regression(np.bincount(inverse, weights=y_tr) / weight, weights=weight).x
    return np.interp(x_te, ux, fit)


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
    """Out-of-fold calibrated predictions (k folds over items)."""
    pred = np.empty(len(x))
    for tr, te in _folds(len(x), min(folds, len(x)), seed):
        pred[te] = _fit_predict(x[tr], y[tr], x[te], levels, monotone)
    return pred


def calibrate(ratings: pd.DataFrame, specs: dict, min_items: int = 30, min_items_language: int = 60,
              folds: int = 5, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Calibrated-judge rows for every (judge, metric) with enough items, and what was fitted.

    Per language when that language has at least ``min_items_language`` items with a judge score
    and a human rating; otherwise the language gets the pooled (all languages) out-of-fold map.
    """
    humans = ratings[ratings["rater_kind"] == "human"]
    human_mean = {m: s.droplevel(0) for m, s in humans.groupby(["metric", "item_id"])["score"].mean().groupby(level=0)}
    judges = ratings[(ratings["rater_kind"] == "judge") & ~ratings["rater"].str.endswith(CALIBRATED_SUFFIX)]
    rows, info = [], []
    for (judge, metric), jr in judges.groupby(["rater", "metric"], sort=True):
        spec = specs[metric]
        levels = np.array(spec.human.values, dtype=float)
        monotone = spec.measurement == "ordinal" or len(levels) == 2
        target = human_mean.get(metric, pd.Series(dtype=float))
        jr = jr[target.index.get_indexer(jr["item_id"]) >= 0]  # (faster than isin on arrow strings)
        if len(jr) < min_items:
            info.append({"judge": judge, "metric": metric, "language": "all", "n_items": len(jr),
                         "method": None, "note": f"not calibrated: only {len(jr)} items with a judge score and a human rating (need {min_items})"})
            continue
        x = judge_input(jr).to_numpy()
        y = target.to_numpy()[target.index.get_indexer(jr["item_id"])]
        pred = cross_validated(x, y, levels, monotone, folds, seed)
        method = "isotonic regression" if monotone else "majority human level per judge answer"
        info.append({"judge": judge, "metric": metric, "language": "all", "n_items": len(jr), "method": method,
                     "mapping": _mapping(x, y, levels, monotone), "note": "pooled over languages"})
        lang_code, langs = pd.factorize(jr["language"], sort=True)  # positions per language (no index lookups)
        for c, lang in enumerate(langs):
            pos = np.flatnonzero(lang_code == c)
            if len(pos) < min_items_language:
                info.append({"judge": judge, "metric": metric, "language": lang, "n_items": len(pos), "method": method,
                             "note": f"pooled map used: only {len(pos)} items (need {min_items_language} for a per-language fit)"})
                continue
            xl, yl = x[pos], y[pos]
            pred[pos] = cross_validated(xl, yl, levels, monotone, folds, seed)
            info.append({"judge": judge, "metric": metric, "language": lang, "n_items": len(pos), "method": method,
                         "mapping": _mapping(xl, yl, levels, monotone), "note": "fitted on this language"})
        out = jr.copy()
        out["rater"] = judge + CALIBRATED_SUFFIX
        out["score"] = pred
        out["probs"] = None
        rows.append(out)
    cal = pd.concat(rows, ignore_index=True) if rows else ratings.iloc[:0]
    return cal, info


def _mapping(x: np.ndarray, y: np.ndarray, levels: np.ndarray, monotone: bool) -> dict[str, float]:
    """The map fitted on all given items, for display: judge answer -> calibrated human level."""
    grid = np.unique(x)
    pred = _fit_predict(x, y, grid, levels, monotone)
    return {f"{g:g}": float(p) for g, p in zip(grid, pred)}
