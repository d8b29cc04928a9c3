"""Correlations between two score vectors over their last axis, for any leading batch axes.

A bootstrap passes (B, n) arrays and gets (B,) back. NaN where a vector is constant.
"""

from __future__ import annotations

import numpy as np

_ERR = {"divide": "ignore", "invalid": "ignore"}


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r over the last axis."""
    dx = x - x.mean(-1, keepdims=True)
    dy = y - y.mean(-1, keepdims=True)
    with np.errstate(**_ERR):
        return (dx * dy).sum(-1) / np.sqrt((dx * dx).sum(-1) * (dy * dy).sum(-1))


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho: Pearson's r of midranks (ties get their average rank)."""
    from scipy.stats import rankdata  # here: importing scipy.stats takes a fresh process seconds

    return pearson(rankdata(x, axis=-1), rankdata(y, axis=-1))


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)) over all pairs of the last axis.

    C - D = sum_{i<j} sign(x_i - x_j) sign(y_i - y_j); n0 - n1 (n0 - n2) = pairs not tied in x (y).
    """
    i, j = np.triu_indices(x.shape[-1], 1)
    sx, sy = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
    with np.errstate(**_ERR):
        return (sx * sy).sum(-1) / np.sqrt((sx * sx).sum(-1) * (sy * sy).sum(-1))


def top_k_overlap(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """|top k by x  ∩  top k by y| / k (higher is better; ties at the boundary broken by position)."""
    tx = np.argsort(-x, -1, kind="stable")[..., :k]
    ty = np.argsort(-y, -1, kind="stable")[..., :k]
    return (tx[..., :, None] == ty[..., None, :]).any(-1).sum(-1) / k


STATISTICS = {"kendall_tau_b": kendall_tau_b, "spearman": spearman, "pearson": pearson}
