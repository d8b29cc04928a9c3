"""Pair-level statistics: agreement on pairs, consistency on repeated pairs, position and length bias.

Outcomes are re-expressed in a fixed orientation per pair, the two models in sorted order
(``first``, ``second``): code 0 = first model better, 1 = second better, 2 = tie. Items of the
agreement statistics are ``pair_id`` s (a repeated pair is its own item); a judge asked a pair in
both orders has one verdict per pair: the common verdict when its answers agree, else a tie
(MT-Bench's convention; the count of such pairs is reported). Agreement statistics and their
item-bootstrap CIs come from :func:`reports.agreement.analyse_cell` on a nominal A/B/tie scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ..agreement import Scale, analyse_cell, consensus
from .leaderboard import check

SCALE3 = Scale((0.0, 1.0, 2.0), "nominal")
SCALE2 = Scale((0.0, 1.0), "nominal")
SHOWN = ("ab", "ba")  # shown_order: "ab" = model_a shown first (as A), "ba" = model_b shown first


def oriented(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame (checked) with ``first``, ``second`` (the models, sorted) and ``code`` (0/1/2, see module doc)."""
    check(frame)
    swap = (frame["model_a"].astype(str) > frame["model_b"].astype(str)).to_numpy()
    code = frame["outcome"].map({"a": 0, "b": 1, "tie": 2}).to_numpy()
    code = np.where(swap & (code < 2), 1 - code, code)
    return frame.assign(first=np.where(swap, frame["model_b"], frame["model_a"]),
                        second=np.where(swap, frame["model_a"], frame["model_b"]), code=code)


def _entry(stats: dict, name: str) -> dict:
    keep = ("value", "ci_low", "ci_high", "n_items", "note")
    return {k: stats[name][k] for k in keep}


def judge_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """One verdict per (judge, pair_id): the common code of its answers, or 2 (tie) when they differ."""
    o = oriented(frame[frame["rater_kind"] == "judge"])
    g = o.groupby(["rater", "pair_id"])["code"].agg(["min", "max"])
    return pd.DataFrame({"code": np.where(g["min"] == g["max"], g["min"], 2), "inconsistent": g["min"] != g["max"]},
                        index=g.index).reset_index()


def agreement(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0, min_items: int = 10) -> dict:
    """Human-human and human-judge agreement on pairs, with percentile CIs over pairs.

    Returns {"humans": {fleiss_kappa, percent_agreement, n_duplicates}, "judges": {judge:
    {with_ties: {accuracy, cohen_kappa}, without_ties: {...}, n_inconsistent}}}; each statistic
    is {value, ci_low, ci_high, n_items, note}. ``accuracy`` is against the human majority
    (pairs without a strict plurality are left out); ``without_ties`` keeps the pairs where
    both the human majority and the judge verdict are decisive.
    """
    hum = oriented(frame[frame["rater_kind"] == "human"])
    dup = hum.duplicated(["pair_id", "rater"])
    hum = hum[~dup]
    pairs = pd.Index(sorted(set(hum["pair_id"])))
    counts = np.zeros((len(pairs), 3), dtype=np.int64)
    np.add.at(counts, (pairs.get_indexer(hum["pair_id"]), hum["code"].to_numpy()), 1)
    rng = np.random.default_rng(seed)
    hh, _ = analyse_cell(counts, np.full(len(pairs), -1), SCALE3, n_boot, rng, min_items)
    out = {"humans": {"fleiss_kappa": _entry(hh, "hh_fleiss"), "percent_agreement": _entry(hh, "hh_pairwise"),
                      "n_pairs": len(pairs), "n_duplicates": int(dup.sum())}, "judges": {}}
    cons = consensus(counts, "nominal")
    for judge, v in judge_verdicts(frame).groupby("rater"):
        j = np.full(len(pairs), -1)
        idx = pairs.get_indexer(v["pair_id"])
        j[idx[idx >= 0]] = v["code"].to_numpy()[idx >= 0]
        with_ties, _ = analyse_cell(counts, j, SCALE3, n_boot, rng, min_items)
        dec = (cons >= 0) & (cons < 2) & (j >= 0) & (j < 2)
        without, _ = analyse_cell(counts[dec, :2], j[dec], SCALE2, n_boot, rng, min_items)
        out["judges"][judge] = {
            "with_ties": {"accuracy": _entry(with_ties, "hj_exact"), "cohen_kappa": _entry(with_ties, "hj_kappa")},
            "without_ties": {"accuracy": _entry(without, "hj_exact"), "cohen_kappa": _entry(without, "hj_kappa")},
            "n_pairs": int((idx >= 0).sum()), "n_not_rated_by_humans": int((idx < 0).sum()),
            "n_inconsistent": int(v["inconsistent"].sum()),
        }
    return out


