"""Judge bias diagnostics: judge-minus-human bias by group with a trend test, and self-preference.

Input ``pairs``: one row per (item, human rating) with the judge's score on that item
(``item_id``, ``judge``, ``human``) and the grouping columns; an item may have several rows
(several humans, or several metrics on one scale). Bias in a group = mean(judge - human) over
its rows. Confidence intervals are percentile intervals of an item-clustered bootstrap: within
each group, items are drawn with replacement (all rows of a drawn item come along), so replicating
an item's rows never narrows an interval. Items with the same sums are exchangeable, so the draw is
a multinomial count per distinct item (the same distribution as a count per item, far fewer draws).
One resample set serves every figure, so differences (trend slope, self-preference) get joint intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .ppi import row_codes

FIGURES = ("judge_mean", "human_mean", "bias")


def _boot_means(pairs: pd.DataFrame, group: str, groups: Sequence, n_boot: int, seed: int):
    """Point (G, 3) and bootstrap (B, G, 3) means of judge, human and judge - human per group, and the
    items and rows per group (G, 2)."""
    missing = [c for c in ("item_id", "judge", "human", group) if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs: missing column(s) {missing}; expected item_id, judge, human and {group!r}")
    scores = {}
    for col in ("judge", "human"):
        scores[col] = pd.to_numeric(pairs[col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(scores[col]))
        if len(bad):
            raise ValueError(f"pairs: row {bad[0] + 1}, column {col!r}: expected a finite score, got {pairs[col].iloc[bad[0]]!r}")
    no_group = np.flatnonzero(pairs[group].isna().to_numpy())
    if len(no_group):
        raise ValueError(f"pairs: row {no_group[0] + 1}, column {group!r}: no group ({len(no_group)} such rows); "
                         "give every row its group (e.g. 'unknown')")
    item, item_ids = pd.factorize(pairs["item_id"])  # codes in order of first appearance
    code, values = pd.factorize(pairs[group])
    split = code != _first_per_item(code, item, len(item_ids))[item]
    if split.any():
        raise ValueError(f"pairs: item {item_ids[item[split].min()]!r} lies in more than one {group!r} group; "
                         "an item must belong to one group for the item-clustered bootstrap")
    rng = np.random.default_rng(seed)
    level = _first_per_item(pd.Index(groups).get_indexer(values)[code], item, len(item_ids))  # -1: not among groups
    per_item = np.c_[np.bincount(item, scores["judge"]), np.bincount(item, scores["human"]), np.bincount(item).astype(float)]
    point = np.full((len(groups), 3), np.nan)
    draws = np.full((n_boot, len(groups), 3), np.nan)
    counts = np.zeros((len(groups), 2), int)
    for g in range(len(groups)):
        s = per_item[level == g]  # (I, 3): sum judge, sum human, rows
        counts[g] = len(s), s[:, 2].sum()
        if not len(s):
            continue
        sums = np.c_[s[:, 0], s[:, 1], s[:, 0] - s[:, 1]]
        point[g] = sums.sum(0) / s[:, 2].sum()
        if len(s) >= 2:
            # items with the same row are exchangeable: drawing I items is drawing counts of the distinct rows
            rows, freq = _distinct_rows(s)
            w = rng.multinomial(len(s), freq / len(s), size=n_boot).astype(float)
            draws[:, g] = (w @ np.c_[rows[:, :2], rows[:, 0] - rows[:, 1]]) / (w @ rows[:, 2])[:, None]
    return point, draws, counts


def _first_per_item(values: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """Each item's value on its first row."""
    out = np.empty(n_items, np.asarray(values).dtype)
    out[item[::-1]] = np.asarray(values)[::-1]  # the last assignment to an index wins: the item's first row
    return out


