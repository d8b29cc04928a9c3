"""Dataset-level means from a judge on every item and humans on a random few: PPI++.

Power-tuned prediction-powered inference (Angelopoulos, Duchi, Zrnic 2023, "PPI++: Efficient
Prediction-Powered Inference", arXiv:2311.01453) for the mean of the human score Y, with the
judge's prediction f (score, or calibrated expected score) on the n human-labelled items and on
the N unlabelled items (the rest of the set being estimated). Per cell (e.g. metric x language):

    theta_lam = lam * mean_N(f) + mean_n(Y - lam * f)
    Var      = lam^2 var(f_unlabelled) / N + var(Y - lam * f_labelled) / n       (variances ddof 0)
    lam      = clip(cov(Y, f) / ((1 + n/N) var(f over all n + N items, ddof 1)), 0, 1)
    CI       = theta_lam -/+ z_(1 - alpha/2) sqrt(Var)                           (CLT)

lam is the plug-in variance-minimising weight, the same as ``ppi_py.ppi_mean_ci(lam=None)``
(lam = 0 is the human-only estimate, lam = 1 plain PPI). Beside it: the classical (human-only)
CLT interval mean(Y) -/+ z sd(Y)/sqrt(n), the judge-only (biased) mean of f over all n + N
items, and the effective number of human labels the judge is worth,
n_effective = n * Var_classical / Var_ppi (the human-only sample size giving the same width).

Stratified samples (Fisch et al. 2024, "Stratified Prediction-Powered Inference"): within each
cell every stratum h gets its own PPI++ estimate and lam_h, combined with the known stratum
weights W_h renormalised over the cell's strata: theta = sum_h w_h theta_h,
Var = sum_h w_h^2 Var_h (likewise for the classical and judge-only figures).

PPI is valid only when the labelled items are a uniformly random (or, per stratum, random with
known weights) subset of what is estimated; :func:`ppi_means` takes how they were chosen and
refuses judge-selected labels (e.g. escalated items), which would bias every estimate.
:func:`ppi_by_provenance` picks the labels PPI may use from how each item came to be labelled (a
study's random slice, ``kasauti push --random``; escalation; unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DESIGNS = ("random", "stratified", "judge-selected")
JUDGE_SELECTED = ("the human-labelled items were chosen by the judge (e.g. escalated items), not at random: "
                  "PPI would be biased; have humans label a uniformly random (or stratified random) subset")
PROVENANCE = ("random", "escalated")  # values of ``drawn_by``; null: unknown
SELECTION_P = 0.001
SELECTION_NOTE = ("the judge scores the labelled items differently from the unlabelled ones (p = {p:.2g}): were the "
                  "labelled items really drawn at random (within strata)? If not, the estimate is biased")
_ERR = {"divide": "ignore", "invalid": "ignore"}


@dataclass
class PPIResult:
    """``cells``: one row per cell; ``strata``: one row per cell x stratum (the cell itself when
    the design is random)."""

    cells: pd.DataFrame
    strata: pd.DataFrame


def at_least(frame: pd.DataFrame, level: float, columns: Sequence[str] = ("y", "f")) -> pd.DataFrame:
    """The share-of-acceptable-items transform: each of ``columns`` becomes 1.0 where >= ``level``.

    For a judge that gives probabilities, pass P(score >= level) as ``f`` instead of thresholding.
    """
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = (out[col].to_numpy(float) >= level).astype(float)
    return out


def human_means(frame: pd.DataFrame, key: np.ndarray) -> np.ndarray:
    """The mean human ``score`` per code of ``key`` (0, 1, ...: one per row of ``frame``); NaN where no human scored."""
    score = frame["score"].to_numpy(float)
    human = (frame["rater_kind"] == "human").to_numpy() & np.isfinite(score)
    n_keys = int(key.max(initial=-1)) + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.bincount(key[human], score[human], n_keys) / np.bincount(key[human], minlength=n_keys)


def row_codes(columns: Sequence) -> np.ndarray:
    """An integer code per row for its tuple of ``columns`` (equal arrays or series; a missing value is
    a value of its own): 0, 1, ... in order of first appearance (:func:`_radix` hashed once, no tuples,
    no sort)."""
    return pd.factorize(_radix(columns)[0])[0]


def _radix(columns: Sequence) -> tuple[np.ndarray, int]:
    """A distinct integer per distinct tuple of ``columns`` and their bound: the columns' codes combined in
    mixed radix (in [0, bound); re-coded in between only when the bound would leave int64)."""
    code = np.zeros(len(columns[0]) if len(columns) else 0, np.int64)
    size = 1
    for col in columns:
        c, uniques = pd.factorize(col, use_na_sentinel=False)
        k = max(len(uniques), 1)
        if size > (2**62) // k:
            code = pd.factorize(code)[0]
            size = int(code.max(initial=-1)) + 1
        code, size = code * k + c, size * k
    return code, size


def _check_numbers(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in frame.columns:
            raise ValueError(f"{name}: missing column {col!r}; expected {list(columns)}")
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise ValueError(f"{name}: row {bad[0] + 1}, column {col!r}: expected a finite number, got "
                             f"{frame[col].iloc[bad[0]]!r}; remove the row or give it a score")


def _check_design(design: str, stratum: str | None, weights: Mapping | None, labelled: pd.DataFrame,
                  unlabelled: pd.DataFrame) -> None:
    if design == "judge-selected":
        raise ValueError(f"{JUDGE_SELECTED} and pass design='random' or 'stratified'")
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}: expected one of {', '.join(DESIGNS)}")
    if design == "random":
        if stratum is not None or weights is not None:
            raise ValueError("design='random' takes no stratum or weights; pass design='stratified' for a stratified sample")
        return
    if stratum is None or weights is None:
        raise ValueError("design='stratified' needs the stratum column and the known weight of every stratum")
    for name, frame in (("labelled", labelled), ("unlabelled", unlabelled)):
        if stratum not in frame.columns:
            raise ValueError(f"{name}: missing stratum column {stratum!r}")
        unknown = sorted(set(frame[stratum]) - set(weights), key=str)
        if unknown:
            raise ValueError(f"{name}: stratum {unknown[0]!r} has no weight ({len(unknown)} such strata); "
                             "give every stratum its population size or share")
    bad = [h for h, w in weights.items() if not (np.isfinite(w) and w > 0)]
    if bad:
        raise ValueError(f"stratum {bad[0]!r}: weight {weights[bad[0]]!r}; expected a positive number")


def left_out(labelled: pd.DataFrame, by: Sequence[str] = (), column: str = "drawn_by") -> pd.DataFrame:
    """Which labels a random-sample method (PPI, a trust-or-escalate threshold) must leave out, by how
    each labelled item was chosen (``column``: ``random``, drawn in a random slice of the whole set,
    so a uniform draw of each cell; ``escalated``, chosen by the judge; null, unknown), per cell of
    ``by``: boolean columns ``escalated`` (always left out) and ``unknown`` (left out in a cell with
    labels from the random slice, whose items were not drawn at random), indexed like ``labelled``."""
    if column not in labelled.columns:
        raise ValueError(f"labelled: missing column {column!r} (how each item was chosen: {', '.join(PROVENANCE)} or null)")
    prov = labelled[column].astype(object).where(labelled[column].notna(), None)
    bad = np.flatnonzero(prov.notna().to_numpy() & ~prov.isin(PROVENANCE).to_numpy())
    if len(bad):
        raise ValueError(f"labelled: row {bad[0] + 1}, column {column!r}: expected one of {', '.join(PROVENANCE)} or "
                         f"null (unknown), got {prov.iloc[bad[0]]!r}")
    keys = list(by) or ["_cell"]
    flags = labelled.assign(_cell=0)[keys].assign(escalated=prov.eq("escalated"), unknown=prov.isna(),
                                                  random=prov.eq("random"))
    flags["unknown"] &= flags.groupby(keys)["random"].transform("any")
    return flags[["escalated", "unknown"]]


def ppi_by_provenance(labelled: pd.DataFrame, unlabelled: pd.DataFrame, by: Sequence[str] = (),
                      column: str = "drawn_by", alpha: float = 0.05) -> PPIResult:
    """:func:`ppi_means` (design ``random``) on the labels :func:`left_out` keeps, per cell of ``by``:
    labels of escalated items are refused (the :data:`JUDGE_SELECTED` note), labels of unknown
    provenance beside a random slice are left out, and otherwise used (the selection check tests
    them). A label left out moves its row to the unlabelled items (the judge's score still counts);
    the cell's note says how many."""
    by = list(by)
    flags = left_out(labelled, by, column)
    out = (flags["escalated"] | flags["unknown"]).to_numpy()
    res = ppi_means(labelled[~out], pd.concat([unlabelled, labelled[out]], ignore_index=True), by, alpha=alpha)
    keys = by or ["_cell"]
    counts = labelled.assign(_cell=0)[keys].assign(escalated=flags["escalated"].to_numpy(), unknown=flags["unknown"].to_numpy())
    counts = counts.groupby(keys, as_index=False)[["escalated", "unknown"]].sum()
    lost = res.cells.assign(_cell=0)[keys].merge(counts, on=keys, how="left").fillna({"escalated": 0, "unknown": 0})
    res.cells["note"] = [_join(f"{e} labels of escalated items not used: {JUDGE_SELECTED}" if e else "",
                               f"{u} labels outside the random slice not used (not drawn at random)" if u else "", n)
                         for e, u, n in zip(lost["escalated"].astype(int), lost["unknown"].astype(int), res.cells["note"])]
    return res


def _separate(labelled: pd.DataFrame, unlabelled: pd.DataFrame, keys: list[str], whole_set: bool) -> pd.DataFrame:
    """``unlabelled`` without the labelled items when it is the whole set; checks they are disjoint otherwise."""
    if not all(k in f.columns for k in keys for f in (labelled, unlabelled)):
        if whole_set:
            raise ValueError(f"whole_set=True needs {keys} in both tables to find the labelled items in the whole set")
        return unlabelled
    code, size = _radix([pd.concat([labelled[k], unlabelled[k]], ignore_index=True) for k in keys])
    lab_code, unl_code = code[: len(labelled)], code[len(labelled):]
    kind = "table" if size <= 32 * len(code) + 2**20 else None  # a lookup table of the codes' range: no sort, no hash
    in_lab = np.isin(unl_code, lab_code, kind=kind)
    if whole_set:
        absent = np.flatnonzero(~np.isin(lab_code, unl_code, kind=kind))
        if len(absent):
            raise ValueError(f"labelled: row {absent[0] + 1}, {dict(zip(keys, labelled[keys].iloc[absent[0]]))} is not in the whole set "
                             f"({len(absent)} such rows); give the judge's score on every item of the set")
        return unlabelled[~in_lab]
    if in_lab.any():
        row = int(np.flatnonzero(in_lab)[0])
        raise ValueError(f"unlabelled: row {row + 1}, {dict(zip(keys, unlabelled[keys].iloc[row]))} is also labelled "
                         f"({int(in_lab.sum())} such rows); pass whole_set=True when the unlabelled table is the whole set")
    return unlabelled


def _sums(codes: np.ndarray, n_groups: int, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.bincount(codes, weights=v, minlength=n_groups) for k, v in columns.items()}


def _stratum_estimates(lab: dict[str, np.ndarray], unl: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PPI++ per group from sufficient statistics (see module doc); vectorised over groups."""
    n, big_n = lab["n"], unl["n"]
    with np.errstate(**_ERR):
        y_bar, f_bar, u_bar = lab["y"] / n, lab["f"] / n, unl["f"] / big_n
        var_y = lab["yy"] / n - y_bar**2
        var_f = lab["ff"] / n - f_bar**2
        cov = lab["yf"] / n - y_bar * f_bar
        var_u = np.where(big_n > 0, unl["ff"] / big_n - u_bar**2, 0.0)
        total = n + big_n
        all_mean = (lab["f"] + unl["f"]) / total
        var_all = (lab["ff"] + unl["ff"] - total * all_mean**2) / (total - 1)
        lam = np.where((big_n > 0) & (var_all > 0), cov / ((1 + n / big_n) * var_all), 0.0)
        lam = np.clip(np.nan_to_num(lam), 0.0, 1.0)
        u_term = np.where(big_n > 0, lam * u_bar, 0.0)
        estimate = u_term + y_bar - lam * f_bar
        var_rect = np.maximum(var_y - 2 * lam * cov + lam**2 * var_f, 0.0)
        var_ppi = np.where(big_n > 0, lam**2 * var_u / big_n, 0.0) + var_rect / n
        return {"estimate": estimate, "var": var_ppi, "classical": y_bar, "var_classical": np.maximum(var_y, 0.0) / n,
                "judge_only": all_mean, "lam": lam, "shift": np.where(big_n > 0, f_bar - u_bar, np.nan),
                "var_shift": np.where(big_n > 0, var_f / n + var_u / big_n, np.nan)}


def ppi_means(labelled: pd.DataFrame, unlabelled: pd.DataFrame, by: Sequence[str] = (), design: str = "random",
              stratum: str | None = None, weights: Mapping | None = None, alpha: float = 0.05,
              whole_set: bool = False) -> PPIResult:
    """PPI++ means per cell (module doc).

    ``labelled``: one row per human-labelled item with ``y`` (human score, e.g. the consensus) and
    ``f`` (the judge on that item); ``unlabelled``: one row per other item of the set with ``f``;
    both carry the ``by`` columns (the cell keys) and, for ``design='stratified'``, the
    ``stratum`` column, whose values ``weights`` maps to the stratum's population size or share
    (renormalised within each cell over the strata that have items in it: a stratum with no item
    in a cell is taken as not part of that cell).
    ``design`` says how the labelled items were chosen: ``random``, ``stratified`` or
    ``judge-selected`` (refused). Cells (or strata) with fewer than 2 labelled items get NaN
    figures and a note; a cell with no unlabelled items reduces to the classical estimate.
    ``whole_set``: ``unlabelled`` holds every item of the set, the labelled ones included (matched
    on ``item_id`` and the cell keys), and they are taken out of it; without it, an unlabelled
    row that is also labelled is an error. ``selection_p`` checks the design: a two-sample
    z-test (stratified like the estimate) of the judge's mean on labelled vs unlabelled items;
    below 0.001 the note says the labelled items look chosen rather than random.
    """
    by = list(by)
    _check_design(design, stratum, weights, labelled, unlabelled)
    _check_numbers(labelled, "labelled", ["y", "f"])
    _check_numbers(unlabelled, "unlabelled", ["f"])
    group_cols = by + ([stratum] if stratum is not None else [])
    for name, frame in (("labelled", labelled), ("unlabelled", unlabelled)):
        missing = [c for c in by if c not in frame.columns]
        if missing:
            raise ValueError(f"{name}: missing cell column(s) {missing}")
        for col in group_cols:
            empty = np.flatnonzero(frame[col].isna().to_numpy())
            if len(empty):
                raise ValueError(f"{name}: row {empty[0] + 1}, column {col!r}: no value ({len(empty)} such rows); "
                                 "every row needs its cell and stratum")
    unlabelled = _separate(labelled, unlabelled, ["item_id", *by], whole_set)
    keys = pd.concat([labelled[group_cols], unlabelled[group_cols]], ignore_index=True)
    codes = row_codes([keys[c] for c in group_cols]) if group_cols else np.zeros(len(keys), np.int64)
    first = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())  # each group's first row, in code order
    groups = keys.iloc[first].reset_index(drop=True) if group_cols else pd.DataFrame(index=[0])
    g = len(groups)
    lab_codes, unl_codes = codes[: len(labelled)], codes[len(labelled):]
    y, f, u = (pd.to_numeric(labelled["y"]).to_numpy(float), pd.to_numeric(labelled["f"]).to_numpy(float),
               pd.to_numeric(unlabelled["f"]).to_numpy(float))
    lab = _sums(lab_codes, g, {"n": np.ones_like(y), "y": y, "f": f, "yy": y * y, "ff": f * f, "yf": y * f})
    unl = _sums(unl_codes, g, {"n": np.ones_like(u), "f": u, "ff": u * u})
    est = _stratum_estimates(lab, unl)
    strata = groups.assign(n_labelled=lab["n"].astype(int), n_unlabelled=unl["n"].astype(int), **est)
    strata["note"] = np.where(lab["n"] < 2, "fewer than 2 human-labelled items: no estimate", "")
    for col in ("estimate", "var", "classical", "var_classical", "judge_only", "lam", "shift", "var_shift"):
        strata.loc[lab["n"] < 2, col] = np.nan
    if stratum is None:
        strata["w"] = 1.0
    else:
        size = strata[stratum].map(weights).astype(float)
        strata["w"] = size / (size.groupby([strata[c] for c in by]).transform("sum") if by else size.sum())
    cells = _combine(strata, by, alpha)
    return PPIResult(cells=cells, strata=strata.drop(columns="w"))


def _combine(strata: pd.DataFrame, by: list[str], alpha: float) -> pd.DataFrame:
    """Weighted sums of stratum estimates into cells, with CIs and the effective sample size."""
    w = strata["w"]
    parts = pd.DataFrame({
        "n_labelled": strata["n_labelled"], "n_unlabelled": strata["n_unlabelled"],
        "estimate": w * strata["estimate"], "var": w**2 * strata["var"], "classical": w * strata["classical"],
        "var_classical": w**2 * strata["var_classical"], "judge_only": w * strata["judge_only"],
        "lam": strata["lam"], "note": strata["note"], "shift": w * strata["shift"], "var_shift": w**2 * strata["var_shift"],
    })
    grouped = parts.groupby([strata[c] for c in by] if by else np.zeros(len(parts), int), sort=True)
    sums = ["estimate", "var", "classical", "var_classical", "judge_only", "shift", "var_shift"]
    size = grouped.size()
    cells = grouped[["n_labelled", "n_unlabelled"]].sum()
    cells[sums] = grouped[sums].sum().mask(grouped[sums].count().lt(size, axis=0))  # NaN in a stratum: NaN in the cell
    cells["lam"] = grouped["lam"].first().where(size == 1)
    cells["note"] = grouped["note"].agg(lambda s: _join(*sorted(set(s))))
    cells = cells.reset_index(drop=not by)
    from scipy.stats import norm  # here: importing scipy.stats takes a fresh process ~1 s (reports.build)

    z = norm.ppf(1 - alpha / 2)
    se = np.sqrt(cells["var"].astype(float))
    se_c = np.sqrt(cells["var_classical"].astype(float))
    cells["ci_low"], cells["ci_high"] = cells["estimate"] - z * se, cells["estimate"] + z * se
    cells["classical_ci_low"], cells["classical_ci_high"] = cells["classical"] - z * se_c, cells["classical"] + z * se_c
    with np.errstate(**_ERR):
        cells["n_effective"] = cells["n_labelled"] * cells["var_classical"] / cells["var"]
    cells["se"] = se
    with np.errstate(**_ERR):
        cells["selection_p"] = 2 * norm.sf(np.abs(cells["shift"].astype(float)) / np.sqrt(cells["var_shift"].astype(float)))
    flagged = cells["selection_p"] < SELECTION_P
    cells.loc[flagged, "note"] = [_join(n, SELECTION_NOTE.format(p=p)) for n, p in zip(cells.loc[flagged, "note"], cells.loc[flagged, "selection_p"])]
    order = by + ["n_labelled", "n_unlabelled", "estimate", "se", "ci_low", "ci_high", "classical", "classical_ci_low",
                  "classical_ci_high", "judge_only", "lam", "n_effective", "selection_p", "note"]
    counts = ("n_labelled", "n_unlabelled")
    return cells[order].astype({c: int if c in counts else float for c in order if c not in by and c != "note"})


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
