"""Pairwise statistics (reports.pairwise) against independent implementations and simulations."""

from __future__ import annotations

import choix
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from reports.pairwise import bt, corr, pairs
from reports.pairwise import leaderboard as lb
from reports.pairwise.system import system_agreement
from tests.judge_support import modules_loaded

COLS = ["pair_id", "prompt_id", "model_a", "model_b", "outcome", "rater", "rater_kind", "language", "shown_order"]


def simulate(rng, strengths, n_prompts, per_prompt, nu=0.0, rater="h", language="hi"):
    """Comparisons drawn from the Davidson model (nu = 0: plain Bradley-Terry)."""
    m = len(strengths)
    a = rng.integers(0, m, (n_prompts, per_prompt)).ravel()
    b = (a + rng.integers(1, m, a.shape)) % m
    d = strengths[a] - strengths[b]
    den = np.exp(d / 2) + np.exp(-d / 2) + nu
    u = rng.random(a.shape) * den
    outcome = np.where(u < np.exp(d / 2), "a", np.where(u < np.exp(d / 2) + np.exp(-d / 2), "b", "tie"))
    prompt = np.repeat(np.arange(n_prompts), per_prompt)
    return pd.DataFrame({"pair_id": [f"{language}-{p}-{i}" for i, p in enumerate(prompt)],
                         "prompt_id": [f"{language}-p{p}" for p in prompt],
                         "model_a": [f"m{i:02d}" for i in a], "model_b": [f"m{i:02d}" for i in b], "outcome": outcome,
                         "rater": rater, "rater_kind": "human", "language": language,
                         "shown_order": rng.choice(["ab", "ba"], len(a))})


def point_fit(frame, model="davidson", prior=0.0):
    d = lb.design(frame)
    wins, ties = d.totals()
    s, tie, ok = bt.fit(wins, ties, model, prior)
    assert ok.all()
    return d.models, s[0], float(tie[0])


def choix_data(frame, models):
    code = {m: i for i, m in enumerate(models)}
    dec = frame[frame["outcome"] != "tie"]
    win = np.where(dec["outcome"] == "a", dec["model_a"], dec["model_b"])
    lose = np.where(dec["outcome"] == "a", dec["model_b"], dec["model_a"])
    return [(code[w], code[l]) for w, l in zip(win, lose)]


# ---------------------------------------------------------------- Bradley-Terry fits


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("model", bt.MODELS)
def test_bt_without_ties_equals_choix(seed, model):
    rng = np.random.default_rng(seed)
    frame = simulate(rng, rng.normal(0, 1, 12), 300, 10)
    models, s, tie = point_fit(frame, model)
    ref = choix.ilsr_pairwise(len(models), choix_data(frame, models), alpha=0.0, tol=1e-14, max_iter=100_000)
    np.testing.assert_allclose(s, ref - ref.mean(), atol=1e-6)
    assert tie == (0.0 if model == "davidson" else 1.0)  # held at the boundary: no ties


def test_bt_with_prior_equals_choix_map():
    rng = np.random.default_rng(7)
    frame = simulate(rng, rng.normal(0, 2, 8), 30, 4)
    models, s, _ = point_fit(frame, prior=0.05)
    ref = choix.opt_pairwise(len(models), choix_data(frame, models), alpha=0.05, method="Newton-CG", tol=1e-12)
    np.testing.assert_allclose(s, ref, atol=1e-6)  # the prior centres the scores itself


def davidson_nll(x, w, t, m):
    """-log L written in the original Davidson form (pi, nu), parameters (s_1..s_{m-1}, log nu), s_0 = 0."""
    pi = np.exp(np.concatenate([[0.0], x[:m - 1]]))
    nu = np.exp(x[-1])
    ll = 0.0
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            den = pi[i] + pi[j] + nu * np.sqrt(pi[i] * pi[j])
            ll += w[i, j] * np.log(pi[i] / den)
            if i < j:
                ll += t[i, j] * np.log(nu * np.sqrt(pi[i] * pi[j]) / den)
    return -ll


