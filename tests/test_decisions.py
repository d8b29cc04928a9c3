"""reports.decisions.decide_study: thresholds per metric x language on the human-labelled items of a
crafted study, a decision for every sampled item x metric, and clear refusals."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

import studytables
from reports.decisions import DecisionError, decide_study, min_calibration
from reports.escalate import choose_threshold, coverage_grid
from rubrics import load_rubric_set

RS = load_rubric_set("pariksha")
METRICS = ("linguistic_acceptability", "task_quality", "hallucination")
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)


def write_study(root, n_bn=200, rated_bn=100, rated_or=10, probs=True, judges=("j",)):
    """bn: the first `rated_bn` items rated by two humans who agree with the judge exactly when its
    confidence is >= 0.5 (plus one tie and one draft); or: 40 items, `rated_or` rated."""
    rng = np.random.default_rng(3)
    ids = [f"bn-{i:03d}" for i in range(n_bn)] + [f"or-{i:03d}" for i in range(40)]
    sample = pd.DataFrame({"item_id": ids, "language": ["bn"] * n_bn + ["or"] * 40, "task": "culture"})
    sample.to_parquet(root / "sample.parquet")
    jrows, hrows = [], []
    rated = set(ids[:rated_bn]) | set(ids[n_bn:n_bn + rated_or])
    for item in ids:
        for metric in METRICS:
            top = 1 if metric == "hallucination" else 2
            score = int(rng.integers(0, top + 1))
            conf = float(rng.uniform(0.34, 1.0))
            rest = (1 - conf) / top
            p = {str(v): (conf if v == score else rest) for v in range(top + 1)}
            for judge in judges:
                jrows.append({"judge": judge, "item_id": item, "metric": metric, "repeat": 0, "score": score,
                              "human_score": score, "probs": json.dumps(p) if probs else None, "status": "ok"})
            if item in rated:
                human = score if conf >= 0.5 else (score + 1) % (top + 1)
                hrows += [{"item_id": item, "metric": metric, "rater": r, "rater_kind": "human", "score": float(human),
                           "status": "submitted"} for r in ("h1", "h2")]
    # a tie (no consensus) on bn-000's task_quality, and a draft that must not count
    hrows = [r for r in hrows if not (r["item_id"] == "bn-000" and r["metric"] == "task_quality")]
    hrows += [{"item_id": "bn-000", "metric": "task_quality", "rater": "h1", "rater_kind": "human", "score": 0.0,
               "status": "submitted"},
              {"item_id": "bn-000", "metric": "task_quality", "rater": "h2", "rater_kind": "human", "score": 2.0,
               "status": "submitted"},
              {"item_id": ids[-1], "metric": "hallucination", "rater": "h1", "rater_kind": "human", "score": 1.0,
               "status": "draft"},
              {"item_id": "elsewhere", "metric": "hallucination", "rater": "h1", "rater_kind": "human", "score": 1.0,
               "status": "submitted"}]
    pd.DataFrame(hrows).to_parquet(root / "ratings.parquet")
    pd.DataFrame(jrows).to_parquet(root / "judgments.parquet")
    return sample, pd.DataFrame(jrows), pd.DataFrame(hrows)


def run(root, **kw):
    return decide_study(root / "sample.parquet", root / "ratings.parquet", root / "judgments.parquet", RS, now=NOW, **kw)


def test_every_item_and_metric_gets_a_decision_from_its_cells_threshold(tmp_path):
    sample, judgments, humans = write_study(tmp_path)
    d = run(tmp_path, target=0.9, delta=0.05)
    t = d.table
    assert len(t) == len(sample) * 3 and not t.duplicated(["item_id", "metric"]).any()
    studytables.write(studytables.DECISIONS, t, tmp_path / "decisions.parquet")  # the table's schema holds
    conf = judgments.assign(c=[json.loads(p)[str(s)] for p, s in zip(judgments["probs"], judgments["score"])]).set_index(["item_id", "metric"])["c"]
    assert np.allclose(t["confidence"], conf.loc[list(zip(t["item_id"], t["metric"]))].to_numpy())
    for metric in METRICS:
        cell = t[(t["metric"] == metric) & (t["language"] == "bn")]
        cal = cell[cell["human_consensus"].notna()]
        todo = cell[cell["human_consensus"].isna()]
        expected = choose_threshold(cal["confidence"], (cal["judge_score"] == cal["human_consensus"]).astype(int),
                                    0.9, 0.05, coverage_grid(todo["confidence"], start=2 * 29 / len(cal)))
        lam = cell["threshold"].iloc[0]
        assert lam == expected.threshold and 0.4 < lam < 0.6  # humans agree exactly from 0.5 up
        assert cell["guaranteed_agreement"].iloc[0] == pytest.approx(expected.guaranteed) and expected.guaranteed >= 0.9
        assert ((cell["decided_by"] == "judge") == (cell["confidence"] >= lam)).all()
        assert cell["coverage"].iloc[0] == pytest.approx((cell["confidence"] >= lam).mean())
        prov = json.loads(cell["provenance"].iloc[0])
        assert prov["n_calibration"] == len(cal) == (99 if metric == "task_quality" else 100)
        assert prov["n_no_consensus"] == (1 if metric == "task_quality" else 0)
        assert (prov["target"], prov["delta"], prov["confidence"], prov["judge"]) == (0.9, 0.05, "probs", "j")
        assert prov["chosen_at"] == "2026-11-28T09:30:00+00:00" and prov["grid"].startswith(f"coverage grid of the {len(todo)} items")
    # or: 10 rated items cannot guarantee 0.9 (29 needed), so humans decide all of them
    odia = t[t["language"] == "or"]
    assert odia["threshold"].isna().all() and (odia["decided_by"] == "humans").all() and (odia["coverage"] == 0).all()
    assert json.loads(odia["provenance"].iloc[0])["summary"].startswith("no threshold")
    # escalated: not labelled, and below the threshold for some metric
    below = t[(t["decided_by"] == "humans") & t["human_consensus"].isna()]
    assert d.escalated() == sorted(set(below["item_id"]))
    assert set(d.escalated()) >= {f"or-{i:03d}" for i in range(10, 40)}
    assert not set(d.escalated()) & {f"or-{i:03d}" for i in range(10)}
    cells = d.cells.set_index(["metric", "language"])
    assert cells["escalated"].sum() == len(below) and d.outside_sample == 1


def test_too_few_labelled_items_everywhere_is_refused(tmp_path):
    write_study(tmp_path, rated_bn=20)
    assert min_calibration(0.9, 0.05) == 29
    with pytest.raises(DecisionError, match=r"no metric x language has the 29 human-labelled items.*"
                                            r"hallucination/bn 20, .*lower --target"):
        run(tmp_path)


def test_no_confidence_source_is_refused(tmp_path):
    write_study(tmp_path, probs=False)
    with pytest.raises(DecisionError, match=r"judge 'j' gave no probabilities.*logprobs: true.*--confidence repeats"):
        run(tmp_path)
    with pytest.raises(DecisionError, match="every item has one answer.*repeats >= 2"):
        run(tmp_path, confidence="repeats")


def test_several_judges_need_one_named_or_the_panel(tmp_path):
    write_study(tmp_path, judges=("j", "k"))
    with pytest.raises(DecisionError, match=r"holds judges \['j', 'k'\]: name the one.*--judge"):
        run(tmp_path)
    assert set(run(tmp_path, judge="k").table["judge"]) == {"k"}
    panel = run(tmp_path, confidence="judges").table
    assert set(panel["judge"]) == {"panel"} and (panel["confidence"] == 1).all()  # the two judges always agree


@pytest.mark.parametrize("change, message", [
    ({"metric": "fluency"}, r"ratings.parquet: row 3, column 'metric': 'fluency' is not a metric of rubric set "
                            r"'pariksha' \(hallucination, linguistic_acceptability, task_quality\)"),
    ({"score": 7.0}, r"ratings.parquet: row 3, column 'score': 7.0 is not on the human scale of "
                     r"'(linguistic_acceptability|task_quality|hallucination)' \(0, 1(, 2)?\)"),
])
def test_a_rating_the_rubric_does_not_know_is_named(tmp_path, change, message):
    write_study(tmp_path)
    ratings = pd.read_parquet(tmp_path / "ratings.parquet")
    for col, value in change.items():
        ratings.loc[2, col] = value
    ratings.to_parquet(tmp_path / "ratings.parquet")
    with pytest.raises(DecisionError, match=message + ".*fix the ratings"):
        run(tmp_path)


def test_ratings_of_escalated_items_fill_the_consensus_but_never_calibrate(tmp_path):
    write_study(tmp_path)
    before = run(tmp_path)
    todo = before.escalated()
    rows = [{"item_id": item, "metric": metric, "rater": "h9", "rater_kind": "human", "score": 1.0, "status": "submitted"}
            for item in todo[:5] for metric in METRICS]
    studytables.write(studytables.RATINGS, pd.DataFrame(rows), tmp_path / "ratings_escalated.parquet")
    after = run(tmp_path, escalated_ratings_path=tmp_path / "ratings_escalated.parquet")
    assert after.escalated() == todo[5:]
    cols = ["threshold", "guaranteed_agreement", "coverage", "decided_by", "provenance"]
    pd.testing.assert_frame_equal(after.table[cols], before.table[cols])  # the thresholds did not move
    filled = after.table[after.table["item_id"].isin(todo[:5])]
    assert (filled["human_consensus"] == 1).all()
    assert after.cells["escalated"].sum() == before.cells["escalated"].sum() - (filled["decided_by"] == "humans").sum()


def test_with_a_random_slice_only_its_labels_calibrate(tmp_path):
    """bn: items 0..89 are the random slice (slices.parquet); the rated items 90..99 are of unknown
    provenance, so they fill the human consensus but do not calibrate; or (no slice item): its labels
    calibrate as before."""
    write_study(tmp_path)
    drawn = [f"bn-{i:03d}" for i in range(90)]
    studytables.write(studytables.SLICES, pd.DataFrame({
        "item_id": drawn, "drawn_by": "random", "seed": 0, "rank": range(1, 91), "inclusion_probability": 90 / 240,
        "stratum": "bn/culture", "drawn_at": pd.Timestamp(NOW)}), tmp_path / "slices.parquet")
    before = run(tmp_path)
    d = run(tmp_path, slices_path=tmp_path / "slices.parquet")
    t = d.table
    for metric in METRICS:
        cell = t[(t["metric"] == metric) & (t["language"] == "bn")]
        cal = cell[cell["item_id"].isin(drawn) & cell["human_consensus"].notna()]
        todo = cell[~cell["item_id"].isin(cal["item_id"])]
        expected = choose_threshold(cal["confidence"], (cal["judge_score"] == cal["human_consensus"]).astype(int),
                                    0.9, 0.05, coverage_grid(todo["confidence"], start=2 * 29 / len(cal)))
        prov = json.loads(cell["provenance"].iloc[0])
        assert prov["n_calibration"] == len(cal) == (89 if metric == "task_quality" else 90)
        assert prov["n_left_out"] == 10 and expected.threshold is not None and cell["threshold"].iloc[0] == expected.threshold
        assert cell["human_consensus"].notna().sum() == (99 if metric == "task_quality" else 100)  # all rated items
    odia = ["threshold", "guaranteed_agreement", "decided_by"]
    pd.testing.assert_frame_equal(t[t["language"] == "or"][odia], before.table[before.table["language"] == "or"][odia])
    assert not set(d.escalated()) & {f"bn-{i:03d}" for i in range(90, 100)}  # left out, but rated: never escalated


def test_ratings_of_escalated_items_in_the_study_ratings_never_calibrate(tmp_path):
    """Five rated bn items were also escalated (in ratings_escalated.parquet): chosen by the judge, so their
    ratings in ratings.parquet decide them but leave the calibration."""
    write_study(tmp_path)
    chosen = [f"bn-{i:03d}" for i in range(1, 6)]
    rows = [{"item_id": item, "metric": metric, "rater": "h9", "rater_kind": "human", "score": 0.0, "status": "submitted"}
            for item in chosen for metric in METRICS]
    studytables.write(studytables.RATINGS, pd.DataFrame(rows), tmp_path / "ratings_escalated.parquet")
    before = run(tmp_path).table
    after = run(tmp_path, escalated_ratings_path=tmp_path / "ratings_escalated.parquet").table
    for metric in METRICS:
        prov = [json.loads(c[(c["metric"] == metric) & (c["language"] == "bn")]["provenance"].iloc[0]) for c in (before, after)]
        assert prov[1]["n_calibration"] == prov[0]["n_calibration"] - 5 and prov[1]["n_left_out"] == 5
    key = ["item_id", "metric"]
    mine = before.set_index(key).loc[after.set_index(key).index]
    pd.testing.assert_series_equal(after.set_index(key)["human_consensus"], mine["human_consensus"])  # their ratings still decide
