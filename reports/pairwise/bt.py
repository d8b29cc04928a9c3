"""Bradley-Terry models with ties, fitted for many count matrices at once.

Models i = 0..M-1 have log-strengths s_i (pi_i = e^{s_i}); for a pair with d = s_i - s_j, w wins
of i, l wins of j and t ties (n = w + l + t) the log-likelihood is

- Davidson (1970): P(i > j) = pi_i / (pi_i + pi_j + nu sqrt(pi_i pi_j)),
  P(i = j) = nu sqrt(pi_i pi_j) / (same), nu > 0:
  ll = (w - l) d / 2 + t log nu - n log(e^{d/2} + e^{-d/2} + nu)
- Rao-Kupper (1967): P(i > j) = pi_i / (pi_i + theta pi_j), theta = e^eta >= 1,
  P(i = j) = (theta^2 - 1) pi_i pi_j / ((pi_i + theta pi_j)(theta pi_i + pi_j)):
  ll = -(w + t) log(1 + theta e^{-d}) - (l + t) log(1 + theta e^{d}) + t log(theta^2 - 1)

summed over unordered pairs, minus ``prior * sum_i s_i^2`` (choix's ``alpha``: a Gaussian prior
that makes every fit exist). Both are concave in (s, tau) with tau = log nu (Davidson) or
tau = eta = log theta (Rao-Kupper), and both reduce to plain Bradley-Terry (P(i > j) =
1 / (1 + e^{-d})) without ties, where the tie parameter sits at its boundary (nu = 0, theta = 1)
and is held there. The fit is a batched Newton iteration with backtracking on arrays of shape
(B, M, M): a bootstrap fits all its resamples in one call, warm-started at the point estimate.
Scores are normalised to mean log-strength 0 (geometric-mean strength 1).

Without a prior the maximum-likelihood estimate exists only when, for every split of the models
into two groups, each group has beaten or tied the other at least once (Ford 1957; ties count
both ways) and, with ties, some comparison is decisive: :func:`exists` checks this, a fit where
it fails is NaN.
"""

from __future__ import annotations

import numpy as np

MODELS = ("davidson", "rao-kupper")
_ERR = {"divide": "ignore", "invalid": "ignore", "over": "ignore"}


def _pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(m, 1)