def consistency(frame: pd.DataFrame, swapped: bool = True) -> pd.DataFrame:
    """Per rater: how often repeated comparisons of the same pair (prompt and two models) agree.

    A group is a rater's comparisons of one pair; with ``swapped`` only groups shown in both orders
    count (annotators' swapped repeats, a judge's two orders: position consistency). Returns
    rater, rater_kind, n_repeated (groups), n_consistent (all verdicts equal), consistency.
    """
    o = oriented(frame)
    keys = ["rater", "rater_kind", "prompt_id", "first", "second"]
    agg = {"lo": ("code", "min"), "hi": ("code", "max"), "n": ("code", "size")}
    if swapped:
        _check_shown(o)
        agg["orders"] = ("shown_order", "nunique")
    g = o.groupby(keys).agg(**agg).reset_index()
    g = g[(g["n"] >= 2) & ((g["orders"] == 2) if swapped else True)]
    r = g.assign(ok=g["lo"] == g["hi"]).groupby(["rater", "rater_kind"]).agg(
        n_repeated=("ok", "size"), n_consistent=("ok", "sum")).reset_index()
    return r.assign(consistency=r["n_consistent"] / r["n_repeated"])


def _check_shown(frame: pd.DataFrame) -> None:
    if "shown_order" not in frame.columns:
        raise ValueError(f"comparisons: missing column 'shown_order' ({' or '.join(SHOWN)}: which model was shown first)")
    bad = ~frame["shown_order"].isin(SHOWN).to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise ValueError(f"comparisons: row {row + 1}, column 'shown_order': expected one of {list(SHOWN)}, "
                         f"got {frame['shown_order'].iloc[row]!r}")


def _share(k: int, n: int) -> dict:
    """Share k / n with its Wilson 95% interval."""
    if n == 0:
        return {"n": 0, "k": 0, "share": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return {"n": n, "k": k, "share": k / n, "ci_low": ci.low, "ci_high": ci.high}


def first_position(frame: pd.DataFrame) -> pd.DataFrame:
    """Per rater: of the decisive comparisons, how often the response shown first won (0.5 = no bias)."""
    check(frame)
    _check_shown(frame)
    dec = frame[frame["outcome"] != "tie"]
    first_won = (dec["outcome"] == "a") == (dec["shown_order"] == "ab")
    rows = [{"rater": r, "rater_kind": kind, **_share(int(w.sum()), len(w))}
            for (r, kind), w in first_won.groupby([dec["rater"], dec["rater_kind"]])]
    return pd.DataFrame(rows).rename(columns={"n": "n_decisive", "k": "n_first_won", "share": "first_win_rate"})


LENGTH_BINS = (1.0, 1.1, 1.25, 1.5, 2.0, np.inf)


def length_bias(frame: pd.DataFrame, bins=LENGTH_BINS) -> pd.DataFrame:
    """How often the longer response wins, per rater (humans also pooled as ``humans``) and length-ratio bin.

    Needs ``length_a``, ``length_b`` (> 0). Ratio = longer / shorter, binned right-open on ``bins``.
    Per bin: n_decisive, n_longer_won, share (Wilson CI); per group, ``n_ties`` and ``n_equal_length``
    (comparisons that cannot show the bias) so the counts add up to the group's comparisons; a group
    with no decisive comparison of unequal lengths has one row with ``ratio_bin`` null.
    """
    check(frame)
    for col in ("length_a", "length_b"):
        if col not in frame.columns:
            raise ValueError(f"comparisons: missing column {col!r} (length of each response) for the length bias")
        bad = ~(pd.to_numeric(frame[col], errors="coerce") > 0).to_numpy()
        if bad.any():
            row = int(bad.argmax())
            raise ValueError(f"comparisons: row {row + 1}, column {col!r}: expected a positive length, got {frame[col].iloc[row]!r}")
    la, lb = frame["length_a"].to_numpy(float), frame["length_b"].to_numpy(float)
    ratio = np.maximum(la, lb) / np.minimum(la, lb)
    longer = np.where(la > lb, "a", "b")
    f = frame.assign(_ratio=ratio, _longer_won=frame["outcome"].to_numpy() == longer,
                     _bin=pd.cut(ratio, list(bins), right=False).astype(str))
    groups = [(r, kind, g) for (r, kind), g in f.groupby(["rater", "rater_kind"])]
    humans = f[f["rater_kind"] == "human"]
    if len(humans):
        groups.append(("humans", "human", humans))
    rows = []
    for rater, kind, g in groups:
        usable = g[(g["outcome"] != "tie") & (g["_ratio"] > 1)]
        extra = {"n_ties": int((g["outcome"] == "tie").sum()), "n_equal_length": int(((g["outcome"] != "tie") & (g["_ratio"] == 1)).sum()),
                 "n_comparisons": len(g)}
        for b, u in usable.groupby("_bin"):
            rows.append({"rater": rater, "rater_kind": kind, "ratio_bin": b, **_share(int(u["_longer_won"].sum()), len(u)), **extra})
        if usable.empty:  # nothing shows the bias; the row keeps the group's counts
            rows.append({"rater": rater, "rater_kind": kind, "ratio_bin": None, **_share(0, 0), **extra})
    return pd.DataFrame(rows).rename(columns={"n": "n_decisive", "k": "n_longer_won"})
