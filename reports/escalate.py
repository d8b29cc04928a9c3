"""Trust or escalate: a confidence threshold above which the judge decides, with a guarantee.

Jung, Brahman, Choi (ICLR 2025), "Trust or Escalate: LLM Judges with Provable Guarantees for
Human Agreement", selective evaluation. What is implemented (:func:`choose_threshold`): on n
human-labelled calibration items with judge confidence c_i and agreement a_i (judge == human
consensus), for each threshold lam of a grid fixed in advance, in descending order,

    n(lam) = #{i: c_i >= lam},  k(lam) = #{i: c_i >= lam, a_i = 1}
    H_lam: P(agree | c >= lam) < target,  p(lam) = P(Binomial(n(lam), target) >= k(lam))

(the exact binomial tail; n(lam) = 0 gives p = 1). Fixed-sequence testing rejects H_lam for
lam_1 > lam_2 > ... while p(lam) <= delta and stops at the first non-rejection; the threshold
is the last rejected lam (none rejected: no threshold, humans decide everything). Then with
probability >= 1 - delta over the calibration sample, agreement with the human consensus on
items with c >= threshold is >= target. p(lam) <= delta is the same as the one-sided
(1 - delta) Clopper-Pearson lower bound of k/n being >= target; that bound at the threshold is
reported as the guaranteed agreement, with the empirical agreement and the coverage (share
of calibration items at or above the threshold). Items without a confidence (NaN) count as
below every threshold: they are always escalated. The paper's Simulated Annotators confidence
and its cascade of judges are not implemented; the confidence sources here are
:func:`confidence` (probability of the chosen level, agreement across repeats, agreement
across judges).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .agreement import consensus as consensus_of
from .analysis import _item_arrays, scale_of

SOURCES = ("probs", "repeats", "judges")
DEFAULT_GRID = np.round(np.linspace(1.0, 0.0, 101), 2)


@dataclass
class Threshold:
    """A chosen threshold and where it came from (``tested``: one row per grid point tested)."""

    threshold: float | None
    guaranteed: float | None
    agreement: float | None
    coverage: float
    n_calibration: int
    target: float
    delta: float
    tested: pd.DataFrame = field(repr=False)

    def provenance(self) -> str:
        if self.threshold is None:
            return (f"no threshold: agreement >= {self.target:g} could not be guaranteed at any confidence "
                    f"(fixed-sequence test, delta = {self.delta:g}, {self.n_calibration} calibration items)")
        return (f"confidence >= {self.threshold:g}: agreement >= {self.guaranteed:.3f} with probability >= "
                f"{1 - self.delta:g} (target {self.target:g}; exact binomial fixed-sequence test on "
                f"{self.n_calibration} calibration items)")


def clopper_pearson_lower(k: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
    """One-sided (1 - delta) exact lower bound of a binomial proportion k/n; 0 where k = 0, NaN where n = 0."""
    from scipy.stats import beta  # here: importing scipy.stats takes a fresh process ~1 s (reports.build)

    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = beta.ppf(delta, k, n - k + 1)
    return np.where(n == 0, np.nan, np.where(k == 0, 0.0, lower))


def choose_threshold(confidence, agree, target: float = 0.9, delta: float = 0.1, grid=None) -> Threshold:
    """The trust-or-escalate threshold by fixed-sequence testing (module doc).

    ``grid`` must not depend on the calibration items (their agreements or confidences); default
    1.00, 0.99, ..., 0.00. The sequence stops at its first failure, so a grid whose top holds
    few calibration items yields no threshold: :func:`coverage_grid` builds one from the
    confidences of the items to be decided instead.
    """
    if not 0 < target < 1 or not 0 < delta < 1:
        raise ValueError(f"target {target!r} and delta {delta!r} must both lie strictly between 0 and 1")
    c = np.asarray(confidence, float)
    a = np.asarray(agree)
    if c.shape != a.shape or c.ndim != 1:
        raise ValueError(f"confidence {c.shape} and agree {a.shape} must be 1-D arrays of the same length")
    bad = np.flatnonzero(~np.isin(a, [0, 1]))
    if len(bad):
        raise ValueError(f"agree: item {bad[0] + 1} is {a[bad[0]]}; expected 0/1 (judge == human consensus) on every "
                         "calibration item; leave out items without a human consensus")
    lam = np.sort(np.asarray(DEFAULT_GRID if grid is None else grid, float))[::-1]
    order = np.argsort(-np.nan_to_num(c, nan=-np.inf), kind="stable")
    c_desc = np.nan_to_num(c[order], nan=-np.inf)
    agree_cum = np.concatenate([[0], np.cumsum(a[order].astype(float))])
    n_at = np.searchsorted(-c_desc, -lam, side="right")  # #{c >= lam}
    k_at = agree_cum[n_at]
    from scipy.stats import binom

    p = np.where(n_at > 0, binom.sf(k_at - 1, n_at, target), 1.0)
    lower = clopper_pearson_lower(k_at, n_at, delta)
    passed = np.cumprod(p <= delta).astype(bool)
    n_tested = int(passed.sum()) + (int(passed.sum()) < len(lam))  # the rejections and the first failure
    tested = pd.DataFrame({"threshold": lam, "n": n_at, "agree": k_at.astype(int), "p_value": p,
                           "lower_bound": lower, "rejected": passed}).iloc[:n_tested]
    if not passed.any():
        return Threshold(None, None, None, 0.0, len(c), target, delta, tested)
    j = int(passed.sum()) - 1
    return Threshold(float(lam[j]), float(lower[j]), float(k_at[j] / n_at[j]), float(n_at[j] / len(c)), len(c),
                     target, delta, tested)


def coverage_grid(confidence, start: float = 0.1, step: float = 0.02) -> np.ndarray:
    """Descending thresholds at which a share start, start + step, ..., 1 of ``confidence`` is at or
    above: pass the confidences of the items to be decided (not the calibration items)."""
    c = np.asarray(confidence, float)
    c = c[np.isfinite(c)]
    if not len(c):
        raise ValueError("coverage_grid: no finite confidence to build a grid from")
    shares = np.arange(start, 1 + step / 2, step)
    return np.unique(np.quantile(c, 1 - np.minimum(shares, 1), method="inverted_cdf"))[::-1]


def thresholds(calibration: pd.DataFrame, by=("metric", "language"), target: float = 0.9, delta: float = 0.1,
               grid=None) -> pd.DataFrame:
    """:func:`choose_threshold` per cell of ``calibration`` (columns ``confidence``, ``agree`` and ``by``).

    ``grid``: one grid for every cell, or a mapping from the cell key (a tuple of the ``by`` values)
    to that cell's grid, e.g. :func:`coverage_grid` of the cell's items to be decided.
    """
    rows = []
    for key, cell in calibration.groupby(list(by), sort=True):
        cell_grid = grid.get(key) if isinstance(grid, Mapping) else grid
        if isinstance(grid, Mapping) and cell_grid is None:
            raise ValueError(f"grid: no grid for cell {dict(zip(by, key))}")
        t = choose_threshold(cell["confidence"], cell["agree"], target, delta, cell_grid)
        rows.append({**dict(zip(by, key)), "threshold": t.threshold, "guaranteed_agreement": t.guaranteed,
                     "agreement": t.agreement, "coverage": t.coverage, "n_calibration": t.n_calibration,
                     "provenance": t.provenance()})
    return pd.DataFrame(rows)


def decide(confidence, threshold: float | None) -> np.ndarray:
    """``judge`` where the confidence is at or above the threshold, else ``humans`` (NaN: humans)."""
    c = np.asarray(confidence, float)
    trusted = np.zeros(len(c), bool) if threshold is None else np.nan_to_num(c, nan=-np.inf) >= threshold
    return np.where(trusted, "judge", "humans")


# ---------------------------------------------------------------- confidence sources


def confidence(judgments: pd.DataFrame, source: str) -> pd.DataFrame:
    """Per-item judge decision and confidence from a judgments table (judge, item_id, metric,
    repeat, score, human_score, probs, status; ``status`` other than ``ok`` rows are not answers).

    ``probs``: the judge's (lowest repeat's) probability of the level it chose, from ``probs``
    (JSON, keys = judge-scale levels); NaN without probs. ``repeats``: per judge, the share of its
    repeats giving the most frequent score. ``judges``: the share of judges (each one's lowest
    repeat) giving the most frequent score; judge is then ``panel``. The decision is that most
    frequent score on the human scale (``human_score``, else ``score``); ties go to the lower score.
    Returns judge, item_id, metric, decision, confidence, n_votes.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown confidence source {source!r}: expected one of {', '.join(SOURCES)}")
    need = ["judge", "item_id", "metric", "score"] + (["probs"] if source == "probs" else [])
    missing = [c for c in need if c not in judgments.columns]
    if missing:
        raise ValueError(f"judgments: missing column(s) {missing}; expected {need} (+ repeat, human_score, status)")
    j = judgments if "status" not in judgments.columns else judgments[judgments["status"] == "ok"]
    j = j.assign(decision=(j["human_score"] if "human_score" in j.columns else j["score"]).astype(float),
                 repeat=j["repeat"] if "repeat" in j.columns else 0)
    if source in ("probs", "judges"):
        j = j.sort_values("repeat", kind="stable").drop_duplicates(["judge", "item_id", "metric"])
    if source == "probs":
        chosen = [_prob_of(p, s) for p, s in zip(j["probs"], j["score"])]
        out = j.assign(confidence=np.asarray(chosen, float), n_votes=1)
        return out[["judge", "item_id", "metric", "decision", "confidence", "n_votes"]].reset_index(drop=True)
    keys = ["judge", "item_id", "metric"] if source == "repeats" else ["item_id", "metric"]
    votes = j.groupby(keys + ["decision"], sort=True).size().rename("votes").reset_index()
    total = votes.groupby(keys)["votes"].transform("sum")
    top = votes.assign(n_votes=total).sort_values(keys + ["votes", "decision"], ascending=[True] * len(keys) + [False, True])
    top = top.drop_duplicates(keys).assign(confidence=lambda d: d["votes"] / d["n_votes"])
    if len(top) and (top["n_votes"] < 2).all():
        raise ValueError(f"confidence from {source}: every item has one answer, so agreement is always 1; "
                         f"{'run the judge with repeats >= 2' if source == 'repeats' else 'give the items to two or more judges'}")
    if source == "judges":
        top["judge"] = "panel"
    return top[["judge", "item_id", "metric", "decision", "confidence", "n_votes"]].reset_index(drop=True)


def _prob_of(probs, score) -> float:
    if not isinstance(probs, str) or not probs:
        return np.nan
    p = json.loads(probs)
    total = sum(p.values())
    return p.get(str(int(score)), 0.0) / total if total > 0 else np.nan


def human_consensus(ratings: pd.DataFrame, specs: dict) -> pd.DataFrame:
    """Human consensus score per (metric, item_id) from long ratings (human rows), by
    :func:`reports.agreement.consensus`; NaN where the humans have no consensus (a tie)."""
    humans = ratings[ratings["rater_kind"] == "human"]
    parts = []
    for metric, rows in humans.groupby("metric", sort=True):
        scale = scale_of(specs[metric])
        items, counts, _, _ = _item_arrays(rows, scale)
        cat = consensus_of(counts, scale.level)
        values = np.asarray(scale.values)[np.maximum(cat, 0)]
        parts.append(pd.DataFrame({"metric": metric, "item_id": items["item_id"],
                                   "consensus": np.where(cat >= 0, values, np.nan), "n_humans": counts.sum(1)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["metric", "item_id", "consensus", "n_humans"])