def _distinct_rows(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of s and how often each occurs (hashed one column at a time, no sort of rows)."""
    _, first, freq = np.unique(row_codes(list(s.T)), return_index=True, return_counts=True)
    return s[first], freq


def bias_by_group(pairs: pd.DataFrame, group: str, ordered: bool | Sequence = False, n_boot: int = 2000,
                  seed: int = 0, alpha: float = 0.05) -> tuple[pd.DataFrame, dict | None]:
    """Per group: judge and human means and their difference (bias) with bootstrap CIs; and, when
    ``ordered`` (True: the group values' sort order, or the ordered levels), the trend: the
    least-squares slope of bias on the group's rank (0, 1, ...) with its bootstrap CI and a
    two-sided bootstrap p-value (2 x the smaller share of slopes on either side of 0, at least
    1 / n_boot: a bootstrap cannot resolve smaller p-values).
    Groups with one item get no CI (bias ``significant`` only when the CI excludes 0).
    """
    levels = list(ordered) if not isinstance(ordered, bool) else sorted(pairs[group].dropna().unique())
    unlisted = sorted(set(pairs[group].dropna().unique().tolist()) - set(levels), key=str)
    if unlisted:
        raise ValueError(f"ordered: group {unlisted[0]!r} of column {group!r} is not among the ordered levels {levels}; "
                         "list every group")
    point, draws, counts = _boot_means(pairs, group, levels, n_boot, seed)
    lo, hi = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)  # NaN for one-item groups
    columns = {group: levels, "n_items": counts[:, 0], "n_pairs": counts[:, 1]}
    for f, name in enumerate(FIGURES):
        columns.update({name: point[:, f], f"{name}_ci_low": lo[:, f], f"{name}_ci_high": hi[:, f]})
    columns["significant"] = (columns["bias_ci_low"] > 0) | (columns["bias_ci_high"] < 0)
    table = pd.DataFrame(columns)  # one frame, not a column inserted at a time
    if ordered is False:
        return table, None
    keep = np.isfinite(draws[:, :, 2]).all(0)
    if keep.sum() < 2:
        return table, {"slope": None, "note": "a trend needs at least two groups with two or more items each"}
    x = np.arange(len(levels))[keep].astype(float)
    x -= x.mean()

    def slope(b):
        return (b[..., keep] * x).sum(-1) / (x**2).sum()

    reps = slope(draws[:, :, 2])
    s_lo, s_hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p = min(1.0, max(2 * min((reps <= 0).mean(), (reps >= 0).mean()), 1 / n_boot))  # resolution: 1 / n_boot
    return table, {"slope": float(slope(point[:, 2])), "ci_low": float(s_lo), "ci_high": float(s_hi), "p_value": float(p),
                   "significant": bool(s_lo > 0 or s_hi < 0), "levels": [str(v) for v in np.asarray(levels)[keep]],
                   "note": "bias per step of the ordered groups (least squares on ranks), item-clustered bootstrap"}


def self_preference(pairs: pd.DataFrame, own: str, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Whether the judge favours responses of its own model family.

    ``own`` names a boolean column: the response was generated by the judge's model family.
    judge_gap = judge mean on own-family responses minus on others; human_gap the same for the
    humans; self_preference = judge_gap - human_gap (= bias on own - bias on others), each with
    a bootstrap CI; significant when the self-preference CI excludes 0.
    """
    flags = pairs[own]
    if not flags.isin([True, False]).all():
        raise ValueError(f"pairs: column {own!r} must be True/False (response by the judge's own model family)")
    point, draws, counts = _boot_means(pairs, own, [True, False], n_boot, seed)
    n_own, n_other = counts[:, 0]
    if not np.isfinite(draws).all():
        return {"self_preference": None, "note": f"needs at least two items from the judge's family ({n_own}) and "
                                                 f"two from others ({n_other})"}
    gap, gap_draws = point[0] - point[1], draws[:, 0] - draws[:, 1]
    lo, hi = np.percentile(gap_draws, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    out = {"n_items_own": int(n_own), "n_items_other": int(n_other)}
    for f, name in enumerate(["judge_gap", "human_gap", "self_preference"]):
        out[name], out[f"{name}_ci"] = float(gap[f]), [float(lo[f]), float(hi[f])]
    out["significant"] = bool(lo[2] > 0 or hi[2] < 0)
    return out
