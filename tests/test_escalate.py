"""Trust or escalate (reports.escalate): the fixed-sequence threshold, its guarantee by simulation,
and the confidence sources on a judgments table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from reports.escalate import choose_threshold, confidence, coverage_grid, decide, human_consensus, thresholds

from rubrics import load_rubric_set


def brute_force(c, a, target, delta, grid):
    """Fixed-sequence testing written out with scipy's exact binomial test, one threshold at a time."""
    chosen = None
    for lam in sorted(grid, reverse=True):
        sel = c >= lam
        n, k = int(sel.sum()), int(a[sel].sum())
        if n == 0 or binomtest(k, n, target, alternative="greater").pvalue > delta:
            break
        chosen = (lam, binomtest(k, n).proportion_ci(1 - 2 * delta, method="exact").low, k / n, n / len(c))
    return chosen


@pytest.mark.parametrize("seed", range(4))
def test_threshold_equals_brute_force_fixed_sequence_test(seed):
    rng = np.random.default_rng(seed)
    c = rng.random(400)
    a = (rng.random(400) < 0.6 + 0.4 * c).astype(int)
    grid = np.round(np.linspace(0.9, 0, 46), 2)
    t = choose_threshold(c, a, target=0.85, delta=0.1, grid=grid)
    expected = brute_force(c, a, 0.85, 0.1, grid)
    assert expected is not None
    assert (t.threshold, t.guaranteed, t.agreement, t.coverage) == pytest.approx(expected, abs=1e-9)
    assert t.guaranteed >= 0.85 and t.tested["rejected"].sum() == len(t.tested) - (t.threshold > grid.min())


def test_the_sequence_stops_at_the_first_failure():
    # the top of the grid holds too few items to reject, so nothing below is even tested
    c = np.array([0.95] * 3 + [0.5] * 500)
    a = np.ones(503, int)
    t = choose_threshold(c, a, target=0.9, delta=0.1, grid=[0.9, 0.5])
    assert t.threshold is None and t.coverage == 0 and len(t.tested) == 1
    assert "no threshold" in t.provenance()
    assert choose_threshold(c, a, target=0.9, delta=0.1, grid=[0.5]).threshold == 0.5


def test_items_without_confidence_are_always_escalated():
    c = np.array([0.9, np.nan, 0.9, 0.1])
    assert decide(c, 0.5).tolist() == ["judge", "humans", "judge", "humans"]
    assert decide(c, None).tolist() == ["humans"] * 4
    t = choose_threshold(np.r_[np.full(100, 0.9), np.nan], np.ones(101, int), target=0.9, delta=0.1, grid=[0.9, 0.5])
    assert t.threshold == 0.5 and t.coverage == pytest.approx(100 / 101)  # the NaN item is never covered


def test_guarantee_holds_in_at_least_95_percent_of_random_splits():
    rng = np.random.default_rng(7)
    size, n_cal, target, delta = 20_000, 600, 0.9, 0.05
    c = rng.random(size)
    a = (rng.random(size) < 0.55 + 0.45 * c**0.5).astype(int)  # agreement rises with confidence, 0.85 overall
    held, naive_held, coverage = [], [], []
    for _ in range(300):
        perm = rng.permutation(size)
        cal, test = perm[:n_cal], perm[n_cal:]
        t = choose_threshold(c[cal], a[cal], target, delta, coverage_grid(c[test]))
        covered = decide(c[test], t.threshold) == "judge"
        held.append(not covered.any() or a[test][covered].mean() >= target)  # nothing trusted: nothing to break
        coverage.append(covered.mean())
        # the naive rule (lowest threshold whose calibration agreement reaches the target) for contrast
        lam = np.round(np.linspace(1, 0, 101), 2)
        above = c[cal][None, :] >= lam[:, None]
        with np.errstate(invalid="ignore"):
            agree = (above * a[cal]).sum(1) / above.sum(1)
        naive = lam[agree >= target].min()
        naive_held.append(a[test][c[test] >= naive].mean() >= target)
    assert np.mean(held) >= 0.95
    assert np.mean(naive_held) < 0.9  # without the bound the target is missed often: the check can fail
    assert 0.2 < np.mean(coverage) < 0.9


