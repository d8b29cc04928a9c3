"""Bias diagnostics (reports.bias) and the panel of judges (reports.panel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.analysis import analyse
from reports.bias import bias_by_group, self_preference
from reports.panel import panel_rows
from reports.ratings import prepare
from rubrics import load_rubric_set


def pairs_frame(rng, n_items=300, humans=3, judge_shift=lambda g: 0.0, groups=5):
    """Items in ``groups`` ordered groups; each has ``humans`` human scores and one judge score."""
    g = rng.integers(0, groups, n_items)
    quality = rng.normal(1.0, 0.5, n_items)
    judge = quality + np.vectorize(judge_shift)(g) + rng.normal(0, 0.3, n_items)
    rows = [(f"i{i}", g[i], judge[i], quality[i] + rng.normal(0, 0.3)) for i in range(n_items) for _ in range(humans)]
    return pd.DataFrame(rows, columns=["item_id", "length_bin", "judge", "human"])


def test_bias_per_group_is_the_mean_difference_with_item_clustered_intervals():
    pairs = pairs_frame(np.random.default_rng(0), judge_shift=lambda g: 0.3 if g == 4 else 0.0)
    table, _ = bias_by_group(pairs, "length_bin", n_boot=500)
    expected = pairs.assign(d=pairs["judge"] - pairs["human"]).groupby("length_bin")["d"].mean()
    assert table["bias"].to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-12)
    assert table["n_items"].sum() == 300 and table["n_pairs"].sum() == 900
    assert table.set_index("length_bin").loc[4, "significant"]
    assert (table["bias_ci_low"] < table["bias"]).all() and (table["bias"] < table["bias_ci_high"]).all()
    # replicating every item's rows changes nothing: items, not rows, are resampled
    tripled, _ = bias_by_group(pd.concat([pairs] * 3, ignore_index=True), "length_bin", n_boot=500)
    assert tripled["bias_ci_high"].to_numpy() == pytest.approx(table["bias_ci_high"].to_numpy(), abs=1e-12)


def test_trend_test_finds_a_length_trend():
    _, trend = bias_by_group(pairs_frame(np.random.default_rng(1), judge_shift=lambda g: 0.1 * g), "length_bin",
                             ordered=True, n_boot=1000)
    assert trend["significant"] and trend["ci_low"] > 0 and trend["slope"] == pytest.approx(0.1, abs=0.05)
    assert trend["p_value"] == 1 / 1000  # every resampled slope is positive: p at the bootstrap's resolution, not 0


def test_without_bias_intervals_cover_zero_95_percent_of_the_time_and_the_trend_is_rarely_significant():
    rng = np.random.default_rng(11)
    covered, trends = [], []
    for seed in range(100):
        table, trend = bias_by_group(pairs_frame(rng, n_items=200), "length_bin", ordered=True, n_boot=400, seed=seed)
        covered += list((table["bias_ci_low"] < 0) & (0 < table["bias_ci_high"]))
        trends.append(trend["significant"])
    assert 0.92 <= np.mean(covered) <= 0.98
    assert np.mean(trends) <= 0.10


def test_an_item_in_two_groups_and_a_missing_score_are_refused():
    pairs = pd.DataFrame({"item_id": ["a", "a"], "g": [1, 2], "judge": [1.0, 1], "human": [0.0, 1]})
    with pytest.raises(ValueError, match="item 'a' lies in more than one 'g' group"):
        bias_by_group(pairs, "g")
    pairs = pd.DataFrame({"item_id": ["a", "b"], "g": [1, 2], "judge": [1.0, None], "human": [0.0, 1]})
    with pytest.raises(ValueError, match="row 2, column 'judge'"):
        bias_by_group(pairs, "g")


def test_self_preference_separates_a_favouring_judge_from_better_own_responses():
    rng = np.random.default_rng(2)
    n = 400
    own = rng.random(n) < 0.3
    quality = rng.normal(1.0, 0.5, n)
    base = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "own": own})
    # the judge adds 0.4 to its own family's responses; humans do not
    favours = base.assign(judge=quality + 0.4 * own + rng.normal(0, 0.3, n), human=quality + rng.normal(0, 0.3, n))
    sp = self_preference(favours, "own", n_boot=1000)
    assert sp["significant"] and sp["self_preference_ci"][0] > 0
    assert sp["self_preference"] == pytest.approx(sp["judge_gap"] - sp["human_gap"], abs=1e-12)
    # own-family responses really are better: judge and humans both see it, no self-preference
    better = base.assign(judge=quality + 0.4 * own + rng.normal(0, 0.3, n), human=quality + 0.4 * own + rng.normal(0, 0.3, n))
    sp = self_preference(better, "own", n_boot=1000)
    assert sp["judge_gap_ci"][0] > 0 and sp["human_gap_ci"][0] > 0 and not sp["significant"]
    assert self_preference(base.assign(judge=1.0, human=1.0, own=False), "own")["self_preference"] is None


def judged_ratings(rng, n_items=300, accuracy=(0.6, 0.6, 0.6)):
    """PARIKSHA task_quality (0..2): 3 humans per item near the truth, and judges right with the given accuracy."""
    rows = []
    for i in range(n_items):
        truth = rng.integers(0, 3)
        lang = "bn" if i % 2 else "or"
        for h in range(3):
            score = truth if rng.random() < 0.85 else rng.integers(0, 3)
            rows.append((f"i{i}", "task_quality", f"h{h}", "human", float(score), None, lang))
        for j, acc in enumerate(accuracy):
            score = truth if rng.random() < acc else rng.integers(0, 3)
            rows.append((f"i{i}", "task_quality", f"j{j}", "judge", float(score), float(score) + 1, lang))
    df = pd.DataFrame(rows, columns=["item_id", "metric", "rater", "rater_kind", "score", "raw_score", "language"])
    return df.assign(task="t", length_bin=1, status="submitted")


def test_majority_panel_is_analysed_like_a_judge_and_beats_its_members():
    specs = load_rubric_set("pariksha").metrics
    ratings, _ = prepare(judged_ratings(np.random.default_rng(3)), load_rubric_set("pariksha"))
    panel, info = panel_rows(ratings, ["j0", "j1", "j2"], specs, how="majority", name="panel")
    assert info["items scored by every panel judge"] == 300
    assert len(panel) == 300 and info["items whose judges tied (majority): the mean rule decides"] > 0
    both, report = prepare(pd.concat([ratings, panel], ignore_index=True), load_rubric_set("pariksha"))
    assert report.counts["ratings used"] == report.counts["ratings read"] == len(ratings) + len(panel)
    rows, _ = analyse(both, specs, n_boot=0)
    exact = {r["judge"]: r["value"] for r in rows if r["statistic"] == "hj_exact" and r["facet"] == "overall"}
    assert exact["panel"] > max(exact["j0"], exact["j1"], exact["j2"])


def test_mean_panel_rounds_to_the_nearest_level_and_averages_expected_scores():
    specs = load_rubric_set("pariksha").metrics
    ratings = pd.DataFrame({
        "item_id": ["a", "a", "b", "b", "c"], "status": "submitted", "model": None, "prompt_version": None, "metric": "task_quality", "rater": ["j0", "j1", "j0", "j1", "j0"],
        "rater_kind": "judge", "score": [2.0, 1, 0, 1, 2], "raw_score": [3.0, 2, 1, 2, 3],
        "probs": ['{"3": 0.5, "2": 0.5}', None, None, None, None], "language": "bn", "task": "t", "length_bin": 1,
    })
    panel, info = panel_rows(ratings, ["j0", "j1"], specs, how="mean")
    panel = panel.set_index("item_id")
    assert panel.loc["a", "score"] == 1 and panel.loc["b", "score"] == 0  # 1.5 -> 1, 0.5 -> 0: halfway goes down
    assert panel.loc["a", "raw_score"] == pytest.approx((2.5 + 2) / 2)  # j0's expected score from its probs
    assert info["items left out: not scored by every panel judge"] == 1 and "c" not in panel.index
    assert set(panel["rater"]) == {"panel (mean: j0 + j1)"}
    with pytest.raises(ValueError, match=r"panel judge\(s\) \['j9'\] have no ratings"):
        panel_rows(ratings, ["j0", "j9"], specs)


def test_a_row_without_a_group_is_refused_not_dropped():
    pairs = pd.DataFrame({"item_id": ["a", "b", "c"], "g": [1, None, 2], "judge": [1.0, 1, 1], "human": [0.0, 1, 1]})
    with pytest.raises(ValueError, match="row 2, column 'g': no group"):
        bias_by_group(pairs, "g")


def test_ordered_levels_must_list_every_group():
    pairs = pairs_frame(np.random.default_rng(4), n_items=50, groups=3)
    with pytest.raises(ValueError, match=r"ordered: group 2 of column 'length_bin' is not among the ordered levels \[0, 1\]"):
        bias_by_group(pairs, "length_bin", ordered=[0, 1])
    table, trend = bias_by_group(pairs, "length_bin", ordered=[2, 1, 0], n_boot=200)
    assert table["length_bin"].tolist() == [2, 1, 0] and trend["levels"] == ["2", "1", "0"]


def test_a_million_items_are_resampled_through_their_distinct_score_rows():
    """Identical items are exchangeable, so the bootstrap draws counts of distinct (judge, human) rows, not of items:
    half a million items per group with 8,000 resamples need no (resamples x items) matrix (32 GB), and the
    interval still has the width of the item bootstrap's: 2 x 1.96 x sd(judge - human) / sqrt(items per group)."""
    rng = np.random.default_rng(5)
    n = 1_000_000
    pairs = pd.DataFrame({"item_id": np.arange(n), "g": np.arange(n) % 2,
                          "judge": rng.integers(0, 3, n).astype(float), "human": rng.integers(0, 3, n).astype(float)})
    table, _ = bias_by_group(pairs, "g", n_boot=8000, seed=1)
    expected = 2 * 1.96 * np.sqrt(2 * 2 / 3) / np.sqrt(n / 2)  # judge and human independent, uniform on 0..2
    width = (table["bias_ci_high"] - table["bias_ci_low"]).to_numpy()
    assert np.all(np.abs(width / expected - 1) < 0.1), width / expected
    assert np.all((table["bias_ci_low"] < table["bias"]) & (table["bias"] < table["bias_ci_high"]))