def rao_kupper_nll(x, w, t, m):
    """-log L in the original Rao-Kupper form (pi, theta), parameters (s_1..s_{m-1}, log log theta)."""
    pi = np.exp(np.concatenate([[0.0], x[:m - 1]]))
    th = np.exp(np.exp(x[-1]))
    ll = 0.0
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            ll += w[i, j] * np.log(pi[i] / (pi[i] + th * pi[j]))
            if i < j:
                ll += t[i, j] * np.log((th**2 - 1) * pi[i] * pi[j] / ((pi[i] + th * pi[j]) * (th * pi[i] + pi[j])))
    return -ll


@pytest.mark.parametrize("model, nll, to_tie", [("davidson", davidson_nll, np.exp),
                                                 ("rao-kupper", rao_kupper_nll, lambda v: np.exp(np.exp(v)))])
def test_tie_models_equal_direct_scipy_maximisation(model, nll, to_tie):
    rng = np.random.default_rng(3)
    frame = simulate(rng, rng.normal(0, 1, 6), 200, 6, nu=0.8)
    models, s, tie = point_fit(frame, model)
    wins, ties = lb.design(frame).totals()
    m = len(models)
    res = minimize(nll, np.zeros(m), args=(wins[0], ties[0], m), method="BFGS", options={"gtol": 1e-9})
    ref = np.concatenate([[0.0], res.x[:m - 1]])
    np.testing.assert_allclose(s, ref - ref.mean(), atol=1e-5)
    assert tie == pytest.approx(to_tie(res.x[-1]), rel=1e-5)
    assert tie > (0 if model == "davidson" else 1)


def test_batched_warm_started_fits_equal_single_cold_fits():
    rng = np.random.default_rng(4)
    frame = simulate(rng, rng.normal(0, 1, 7), 120, 8, nu=0.5, language="hi")
    d = lb.design(frame)
    r = lb.bootstrap(d, n_boot=20, seed=1)
    weights = lb.prompt_weights(d.strata, 20, np.random.default_rng(1))
    wins, ties = d.totals(weights)
    for b in (0, 7, 19):
        s, tie, ok = bt.fit(wins[b:b + 1], ties[b:b + 1])
        np.testing.assert_allclose(r["boot_scores"][b], s[0], atol=1e-8)
        assert r["boot_tie"][b] == pytest.approx(tie[0], rel=1e-8)


def test_disconnected_comparisons_are_a_clear_error():
    rng = np.random.default_rng(5)
    x = simulate(rng, np.zeros(3), 20, 5)
    y = simulate(rng, np.zeros(3), 20, 5).assign(model_a=lambda f: "z" + f["model_a"], model_b=lambda f: "z" + f["model_b"],
                                                 prompt_id=lambda f: "q" + f["prompt_id"])
    with pytest.raises(ValueError, match=r"do not connect every model: m00, m01, m02 \| zm00, zm01, zm02"):
        lb.leaderboard(pd.concat([x, y]), n_boot=10)


def test_a_model_that_never_loses_needs_a_prior():
    rng = np.random.default_rng(6)
    frame = simulate(rng, np.array([0.0, 0.5, 1.0]), 40, 5)
    best = "m02"
    frame["outcome"] = np.where(frame["model_a"] == best, "a", np.where(frame["model_b"] == best, "b", frame["outcome"]))
    with pytest.raises(ValueError, match=r"comparisons: no maximum-likelihood fit exists: .*never lost to the other models: m02, so.*prior"):
        lb.leaderboard(frame, n_boot=10)
    with pytest.raises(ValueError, match=r"second comparisons: .*never lost to the other models: m02, so"):
        lb.agreement(simulate(rng, np.array([0.0, 0.5, 1.0]), 40, 5), frame, n_boot=10)
    table, info = lb.leaderboard(frame, prior=0.01, n_boot=50)
    assert table["model"].iloc[0] == best and np.isfinite(table["score"]).all()
    assert info["n_failed"] == 0


