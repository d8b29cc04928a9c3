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
from .ppi import row_codes

HOW = ("mean", "majority")


def judges_per_item(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """(each row's metric x item code, the number of distinct raters per code, each row's rater code, the raters):
    integer codes, not string groupings."""
    key = row_codes([rows["metric"], rows["item_id"]])
    rater, raters = pd.factorize(rows["rater"])
    judged = np.bincount(pd.unique(key * len(raters) + rater) // len(raters), minlength=int(key.max(initial=-1)) + 1)
    return key, judged, rater, raters


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
    key, judged, _, _ = judges_per_item(rows)
    complete = judged[key] == len(judges)
    info = {"items scored by every panel judge": 0,
            "items left out: not scored by every panel judge": len(np.unique(key[~complete])),
            "items whose judges tied (majority): the mean rule decides": 0}
    if not complete.all():
        rows = rows[complete]
    metric, metrics = pd.factorize(rows["metric"], sort=True)
    item, items = pd.factorize(rows["item_id"], sort=True)
    group = metric.astype(np.int64) * max(len(items), 1) + item  # sorts as metric, then item_id
    per_item = rows.groupby(group, sort=True)
    first = per_item.first()
    groups = first.index.to_numpy()  # sorted
    mean = per_item["score"].mean().to_numpy()
    raw = per_item["expected"].mean().to_numpy(copy=True)
    score = np.empty(len(groups))
    for code, m in enumerate(metrics):  # the groups of one metric are contiguous
        sel = slice(*np.searchsorted(groups // max(len(items), 1), [code, code + 1]))
        values = np.asarray(specs[m].human.values, float)
        score[sel] = values[np.abs(mean[sel, None] - values[None, :]).argmin(1)]
        if how == "majority":
            mine = metric == code
            counts = np.zeros((sel.stop - sel.start, len(values)), np.int64)
            np.add.at(counts, (np.searchsorted(groups, group[mine]) - sel.start,
                               np.searchsorted(values, rows["score"].to_numpy(float)[mine])), 1)
            top = consensus(counts, "nominal")
            info["items whose judges tied (majority): the mean rule decides"] += int((top < 0).sum())
            score[sel] = np.where(top >= 0, values[np.maximum(top, 0)], score[sel])
            raw[sel] = score[sel]
    result = first.reset_index(drop=True).assign(score=score, raw_score=raw, probs=None, model=None, prompt_version=None)
    label = name or f"panel ({how}: {' + '.join(sorted(judges))})"
    result = result.assign(rater=label, rater_kind="judge", status="submitted")
    info["items scored by every panel judge"] = len(groups)
    return result[[c for c in ratings.columns if c in result.columns]], info
