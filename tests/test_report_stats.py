"""Agreement statistics against independent implementations and published worked examples."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr
from sklearn.metrics import cohen_kappa_score

from reports import stats as S
from reports.agreement import Scale, analyse_cell, consensus

# pandas' deprecations (Pandas4Warning: errors in pandas 4) and FutureWarnings fail these tests
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning", "error::FutureWarning")


NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", reliability data with missing
# values: 4 observers x 12 units, values 1..5. Published: nominal .743, ordinal .815, interval .849.
KRIPP_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])


def counts_of(data: np.ndarray, values) -> np.ndarray:
    """(raters, items) reliability data -> (items, K) counts."""
    return np.stack([(data == v).sum(0) for v in values], 1)


def random_reliability(rng, n_items=80, n_raters=5, k=4, missing=0.35):
    truth = rng.integers(0, k, n_items)
    data = np.clip(truth[None, :] + rng.integers(-1, 2, (n_raters, n_items)), 0, k - 1).astype(float)
    data[rng.random(data.shape) < missing] = NAN
    return data


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_krippendorff_2011_worked_example(level, published):
    values = np.arange(1, 6)
    o = S.item_coincidences(counts_of(KRIPP_2011, values)).sum(0)
    alpha = S.krippendorff_alpha(o, values, level)
    assert round(float(alpha), 3) == published
    assert alpha == pytest.approx(krippendorff.alpha(reliability_data=KRIPP_2011, level_of_measurement=level), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_matches_krippendorff_package_missing_and_unequal_raters(seed, level):
    rng = np.random.default_rng(seed)
    data = random_reliability(rng)
    values = np.arange(4)
    counts = counts_of(data, values)
    assert len(set(counts.sum(1))) > 2  # unequal numbers of raters per item, some with 0 or 1
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=list(values))
    o = S.item_coincidences(counts).sum(0)
    assert S.krippendorff_alpha(o, values, level) == pytest.approx(expected, abs=1e-12)
    # the same through the pattern/bootstrap path
    stats, _ = analyse_cell(counts, np.full(len(counts), -1), Scale(tuple(map(float, values)), level), 0, rng)
    assert stats["hh_alpha"]["value"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_sklearn(weights):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, 300)
    b = np.clip(a + rng.integers(-2, 2, 300), 0, 3)
    t = np.zeros((4, 4))
    np.add.at(t, (a, b), 1)
    kind = weights or "unweighted"
    assert S.cohen_kappa(t, S.disagreement_weights(np.arange(4), kind)) == pytest.approx(
        cohen_kappa_score(a, b, weights=weights), abs=1e-12)


def test_fleiss_kappa_matches_statsmodels():
    from statsmodels.stats.inter_rater import fleiss_kappa

    rng = np.random.default_rng(2)
    data = random_reliability(rng, n_items=60, n_raters=4, missing=0.0)
    counts = counts_of(data, np.arange(4))
    stats, _ = analyse_cell(counts, np.full(60, -1), Scale((0.0, 1.0, 2.0, 3.0), "nominal"), 0, rng)
    assert stats["hh_fleiss"]["value"] == pytest.approx(fleiss_kappa(counts, method="fleiss"), abs=1e-12)
    assert stats["hh_fleiss"]["n_items"] == 60


def gwet_ac_textbook(data: np.ndarray, values, weights: np.ndarray) -> float:
    """Gwet (2014), Handbook of Inter-Rater Reliability, ch. 3/4, subject by subject in plain loops:
    pa over subjects with >= 2 ratings, pi_k over subjects with >= 1, pe = T_w/(q(q-1)) sum pi_k(1-pi_k)."""
    q = len(values)
    pa_terms, pi = [], np.zeros(q)
    rated = 0
    for i in range(data.shape[1]):
        r = [sum(1 for x in data[:, i] if x == v) for v in values]
        ri = sum(r)
        if ri == 0:
            continue
        rated += 1
        for k in range(q):
            pi[k] += r[k] / ri
        if ri >= 2:
            star = [sum(weights[k][l] * r[l] for l in range(q)) for k in range(q)]
            pa_terms.append(sum(r[k] * (star[k] - 1) for k in range(q)) / (ri * (ri - 1)))
    pa = sum(pa_terms) / len(pa_terms)
    pi /= rated
    pe = weights.sum() / (q * (q - 1)) * sum(p * (1 - p) for p in pi)
    return (pa - pe) / (1 - pe)


def test_gwet_multi_rater_on_gwets_handbook_data():
    """AC1 = 0.77544 is published for this data (Gwet 2014, p. 120; the same 4 raters x 12 units as
    Krippendorff 2011): irrCAC's documented example (R and Python). AC2 with Gwet's ordinal weights
    is checked against the textbook formula computed subject by subject."""
    values = np.arange(1, 6)
    counts = counts_of(KRIPP_2011, values)
    rng = np.random.default_rng(0)
    got = {level: analyse_cell(counts, np.full(12, -1), Scale(tuple(map(float, values)), level), 0, rng)[0]["hh_ac"]["value"]
           for level in ("nominal", "ordinal")}
    assert round(got["nominal"], 5) == 0.77544
    assert got["nominal"] == pytest.approx(gwet_ac_textbook(KRIPP_2011, values, np.eye(5)), abs=1e-12)
    assert got["ordinal"] == pytest.approx(gwet_ac_textbook(KRIPP_2011, values, S.gwet_ordinal_weights(5)), abs=1e-12)


def test_gwet_two_rater_table_published_example():
    """irrCAC's vignette (Gwet), ``cont3x3abstractors``: AC1 0.8493305, Cohen's kappa 0.7964094."""
    t = np.array([[13, 0, 0], [0, 20, 7], [0, 4, 56]], dtype=float)
    assert S.gwet_ac_table(t, np.eye(3)) == pytest.approx(0.8493305, abs=5e-8)
    assert S.cohen_kappa(t, S.disagreement_weights(np.arange(3), "unweighted")) == pytest.approx(0.7964094, abs=5e-8)


def test_gwet_two_rater_table_matches_textbook_formula():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 3, 200))
    t = np.zeros((3, 3))
    np.add.at(t, (a, b), 1)
    for w in (np.eye(3), S.gwet_ordinal_weights(3)):
        assert S.gwet_ac_table(t, w) == pytest.approx(gwet_ac_textbook(np.stack([a, b]), range(3), w), abs=1e-12)


def test_rank_correlations_match_scipy():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 5, 400)
    b = np.clip(a + rng.integers(-2, 3, 400), 0, 4)
    t = np.zeros((5, 5))
    np.add.at(t, (a, b), 1)
    assert S.spearman_table(t) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert S.kendall_tau_b_table(t) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)
    batch = np.stack([t, t.T])
    assert np.allclose(S.kendall_tau_b_table(batch), kendalltau(a, b).statistic)


def test_consensus_median_and_majority():
    counts = np.array([[1, 1, 1], [2, 1, 0], [1, 1, 0], [0, 0, 0], [0, 2, 2], [0, 3, 1]])
    assert consensus(counts, "ordinal").tolist() == [1, 0, -1, -1, -1, 1]
    assert consensus(counts, "nominal").tolist() == [-1, 0, -1, -1, -1, 1]


def _brute_force_substituted_alpha(humans: list[list[int]], judge: list[int], k: int, level: str) -> float:
    """Coincidences built pair by pair: for each item and each dropped human, the judge joins the
    remaining humans; each replaced set counts with weight 1/m (loop version of the vectorised one)."""
    o = np.zeros((k, k))
    for hs, j in zip(humans, judge):
        m = len(hs)
        if m < 2 or j < 0:
            continue
        for drop in range(m):
            unit = [h for i, h in enumerate(hs) if i != drop] + [j]
            for a in range(len(unit)):
                for b in range(len(unit)):
                    if a != b:
                        o[unit[a], unit[b]] += 1 / (m - 1) / m
    return float(S.krippendorff_alpha(o, np.arange(k), level))


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_judge_substituted_alpha_matches_brute_force(level):
    rng = np.random.default_rng(5)
    humans = [list(rng.integers(0, 3, rng.integers(1, 5))) for _ in range(70)]
    judge = [int(x) if rng.random() > 0.1 else -1 for x in rng.integers(0, 3, 70)]
    counts = np.array([np.bincount(h, minlength=3) for h in humans])
    stats, _ = analyse_cell(counts, np.array(judge), Scale((0.0, 1.0, 2.0), level), 0, rng)
    assert stats["alpha_judge_sub"]["value"] == pytest.approx(_brute_force_substituted_alpha(humans, judge, 3, level), abs=1e-12)
    # "judge as one more rater" is plain alpha on the data with the judge added as a rater
    data = np.full((5, 70), NAN)
    for i, (hs, j) in enumerate(zip(humans, judge)):
        data[: len(hs), i] = hs
        if j >= 0:
            data[4, i] = j
    has_j = np.array(judge) >= 0
    expected = krippendorff.alpha(reliability_data=data[:, has_j], level_of_measurement=level, value_domain=[0, 1, 2])
    assert stats["alpha_with_judge"]["value"] == pytest.approx(expected, abs=1e-12)


def test_cell_statistics_match_row_level_references():
    """Judge vs consensus through analyse_cell equals sklearn/scipy on the consensus column."""
    rng = np.random.default_rng(6)
    n = 150
    truth = rng.integers(0, 3, n)
    humans = np.stack([np.bincount(np.clip(truth[i] + rng.integers(-1, 2, 3), 0, 2), minlength=3) for i in range(n)])
    judge = np.clip(truth + rng.integers(0, 2, n), 0, 2)
    stats, extras = analyse_cell(humans, judge, Scale((0.0, 1.0, 2.0), "ordinal"), 0, rng)
    cons = consensus(humans, "ordinal")
    ok = cons >= 0
    assert stats["hj_kappa_quadratic"]["value"] == pytest.approx(cohen_kappa_score(cons[ok], judge[ok], weights="quadratic"), abs=1e-12)
    assert stats["hj_spearman"]["value"] == pytest.approx(spearmanr(cons[ok], judge[ok]).statistic, abs=1e-12)
    assert stats["hj_bias"]["value"] == pytest.approx(np.mean(judge[ok] - cons[ok]), abs=1e-12)
    assert stats["hj_exact"]["n_items"] == ok.sum()
    assert np.array(extras["confusion"]).sum() == ok.sum()


# ---------------------------------------------------------------- edge cases


def _cell(humans, judge, level="ordinal"):
    return analyse_cell(np.array(humans), np.array(judge), Scale((0.0, 1.0, 2.0), level), 50, np.random.default_rng(0))[0]


def test_everyone_uses_one_category():
    stats = _cell([[0, 0, 3]] * 20, [2] * 20)
    for name in ("hh_alpha", "hh_fleiss", "hj_kappa", "alpha_judge_sub", "hj_spearman"):
        assert stats[name]["value"] is None
        assert stats[name]["note"].startswith("not computable")
    assert stats["hj_exact"]["value"] == 1.0
    assert stats["hh_pairwise"]["value"] == 1.0
    assert stats["hj_ac2"]["value"] == pytest.approx(1.0)  # AC stays defined under total skew


def test_single_rater_gives_labelled_not_computable():
    stats = _cell([[1, 0, 0], [0, 1, 0], [0, 0, 1]] * 5, [0, 1, 2] * 5)
    assert stats["hh_alpha"]["value"] is None
    assert stats["hh_alpha"]["note"] == "not computable: no items with at least two human ratings"
    assert stats["delta_alpha"]["note"].startswith("not computable: no items with a judge score")
    assert stats["hj_kappa"]["value"] == 1.0  # one human is its own consensus


def test_single_item_is_marked_small():
    stats = _cell([[1, 2, 0]], [1])
    assert stats["hh_alpha"]["n_items"] == 1 and stats["hh_alpha"]["small"]
    assert stats["hj_exact"]["value"] == 1.0 and "too few" in stats["hj_exact"]["note"]


def test_no_judge_and_no_humans():
    stats = _cell([[0, 0, 0]] * 4, [-1] * 4)
    assert all(e["value"] is None and e["note"].startswith("not computable") for e in stats.values())


def test_nominal_metric_has_no_ordinal_statistics():
    stats = _cell([[2, 1, 0], [0, 3, 0]] * 10, [0, 1] * 10, level="nominal")
    assert "hj_kappa_linear" not in stats and "hj_spearman" not in stats and "hj_ac1" in stats


def test_fleiss_kappa_is_on_the_items_with_the_most_common_number_of_humans():
    """Fleiss' kappa is on the items rated by the most common number of humans among the items (not among the
    distinct rating patterns), so it does not depend on the judge: 6 items have 2 ratings, 4 have 3 (all different)."""
    counts = np.array([[2, 0, 0]] * 3 + [[0, 2, 0]] * 3 + [[3, 0, 0], [2, 1, 0], [1, 1, 1], [0, 1, 2]])
    scale = Scale((0.0, 1.0, 2.0), "nominal")
    for judge in (np.full(10, -1), np.arange(10) % 3):
        stats, _ = analyse_cell(counts, judge, scale, 0, np.random.default_rng(0))
        assert stats["hh_fleiss"]["n_items"] == 6
        assert stats["hh_fleiss"]["note"].startswith("on the 6 items rated by exactly 2 humans")
