"""Agreement per cell (metric x facet level x judge) with item-bootstrap confidence intervals.

An item is reduced to its *pattern*: the count of human ratings per category plus the judge's
category (or none). Every statistic in :mod:`reports.stats` is a function of sums over items of
per-pattern quantities, so a cell is summarised by its P distinct patterns and their counts.
The bootstrap resamples items by the Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al.
2012): each item gets an independent Poisson(1) weight instead of a multinomial count, so a pattern
held by c items of a cell gets a Poisson(c) count, one draw per pattern and resample. It
approximates the ordinary bootstrap (the resample size is random around I rather than I; the two
agree to O(1/I)) at about half the cost: at Updesh scale the multinomial's binomials (~80 ns each)
were half of the statistics phase, Poisson draws take ~44 ns. The bootstrap draws a (B, P) count
matrix and gets every statistic for all B resamples from one matrix product, never touching rating
rows; the coverage tests (tests/test_report_bootstrap.py) check its intervals.

A raw judge and its calibrated version rate the same items, so they are resampled together
(:func:`analyse_judges`): one draw per cell over their joint patterns serves both (the weights are
the items'), pairs their resamples, and sums the humans' parts and computes the humans' statistics
once. Measured on the Updesh shape (one 5-level metric, 35 cells, 1,000 resamples, one thread): the
statistics of one judge take ~23 ms, the percentile intervals ~12 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import stats as S

GLOSSARY = {
    "hh_alpha": "Krippendorff's alpha among humans",
    "hh_fleiss": "Fleiss' kappa among humans",
    "hh_pairwise": "humans: pairwise exact agreement",
    "hh_ac": "Gwet's AC among humans",
    "hh_alpha_judged": "Krippendorff's alpha among humans, on the items the judge scored",
    "hh_ac_judged": "Gwet's AC among humans, on the items the judge scored",
    "hh_pairwise_judged": "humans: pairwise exact agreement, on the items the judge scored",
    "hj_exact": "judge vs human consensus: exact agreement",
    "hj_within_one": "judge vs human consensus: within one point",
    "hj_kappa": "judge vs human consensus: Cohen's kappa",
    "hj_kappa_linear": "judge vs human consensus: Cohen's kappa, linear weights",
    "hj_kappa_quadratic": "judge vs human consensus: Cohen's kappa, quadratic weights",
    "hj_ac1": "judge vs human consensus: Gwet's AC1",
    "hj_ac2": "judge vs human consensus: Gwet's AC2 (ordinal weights)",
    "hj_spearman": "judge vs human consensus: Spearman's rho",
    "hj_kendall": "judge vs human consensus: Kendall's tau-b",
    "hj_bias": "mean bias, judge minus human consensus",
    "alpha_with_judge": "Krippendorff's alpha with the judge as one more rater",
    "alpha_judge_sub": "Krippendorff's alpha when the judge replaces one human",
    "delta_alpha": "alpha(judge replaces a human) minus alpha(humans), same items",
    "delta_pairwise": "judge-human minus human-human pairwise exact agreement, same items",
}


@dataclass(frozen=True)
class Scale:
    """What the statistics need to know about a metric's human scale."""

    values: tuple[float, ...]
    level: str  # "ordinal" or "nominal"

    @property
    def k(self) -> int:
        return len(self.values)

    @property
    def ordered(self) -> bool:
        """Bias and rank statistics make sense: ordinal, or a binary nominal scale (0/1)."""
        return self.level == "ordinal" or self.k == 2


