"""PPI++ means (reports.ppi) against ppi_py, a brute-force stratified combination, and by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ppi_py import classical_mean_ci, ppi_mean_ci
from scipy.stats import norm

from reports.ppi import at_least, ppi_by_provenance, ppi_means

Z = norm.ppf(0.975)


def judged(rng, n, informative=0.7, levels=3, p=(0.2, 0.3, 0.5)):
    """Human scores Y on a 0..levels-1 scale and a judge f equal to Y with probability ``informative``."""
    y = rng.choice(levels, n, p=p).astype(float)
    f = np.where(rng.random(n) < informative, y, rng.integers(0, levels, n)).astype(float)
    return y, f


def cells_frame(rng, n_cells=6, n=(40, 120), big_n=(300, 900)):
    lab, unl = [], []
    for c in range(n_cells):
        y, f = judged(rng, rng.integers(*n), informative=rng.uniform(0.3, 0.9))
        _, u = judged(rng, rng.integers(*big_n))
        key = {"metric": f"m{c % 2}", "language": f"l{c // 2}"}
        lab.append(pd.DataFrame({"y": y, "f": f, **key}))
        unl.append(pd.DataFrame({"f": u, **key}))
    return pd.concat(lab, ignore_index=True), pd.concat(unl, ignore_index=True)


def test_intervals_equal_ppi_py_in_every_cell():
    lab, unl = cells_frame(np.random.default_rng(1))
    cells = ppi_means(lab, unl, by=["metric", "language"]).cells
    assert len(cells) == 6
    for row in cells.itertuples():
        sel = (lab["metric"] == row.metric) & (lab["language"] == row.language)
        usel = (unl["metric"] == row.metric) & (unl["language"] == row.language)
        y, f, u = lab.loc[sel, "y"].to_numpy(), lab.loc[sel, "f"].to_numpy(), unl.loc[usel, "f"].to_numpy()
        lo, hi = ppi_mean_ci(y, f, u, alpha=0.05, lam=None)
        assert (row.ci_low, row.ci_high) == pytest.approx((lo[0], hi[0]), abs=1e-10)
        clo, chi = classical_mean_ci(y, alpha=0.05)
        assert (row.classical_ci_low, row.classical_ci_high) == pytest.approx((clo, chi), abs=1e-10)
        assert row.judge_only == pytest.approx(np.concatenate([f, u]).mean(), abs=1e-12)
        assert 0 <= row.lam <= 1
        assert row.n_effective == pytest.approx(len(y) * ((chi - clo) / (hi[0] - lo[0])) ** 2, rel=1e-9)


def test_share_acceptable_is_the_mean_of_the_binary_transform():
    lab, unl = cells_frame(np.random.default_rng(2), n_cells=2)
    cells = ppi_means(at_least(lab, 2), at_least(unl, 2), by=["metric"]).cells
    sel = lab["metric"] == "m0"
    lo, hi = ppi_mean_ci((lab.loc[sel, "y"] >= 2).to_numpy(float), (lab.loc[sel, "f"] >= 2).to_numpy(float),
                         (unl.loc[unl["metric"] == "m0", "f"] >= 2).to_numpy(float), alpha=0.05, lam=None)
    assert (cells.loc[0, "ci_low"], cells.loc[0, "ci_high"]) == pytest.approx((lo[0], hi[0]), abs=1e-10)
    assert 0 <= cells.loc[0, "estimate"] <= 1


def test_stratified_equals_brute_force_combination_of_ppi_py_per_stratum():
    rng = np.random.default_rng(3)
    weights = {"short": 600, "medium": 300, "long": 100}  # population sizes; sampled at unequal rates
    lab, unl = [], []
    for h, (n, big_n, p) in zip(weights, [(30, 570, (0.1, 0.3, 0.6)), (40, 260, (0.3, 0.4, 0.3)), (50, 50, (0.6, 0.3, 0.1))]):
        y, f = judged(rng, n, p=p)
        _, u = judged(rng, big_n, p=p)
        lab.append(pd.DataFrame({"y": y, "f": f, "stratum": h}))
        unl.append(pd.DataFrame({"f": u, "stratum": h}))
    lab, unl = pd.concat(lab, ignore_index=True), pd.concat(unl, ignore_index=True)
    res = ppi_means(lab, unl, design="stratified", stratum="stratum", weights=weights)
    est = var = classical = var_c = 0.0
    total = sum(weights.values())
    for h, size in weights.items():
        y, f = lab.loc[lab["stratum"] == h, "y"].to_numpy(), lab.loc[lab["stratum"] == h, "f"].to_numpy()
        u = unl.loc[unl["stratum"] == h, "f"].to_numpy()
        lo, hi = ppi_mean_ci(y, f, u, alpha=0.05, lam=None)
        clo, chi = classical_mean_ci(y, alpha=0.05)
        w = size / total
        est += w * (lo[0] + hi[0]) / 2
        var += (w * (hi[0] - lo[0]) / (2 * Z)) ** 2
        classical += w * y.mean()
        var_c += (w * (chi - clo) / (2 * Z)) ** 2
    cell = res.cells.iloc[0]
    assert cell["estimate"] == pytest.approx(est, abs=1e-10)
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((est - Z * var**0.5, est + Z * var**0.5), abs=1e-10)
    assert (cell["classical_ci_low"], cell["classical_ci_high"]) == pytest.approx(
        (classical - Z * var_c**0.5, classical + Z * var_c**0.5), abs=1e-10)
    assert cell["n_labelled"] == 120 and cell["n_unlabelled"] == 880
    assert len(res.strata) == 3 and res.strata["lam"].between(0, 1).all()


def test_judge_selected_labels_are_refused():
    lab, unl = cells_frame(np.random.default_rng(4), n_cells=1)
    with pytest.raises(ValueError, match="chosen by the judge.*not at random"):
        ppi_means(lab, unl, design="judge-selected")


def test_provenance_uses_the_random_slice_and_refuses_escalated_labels():
    """Cell l0: a random slice plus labels of unknown provenance and of escalated items (both left out, as
    unlabelled rows); cell l1: unknown provenance only (used, and the selection check tests them)."""
    rng = np.random.default_rng(11)
    lab, unl = cells_frame(rng, n_cells=2)
    lab = lab.assign(language=lab["metric"].map({"m0": "l0", "m1": "l1"}), metric="m", drawn_by=None)
    unl = unl.assign(language=unl["metric"].map({"m0": "l0", "m1": "l1"}), metric="m")
    l0 = np.flatnonzero(lab["language"] == "l0")
    lab.loc[l0[:30], "drawn_by"] = "random"
    lab.loc[l0[30:35], "drawn_by"] = "escalated"  # l0[35:]: unknown, beside a random slice
    res = ppi_by_provenance(lab, unl, by=["metric", "language"]).cells.set_index("language")
    used = lab.index.isin(l0[:30]) | (lab["language"] == "l1")
    expect = ppi_means(lab[used], pd.concat([unl, lab[~used]], ignore_index=True), by=["metric", "language"]).cells
    for col in ("estimate", "ci_low", "ci_high", "n_labelled", "n_unlabelled", "n_effective"):
        np.testing.assert_allclose(res[col].to_numpy(float), expect[col].to_numpy(float), rtol=1e-12)
    assert res.loc["l0", "n_labelled"] == 30 and res.loc["l0", "n_unlabelled"] == (unl["language"] == "l0").sum() + len(l0) - 30
    assert "5 labels of escalated items not used: the human-labelled items were chosen by the judge" in res.loc["l0", "note"]
    assert f"{len(l0) - 35} labels outside the random slice not used" in res.loc["l0", "note"]
    assert res.loc["l1", "note"] == expect.set_index("language").loc["l1", "note"]  # unknown only: as before
    with pytest.raises(ValueError, match=r"labelled: row 1, column 'drawn_by': expected one of random, escalated or null"):
        ppi_by_provenance(lab.assign(drawn_by="judge"), unl, by=["metric", "language"])


def test_unknown_provenance_keeps_the_selection_check():
    """Labels of unknown provenance on the items the judge scores highest: used, and flagged as chosen."""
    rng = np.random.default_rng(12)
    y, f = judged(rng, 2000)
    order = np.argsort(-f, kind="stable")
    lab = pd.DataFrame({"y": y[order[:200]], "f": f[order[:200]], "drawn_by": None})
    unl = pd.DataFrame({"f": f[order[200:]]})
    cells = ppi_by_provenance(lab, unl).cells
    assert cells["n_labelled"].iloc[0] == 200 and "were the labelled items really drawn at random" in cells["note"].iloc[0]


def test_stratified_needs_a_weight_for_every_stratum():
    lab = pd.DataFrame({"y": [0.0, 1, 2, 1], "f": [0.0, 1, 1, 1], "s": ["a", "a", "b", "b"]})
    unl = pd.DataFrame({"f": [1.0, 2], "s": ["a", "c"]})
    with pytest.raises(ValueError, match="unlabelled: stratum 'c' has no weight"):
        ppi_means(lab, unl, design="stratified", stratum="s", weights={"a": 1, "b": 1})
    with pytest.raises(ValueError, match="needs the stratum column"):
        ppi_means(lab, unl, design="stratified")


def test_missing_score_is_named_by_row_and_column():
    lab = pd.DataFrame({"y": [0.0, 1, None], "f": [0.0, 1, 1]})
    with pytest.raises(ValueError, match=r"labelled: row 3, column 'y': expected a finite number"):
        ppi_means(lab, pd.DataFrame({"f": [1.0]}))


def test_cell_with_one_label_gets_a_note_not_a_number():
    lab = pd.DataFrame({"y": [0.0, 1, 2, 1], "f": [0.0, 1, 2, 2], "c": ["a", "a", "a", "b"]})
    unl = pd.DataFrame({"f": [1.0, 2, 0], "c": ["a", "b", "b"]})
    cells = ppi_means(lab, unl, by=["c"]).cells.set_index("c")
    assert np.isnan(cells.loc["b", "estimate"]) and "fewer than 2" in cells.loc["b", "note"]
    assert np.isfinite(cells.loc["a", "estimate"])


def simulate(rng, reps, n, big_n, informative, p=(0.2, 0.3, 0.5)):
    """``reps`` independent cells drawn from one population, for coverage."""
    y, f = judged(rng, reps * n, informative, p=p)
    _, u = judged(rng, reps * big_n, informative, p=p)
    lab = pd.DataFrame({"y": y, "f": f, "rep": np.repeat(np.arange(reps), n)})
    unl = pd.DataFrame({"f": u, "rep": np.repeat(np.arange(reps), big_n)})
    return ppi_means(lab, unl, by=["rep"]).cells


@pytest.mark.parametrize("informative", [0.0, 0.8])
def test_coverage_is_95_percent_and_an_informative_judge_narrows_the_interval(informative):
    truth = 0 * 0.2 + 1 * 0.3 + 2 * 0.5
    cells = simulate(np.random.default_rng(5), reps=2000, n=100, big_n=1000, informative=informative)
    coverage = ((cells["ci_low"] <= truth) & (truth <= cells["ci_high"])).mean()
    assert 0.93 <= coverage <= 0.97
    width = (cells["ci_high"] - cells["ci_low"]).mean()
    classical = (cells["classical_ci_high"] - cells["classical_ci_low"]).mean()
    if informative:
        assert width < 0.75 * classical
        assert cells["n_effective"].median() > 1.5 * 100
    else:  # a useless judge costs (almost) nothing: lam goes to 0
        assert width < 1.02 * classical


def test_whole_set_takes_the_labelled_items_out_and_an_overlap_is_refused_otherwise():
    rng = np.random.default_rng(6)
    y, f = judged(rng, 400)
    whole = pd.DataFrame({"item_id": [f"i{i}" for i in range(400)], "f": f, "metric": "m"})
    labelled = whole.iloc[::4].assign(y=y[::4])
    rest = whole.drop(index=labelled.index)
    expected = ppi_means(labelled, rest, by=["metric"]).cells
    got = ppi_means(labelled, whole, by=["metric"], whole_set=True).cells
    pd.testing.assert_frame_equal(got, expected)
    assert got.loc[0, "n_unlabelled"] == 300
    with pytest.raises(ValueError, match=r"unlabelled: row 1, .*'i0'.* is also labelled \(100 such rows\); pass whole_set=True"):
        ppi_means(labelled, whole, by=["metric"])
    with pytest.raises(ValueError, match=r"labelled: row 1, .*'i0'.* is not in the whole set"):
        ppi_means(labelled, rest, by=["metric"], whole_set=True)


def test_labelled_items_chosen_by_the_judge_are_flagged_even_when_declared_random():
    rng = np.random.default_rng(8)
    y, f = judged(rng, 1000)
    items = pd.DataFrame({"y": y, "f": f})
    random_pick = rng.permutation(1000)[:100]
    cells = ppi_means(items.iloc[random_pick], items.drop(index=random_pick)[["f"]]).cells
    assert cells.loc[0, "selection_p"] > 0.001 and cells.loc[0, "note"] == ""
    escalated = items.sort_values("f", kind="stable").index[:100]  # the judge's lowest scores went to humans
    cells = ppi_means(items.loc[escalated], items.drop(index=escalated)[["f"]]).cells
    assert cells.loc[0, "selection_p"] < 1e-6 and "were the labelled items really drawn at random" in cells.loc[0, "note"]


def test_a_row_without_its_cell_is_refused_not_dropped():
    lab = pd.DataFrame({"y": [0.0, 1, 2], "f": [0.0, 1, 1], "language": ["bn", None, "bn"]})
    with pytest.raises(ValueError, match=r"labelled: row 2, column 'language': no value"):
        ppi_means(lab, pd.DataFrame({"f": [1.0], "language": ["bn"]}), by=["language"])
