"""Leaderboards from pairwise comparisons with bootstrap CIs over prompts, and their agreement.

Comparisons are a frame with columns ``pair_id, prompt_id, model_a, model_b, outcome`` (``a``, ``b``
or ``tie``, in terms of the two models), ``rater, rater_kind, language, shown_order``. The bootstrap
resamples prompts with replacement (within each language when ``strata`` is given): each prompt's
comparisons are a row of a sparse prompt x cell count matrix, so the win/tie counts of B resamples
are one (B, P) x (P, 2 M^2) product, and all B fits run as one batch (:func:`bt.fit`) warm-started
at the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from . import bt
from .corr import STATISTICS, top_k_overlap

OUTCOMES = ("a", "b", "tie")
COLUMNS = ("prompt_id", "model_a", "model_b", "outcome")


def check(frame: pd.DataFrame, what: str = "comparisons") -> None:
    """Raise ValueError naming the first bad row (1-based; a frame's integer index is its row, so a
    filtered frame's rows are those of the table it came from) and column, or the missing columns."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; comparisons need {list(COLUMNS)}")

    def row(bad) -> int:
        pos = int(bad.argmax())
        return int(frame.index[pos]) + 1 if pd.api.types.is_integer_dtype(frame.index) else pos + 1

    for col in COLUMNS:
        bad = frame[col].isna().to_numpy()
        if bad.any():
            raise ValueError(f"{what}: row {row(bad)}, column {col!r}: empty; every comparison needs it")
    bad = ~frame["outcome"].isin(OUTCOMES).to_numpy()
    if bad.any():
        raise ValueError(f"{what}: row {row(bad)}, column 'outcome': expected one of {list(OUTCOMES)}, "
                         f"got {frame['outcome'].iloc[int(bad.argmax())]!r}")
    same = (frame["model_a"] == frame["model_b"]).to_numpy()
    if same.any():
        raise ValueError(f"{what}: row {row(same)}, columns 'model_a'/'model_b': a model compared with itself "
                         f"({frame['model_a'].iloc[int(same.argmax())]!r}); a pair needs two different models")


@dataclass
class Design:
    """Comparisons as a prompt x cell count matrix over a fixed model list and prompt list."""

    models: list[str]
    prompts: pd.Index
    matrix: sparse.csr_matrix  # (P, 2 M^2): wins[i, j] flattened, then ties[i, j] (both orders)
    strata: np.ndarray  # (P,) stratum code of each prompt

    @property
    def m(self) -> int:
        return len(self.models)

    def totals(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(wins, ties) of shape (B, M, M) for prompt weights (B, P); the data itself when None."""
        w = np.ones((1, len(self.prompts))) if weights is None else weights
        flat = np.asarray((self.matrix.T @ w.T).T).reshape(len(w), 2, self.m, self.m)
        return flat[:, 0], flat[:, 1]


def design(frame: pd.DataFrame, models: list[str] | None = None, prompts: pd.Index | None = None,
           strata: str | None = None) -> Design:
    """Count matrix of ``frame`` (checked) over ``models`` and ``prompts`` (default: those in the frame)."""
    check(frame)
    models = sorted(_models(frame)) if models is None else list(models)
    key = _prompt_key(frame, strata)
    prompts = key.unique() if prompts is None else prompts
    a, b = (pd.Categorical(frame[c], categories=models).codes.astype(int) for c in ("model_a", "model_b"))
    keep = (a >= 0) & (b >= 0)  # -1: a model outside `models`
    a, b = a[keep], b[keep]
    out = pd.Categorical(frame["outcome"], categories=OUTCOMES).codes[keep]
    p = prompts.get_indexer(key[keep])
    m = len(models)
    win, lose = np.where(out == 1, b, a), np.where(out == 1, a, b)
    cell = np.where(out == 2, m * m + a * m + b, win * m + lose)
    rows, cols = np.concatenate([p, p[out == 2]]), np.concatenate([cell, (m * m + b * m + a)[out == 2]])
    mat = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(prompts), 2 * m * m))
    codes = pd.factorize(prompts.get_level_values(0))[0] if isinstance(prompts, pd.MultiIndex) else np.zeros(len(prompts), int)
    return Design(models, prompts, mat, codes)


def _models(frame: pd.DataFrame) -> set:
    """The models a frame compares (distinct values first: iterating every row of an Arrow column is slow)."""
    return set(frame["model_a"].unique()) | set(frame["model_b"].unique())


def _prompt_key(frame: pd.DataFrame, strata: str | None) -> pd.Index:
    if strata:
        return pd.MultiIndex.from_arrays([frame[strata].astype(str), frame["prompt_id"].astype(str)])
    return pd.Index(frame["prompt_id"].astype(str))


def prompt_weights(strata: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(B, P) counts of each prompt in B resamples drawn with replacement within each stratum."""
    weights = np.empty((n_boot, len(strata)))
    for g in np.unique(strata):
        members = np.flatnonzero(strata == g)
        k = len(members)
        pick = rng.integers(0, k, (n_boot, k))  # positions within the stratum, one row per resample
        pick += np.arange(n_boot)[:, None] * k
        weights[:, members] = np.bincount(pick.ravel(), minlength=n_boot * k).reshape(n_boot, k)
    return weights


def _ci(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        lo, hi = np.nanpercentile(reps, [2.5, 97.5], axis=0) if len(reps) else (np.nan, np.nan)
    return lo, hi


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank 1 = highest score; ties share the best rank (scipy's rankdata(-scores, method="min"), without
    importing scipy.stats): 1 + the number of higher scores, over the last axis."""
    return 1 + (scores[..., None, :] > scores[..., :, None]).sum(-1)


def _fit_point(d: Design, model: str, prior: float, what: str = "comparisons") -> tuple[np.ndarray, float]:
    wins, ties = d.totals()
    if prior == 0:
        groups = _components(wins[0] + ties[0], "weak")
        if len(groups) > 1:
            raise ValueError(f"{what}: the comparisons do not connect every model: "
                             + " | ".join(", ".join(d.models[i] for i in g) for g in groups)
                             + "; scores across these groups are not comparable. Compare across them or fit each group alone")
        if not bt.exists(wins, ties)[0]:
            raise ValueError(f"{what}: no maximum-likelihood fit exists: {_unbounded(wins[0], ties[0], d.models)}, "
                             "so scores grow without bound. Pass a prior (e.g. prior=0.01) to shrink scores towards 0")
    s, tie, ok = bt.fit(wins, ties, model, prior)
    if not ok[0]:
        raise ValueError(f"{what}: the Bradley-Terry fit did not converge")
    return s[0], float(tie[0])


def _components(adj: np.ndarray, connection: str) -> list[np.ndarray]:
    """The groups of models connected in ``adj`` ("weak": ignoring direction; "strong": each reaches every
    other), ordered by their first model (:func:`bt.reach`; scipy's csgraph costs a fresh process 0.3 s)."""
    r = bt.reach(adj + adj.T if connection == "weak" else adj)
    first = (r & r.T).argmax(0)  # each model's first model of its group
    return [np.flatnonzero(first == g) for g in np.unique(first)]


def _unbounded(wins: np.ndarray, ties: np.ndarray, models: list[str]) -> str:
    """Name the groups of models that never lost (or never won) to the others."""
    if wins.sum() == 0:
        return "every comparison is a tie"
    beat = (wins + ties) > 0  # beat[i, j]: i beat or tied j
    parts = []
    for g in _components(beat, "strong"):
        out = np.setdiff1d(np.arange(len(models)), g)
        names = ", ".join(models[i] for i in g)
        if not beat[np.ix_(out, g)].any():
            parts.append(f"never lost to the other models: {names}")
        elif not beat[np.ix_(g, out)].any():
            parts.append(f"never won against the other models: {names}")
    return "; ".join(parts)


def bootstrap(d: Design, model: str = "davidson", prior: float = 0.0, n_boot: int = 1000,
              seed: int = 0, weights: np.ndarray | None = None, what: str = "comparisons") -> dict:
    """Point fit and B resampled fits: {scores (M,), tie, boot_scores (B, M), boot_tie (B,)}.

    Resamples where the fit does not exist are NaN (counted in ``n_failed``).
    """
    s, tie = _fit_point(d, model, prior, what)
    if weights is None:
        weights = prompt_weights(d.strata, n_boot, np.random.default_rng(seed))
    wins, ties = d.totals(weights)
    bs, btie, ok = bt.fit(wins, ties, model, prior, init=(s, tie))
    return {"scores": s, "tie": tie, "boot_scores": bs, "boot_tie": btie, "n_failed": int((~ok).sum())}


def leaderboard(frame: pd.DataFrame, model: str = "davidson", prior: float = 0.0, n_boot: int = 1000,
                seed: int = 0, strata: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Bradley-Terry leaderboard with percentile CIs (over prompts) of scores and ranks.

    Returns (table sorted best first: model, score, ci_low, ci_high, rank, rank_low, rank_high,
    n_comparisons; info: model, tie parameter with CI, n_prompts, n_boot, n_failed).
    """
    d = design(frame, strata=strata)
    r = bootstrap(d, model, prior, n_boot, seed)
    lo, hi = _ci(r["boot_scores"])
    ok = np.isfinite(r["boot_scores"]).all(-1)
    rlo, rhi = _ci(_ranks(r["boot_scores"][ok]).astype(float))
    n_comp = pd.concat([frame["model_a"], frame["model_b"]]).value_counts()
    table = pd.DataFrame({"model": d.models, "score": r["scores"], "ci_low": lo, "ci_high": hi,
                          "rank": _ranks(r["scores"]), "rank_low": rlo, "rank_high": rhi,
                          "n_comparisons": n_comp.reindex(d.models).to_numpy()})
    tlo, thi = _ci(r["boot_tie"])
    info = {"model": model, "tie_parameter": r["tie"], "tie_ci": (float(tlo), float(thi)), "prior": prior,
            "n_prompts": len(d.prompts), "n_boot": n_boot, "n_failed": r["n_failed"]}
    return table.sort_values("rank", kind="stable").reset_index(drop=True), info


def agreement(x: pd.DataFrame, y: pd.DataFrame, k: int = 3, model: str = "davidson", prior: float = 0.0,
              n_boot: int = 1000, seed: int = 0, strata: str | None = None) -> dict[str, dict]:
    """Agreement of the leaderboards of two sets of comparisons (e.g. humans and a judge).

    Both are fitted on the models they share; the bootstrap resamples prompts once for both
    (paired). Returns {kendall_tau_b, spearman, pearson, top_k: {value, ci_low, ci_high}} plus
    ``n_models``, ``n_prompts``, ``n_failed`` (resamples where either fit does not exist).
    """
    check(x, "first comparisons")
    check(y, "second comparisons")
    models = sorted(_models(x) & _models(y))
    if len(models) < 3:
        raise ValueError(f"the two sets of comparisons share {len(models)} model(s); rank agreement needs at least 3")
    prompts = _prompt_key(x, strata).append(_prompt_key(y, strata)).unique()
    dx, dy = design(x, models, prompts, strata), design(y, models, prompts, strata)
    weights = prompt_weights(dx.strata, n_boot, np.random.default_rng(seed))
    rx = bootstrap(dx, model, prior, weights=weights, what="first comparisons")
    ry = bootstrap(dy, model, prior, weights=weights, what="second comparisons")
    stats = dict(STATISTICS)
    stats[f"top_{k}"] = lambda a, b: top_k_overlap(a, b, k)
    ok = np.isfinite(rx["boot_scores"]).all(-1) & np.isfinite(ry["boot_scores"]).all(-1)
    out = {}
    for name, f in stats.items():
        lo, hi = _ci(f(rx["boot_scores"][ok], ry["boot_scores"][ok]))
        out[name] = {"value": float(f(rx["scores"], ry["scores"])), "ci_low": float(lo), "ci_high": float(hi)}
    out.update(n_models=len(models), n_prompts=len(prompts), n_failed=int((~ok).sum()))
    return out