def test_resamples_without_a_fit_are_counted_not_hidden():
    wins = np.array([[[0, 3], [1, 0]], [[0, 3], [0, 0]]], float)  # second: model 0 never lost
    s, tie, ok = bt.fit(wins, np.zeros_like(wins))
    assert ok.tolist() == [True, False] and np.isnan(s[1]).all()
    assert s[0, 0] - s[0, 1] == pytest.approx(np.log(3))


@pytest.mark.parametrize("bad, match", [({"outcome": "A"}, r"row 3, column 'outcome': expected one of \['a', 'b', 'tie'\], got 'A'"),
                                        ({"model_b": "m00", "model_a": "m00"}, r"row 3, columns 'model_a'/'model_b'"),
                                        ({"prompt_id": None}, r"row 3, column 'prompt_id': empty")])
def test_bad_comparison_rows_are_named(bad, match):
    frame = simulate(np.random.default_rng(0), np.zeros(3), 2, 3)
    for col, val in bad.items():
        frame.loc[2, col] = val
    with pytest.raises(ValueError, match=match):
        lb.leaderboard(frame, n_boot=5)


# ---------------------------------------------------------------- bootstrap


def test_prompt_weights_resample_within_each_stratum():
    strata = np.array([0, 0, 0, 1, 1, 2])
    w = lb.prompt_weights(strata, 500, np.random.default_rng(0))
    np.testing.assert_array_equal(w[:, :3].sum(1), 3)
    np.testing.assert_array_equal(w[:, 3:5].sum(1), 2)
    np.testing.assert_array_equal(w[:, 5], 1)
    assert w[:, 0].std() > 0


def test_bootstrap_cis_of_scores_cover_the_true_scores():
    """Coverage of the 95% percentile CIs over 150 simulated studies x 6 models (900 intervals; SE ~0.7%).

    The heavy version (more studies and resamples) is in benchmarks/bench_pairwise.py.
    """
    rng = np.random.default_rng(11)
    truth = np.array([-0.8, -0.4, 0.0, 0.1, 0.5, 0.9])
    truth = truth - truth.mean()
    hits = []
    for rep in range(150):
        frame = simulate(rng, truth, 150, 6, nu=0.6)
        table, info = lb.leaderboard(frame, n_boot=200, seed=rep)
        t = table.set_index("model").loc[[f"m{i:02d}" for i in range(6)]]
        hits.append((t["ci_low"].to_numpy() <= truth) & (truth <= t["ci_high"].to_numpy()))
        assert info["n_failed"] == 0
    coverage = np.mean(hits)
    assert abs(coverage - 0.95) <= 0.02, coverage


