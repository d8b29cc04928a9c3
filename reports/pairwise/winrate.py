"""Win rate of one model (or data version) over another from comparison rows, with prompt-bootstrap CIs.

Input: comparison rows in the long pairwise format (``comparisons.parquet`` / ``judge_comparisons.parquet``
columns: ``prompt_id, language, model_a, model_b, outcome, rater, rater_kind``, optionally ``criterion``,
``status``, ``shown_order``). Only ``submitted`` rows count (when there is a ``status`` column); the others
are counted, never used. Rows comparing other models are left out and counted too.

Every usable row is one comparison: a judge asked a pair in both orders gives two, each annotator's
answer is one. The win rate of ``model`` over ``over`` is (wins + ties / 2) / comparisons: ties count as
half a win, so 0.5 means no difference. ``win_rate_no_ties`` is wins / (wins + losses), the share of
the decisive comparisons ``model`` won, and ``tie_share`` the share of ties.

Raters: each judge on its own, and the humans pooled (``humans``). Per criterion (``overall`` when the
rows have none), per language and over all languages (``all``). The CI is the 2.5-97.5 percentile
interval of B resamples of prompts with replacement, drawn within each language
(:func:`reports.pairwise.leaderboard.prompt_weights`), so a language's interval resamples its own
prompts and the overall one keeps the language mix. Position consistency of each judge is
:func:`reports.pairwise.pairs.consistency` (both orders of a pair agree), given by :func:`versus`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import pairs
from .leaderboard import _ci, _models, check, prompt_weights

HUMANS = "humans"
ALL = "all"
COLUMNS = ("language", "criterion", "raters", "model", "over", "n_comparisons", "n_prompts", "wins", "losses", "ties",
           "win_rate", "ci_low", "ci_high", "win_rate_no_ties", "no_ties_ci_low", "no_ties_ci_high", "tie_share")


def usable(frame: pd.DataFrame, model: str, over: str) -> tuple[pd.DataFrame, dict]:
    """The submitted rows comparing `model` with `over` (checked), and counts of the rows left out."""
    if model == over:
        raise ValueError(f"win rate of {model!r} over itself: give two different models")
    status = frame["status"] if "status" in frame.columns else pd.Series("submitted", index=frame.index)
    sub = frame.reset_index(drop=True)[(status == "submitted").to_numpy()]
    check(sub)
    both = {model, over}
    mine = (sub["model_a"].isin(both) & sub["model_b"].isin(both)).to_numpy()
    counts = {"rows": len(frame), "rows_not_submitted": len(frame) - len(sub), "rows_other_models": int((~mine).sum()),
              "rows_used": int(mine.sum())}
    return sub[mine], counts


def _scores(rows: pd.DataFrame, model: str) -> np.ndarray:
    """(n, 3) per row: won, lost, tied, from `model`'s side."""
    side = np.where(rows["model_a"].to_numpy() == model, "a", "b")
    out = rows["outcome"].to_numpy()
    tie = out == "tie"
    won = (out == side) & ~tie
    return np.stack([won, ~won & ~tie, tie], axis=1).astype(float)


def _rate(x: np.ndarray) -> np.ndarray:
    """(wins + ties / 2) / comparisons of (..., 3) counts."""
    with np.errstate(all="ignore"):
        return (x[..., 0] + x[..., 2] / 2) / x.sum(-1)


def _no_ties(x: np.ndarray) -> np.ndarray:
    """wins / (wins + losses) of (..., 3) counts; NaN without a decisive comparison."""
    with np.errstate(all="ignore"):
        return x[..., 0] / (x[..., 0] + x[..., 1])


