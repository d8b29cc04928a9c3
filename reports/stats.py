"""Vectorised agreement statistics on count arrays.

Every statistic here is a function of small count arrays (coincidence matrices, contingency
tables, per-item sums), never of rating rows, and accepts any number of leading batch axes: a
bootstrap with B resamples passes arrays of shape ``(B, K, K)`` and gets ``(B,)`` back.
Categories are indexed ``0..K-1`` in scale order; ``values`` holds each category's numeric
value. Results that are undefined (no variation, no pairs) are NaN here; the caller
(:mod:`reports.agreement`) turns them into labelled "not computable" entries with a reason.
"""

from __future__ import annotations

from itertools import accumulate

import numpy as np

_ERR = {"divide": "ignore", "invalid": "ignore"}


# ---------------------------------------------------------------- sums over short axes
# numpy's reductions over a short axis are slow on many small matrices (and BLAS products with a 0/1
# matrix are slower still when their threads compete for cores); adding the K slices is fast, and
# sums them in the same order as numpy does for short axes.


def _sum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x summed over ``axis`` by adding its slices, in their memory layout (a C-order copy of the first slice made
    every addition strided when the batch axis is innermost, as in the bootstrap's sums: 1.7x slower)."""
    parts = np.moveaxis(np.asarray(x, dtype=float), axis, 0)
    if len(parts) == 1:
        return parts[0].copy()
    out = parts[0] + parts[1]
    for part in parts[2:]:
        out += part
    return out


def _cumsum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cumulative sums over ``axis`` by adding its slices, in x's memory layout (as :func:`_sum`)."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    slices = np.moveaxis(out, axis, 0)
    for i, total in enumerate(accumulate(np.moveaxis(x, axis, 0))):
        slices[i] = total
    return out


def _total(x: np.ndarray) -> np.ndarray:
    """Sum over the last two axes: one matrix-vector product."""
    return x.reshape(x.shape[:-2] + (-1,)) @ np.ones(x.shape[-2] * x.shape[-1])


def _quad(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_kl a_k w_kl b_l over the last axis of a, b (..., K), w a constant (K, K): K matrix-vector products."""
    out = np.zeros(a.shape[:-1])
    b = np.ascontiguousarray(b)  # one layout: BLAS's order of summation (the last bits) depends on it
    for k, row in enumerate(np.asarray(w, dtype=float)):
        out += a[..., k] * (b @ row)
    return out


def _wsum(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_kl x_kl w_kl over the last two axes of x (..., K, K), w a constant (K, K): one matrix-vector product."""
    return x.reshape(x.shape[:-2] + (-1,)) @ np.asarray(w, dtype=float).ravel()


# ---------------------------------------------------------------- weights and distances


def disagreement_weights(values: np.ndarray, kind: str) -> np.ndarray:
    """Cohen's disagreement weights D (K, K): 0 on the diagonal.

    ``unweighted``: 1 off the diagonal; ``linear``: |v_k - v_l|; ``quadratic``: (v_k - v_l)^2,
    both divided by their maximum (the scale cancels in kappa).
    """
    v = np.asarray(values, dtype=float)
    diff = np.abs(v[:, None] - v[None, :])
    if kind == "unweighted":
        d = (diff > 0).astype(float)
    elif kind == "linear":
        d = diff
    elif kind == "quadratic":
        d = diff**2
    else:
        raise ValueError(f"unknown weights {kind!r}: expected unweighted, linear or quadratic")
    return d / d.max()


def gwet_ordinal_weights(k: int) -> np.ndarray:
    """Gwet's ordinal agreement weights: w_kl = 1 - M_kl / max M, M_kl = C(|k-l|+1, 2)."""
    d = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]) + 1
    m = d * (d - 1) / 2
    return 1 - m / m.max()