# Synthetic populations whose agreement above each threshold is known exactly: P(agree | c) given,
# so A(lam) = P(agree | c >= lam). Continuous: c ~ U(0, 1), P(agree | c) = 0.6 + 0.4 c, A = 0.8 + 0.2 lam
# (the target 0.9 is reached exactly at lam = 0.5). Discrete (ties): five confidence levels.
LEVELS, SHARES, AGREE = np.array([0.2, 0.5, 0.8, 0.9, 0.97]), np.array([0.2, 0.2, 0.2, 0.25, 0.15]), \
    np.array([0.5, 0.8, 0.86, 0.9, 0.95])


def continuous(rng, n):
    c = rng.random(n)
    return c, (rng.random(n) < 0.6 + 0.4 * c).astype(int)


def discrete(rng, n):
    k = rng.choice(len(LEVELS), n, p=SHARES)
    return LEVELS[k], (rng.random(n) < AGREE[k]).astype(int)


def true_agreement(population, lam: float) -> float:
    if population is continuous:
        return 0.8 + 0.2 * lam
    above = LEVELS >= lam
    return float((SHARES * AGREE)[above].sum() / SHARES[above].sum())


@pytest.mark.parametrize("population", [continuous, discrete], ids=["continuous", "ties"])
@pytest.mark.parametrize("delta", [0.05, 0.1])
def test_guarantee_holds_against_the_exact_truth(population, delta):
    """In >= 1 - delta of 2,000 calibrations (1,000 items each, `kasauti escalate`'s grid from 500 fresh
    items to be decided) the true agreement above the chosen threshold reaches the target; the naive
    rule (lowest grid point whose calibration agreement reaches it) misses it often, so the check can fail."""
    from reports.decisions import decision_grid

    rng = np.random.default_rng(17)
    target, runs, n = 0.9, 2000, 1000
    held, naive_held, trusted = [], [], []
    for _ in range(runs):
        c, a = population(rng, n)
        grid = decision_grid(population(rng, 500)[0], n, target, delta)[0]
        t = choose_threshold(c, a, target, delta, grid)
        held.append(t.threshold is None or true_agreement(population, t.threshold) >= target)
        trusted.append(t.threshold is not None)
        above = c[None, :] >= grid[:, None]
        with np.errstate(invalid="ignore"):
            reached = grid[(above * a).sum(1) / above.sum(1) >= target]
        naive_held.append(not len(reached) or true_agreement(population, reached.min()) >= target)
    assert np.mean(held) >= 1 - delta
    assert np.mean(trusted) > 0.5  # the judge is trusted in most runs: the check is not vacuous
    assert np.mean(naive_held) < 1 - 2 * delta


def judgments():
    rows = [
        # judge, item, metric, repeat, score (judge scale), human_score, probs, status
        ("a", "i1", "m", 0, 3, 2, {"1": 0.1, "2": 0.2, "3": 0.7}, "ok"),
        ("a", "i1", "m", 1, 3, 2, None, "ok"),
        ("a", "i1", "m", 2, 2, 1, None, "ok"),
        ("a", "i2", "m", 0, 1, 0, None, "ok"),
        ("a", "i2", "m", 1, 3, 2, None, "ok"),
        ("a", "i2", "m", 2, None, None, None, "failed"),
        ("b", "i1", "m", 0, 2, 1, {"1": 0.25, "2": 0.5, "3": 0.25}, "ok"),
        ("c", "i1", "m", 0, 2, 1, None, "ok"),
        ("b", "i2", "m", 0, 3, 2, None, "ok"),
    ]
    cols = ["judge", "item_id", "metric", "repeat", "score", "human_score", "probs", "status"]
    df = pd.DataFrame(rows, columns=cols)
    df["probs"] = [json.dumps(p) if p else None for p in df["probs"]]
    return df


def test_confidence_from_the_probability_of_the_chosen_level():
    out = confidence(judgments(), "probs").set_index(["judge", "item_id"])
    assert out.loc[("a", "i1"), "confidence"] == pytest.approx(0.7)
    assert out.loc[("a", "i1"), "decision"] == 2  # on the human scale
    assert out.loc[("b", "i1"), "confidence"] == pytest.approx(0.5)
    assert np.isnan(out.loc[("a", "i2"), "confidence"])  # no probs: no confidence, escalated
    assert len(out) == 5


def test_confidence_from_agreement_across_repeats():
    out = confidence(judgments(), "repeats").set_index(["judge", "item_id"])
    assert (out.loc[("a", "i1"), "decision"], out.loc[("a", "i1"), "confidence"]) == (2, pytest.approx(2 / 3))
    # a 1-1 tie (the failed repeat is no answer) goes to the lower score
    assert (out.loc[("a", "i2"), "decision"], out.loc[("a", "i2"), "confidence"], out.loc[("a", "i2"), "n_votes"]) == (0, 0.5, 2)