def test_leaderboard_ranks_and_ties():
    rng = np.random.default_rng(8)
    truth = np.array([0.0, 1.5, -1.5, 0.5])
    table, info = lb.leaderboard(simulate(rng, truth, 400, 6, nu=0.5), n_boot=200)
    assert table["model"].tolist() == ["m01", "m03", "m00", "m02"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert (table["rank_low"] <= table["rank"]).all() and (table["rank"] <= table["rank_high"]).all()
    assert info["tie_ci"][0] < info["tie_parameter"] < info["tie_ci"][1]
    assert table["n_comparisons"].sum() == 2 * 400 * 6


def test_ranks_equal_scipy_min_ranks():
    """Rank 1 = highest score, ties share the best rank: scipy's rankdata(-x, method="min"), batched."""
    x = np.random.default_rng(4).integers(0, 6, (50, 9)).astype(float)
    got = lb._ranks(x)
    np.testing.assert_array_equal(got, rankdata(-x, method="min", axis=-1))
    assert got.dtype.kind == "i"


def test_components_equal_scipy_connected_components():
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(6)
    for _ in range(200):
        adj = (rng.random((8, 8)) < rng.uniform(0.02, 0.3)).astype(float)
        for connection in ("weak", "strong"):
            n, labels = connected_components(csr_matrix(adj), directed=True, connection=connection)
            want = {frozenset(np.flatnonzero(labels == g)) for g in range(n)}
            got = lb._components(adj, connection)
            assert {frozenset(g) for g in got} == want and [g[0] for g in got] == sorted(g[0] for g in got)


def test_leaderboard_path_imports_only_what_it_needs():
    """A leaderboard (import and fit, what a user runs for one) loads no scipy.stats, scipy.special,
    scipy.sparse.csgraph or sklearn: they cost seconds of a fresh process and it does not need them."""
    heavy = ("scipy.stats", "scipy.special", "scipy.optimize", "scipy.sparse.csgraph", "scipy.sparse.linalg",
             "sklearn", "statsmodels", "plotly")
    code = ("import pandas as pd; from reports.pairwise.leaderboard import leaderboard, agreement; "
            "rows = [('p%d' % i, a, b, 'a' if (i + j) % 3 else 'b') for i in range(30) for j, (a, b) in "
            "enumerate([('x', 'y'), ('y', 'z'), ('z', 'x')])]; "
            "leaderboard(pd.DataFrame(rows, columns=['prompt_id', 'model_a', 'model_b', 'outcome']), n_boot=20)")
    assert modules_loaded(code, heavy) == []


# ---------------------------------------------------------------- leaderboard agreement


def test_rank_correlations_equal_scipy():
    rng = np.random.default_rng(2)
    for _ in range(20):
        x, y = rng.integers(0, 5, 15).astype(float), rng.normal(size=15).round(1)
        assert corr.kendall_tau_b(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-15)
        assert corr.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-15)
        assert corr.pearson(x, y) == pytest.approx(pearsonr(x, y).statistic, abs=1e-15)
    xb, yb = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    np.testing.assert_allclose(corr.kendall_tau_b(xb, yb), [kendalltau(a, b).statistic for a, b in zip(xb, yb)], atol=1e-15)
    assert corr.top_k_overlap(np.array([5, 4, 3, 2.0]), np.array([1, 4, 3, 5.0]), 2) == 0.5


def test_leaderboard_agreement_point_values_and_paired_bootstrap():
    rng = np.random.default_rng(9)
    truth = rng.normal(0, 1, 8)
    humans = simulate(rng, truth, 200, 10, nu=0.5)
    judge = simulate(rng, truth + rng.normal(0, 0.3, 8), 200, 10, nu=0.2, rater="gpt")
    out = lb.agreement(humans, judge, k=3, n_boot=200)
    _, sh, _ = point_fit(humans)
    _, sj, _ = point_fit(judge)
    assert out["kendall_tau_b"]["value"] == pytest.approx(kendalltau(sh, sj).statistic, abs=1e-15)
    assert out["spearman"]["value"] == pytest.approx(spearmanr(sh, sj).statistic, abs=1e-15)
    assert out["n_models"] == 8 and out["n_prompts"] == 200
    # the same comparisons as both leaderboards: a paired bootstrap agrees perfectly in every resample
    same = lb.agreement(humans, humans.assign(rater="copy"), n_boot=100)
    assert same["kendall_tau_b"]["ci_low"] == 1.0 and same["top_3"]["ci_low"] == 1.0


# ---------------------------------------------------------------- pair-level statistics


def rated_pairs(rng, n_pairs=80, n_humans=3):
    rows = []
    models = ["x", "y", "z"]
    for p in range(n_pairs):
        a, b = rng.choice(3, 2, replace=False)
        truth = rng.choice(["a", "b", "tie"], p=[0.45, 0.4, 0.15])
        for h in range(n_humans):
            o = truth if rng.random() < 0.7 else rng.choice(["a", "b", "tie"])
            rows.append((f"pr{p}", f"p{p}", models[a], models[b], o, f"h{h}", "human", "hi", rng.choice(["ab", "ba"])))
        for order in ("ab", "ba"):
            o = truth if rng.random() < 0.8 else rng.choice(["a", "b", "tie"])
            rows.append((f"pr{p}", f"p{p}", models[a], models[b], o, "gpt", "judge", "hi", order))
    return pd.DataFrame(rows, columns=COLS)