def _table(rows: pd.DataFrame, model: str, over: str, n_boot: int, seed: int) -> list[dict]:
    """Rows of :data:`COLUMNS` (without criterion and raters) per language and ``all``, for one rater group."""
    languages = rows["language"].astype(str).to_numpy()
    key = pd.MultiIndex.from_arrays([languages, rows["prompt_id"].astype(str).to_numpy()])
    prompts = key.unique()
    strata, names = pd.factorize(prompts.get_level_values(0))
    p = prompts.get_indexer(key)
    per_prompt = np.zeros((len(prompts), 3))
    np.add.at(per_prompt, p, _scores(rows, model))
    weights = prompt_weights(strata, n_boot, np.random.default_rng(seed))  # (B, P)
    out = []
    for language, cols in [(ALL, np.arange(len(prompts)))] + [(n, np.flatnonzero(strata == i)) for i, n in enumerate(names)]:
        c = per_prompt[cols]
        boot = weights[:, cols] @ c  # (B, 3): wins, losses, ties per resample
        total = c.sum(0)
        lo, hi = _ci(_rate(boot))
        nlo, nhi = _ci(_no_ties(boot))
        out.append({"language": language, "model": model, "over": over, "n_comparisons": int(total.sum()),
                    "n_prompts": len(cols), "wins": int(total[0]), "losses": int(total[1]), "ties": int(total[2]),
                    "win_rate": float(_rate(total)), "ci_low": float(lo), "ci_high": float(hi),
                    "win_rate_no_ties": float(_no_ties(total)), "no_ties_ci_low": float(nlo),
                    "no_ties_ci_high": float(nhi), "tie_share": float(total[2] / total.sum())})
    return out


def win_rate(frame: pd.DataFrame, model: str, over: str, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Win rate of `model` over `over` per criterion, rater group (each judge, ``humans``) and language
    (``all`` first), with prompt-bootstrap percentile CIs; columns :data:`COLUMNS`.

    ``frame.attrs["counts"]``: rows, rows_not_submitted, rows_other_models, rows_used (they add up).
    A win rate with no decisive comparison (all ties) has ``win_rate_no_ties`` NaN.
    """
    return _win_rate(*usable(frame, model, over), model, over, n_boot, seed)


def _win_rate(rows: pd.DataFrame, counts: dict, model: str, over: str, n_boot: int, seed: int) -> pd.DataFrame:
    """:func:`win_rate` of the rows :func:`usable` returned."""
    parts = []
    crit = rows["criterion"] if "criterion" in rows.columns else pd.Series("overall", index=rows.index)
    raters = np.where(rows["rater_kind"] == "human", HUMANS, rows["rater"].astype(str))
    for (criterion, who), g in rows.groupby([crit, raters], sort=True):
        parts += [{"criterion": criterion, "raters": who, **r} for r in _table(g, model, over, n_boot, seed)]
    table = pd.DataFrame(parts, columns=list(COLUMNS))
    table.attrs["counts"] = counts
    return table


def versus(frame: pd.DataFrame, model: str, over: str, n_boot: int = 1000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """``win_rate`` (:func:`win_rate`) and ``position`` (per judge and criterion: position consistency
    from :func:`reports.pairwise.pairs.consistency`, pairs asked in both orders whose verdicts agree)."""
    rows, counts = usable(frame, model, over)
    table = _win_rate(rows, counts, model, over, n_boot, seed)
    judges = rows[rows["rater_kind"] == "judge"]
    crit = judges["criterion"] if "criterion" in judges.columns else pd.Series("overall", index=judges.index)
    position = [pairs.consistency(g).assign(criterion=c) for c, g in judges.groupby(crit, sort=True)]
    cols = ["rater", "criterion", "n_repeated", "n_consistent", "consistency"]
    position = pd.concat(position, ignore_index=True)[cols] if position else pd.DataFrame(columns=cols)
    return {"win_rate": table, "position": position}


def head_to_head(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame | None:
    """:func:`win_rate` of ``model_b`` over ``model_a`` (as the first row names them: original vs
    boosted pairs put the boosted version second) when the comparisons involve exactly two models;
    else None (a leaderboard answers for more)."""
    if len(_models(frame)) != 2:
        return None
    first = frame.iloc[0]
    return win_rate(frame, str(first["model_b"]), str(first["model_a"]), n_boot, seed)