def krippendorff_delta2(marginals: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's squared difference function delta^2_ck, shape (..., K, K).

    nominal: [c != k]; interval: (v_c - v_k)^2; ordinal: (sum_{g=c..k} n_g - (n_c + n_k)/2)^2,
    which depends on the coincidence marginals ``n_g`` (hence the batch axes).
    """
    n = np.asarray(marginals, dtype=float)
    k = n.shape[-1]
    d = np.zeros(n.shape[:-1] + (k, k))
    for (c, l), value in _delta2_pairs(n, values, level).items():
        d[..., c, l] = d[..., l, c] = value
    return d


def _delta2_pairs(n: np.ndarray, values: np.ndarray, level: str) -> dict[tuple[int, int], np.ndarray | float]:
    """delta^2_cl for each c < l (the function is symmetric and 0 for c = l): a number, or one per batch entry (ordinal)."""
    k = n.shape[-1]
    pairs = [(c, l) for c in range(k) for l in range(c + 1, k)]
    if level == "nominal":
        return {p: 1.0 for p in pairs}
    if level == "interval":
        v = np.asarray(values, dtype=float)
        return {(c, l): float((v[c] - v[l]) ** 2) for c, l in pairs}
    if level == "ordinal":
        cum = list(accumulate(np.moveaxis(n, -1, 0)))  # cum[g] = sum_{h <= g} n_h
        return {(c, l): (cum[l] - cum[c] + n[..., c] - (n[..., c] + n[..., l]) / 2) ** 2 for c, l in pairs}
    raise ValueError(f"unknown level of measurement {level!r}: expected nominal, ordinal or interval")


# ---------------------------------------------------------------- per-item contributions


def item_coincidences(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's per-item coincidence matrices, shape (I, K, K).

    o_uck = (n_uc n_uk - [c = k] n_uc) / (m_u - 1) for an item u with m_u >= 2 pairable values;
    zero for items with fewer than two values (they are not pairable).
    """
    n = np.asarray(counts, dtype=float)
    m = n.sum(-1)
    o = n[:, :, None] * n[:, None, :] - np.einsum("ic,ck->ick", n, np.eye(n.shape[-1]))
    with np.errstate(**_ERR):
        return np.where((m >= 2)[:, None, None], o / (m - 1)[:, None, None], 0.0)


# ---------------------------------------------------------------- statistics on counts


def krippendorff_alpha(coincidence: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """alpha = 1 - D_o / D_e = 1 - (n - 1) sum_ck o_ck d_ck / sum_ck n_c n_k d_ck.

    ``coincidence`` (..., K, K) is the sum of item coincidences; n_c its row sums, n = sum n_c.
    NaN where D_e = 0 (all pairable values in one category) or there are no pairable values.
    """
    o = np.asarray(coincidence, dtype=float)
    nc = _sum(o, -1)
    n = _sum(nc, -1)
    do, de = np.zeros(np.shape(n)), np.zeros(np.shape(n))
    for (c, l), d in _delta2_pairs(nc, values, level).items():  # both (c, l) and (l, c); d = 0 on the diagonal
        do += (o[..., c, l] + o[..., l, c]) * d
        de += 2 * nc[..., c] * nc[..., l] * d
    with np.errstate(**_ERR):
        return np.where(de > 0, 1 - (n - 1) * do / de, np.nan)


def cohen_kappa(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """kappa_w = 1 - sum w_kl p_kl / sum w_kl p_k+ p_+l with disagreement weights w (K, K).

    ``table`` (..., K, K): rows rater A, columns rater B. NaN where chance disagreement is 0.
    """
    t = np.asarray(table, dtype=float)
    n = _total(t)
    with np.errstate(**_ERR):
        de = _quad(_sum(t, -1) / n[..., None], weights, _sum(t, -2) / n[..., None])  # sum w_kl p_k+ p_+l
        return np.where(de > 0, 1 - _wsum(t, weights) / n / de, np.nan)


def gwet_ac_table(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gwet's AC1 (identity agreement weights) / AC2 for two raters from a contingency table.

    pa = sum w_kl p_kl; pi_k = (p_k+ + p_+k) / 2; pe = T_w / (q (q - 1)) sum_k pi_k (1 - pi_k),
    T_w = sum of the agreement weights, q = number of categories; AC = (pa - pe) / (1 - pe).
    """
    t = np.asarray(table, dtype=float)
    q = t.shape[-1]
    n = _total(t)
    with np.errstate(**_ERR):
        pa = _wsum(t, weights) / n
        pi = (_sum(t, -1) + _sum(t, -2)) / (2 * n[..., None])
        pe = weights.sum() / (q * (q - 1)) * _sum(pi * (1 - pi), -1)
        return np.where(n > 0, (pa - pe) / (1 - pe), np.nan)


def gwet_item_agreement(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-item weighted agreement of Gwet's multi-rater AC: sum_k n_k (n*_k - 1) / (m (m - 1)).

    n*_k = sum_l w_kl n_l. Zero for items with fewer than two ratings.
    """
    n = np.asarray(counts, dtype=float)
    m = n.sum(-1)
    star = n @ weights.T
    with np.errstate(**_ERR):
        return np.where(m >= 2, (n * (star - 1)).sum(-1) / (m * (m - 1)), 0.0)


def gwet_ac_multi(pa_sum: np.ndarray, n_pairable: np.ndarray, pi_sum: np.ndarray, n_rated: np.ndarray,
                  weights: np.ndarray) -> np.ndarray:
    """Gwet's multi-rater AC1/AC2 from item sums (missing ratings allowed).

    pa = (1/n') sum_{items with >= 2 ratings} agreement_i  (see :func:`gwet_item_agreement`);
    pi_k = (1/n) sum_{items with >= 1 rating} n_ik / m_i; pe = T_w / (q (q-1)) sum pi_k (1 - pi_k).
    """
    q = weights.shape[0]
    with np.errstate(**_ERR):
        pa = pa_sum / n_pairable
        pi = pi_sum / n_rated[..., None]
        pe = weights.sum() / (q * (q - 1)) * _sum(pi * (1 - pi), -1)
        return np.where(n_pairable > 0, (pa - pe) / (1 - pe), np.nan)


def fleiss_kappa(p_item_sum: np.ndarray, category_sum: np.ndarray, n_items: np.ndarray) -> np.ndarray:
    """Fleiss' kappa for items rated by the same number m of raters.

    P_i = (sum_c n_ic^2 - m) / (m (m - 1)); P-bar = mean P_i; p_c = sum_i n_ic / (N m);
    kappa = (P-bar - P_e) / (1 - P_e), P_e = sum p_c^2. Inputs are sums over items.
    """
    with np.errstate(**_ERR):
        pbar = p_item_sum / n_items
        pc = category_sum / _sum(category_sum, -1)[..., None]
        pe = _sum(pc**2, -1)
        return np.where((n_items > 0) & (pe < 1), (pbar - pe) / (1 - pe), np.nan)


def _midranks(marginal: np.ndarray) -> np.ndarray:
    """Midrank of each category given its counts: cum_before + (count + 1) / 2."""
    before = _cumsum(marginal, -1) - marginal
    return before + (marginal + 1) / 2


def spearman_table(table: np.ndarray) -> np.ndarray:
    """Spearman's rho with ties from a contingency table: Pearson correlation of midranks."""
    t = np.asarray(table, dtype=float)
    r, c = _sum(t, -1), _sum(t, -2)
    n = _sum(r, -1)
    x, y = _midranks(r), _midranks(c)
    with np.errstate(**_ERR):
        mx = _sum(r * x, -1) / n
        my = _sum(c * y, -1) / n
        dx, dy = x - mx[..., None], y - my[..., None]
        cov = sum(dx[..., k] * _sum(t[..., k, :] * dy, -1) for k in range(t.shape[-1]))
        vx, vy = _sum(r * dx**2, -1), _sum(c * dy**2, -1)
        return np.where((vx > 0) & (vy > 0), cov / np.sqrt(vx * vy), np.nan)


def kendall_tau_b_table(table: np.ndarray) -> np.ndarray:
    """Kendall's tau-b from a contingency table: (C - D) / sqrt((n0 - n1)(n0 - n2)).

    C (D) = pairs ordered the same (opposite) way by both raters; n0 = n(n-1)/2;
    n1, n2 = pairs tied on rows, columns.
    """
    t = np.asarray(table, dtype=float)
    k = t.shape[-1]
    conc, disc = np.zeros(t.shape[:-2]), np.zeros(t.shape[:-2])
    below = np.zeros_like(t[..., 0, :])  # below[l] = sum_{k' > row} t_k'l, built from the last row up (t's layout)
    for row in range(k - 2, -1, -1):
        below += t[..., row + 1, :]
        upto = _cumsum(below, -1)  # sum_{l' <= l}
        conc += _sum(t[..., row, :] * (upto[..., -1:] - upto), -1)  # pairs below and to the right
        disc += _sum(t[..., row, :] * (upto - below), -1)  # below and to the left
    r, c = _sum(t, -1), _sum(t, -2)
    n = _sum(r, -1)
    n0 = n * (n - 1) / 2
    n1 = _sum(r * (r - 1) / 2, -1)
    n2 = _sum(c * (c - 1) / 2, -1)
    with np.errstate(**_ERR):
        den = np.sqrt((n0 - n1) * (n0 - n2))
        return np.where(den > 0, (conc - disc) / den, np.nan)


def table_mean(table: np.ndarray, cell_values: np.ndarray) -> np.ndarray:
    """sum_kl t_kl f_kl / n: the mean of a per-cell quantity (agreement, bias) over a table."""
    t = np.asarray(table, dtype=float)
    with np.errstate(**_ERR):
        return _wsum(t, cell_values) / _total(t)