def exists(wins: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Whether the unpenalised fit exists, per leading batch entry of (..., M, M) counts.

    ``wins[i, j]``: i beat j; ``ties`` symmetric. The graph with an edge i -> j when i beat or tied
    j must be strongly connected (:func:`reach`), and a resample with ties needs a decisive outcome too.
    """
    w, t = np.asarray(wins, float), np.asarray(ties, float)
    decisive = w.sum((-2, -1)) > 0
    return reach(w + t).all((-2, -1)) & decisive


def reach(adj: np.ndarray) -> np.ndarray:
    """Reachability in the graph with an edge i -> j where ``adj[..., i, j] > 0`` (every node reaches itself):
    the transitive closure by repeated squaring."""
    m = adj.shape[-1]
    out = (adj > 0) | np.eye(m, dtype=bool)
    for _ in range(int(np.ceil(np.log2(max(m, 2))))):
        out = (out.astype(float) @ out.astype(float)) > 0
    return out


def _terms(kind: str, d, tau, w, l, t):
    """Per pair: log-likelihood and its first and second derivatives in d and tau."""
    n = w + l + t
    with np.errstate(**_ERR):
        if kind == "davidson":
            nu = np.exp(tau)[..., None]
            sp, sm = np.exp(d / 2), np.exp(-d / 2)
            den = sp + sm + nu
            ll = (w - l) * d / 2 + np.where(t > 0, t * np.log(nu), 0.0) - n * np.log(den)
            g_d = (w - l) / 2 - n * (sp - sm) / (2 * den)
            h_dd = -n * ((sp + sm) / 4 * den - ((sp - sm) / 2) ** 2) / den**2
            g_t = t - n * nu / den
            h_tt = -n * nu * (den - nu) / den**2
            h_dt = n * (sp - sm) / 2 * nu / den**2
        elif kind == "rao-kupper":
            from scipy.special import expit  # here: a second of imports that Davidson fits do not need

            eta = tau[..., None]
            a, b = eta - d, eta + d
            sa, sb = expit(a), expit(b)
            va, vb = sa * (1 - sa), sb * (1 - sb)
            wt, lt = w + t, l + t
            ll = -wt * np.logaddexp(0, a) - lt * np.logaddexp(0, b) + np.where(t > 0, t * np.log(np.expm1(2 * eta)), 0.0)
            g_d = wt * sa - lt * sb
            h_dd = -wt * va - lt * vb
            g_t = -wt * sa - lt * sb + np.where(t > 0, t * (1 + 1 / np.tanh(eta)), 0.0)
            h_tt = -wt * va - lt * vb - np.where(t > 0, t / np.sinh(eta) ** 2, 0.0)
            h_dt = wt * va - lt * vb
        else:
            raise ValueError(f"unknown model {kind!r}: expected one of {MODELS}")
    return ll, g_d, g_t, h_dd, h_dt, h_tt


def _loglik(kind, s, tau, w, l, t, iu, prior):
    d = s[:, iu[0]] - s[:, iu[1]]
    ll = _terms(kind, d, tau, w, l, t)[0].sum(-1) - prior * (s**2).sum(-1)
    return np.where(np.isfinite(ll), ll, -np.inf)


def fit(wins: np.ndarray, ties: np.ndarray, model: str = "davidson", prior: float = 0.0,
        init: tuple[np.ndarray, np.ndarray] | None = None, tol: float = 1e-10,
        max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit B count matrices at once: wins (B, M, M) with wins[b, i, j] = i beat j, ties (B, M, M) symmetric.

    Returns (scores (B, M) with mean 0, tie parameter (B,): nu for Davidson, theta for Rao-Kupper,
    ok (B,)). Fits that do not exist (see :func:`exists`; only without a prior) or do not converge
    are NaN with ok False. ``init``: (scores, tie parameter) to start from, e.g. a point estimate.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: expected one of {MODELS}")
    wins, ties = np.asarray(wins, float), np.asarray(ties, float)
    nb, m = wins.shape[0], wins.shape[-1]
    iu = _pairs(m)
    w, l, t = wins[:, iu[0], iu[1]], wins[:, iu[1], iu[0]], ties[:, iu[0], iu[1]]
    has_ties = t.sum(-1) > 0
    boundary = -np.inf if model == "davidson" else 0.0
    ok = exists(wins, ties) if prior == 0 else np.ones(nb, bool)
    s = np.zeros((nb, m)) if init is None else np.broadcast_to(init[0], (nb, m)).copy()
    start = np.full(nb, 0.0 if model == "davidson" else 0.5)  # tau = log nu or log theta
    if init is not None:
        with np.errstate(divide="ignore"):
            warm = np.broadcast_to(np.log(init[1]), (nb,))
        start = np.where(np.isfinite(warm) & (warm > (0 if model == "rao-kupper" else -np.inf)), warm, start)
    tau = np.where(has_ties, start, boundary)
    inc = np.zeros((len(iu[0]), m))
    inc[np.arange(len(iu[0])), iu[0]], inc[np.arange(len(iu[0])), iu[1]] = 1.0, -1.0
    gauge = 1.0 if prior == 0 else 0.0
    active = ok.copy()
    ll = _loglik(model, s, tau, w, l, t, iu, prior)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        sa, ta = s[idx], tau[idx]
        wa, la, tia, hta = w[idx], l[idx], t[idx], has_ties[idx]
        d = sa[:, iu[0]] - sa[:, iu[1]]
        _, g_d, g_t, h_dd, h_dt, h_tt = _terms(model, d, ta, wa, la, tia)
        hess = np.zeros((len(idx), m + 1, m + 1))
        hess[:, iu[0], iu[1]] = -h_dd
        hess[:, iu[1], iu[0]] = -h_dd
        di = np.arange(m)
        hess[:, di, di] = h_dd @ np.abs(inc) - 2 * prior
        hess[:, :m, :m] -= gauge  # removes the null direction (all scores + c) without changing the step
        hst = np.where(hta[:, None], h_dt @ inc, 0.0)
        hess[:, :m, m], hess[:, m, :m] = hst, hst
        hess[:, m, m] = np.where(hta, h_tt.sum(-1), -1.0)
        grad = np.concatenate([g_d @ inc - 2 * prior * sa, np.where(hta, g_t.sum(-1), 0.0)[:, None]], 1)
        with np.errstate(**_ERR):
            step = np.linalg.solve(hess, -grad[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        lam = np.ones(len(idx))
        base = ll[idx]
        new_s, new_t, new_ll = sa.copy(), ta.copy(), base.copy()
        todo = np.ones(len(idx), bool)
        for _ in range(40):  # backtracking: halve the step until the log-likelihood does not drop
            cs = sa[todo] + lam[todo, None] * step[todo, :m]
            ct = np.where(hta[todo], ta[todo] + lam[todo] * step[todo, m], ta[todo])
            cll = _loglik(model, cs, ct, wa[todo], la[todo], tia[todo], iu, prior)
            good = cll >= base[todo] - 1e-12 * np.abs(base[todo])
            sel = np.flatnonzero(todo)[good]
            new_s[sel], new_t[sel], new_ll[sel] = cs[good], ct[good], cll[good]
            todo[sel] = False
            lam[todo] /= 2
            if not todo.any():
                break
        s[idx], tau[idx], ll[idx] = new_s, new_t, new_ll
        s[idx] -= s[idx].mean(-1, keepdims=True)
        done = np.abs(lam[:, None] * step).max(-1) < tol
        active[idx[done]] = False
    ok &= ~active
    s[~ok] = np.nan
    tie = np.exp(tau)
    tie = np.where(ok, tie, np.nan)
    return s, tie, ok

