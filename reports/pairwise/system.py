"""System-level agreement of direct assessment: do a judge's mean scores order the source models as
the humans' do?

Per metric x language (and ``all`` languages) x judge: each source model's (system's) mean human
score (an item's score is the mean of its human ratings) and mean judge score over the items that
have both, then Spearman, Kendall tau-b and Pearson across systems. Percentile CIs resample items
with replacement within each system (and language), so every system keeps its number of items;
system means of B resamples are one (B, I) x (I, S) product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .corr import STATISTICS
from .leaderboard import prompt_weights

REQUIRED = ("item_id", "metric", "rater", "rater_kind", "score", "language", "source_model")


def _item_scores(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per item x metric x judge: human (mean of human ratings), judge score, language, system."""
    keys = ["item_id", "metric"]
    hum = ratings[ratings["rater_kind"] == "human"].groupby(keys)["score"].mean().rename("human")
    jud = ratings[ratings["rater_kind"] == "judge"].groupby(keys + ["rater"])["score"].mean().rename("judge").reset_index()
    items = ratings.drop_duplicates(keys).set_index(keys)[["language", "source_model"]]
    return jud.join(hum, on=keys, how="inner").join(items, on=keys)


def system_agreement(ratings: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                     min_systems: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Correlations across systems of mean human and mean judge scores, with item-bootstrap CIs.

    ``ratings``: the long ratings format (one rating per rater x item x metric) with ``source_model``.
    Returns (correlations: metric, language, judge, statistic, value, ci_low, ci_high, n_systems,
    n_items; systems: metric, language, judge, source_model, human_mean, judge_mean, n_items;
    counts: rows without a source model, items without a human or a judge score, cells with fewer
    than ``min_systems`` systems).
    """
    missing = [c for c in REQUIRED if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings: missing column(s) {missing}; system-level agreement needs {list(REQUIRED)}")
    no_system = ratings["source_model"].isna()
    scored = _item_scores(ratings[~no_system])
    n_pairs = ratings[~no_system].groupby(["item_id", "metric"]).ngroups
    counts = {"rows_without_source_model": int(no_system.sum()),
              "item_metrics_without_both_scores": int(n_pairs - scored.drop_duplicates(["item_id", "metric"]).shape[0]),
              "cells_with_too_few_systems": 0}
    rng = np.random.default_rng(seed)
    corr_rows, sys_rows = [], []
    for (metric, judge), cell in scored.groupby(["metric", "rater"]):
        for language, sub in [("all", cell)] + list(cell.groupby("language")):
            systems, sys_code = np.unique(sub["source_model"].astype(str), return_inverse=True)
            if len(systems) < min_systems:
                counts["cells_with_too_few_systems"] += 1
                continue
            strata = pd.factorize(pd.Series(sys_code).astype(str) + "\0" + sub["language"].astype(str).to_numpy())[0]
            weights = np.vstack([np.ones(len(sub)), prompt_weights(strata, n_boot, rng)])
            onehot = sparse.csr_matrix((np.ones(len(sub)), (np.arange(len(sub)), sys_code)), shape=(len(sub), len(systems)))
            n = np.asarray((onehot.T @ weights.T).T)
            h = np.asarray((onehot.T @ (weights * sub["human"].to_numpy()).T).T) / n
            j = np.asarray((onehot.T @ (weights * sub["judge"].to_numpy()).T).T) / n
            key = {"metric": metric, "language": language, "judge": judge}
            for stat, f in STATISTICS.items():
                vals = f(h, j)
                reps = vals[1:][np.isfinite(vals[1:])]
                lo, hi = np.percentile(reps, [2.5, 97.5]) if len(reps) else (np.nan, np.nan)
                corr_rows.append({**key, "statistic": stat, "value": vals[0], "ci_low": lo, "ci_high": hi,
                                  "n_systems": len(systems), "n_items": len(sub)})
            sys_rows += [{**key, "source_model": s, "human_mean": h[0, i], "judge_mean": j[0, i], "n_items": int(n[0, i])}
                         for i, s in enumerate(systems)]
    return pd.DataFrame(corr_rows), pd.DataFrame(sys_rows), counts