def consensus(counts: np.ndarray, level: str, min_humans: int = 1) -> np.ndarray:
    """Human consensus category per row of counts (I, K), or -1 where there is none.

    ordinal: the median rating; with an even number of ratings whose two middle ratings
    differ, there is no consensus. nominal: the strict majority/plurality category; a tie
    for the top count gives no consensus. Items with fewer than ``min_humans`` (at least one)
    human ratings have none.
    """
    h = np.asarray(counts)
    m = h.sum(-1)
    out = np.full(len(h), -1)
    if level == "ordinal":
        cum = np.cumsum(h, -1)
        lo = (cum >= ((m + 1) // 2)[:, None]).argmax(-1)  # lower median
        hi = (cum >= (m // 2 + 1)[:, None]).argmax(-1)  # upper median
        ok = lo == hi
        chosen = lo
    else:
        top = h.max(-1)
        ok = (h == top[:, None]).sum(-1) == 1
        chosen = h.argmax(-1)
    ok &= m >= max(min_humans, 1)
    out[ok] = chosen[ok]
    return out


class PatternFeatures:
    """Per-pattern additive quantities (see module doc) for the patterns of a set of items.

    The Fleiss parts depend on each cell's most common number of human raters, so they are
    summed per cell in :func:`analyse_cells` (:attr:`fleiss`, masked by :attr:`m`).
    """

    def __init__(self, humans: np.ndarray, judge: np.ndarray, scale: Scale, consensus_min_humans: int = 1):
        k = scale.k
        h = humans.astype(float)
        m = h.sum(-1)
        has_j = judge >= 0
        ej = np.zeros_like(h)
        ej[has_j, judge[has_j]] = 1.0
        pair = m >= 2
        both = pair & has_j
        cons = consensus(humans, scale.level, consensus_min_humans)
        has_t = (cons >= 0) & has_j
        table = np.zeros((len(h), k, k))
        table[has_t, cons[has_t], judge[has_t]] = 1.0
        hh = S.item_coincidences(h)
        jh = ej[:, :, None] * h[:, None, :] + h[:, :, None] * ej[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            # one human replaced by the judge, averaged over which: (m-2)/m of the human pairs plus the judge pairs
            sub = np.where(both[:, None, None], ((m - 2) / m)[:, None, None] * hh + jh / m[:, None, None], 0.0)
            pi = np.where((m > 0)[:, None], h / m[:, None], 0.0)
            jh_agree = np.where(both, (h * ej).sum(-1) / m, 0.0)
        gw = np.eye(k) if scale.level == "nominal" else S.gwet_ordinal_weights(k)
        pair_agree = S.gwet_item_agreement(h, np.eye(k))
        gwet_pa = S.gwet_item_agreement(h, gw)
        self.parts = {
            "hh_coinc": hh,
            "n_pairable": pair.astype(float),
            "pair_agree": pair_agree,
            "gwet_pa": gwet_pa,
            "pi": pi,
            "n_rated": (m > 0).astype(float),
            "table": table,
            "with_judge": S.item_coincidences(h + ej) * has_j[:, None, None],
            "n_with_judge": (has_j & (m >= 1)).astype(float),
            "sub_coinc": sub,
            "hh_coinc_both": hh * both[:, None, None],
            "n_both": both.astype(float),
            "jh_agree": jh_agree,
            "hh_agree_both": pair_agree * both,
            "gwet_pa_both": gwet_pa * both,
            "pi_both": pi * both[:, None],
            "single_consensus": (has_t & (m == 1)).astype(float),
            "human_dist": h,
            "judge_dist": ej,
            "n_items": np.ones(len(h)),
        }
        self.fleiss = {"fleiss_p": pair_agree, "fleiss_cat": h, "n_fleiss": np.ones(len(h))}
        self.m = np.where(pair, m, 0).astype(int)  # human ratings per pattern; 0 where not pairable
        self.gwet_weights = gw


def _sums(parts: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted sums over patterns: weights (N, P) -> each part with a leading N axis (one matmul).

    The product is laid out part by part with N innermost, so each part is one contiguous block
    and the statistics' elementwise work on it runs over contiguous memory.
    """
    flat = np.hstack([arr.reshape(arr.shape[0], -1) for arr in parts.values()])
    total = flat.T @ weights.T
    out, start = {}, 0
    for name, arr in parts.items():
        size = int(np.prod(arr.shape[1:], dtype=int))
        out[name] = total[start:start + size].T.reshape((weights.shape[0],) + arr.shape[1:])
        start += size
    return out


def _modal(m: np.ndarray, items: np.ndarray) -> int:
    """The most common number of human ratings among pairable items (the smallest on a tie; 0 when none):
    ``m`` per pattern (0 where not pairable), ``items`` the patterns' item counts."""
    per_m = np.bincount(m, weights=items, minlength=1)
    per_m[0] = 0
    return int(per_m.argmax())


def _human_statistics(s: dict[str, np.ndarray], scale: Scale, gwet_weights: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics among the humans alone (the same for every judge of the items), for a batch of summed parts."""
    v = np.asarray(scale.values, float)
    return {
        "hh_alpha": S.krippendorff_alpha(s["hh_coinc"], v, scale.level),
        "hh_fleiss": S.fleiss_kappa(s["fleiss_p"], s["fleiss_cat"], s["n_fleiss"]),
        "hh_pairwise": _ratio(s["pair_agree"], s["n_pairable"]),
        "hh_ac": S.gwet_ac_multi(s["gwet_pa"], s["n_pairable"], s["pi"], s["n_rated"], gwet_weights),
    }


def _judge_statistics(s: dict[str, np.ndarray], scale: Scale, gwet_weights: np.ndarray) -> dict[str, np.ndarray]:
    """The other statistics (the judge's, and the humans' on the items it scored) for a batch of summed parts."""
    v = np.asarray(scale.values, float)
    k = scale.k
    t = s["table"]
    out = {
        "hj_exact": S.table_mean(t, np.eye(k)),
        "hj_kappa": S.cohen_kappa(t, S.disagreement_weights(v, "unweighted")),
        "hj_ac1": S.gwet_ac_table(t, np.eye(k)),
        "alpha_with_judge": S.krippendorff_alpha(s["with_judge"], v, scale.level),
        "alpha_judge_sub": S.krippendorff_alpha(s["sub_coinc"], v, scale.level),
        "delta_pairwise": _ratio(s["jh_agree"] - s["hh_agree_both"], s["n_both"]),
    }
    out["hh_alpha_judged"] = S.krippendorff_alpha(s["hh_coinc_both"], v, scale.level)
    out["hh_ac_judged"] = S.gwet_ac_multi(s["gwet_pa_both"], s["n_both"], s["pi_both"], s["n_both"], gwet_weights)
    out["hh_pairwise_judged"] = _ratio(s["hh_agree_both"], s["n_both"])
    out["delta_alpha"] = out["alpha_judge_sub"] - out["hh_alpha_judged"]
    if scale.level == "ordinal":
        diff = np.abs(v[:, None] - v[None, :])
        out["hj_within_one"] = S.table_mean(t, (diff <= 1).astype(float))
        out["hj_kappa_linear"] = S.cohen_kappa(t, S.disagreement_weights(v, "linear"))
        out["hj_kappa_quadratic"] = S.cohen_kappa(t, S.disagreement_weights(v, "quadratic"))
        out["hj_ac2"] = S.gwet_ac_table(t, gwet_weights)
        out["hj_spearman"] = S.spearman_table(t)
        out["hj_kendall"] = S.kendall_tau_b_table(t)
    if scale.ordered:
        out["hj_bias"] = S.table_mean(t, v[None, :] - v[:, None])
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


# items behind each statistic, and why it may be undefined
_BASIS = {
    "hh": ("n_pairable", "items with at least two human ratings"),
    "hh_fleiss": ("n_fleiss", "items with the most common number of human raters"),
    "hj": ("table", "items with a judge score and a human consensus"),
    "alpha_with_judge": ("with_judge", "items with a judge score"),
    "both": ("n_both", "items with a judge score and at least two human ratings"),
}


def _basis(stat: str) -> tuple[str, str]:
    if stat.endswith("_judged"):
        return _BASIS["both"]
    if stat == "hh_fleiss":
        return _BASIS["hh_fleiss"]
    if stat == "alpha_with_judge":
        return _BASIS["alpha_with_judge"]
    if stat.startswith("hh_"):
        return _BASIS["hh"]
    if stat.startswith("hj_"):
        return _BASIS["hj"]
    return _BASIS["both"]


def _n_items(stat: str, s0: dict[str, np.ndarray]) -> np.ndarray:
    """Items behind ``stat`` in each cell (leading axis of ``s0``)."""
    key, _ = _basis(stat)
    if key == "table":
        return s0["table"].sum((-2, -1))
    return s0["n_with_judge" if key == "with_judge" else key]


def _reason(stat: str, n: int) -> str:
    _, what = _basis(stat)
    if n == 0:
        return f"not computable: no {what}"
    if stat in ("hj_spearman", "hj_kendall"):
        return "not computable: the judge or the human consensus gives a single score to every item"
    if stat == "hh_fleiss":
        return "not computable: every rating falls in one category"
    return "not computable: every rating falls in one category, so chance agreement is total and the coefficient is undefined"


def analyse_cell(humans: np.ndarray, judge: np.ndarray, scale: Scale, n_boot: int, rng: np.random.Generator,
                 min_items: int = 10, consensus_min_humans: int = 1) -> tuple[dict[str, dict], dict]:
    """All statistics of one cell with percentile bootstrap CIs over items.

    humans: (I, K) counts of human ratings per category; judge: (I,) judge category or -1;
    items with fewer than ``consensus_min_humans`` human ratings have no human consensus.
    Returns ({stat: {value, ci_low, ci_high, n_items, small, note}}, extras) where extras
    holds the confusion matrix, score distributions and how many consensus items rest on one human.
    """
    return analyse_cells(humans, judge, [np.ones(len(humans), bool)], scale, n_boot, rng, min_items, consensus_min_humans)[0]


def _patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows (ordered by the last column, then the one before, ...) and each row's index among them."""
    base = int(rows.max(initial=0)) + 1  # one int64 key per pattern (mixed radix), far faster than unique(axis=0)
    if base ** rows.shape[1] < 2**62:
        _, first, inverse = np.unique(rows @ base ** np.arange(rows.shape[1], dtype=np.int64), return_index=True,
                                      return_inverse=True)
        return rows[first], inverse.ravel()
    uniq, inverse = np.unique(rows[:, ::-1], axis=0, return_inverse=True)
    return uniq[:, ::-1], inverse.ravel()


def analyse_cells(humans: np.ndarray, judge: np.ndarray, masks: list[np.ndarray], scale: Scale, n_boot: int,
                  rng: np.random.Generator, min_items: int = 10, consensus_min_humans: int = 1) -> list[tuple[dict[str, dict], dict]]:
    """:func:`analyse_cell` for each item subset in ``masks`` (boolean over the items), computed together.

    The patterns' quantities are computed once for all cells, and one matrix product sums them for
    every cell and resample; the bootstrap draws are those of calling :func:`analyse_cell` per mask in order.
    """
    return analyse_judges(humans, [judge], masks, scale, n_boot, rng, min_items, consensus_min_humans)[0]


def analyse_judges(humans: np.ndarray, judges: list[np.ndarray], masks: list[np.ndarray], scale: Scale, n_boot: int,
                   rng: np.random.Generator, min_items: int = 10,
                   consensus_min_humans: int = 1) -> list[list[tuple[dict[str, dict], dict]]]:
    """:func:`analyse_cells` for several judges of the same items (a judge and its calibrated version), per judge.

    The items' patterns are joint (human counts and every judge's category), so one Poisson draw per cell and
    pattern resamples the same items for all judges: the judges' resamples are paired. With the first judge's pattern fixing the
    others' categories (a calibration of its scores), its draws are those of :func:`analyse_cells` on it alone.
    Parts that are the same for two judges (those of the humans alone) are summed once.
    """
    # the other judges' columns first: the least significant, so the patterns keep the first judge's order
    cols = [*(j + 1 for j in judges[1:]), *np.asarray(humans).T, judges[0] + 1]
    uniq, inverse = _patterns(np.column_stack(cols).astype(np.int64))
    n_other = len(judges) - 1
    pattern_humans = uniq[:, n_other:-1]
    features = [PatternFeatures(pattern_humans, uniq[:, col] - 1, scale, consensus_min_humans)
                for col in (-1, *range(n_other))]
    n_pat, n_cells, n_rows = len(uniq), len(masks), n_boot + 1
    weights = np.zeros((n_cells, n_rows, n_pat))
    modal = np.zeros(n_cells, int)
    m = features[0].m
    for c, mask in enumerate(masks):
        counts = np.bincount(inverse[np.asarray(mask)], minlength=n_pat)
        present = np.flatnonzero(counts)
        weights[c, 0] = counts
        if n_boot:  # the Poisson bootstrap (module doc): a Poisson(c) count for a pattern of c items
            weights[c, 1:, present] = rng.poisson(counts[present], size=(n_boot, len(present))).T
        modal[c] = _modal(m[present], counts[present])
    # Fleiss' kappa: items rated by the cell's most common number of humans; one set of parts per such number
    moduses = [int(v) for v in np.unique(modal)]
    fleiss = {}
    for v in moduses:
        on = (m == v) & (m > 0)
        fleiss.update({f"{name}@{v}": arr * (on if arr.ndim == 1 else on[:, None]) for name, arr in features[0].fleiss.items()})
    parts, keys = dict(fleiss), []  # keys[g]: part name -> its key in parts (shared when the values are equal)
    for g, f in enumerate(features):
        keys.append({})
        for name, arr in f.parts.items():
            key = name if g == 0 or np.array_equal(arr, parts[name]) else f"{name}#{g}"
            parts[key] = arr
            keys[g][name] = key
    total = _sums(parts, weights.reshape(n_cells * n_rows, n_pat))
    cell_modal = np.repeat(modal, n_rows)
    for name in features[0].fleiss:
        total[name] = total.pop(f"{name}@{moduses[0]}")
        for v in moduses[1:]:
            rows = cell_modal == v
            total[name][rows] = total.pop(f"{name}@{v}")[rows]
    sums = [{**{name: total[key] for name, key in keys[g].items()}, **{name: total[name] for name in f.fleiss}}
            for g, f in enumerate(features)]
    human = _intervals(_human_statistics(sums[0], scale, features[0].gwet_weights), n_cells, n_rows)  # once for all judges
    return [_cells(human, s, scale, f.gwet_weights, modal, n_cells, n_rows, n_boot, min_items) for s, f in zip(sums, features)]


def _intervals(stats: dict[str, np.ndarray], n_cells: int, n_rows: int) -> dict[str, tuple[np.ndarray, ...]]:
    """Per statistic: its values (n_cells, n_rows; the point estimate first), percentile CIs and resamples where defined."""
    values = {stat: arr.reshape(n_cells, n_rows) for stat, arr in stats.items()}
    ci, n_defined = _percentile_ci(np.vstack([arr[:, 1:] for arr in values.values()]))
    return {stat: (arr, ci[i * n_cells:(i + 1) * n_cells], n_defined[i * n_cells:(i + 1) * n_cells])
            for i, (stat, arr) in enumerate(values.items())}


def _cells(human: dict[str, tuple[np.ndarray, ...]], sums: dict[str, np.ndarray], scale: Scale, gwet_weights: np.ndarray,
           modal: np.ndarray, n_cells: int, n_rows: int, n_boot: int, min_items: int) -> list[tuple[dict[str, dict], dict]]:
    """Each cell's entries and extras from the humans' :func:`_intervals` and one judge's sums (n_cells x n_rows
    leading rows, the point estimate first)."""
    stats = {**human, **_intervals(_judge_statistics(sums, scale, gwet_weights), n_cells, n_rows)}
    s0 = {name: arr.reshape((n_cells, n_rows) + arr.shape[1:])[:, 0] for name, arr in sums.items()}
    per_stat = {stat: {"value": arr[:, 0].tolist(), "n": _n_items(stat, s0).astype(int).tolist(), "ci": ci.tolist(),
                       "defined": n_defined.tolist()} for stat, (arr, ci, n_defined) in stats.items()}
    return [_entries(per_stat, s0, c, int(modal[c]), n_boot, min_items) for c in range(n_cells)]


def _percentile_ci(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95% interval of each row's finite values (NaN where there are none), and how many there are."""
    finite = np.isfinite(reps)
    n_finite = finite.sum(1)
    ci = np.full((len(reps), 2), np.nan)
    full = n_finite == reps.shape[1]
    if reps.shape[1] and full.any():
        ci[full] = np.percentile(reps[full], [2.5, 97.5], axis=1).T
    for r in np.flatnonzero(~full & (n_finite > 0)):
        ci[r] = np.percentile(reps[r][finite[r]], [2.5, 97.5])
    return ci, n_finite


def _entries(per_stat: dict[str, dict[str, list]], s0: dict[str, np.ndarray], c: int, modal_m: int, n_boot: int,
             min_items: int) -> tuple[dict[str, dict], dict]:
    """Cell ``c``'s statistic entries and extras: per statistic, every cell's value, n, CI and resamples where defined."""
    single = int(s0["single_consensus"][c])
    n_consensus = int(s0["table"][c].sum())
    out = {}
    for stat, st in per_stat.items():
        n, point = st["n"][c], st["value"][c]
        entry = {"value": None, "ci_low": None, "ci_high": None, "n_items": n, "small": n < min_items, "note": None}
        if not np.isfinite(point):
            entry["note"] = _reason(stat, n)
        else:
            entry["value"] = point
            defined = st["defined"][c]
            if defined:
                entry["ci_low"], entry["ci_high"] = st["ci"][c]
            if defined < 0.9 * n_boot:
                entry["note"] = f"CI from the {defined} of {n_boot} resamples where it is defined"
        if stat == "hh_fleiss" and entry["value"] is not None:
            entry["note"] = f"on the {n} items rated by exactly {modal_m} humans"
        if stat.startswith("hj_") and single and entry["value"] is not None:
            entry["note"] = (entry["note"] + "; " if entry["note"] else "") + (
                f"{n - single} of {n} items have a consensus of >= 2 humans; on {single} it is one human's rating")
        if entry["small"] and entry["value"] is not None:
            entry["note"] = (entry["note"] + "; " if entry["note"] else "") + f"only {n} items: too few to say much"
        out[stat] = entry
    extras = {
        "confusion": s0["table"][c].astype(int).tolist(),
        "human_dist": s0["human_dist"][c].astype(int).tolist(),
        "judge_dist": s0["judge_dist"][c].astype(int).tolist(),
        "n_items": int(s0["n_items"][c]),
        "consensus_single_human": single,
        "consensus_two_or_more": n_consensus - single,
    }
    return out, extras