def test_pair_agreement_equals_statsmodels_and_sklearn():
    frame = rated_pairs(np.random.default_rng(1))
    out = pairs.agreement(frame, n_boot=100)
    hum = pairs.oriented(frame[frame["rater_kind"] == "human"])
    table = pd.crosstab(hum["pair_id"], hum["code"]).reindex(columns=[0, 1, 2], fill_value=0)
    assert out["humans"]["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table.to_numpy(), method="fleiss"), abs=1e-12)
    agree = (table.to_numpy() * (table.to_numpy() - 1)).sum(1) / (3 * 2)
    assert out["humans"]["percent_agreement"]["value"] == pytest.approx(agree.mean(), abs=1e-12)
    # judge: both orders agree -> that verdict, else a tie; compared with the strict human plurality
    v = pairs.judge_verdicts(frame).set_index("pair_id")["code"].reindex(table.index)
    top = table.to_numpy().max(1)
    strict = (table.to_numpy() == top[:, None]).sum(1) == 1
    maj = table.to_numpy().argmax(1)
    g = out["judges"]["gpt"]
    assert g["with_ties"]["accuracy"]["value"] == pytest.approx((maj[strict] == v[strict]).mean())
    assert g["with_ties"]["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(maj[strict], v[strict]), abs=1e-12)
    dec = strict & (maj < 2) & (v.to_numpy() < 2)
    assert g["without_ties"]["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(maj[dec], v[dec]), abs=1e-12)
    assert g["without_ties"]["accuracy"]["n_items"] == dec.sum()
    raw = frame[frame["rater_kind"] == "judge"].groupby("pair_id")["outcome"].nunique()
    assert g["n_inconsistent"] == (raw > 1).sum()


def test_orientation_makes_swapped_pairs_comparable():
    frame = pd.DataFrame([("p1", "q", "x", "y", "a", "h", "human", "hi", "ab"),
                          ("p2", "q", "y", "x", "b", "h", "human", "hi", "ba"),  # the same verdict, swapped
                          ("p3", "r", "x", "y", "a", "h", "human", "hi", "ab"),
                          ("p4", "r", "y", "x", "a", "h", "human", "hi", "ba"),  # changed its mind
                          ("p5", "s", "x", "y", "tie", "h", "human", "hi", "ab")], columns=COLS)
    c = pairs.consistency(frame)
    assert c[["n_repeated", "n_consistent"]].values.tolist() == [[2, 1]]
    assert set(pairs.oriented(frame)["first"]) == {"x"}


def test_position_consistency_and_first_position_win_rate():
    frame = rated_pairs(np.random.default_rng(3))
    judge = frame[frame["rater_kind"] == "judge"]
    c = pairs.consistency(frame).set_index("rater").loc["gpt"]
    assert c["n_repeated"] == judge["pair_id"].nunique()
    assert c["n_consistent"] == (judge.groupby("pair_id")["outcome"].nunique() == 1).sum()
    fp = pairs.first_position(frame).set_index("rater").loc["gpt"]
    dec = judge[judge["outcome"] != "tie"]
    first = ((dec["outcome"] == "a") & (dec["shown_order"] == "ab")) | ((dec["outcome"] == "b") & (dec["shown_order"] == "ba"))
    assert fp["n_decisive"] == len(dec) and fp["n_first_won"] == first.sum()
    assert fp["ci_low"] < fp["first_win_rate"] < fp["ci_high"]
    with pytest.raises(ValueError, match=r"row 2, column 'shown_order': expected one of \['ab', 'ba'\]"):
        pairs.first_position(frame.assign(shown_order=["ab", "AB"] + ["ab"] * (len(frame) - 2)))


def test_length_bias_counts_add_up():
    frame = rated_pairs(np.random.default_rng(4))
    rng = np.random.default_rng(0)
    frame["length_a"] = rng.integers(50, 400, len(frame))
    frame["length_b"] = np.where(rng.random(len(frame)) < 0.1, frame["length_a"], rng.integers(50, 400, len(frame)))
    out = pairs.length_bias(frame)
    for rater, g in out.groupby("rater"):
        sub = frame[frame["rater_kind"] == "human"] if rater == "humans" else frame[frame["rater"] == rater]
        assert g["n_decisive"].sum() + g["n_ties"].iloc[0] + g["n_equal_length"].iloc[0] == len(sub)
        dec = sub[(sub["outcome"] != "tie") & (sub["length_a"] != sub["length_b"])]
        longer = np.where(dec["length_a"] > dec["length_b"], "a", "b")
        assert g["n_longer_won"].sum() == (dec["outcome"] == longer).sum()
    with pytest.raises(ValueError, match=r"row 1, column 'length_a': expected a positive length"):
        pairs.length_bias(frame.assign(length_a=0))


def test_length_bias_keeps_a_rater_with_no_decisive_comparison_of_unequal_lengths():
    frame = rated_pairs(np.random.default_rng(4)).assign(length_a=100, length_b=200)
    judge = frame["rater_kind"] == "judge"
    frame.loc[judge, "outcome"] = "tie"
    out = pairs.length_bias(frame)
    for rater in frame.loc[judge, "rater"].unique():
        row = out[out["rater"] == rater]
        assert len(row) == 1 and row["n_decisive"].item() == 0 and np.isnan(row["share"].item())
        assert row["n_ties"].item() == row["n_comparisons"].item() == (frame["rater"] == rater).sum()


# ---------------------------------------------------------------- system level


def test_system_agreement_equals_scipy_on_system_means():
    rng = np.random.default_rng(5)
    quality = rng.normal(0, 1, 7)
    rows = []
    for it in range(700):
        s, lang = it % 7, ["hi", "bn"][it % 2]
        t = quality[s] + rng.normal()
        rows += [(f"i{it}", "fluency", f"h{h}", "human", float(np.clip(round(t + rng.normal()), -2, 2)), lang, f"s{s}") for h in range(2)]
        rows.append((f"i{it}", "fluency", "gpt", "judge", float(np.clip(round(t + rng.normal() + 0.5), -2, 2)), lang, f"s{s}"))
    rows.append(("i-x", "fluency", "h0", "human", 1.0, "hi", None))
    r = pd.DataFrame(rows, columns=["item_id", "metric", "rater", "rater_kind", "score", "language", "source_model"])
    cors, systems, counts = system_agreement(r, n_boot=200)
    assert counts["rows_without_source_model"] == 1
    item = r.dropna().groupby(["item_id", "rater_kind", "source_model", "language"])["score"].mean().unstack("rater_kind").reset_index()
    for lang, sub in [("all", item), ("hi", item[item["language"] == "hi"])]:
        means = sub.groupby("source_model")[["human", "judge"]].mean()
        got = cors[(cors["language"] == lang)].set_index("statistic")
        assert got.loc["spearman", "value"] == pytest.approx(spearmanr(means["human"], means["judge"]).statistic, abs=1e-12)
        assert got.loc["kendall_tau_b", "value"] == pytest.approx(kendalltau(means["human"], means["judge"]).statistic, abs=1e-12)
        assert got.loc["pearson", "value"] == pytest.approx(pearsonr(means["human"], means["judge"]).statistic, abs=1e-12)
        assert (got["ci_low"] <= got["value"]).all() and (got["value"] <= got["ci_high"]).all()
        assert (got["n_systems"] == 7).all()
    assert systems[systems["language"] == "all"]["n_items"].sum() == 700
