"""Importers and the checked join: PARIKSHA files, study tables, the plain long format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rubrics
from reports.ratings import from_pariksha, from_study, judgments_to_long, prepare, read_long

# pandas' deprecations (Pandas4Warning: errors in pandas 4) and FutureWarnings fail these tests
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning", "error::FutureWarning")

DEMO = Path(__file__).resolve().parents[1] / "kasauti" / "demo_data" / "pariksha"
RUBRIC = rubrics.load_rubric_set("pariksha")


def issues(report) -> dict[str, int]:
    return {i.kind: i.count for i in report.issues}


def test_pariksha_demo_import_counts_and_joins():
    ratings, items, imp = from_pariksha(DEMO)
    clean, rep = prepare(ratings, RUBRIC, items, imp)
    tsv_rows = sum(len(pd.read_csv(p, sep="\t")) for p in (DEMO / "human_ratings").glob("*.tsv"))
    assert (clean["rater_kind"] == "human").sum() == 3 * tsv_rows
    assert set(clean["language"]) == {"bengali", "odia", "tamil"}
    assert set(clean.loc[clean.metric == "hallucination", "score"]) == {0.0, 1.0}
    assert clean["length_bin"].between(1, 5).all()
    # quintiles are per language x task: every large-enough stratum uses all five bins
    per = items.groupby(["language", "task"])["length_bin"].agg(["nunique", "size"])
    assert (per.loc[per["size"] >= 5, "nunique"] == 5).all()
    assert issues(rep) == {"items without human ratings": 205}
    assert rep.counts["items"] == len(items) == 860


def test_pariksha_bad_rows_are_counted_and_named(tmp_path):
    root = tmp_path / "pariksha"
    shutil.copytree(DEMO, root)
    tsv = root / "human_ratings" / "odia_ratings_output_indi.tsv"
    df = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    df.loc[0, "ling_rating"] = "good"  # unparseable
    df.loc[1, "task_rating"] = "7"  # outside the scale
    extra = df.iloc[[2]].assign(prompt_id="no-such-prompt")  # matches no item
    dup = df.iloc[[3]]  # same worker, same item, again
    pd.concat([df, extra, dup]).to_csv(tsv, sep="\t", index=False)
    ratings, items, imp = from_pariksha(root)
    clean, rep = prepare(ratings, RUBRIC, items, imp)
    found = issues(rep)
    assert found["unparseable scores"] == 1
    assert found["scores outside the metric's human scale"] == 1
    assert found["human ratings that match no item"] == 3  # three metrics of one TSV row
    assert found["raters who rated the same item twice (extra rows)"] == 3
    bad = next(i for i in rep.issues if i.kind == "unparseable scores")
    assert bad.examples == ["odia_ratings_output_indi.tsv:row 2:ling_rating='good'"]
    unmatched = next(i for i in rep.issues if i.kind == "human ratings that match no item")
    assert all(e.startswith("no-such-prompt|") for e in unmatched.examples)


def _judgments(item_ids: list[str]) -> pd.DataFrame:
    rows = []
    for n, iid in enumerate(item_ids):
        for rep in (0, 1):
            rows.append({"judge": "j1", "model": "m", "prompt_hash": "abc", "item_id": iid, "metric": "task_quality",
                         "score": n % 3, "human_score": n % 3, "probs": json.dumps({"0": 0.2, "1": 0.3, "2": 0.5}),
                         "status": "ok" if n % 5 else "failed", "repeat": rep})
    return pd.DataFrame(rows)


def test_study_tables_import(tmp_path):
    sample = pd.DataFrame({"item_id": [f"i{n}" for n in range(10)], "language": "hi", "task": "qa",
                           "length_bin": np.arange(10) % 5 + 1, "prompt": "p", "response": "r"})
    sample.to_parquet(tmp_path / "sample.parquet")
    humans = pd.DataFrame({"item_id": ["i1", "i1", "i2", "zz"], "metric": "task_quality", "rater": ["a", "b", "a", "a"],
                           "rater_kind": "human", "score": [1.0, 2.0, 0.0, 1.0], "status": ["submitted", "submitted", "draft", "submitted"]})
    humans.to_parquet(tmp_path / "ratings.parquet")
    _judgments(list(sample["item_id"])).to_parquet(tmp_path / "judgments.parquet")
    ratings, items = from_study(tmp_path / "sample.parquet", tmp_path / "ratings.parquet", tmp_path / "judgments.parquet")
    clean, rep = prepare(ratings, RUBRIC, items)
    found = issues(rep)
    assert found["human ratings not submitted (drafts/discarded)"] == 1
    assert found["human ratings that match no item"] == 1
    assert found["raters who rated the same item twice (extra rows)"] == 8  # repeat 1 of the 8 ok judgments
    judged = clean[clean["rater_kind"] == "judge"]
    assert len(judged) == 8 and set(judged["prompt_version"]) == {"abc"}
    assert judged["probs"].notna().all() and (judged["raw_score"] == judged["score"]).all()
    assert found["items without human ratings"] == 9


def test_judgments_missing_column_is_named():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['human_score'\]"):
        judgments_to_long(_judgments(["a"]).drop(columns="human_score"))


def test_long_csv_roundtrip_and_bad_score(tmp_path):
    df = pd.DataFrame({"item_id": ["1", "1", "2"], "metric": ["hallucination", "hallucination", "fluency"],
                       "rater": ["a", "b", "a"], "rater_kind": ["human", "judge", "human"], "score": [1, 0, 1],
                       "language": "bn", "task": "culture", "length_bin": 3})
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    ratings = read_long(path)
    clean, rep = prepare(ratings, RUBRIC)
    assert len(clean) == 2 and clean["item_id"].tolist() == ["1", "1"]
    assert issues(rep)["ratings of metrics not in rubric set 'pariksha'"] == 1
    df["score"] = df["score"].astype(object)
    df.loc[2, "score"] = "high"
    df.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"r.csv: row 2, column 'score': expected a number, got 'high'"):
        read_long(path)
    df.drop(columns="rater_kind").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['rater_kind'\]"):
        read_long(path)
