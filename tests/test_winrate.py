"""Win rate of one model over another (reports.pairwise.winrate): hand-computed counts, bootstrap CIs
against an independent resampling loop and a coverage simulation, position consistency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.pairwise import winrate


def row(prompt, outcome, rater="j1", kind="judge", language="hi", order="ab", a="original", b="boosted",
        status="submitted", criterion="overall"):
    return {"pair_id": f"{prompt}-{a}-{b}", "prompt_id": prompt, "language": language, "model_a": a, "model_b": b,
            "outcome": outcome, "rater": rater, "rater_kind": kind, "shown_order": order, "status": status,
            "criterion": criterion}


def example() -> pd.DataFrame:
    """Judge j1 asks three Hindi and two Tamil prompts in both orders; two annotators answer some."""
    rows = [
        row("p1", "b", order="ab"), row("p1", "b", order="ba"),        # boosted wins twice
        row("p2", "a", order="ab"), row("p2", "b", order="ba"),        # position-inconsistent: one each
        row("p3", "tie", order="ab"), row("p3", "tie", order="ba"),    # two ties
        row("t1", "b", language="ta", order="ab"), row("t1", "tie", language="ta", order="ba"),
        row("t2", "a", language="ta", order="ab"), row("t2", "a", language="ta", order="ba"),
        row("p1", "b", rater="u1", kind="human"), row("p1", "tie", rater="u2", kind="human", order="ba"),
        row("p2", "a", rater="u1", kind="human"),
        row("p2", None, rater="u2", kind="human", status="draft"),     # not submitted: left out, counted
        row("p1", "a", a="boosted", b="other"),                        # another pair of models: left out, counted
    ]
    return pd.DataFrame(rows)


def test_hand_computed_win_rates_and_counts():
    t = winrate.win_rate(example(), "boosted", "original", n_boot=200)
    assert t.attrs["counts"] == {"rows": 15, "rows_not_submitted": 1, "rows_other_models": 1, "rows_used": 13}
    j = t[t["raters"] == "j1"].set_index("language")
    # Hindi: boosted wins 3 (p1 x2, p2 ba), loses 1 (p2 ab), 2 ties -> (3 + 1) / 6
    assert j.loc["hi", ["wins", "losses", "ties", "n_prompts"]].tolist() == [3, 1, 2, 3]
    assert j.loc["hi", "win_rate"] == pytest.approx(4 / 6)
    assert j.loc["hi", "win_rate_no_ties"] == pytest.approx(3 / 4)
    assert j.loc["hi", "tie_share"] == pytest.approx(2 / 6)
    # Tamil: 1 win, 2 losses, 1 tie -> 1.5 / 4; all: 4 wins, 3 losses, 3 ties -> 5.5 / 10
    assert j.loc["ta", "win_rate"] == pytest.approx(1.5 / 4)
    assert j.loc["all", ["wins", "losses", "ties", "n_comparisons", "n_prompts"]].tolist() == [4, 3, 3, 10, 5]
    assert j.loc["all", "win_rate"] == pytest.approx(5.5 / 10)
    h = t[t["raters"] == winrate.HUMANS].set_index("language")
    assert h.loc["all", ["wins", "losses", "ties"]].tolist() == [1, 1, 1]  # u2's draft is not counted
    assert h.loc["all", "win_rate"] == pytest.approx(0.5)
    # seen from the other side, the rates are complements
    o = winrate.win_rate(example(), "original", "boosted", n_boot=200).set_index(["raters", "language"])
    assert o.loc[("j1", "hi"), "win_rate"] == pytest.approx(2 / 6)
    for _, r in t.iterrows():
        assert r["ci_low"] <= r["win_rate"] <= r["ci_high"]


def test_all_ties_has_no_decisive_rate():
    f = pd.DataFrame([row("p1", "tie"), row("p2", "tie", order="ba")])
    r = winrate.win_rate(f, "boosted", "original", n_boot=50).set_index("language").loc["all"]
    assert r["win_rate"] == 0.5 and np.isnan(r["win_rate_no_ties"]) and r["tie_share"] == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="over itself"):
        winrate.win_rate(example(), "boosted", "boosted")
    bad = pd.DataFrame([row("p1", "b"), row("p2", "B")])
    with pytest.raises(ValueError, match=r"row 2, column 'outcome'"):
        winrate.win_rate(bad, "boosted", "original")


def test_ci_matches_an_independent_prompt_bootstrap():
    """The Tamil-only interval equals a plain loop resampling Tamil prompts (up to Monte Carlo error)."""
    rng = np.random.default_rng(1)
    rows = []
    for lang, p_win in (("hi", 0.7), ("ta", 0.4)):
        for p in range(40):
            for order in ("ab", "ba"):
                u = rng.random()
                rows.append(row(f"{lang}{p}", "b" if u < p_win else "tie" if u < p_win + 0.15 else "a",
                                language=lang, order=order))
    f = pd.DataFrame(rows)
    t = winrate.win_rate(f, "boosted", "original", n_boot=4000, seed=3).set_index("language")
    ta = f[f["language"] == "ta"]
    score = ta["outcome"].map({"b": 1.0, "tie": 0.5, "a": 0.0}).groupby(ta["prompt_id"]).agg(["sum", "size"])
    own = np.random.default_rng(7)
    reps = []
    for _ in range(4000):
        pick = score.iloc[own.integers(0, len(score), len(score))]
        reps.append(pick["sum"].sum() / pick["size"].sum())
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert t.loc["ta", "win_rate"] == pytest.approx(score["sum"].sum() / score["size"].sum())
    assert t.loc["ta", "ci_low"] == pytest.approx(lo, abs=0.015)
    assert t.loc["ta", "ci_high"] == pytest.approx(hi, abs=0.015)
    assert t.loc["all", "ci_high"] - t.loc["all", "ci_low"] < t.loc["ta", "ci_high"] - t.loc["ta", "ci_low"]


def test_coverage_of_the_prompt_bootstrap():
    """Prompts differ (each has its own win probability), two comparisons per prompt: the 95% interval
    covers the true win rate in about 95% of simulated studies."""
    rng = np.random.default_rng(0)
    n_sims, n_prompts, tie = 300, 60, 0.2
    truth = 0.6 * (1 - tie) + tie / 2  # E[p_win] = 0.6 of the decisive mass
    hits = 0
    for s in range(n_sims):
        p = rng.beta(3, 2, n_prompts)  # mean 0.6: prompt-level clustering
        u = rng.random((n_prompts, 2))
        out = np.where(u < tie, "tie", np.where(rng.random((n_prompts, 2)) < p[:, None], "b", "a"))
        f = pd.DataFrame({"prompt_id": np.repeat(np.arange(n_prompts), 2).astype(str), "outcome": out.ravel(),
                          "language": "hi", "model_a": "original", "model_b": "boosted", "rater": "j",
                          "rater_kind": "judge"})
        r = winrate.win_rate(f, "boosted", "original", n_boot=400, seed=s).iloc[0]
        hits += r["ci_low"] <= truth <= r["ci_high"]
    assert 0.91 <= hits / n_sims <= 0.985


def test_versus_gives_each_judges_position_consistency():
    v = winrate.versus(example(), "boosted", "original", n_boot=100)
    pos = v["position"].set_index("rater")
    # j1's five pairs in both orders: p1, p3, t2 agree; p2 and t1 do not
    assert pos.loc["j1", ["n_repeated", "n_consistent"]].tolist() == [5, 3]
    assert pos.loc["j1", "consistency"] == pytest.approx(0.6)
    assert list(v["win_rate"].columns) == list(winrate.COLUMNS)
