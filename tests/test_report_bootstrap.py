"""Simulation: the item-bootstrap 95% intervals cover the true (population) value ~95% of the time.

200 simulated datasets; with true coverage 0.95 the observed rate has binomial standard error
sqrt(.95 * .05 / 200) = 0.0154, so we accept 0.95 +- 3 SE = [0.904, 0.996] (a percentile bootstrap
that really covered, say, only 85% or always 100% fails).
"""

from __future__ import annotations

import numpy as np
import pytest

from reports import stats as S
from reports.agreement import Scale, analyse_cell

# pandas' deprecations (Pandas4Warning: errors in pandas 4) and FutureWarnings fail these tests
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning", "error::FutureWarning")

N_DATASETS, N_ITEMS, N_BOOT = 200, 150, 500
LOW, HIGH = 0.95 - 3 * 0.0154, 0.95 + 3 * 0.0154

PREVALENCE = np.array([0.15, 0.35, 0.5])  # true item level, skewed like real ratings
# P(rater says column | true level row): humans, and a lenient judge
HUMAN = np.array([[0.7, 0.25, 0.05], [0.15, 0.7, 0.15], [0.05, 0.2, 0.75]])
JUDGE = np.array([[0.5, 0.2, 0.3], [0.05, 0.45, 0.5], [0.0, 0.1, 0.9]])
SCALE = Scale((0.0, 1.0, 2.0), "ordinal")


def population_values() -> dict[str, float]:
    """Population statistics from the generative model (no sampling)."""
    v = np.arange(3)
    joint_hj = (PREVALENCE[:, None, None] * HUMAN[:, :, None] * JUDGE[:, None, :]).sum(0)  # one human x judge
    pair_hh = (PREVALENCE[:, None, None] * HUMAN[:, :, None] * HUMAN[:, None, :]).sum(0)  # two humans
    # population coincidences are proportional to the pair distribution; scale to a huge n so (n-1)/n -> 1
    alpha = S.krippendorff_alpha(pair_hh * 1e9, v, "ordinal")
    return {"hj_kappa_quadratic": float(S.cohen_kappa(joint_hj, S.disagreement_weights(v, "quadratic"))),
            "hj_ac2": float(S.gwet_ac_table(joint_hj, S.gwet_ordinal_weights(3))),
            "hh_alpha": float(alpha)}


def simulate(rng: np.random.Generator, n_humans: int):
    truth = rng.choice(3, N_ITEMS, p=PREVALENCE)
    u = rng.random((N_ITEMS, n_humans))
    said = (u[:, :, None] > np.cumsum(HUMAN[truth], 1)[:, None, :]).sum(-1)
    humans = np.stack([(said == c).sum(1) for c in range(3)], 1)
    judge = (rng.random(N_ITEMS)[:, None] > np.cumsum(JUDGE[truth], 1)).sum(1)
    return humans, judge


def test_bootstrap_ci_coverage():
    truth = population_values()
    rng = np.random.default_rng(20261123)
    hits = {name: 0 for name in truth}
    for _ in range(N_DATASETS):
        # judge-vs-consensus statistics with one human (consensus = that human); alpha with two humans
        humans1, judge = simulate(rng, 1)
        stats1, _ = analyse_cell(humans1, judge, SCALE, N_BOOT, rng)
        humans2, _ = simulate(rng, 2)
        stats2, _ = analyse_cell(humans2, np.full(N_ITEMS, -1), SCALE, N_BOOT, rng)
        for name in truth:
            e = (stats2 if name == "hh_alpha" else stats1)[name]
            hits[name] += e["ci_low"] <= truth[name] <= e["ci_high"]
    coverage = {name: h / N_DATASETS for name, h in hits.items()}
    for name, c in coverage.items():
        assert LOW <= c <= HIGH, f"{name}: coverage {c:.3f} outside [{LOW:.3f}, {HIGH:.3f}] (true value {truth[name]:.3f})"


def test_bootstrap_resamples_items_not_ratings():
    """The bootstrap unit is the item: twice the items (same ratings per item) must narrow the CI."""
    rng = np.random.default_rng(0)
    humans, judge = simulate(rng, 2)
    width = lambda h, j: (lambda e: e["ci_high"] - e["ci_low"])(analyse_cell(h, j, SCALE, 2000, np.random.default_rng(1))[0]["hj_exact"])
    base = width(humans, judge)
    assert width(np.vstack([humans, humans]), np.concatenate([judge, judge])) < 0.8 * base
