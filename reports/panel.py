"""A panel of judges evaluated like one judge (Verga et al. 2024, "Replacing Judges with Juries").

:func:`panel_rows` combines several judges' long-format rows per (item, metric) into rows of a
pseudo-judge that :func:`reports.analysis.analyse` (and calibration) treat like any judge, so
the report shows whether the panel beats its best member.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .agreement import consensus
from .calibration import judge_input

HOW = ("mean", "majority")


def panel_rows(ratings: pd.DataFrame, judges: list[str], specs: dict, how: str = "mean",
               name: str | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Pseudo-judge rows for the items every judge in ``judges`` scored, from long-format
    ``ratings`` as :func:`reports.ratings.prepare` returns them.

    ``mean``: ``score`` = the human-scale level nearest the judges' mean score (halfway: the lower
    level), ``raw_score`` = the mean of their expected own-scale scores (from ``probs`` where given,
    what calibration fits on). ``majority``: the most frequent human-scale score (also as
    ``raw_score``); where the judges tie, the mean rule's score, so no item is left out for a tie
    (an item-subset the members are not measured on would flatter the panel). Returns the rows
    and counts of items scored, left out (not scored by every judge) and tied.
    """
    if how not in HOW:
        raise ValueError(f"unknown panel rule {how!r}: expected one of {', '.join(HOW)}")
    if len(set(judges)) < 2:
        raise ValueError(f"a panel needs at least two judges, got {judges!r}")
    rows = ratings[(ratings["rater_kind"] == "judge") & ratings["rater"].isin(judges)]
    absent = sorted(set(judges) - set(rows["rater"].unique()))
    if absent:
        raise ValueError(f"panel judge(s) {absent} have no ratings; judges present: {sorted(ratings.loc[ratings['rater_kind'] == 'judge', 'rater'].unique())}")
    rows = rows.assign(expected=judge_input(rows).to_numpy())
    n_judges = rows.groupby(["metric", "item_id"])["rater"].transform("nunique")
    info = {"items scored by every panel judge": 0,
            "items left out: not scored by every panel judge": int(rows.loc[n_judges < len(judges), ["metric", "item_id"]].drop_duplicates().shape[0]),
            "items whose judges tied (majority): the mean rule decides": 0}
    rows = rows[n_judges == len(judges)]
    parts = []
    for metric, sub in rows.groupby("metric", sort=True):
        values = np.asarray(specs[metric].human.values, float)
        per_item = sub.groupby("item_id", sort=True)
        first = per_item.first()
        mean = per_item["score"].mean().to_numpy()
        score = values[np.abs(mean[:, None] - values[None, :]).argmin(1)]
        raw = per_item["expected"].mean().to_numpy()
        if how == "majority":
            cat = np.searchsorted(values, sub["score"].to_numpy(float))
            counts = np.zeros((len(first), len(values)), np.int64)
            np.add.at(counts, (pd.Index(first.index).get_indexer(sub["item_id"]), cat), 1)
            top = consensus(counts, "nominal")
            info["items whose judges tied (majority): the mean rule decides"] += int((top < 0).sum())
            score = np.where(top >= 0, values[np.maximum(top, 0)], score)
            raw = score
        out = first.reset_index().assign(score=score, raw_score=raw, probs=None, model=None, prompt_version=None)
        parts.append(out)
    label = name or f"panel ({how}: {' + '.join(sorted(judges))})"
    result = pd.concat(parts, ignore_index=True) if parts else rows.iloc[:0]
    result = result.assign(rater=label, rater_kind="judge", status="submitted")
    info["items scored by every panel judge"] = int(rows[["metric", "item_id"]].drop_duplicates().shape[0])
    return result[[c for c in ratings.columns if c in result.columns]], info