def test_confidence_from_agreement_across_judges():
    out = confidence(judgments(), "judges").set_index("item_id")
    assert set(out["judge"]) == {"panel"}
    # i1: a says 2 (lowest repeat), b and c say 1
    assert (out.loc["i1", "decision"], out.loc["i1", "confidence"], out.loc["i1", "n_votes"]) == (1, pytest.approx(2 / 3), 3)
    # i2: a says 0, b says 2: a tie, to the lower score
    assert (out.loc["i2", "decision"], out.loc["i2", "confidence"], out.loc["i2", "n_votes"]) == (0, 0.5, 2)


def test_thresholds_per_cell_and_human_consensus():
    specs = load_rubric_set("pariksha").metrics
    ratings = pd.DataFrame({
        "item_id": ["x", "x", "x", "y", "y"], "metric": "task_quality", "rater": ["h1", "h2", "h3", "h1", "h2"],
        "rater_kind": "human", "score": [2.0, 2, 1, 0, 2], "language": "bn", "task": "t", "length_bin": 1,
    })
    cons = human_consensus(ratings, specs).set_index("item_id")
    assert cons.loc["x", "consensus"] == 2 and np.isnan(cons.loc["y", "consensus"])
    rng = np.random.default_rng(0)
    cal = pd.DataFrame({"metric": "m", "language": np.repeat(["bn", "or"], 300), "confidence": rng.random(600)})
    cal["agree"] = (rng.random(600) < np.where(cal["language"] == "bn", 0.99, 0.5)).astype(int)
    out = thresholds(cal, grid=np.round(np.linspace(0.9, 0, 91), 2)).set_index("language")
    assert out.loc["bn", "threshold"] is not None and out.loc["bn", "coverage"] > 0.9
    assert pd.isna(out.loc["or", "threshold"]) and out.loc["or", "coverage"] == 0


def test_agreement_confidence_needs_more_than_one_vote():
    single = judgments().query("judge == 'a' and repeat == 0")
    with pytest.raises(ValueError, match="every item has one answer.*repeats"):
        confidence(single, "repeats")
    with pytest.raises(ValueError, match="every item has one answer.*judges"):
        confidence(judgments().query("judge == 'a'"), "judges")


def test_each_cell_can_have_its_own_grid_and_a_missing_one_is_named():
    rng = np.random.default_rng(1)
    cal = pd.DataFrame({"metric": "m", "language": np.repeat(["bn", "or"], 200), "confidence": rng.random(400),
                        "agree": 1})
    out = thresholds(cal, grid={("m", "bn"): [0.5], ("m", "or"): [0.2]}).set_index("language")
    assert (out.loc["bn", "threshold"], out.loc["or", "threshold"]) == (0.5, 0.2)
    with pytest.raises(ValueError, match=r"grid: no grid for cell \{'metric': 'm', 'language': 'or'\}"):
        thresholds(cal, grid={("m", "bn"): [0.5]})
    with pytest.raises(ValueError, match=r"agree: item 2 is nan"):
        choose_threshold([0.5, 0.6], [1, np.nan])


def test_guarantee_holds_on_pariksha_with_held_out_humans():
    """The PARIKSHA benchmark's escalation check (benchmarks/pariksha_decisions.py) on the shipped subset:
    GPT-4's confidence is its answer level's agreement rate on a fit third, the threshold is chosen
    (with `kasauti escalate`'s grid) on a calibration third and checked against the held-out humans
    of the test third, in 200 random splits per metric x language."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "pariksha_decisions.py"
    spec = importlib.util.spec_from_file_location("pariksha_decisions", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    table = bench.cell_tables(bench.load(str(Path(__file__).resolve().parents[1] / "kasauti" / "demo_data" / "pariksha")))
    rng = np.random.default_rng(0)
    rows = pd.DataFrame([{"cell": key, **bench.escalation(cell, 0.7, 0.05, 200, rng)}
                         for key, cell in table.groupby(["metric", "language"], sort=True)])
    assert len(rows) == 9
    assert (rows["held_test"] >= 0.95).all() and (rows["held_population"] >= 0.95).all(), rows
    assert rows["escalation_coverage"].max() > 0.05  # the judge is trusted somewhere: the check is not vacuous
