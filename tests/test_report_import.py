"""Importers and the checked join: PARIKSHA files, study tables, the plain long format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import rubrics
from reports.ratings import from_pariksha, from_study, judgments_to_long, prepare, read_long
from rubrics.load import SETS_DIR

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
    assert set(clean["language"]) == {"bn", "or", "ta"}  # the sampler's codes (sampling.normalise), as in a study
    assert set(clean.loc[clean.metric == "hallucination", "score"]) == {0.0, 1.0}
    assert clean["length_bin"].between(1, 5).all()
    # quintiles are per language x task: every large-enough stratum uses all five bins
    per = items.groupby(["language", "task"])["length_bin"].agg(["nunique", "size"])
    assert (per.loc[per["size"] >= 5, "nunique"] == 5).all()
    assert issues(rep) == {"items without human ratings": 205}
    assert rep.counts["items"] == len(items) == 860


def test_pariksha_length_bins_follow_the_sampling_config():
    """The number of length bins is the sampler's (sampling.length_bins, default 5), or the one given."""
    _, items, _ = from_pariksha(DEMO, n_length_bins=3)
    per = items.groupby(["language", "task"])["length_bin"].agg(["nunique", "size"])
    assert items["length_bin"].between(1, 3).all() and (per.loc[per["size"] >= 3, "nunique"] == 3).all()


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
    assert found["scores that are not numbers"] == 1
    assert found["scores outside the metric's human scale"] == 1
    assert found["human ratings that match no item"] == 3  # three metrics of one TSV row
    assert found["raters who rated the same item twice (extra rows)"] == 3
    bad = next(i for i in rep.issues if i.kind == "scores that are not numbers")
    first = f"{df.loc[0, 'prompt_id']}|{df.loc[0, 'model']}"
    assert bad.examples == [f"odia_ratings_output_indi.tsv: row 1, column 'score': 'good', item_id={first!r}, metric='linguistic_acceptability'"]
    unmatched = next(i for i in rep.issues if i.kind == "human ratings that match no item")
    assert all(e.startswith(f"odia_ratings_output_indi.tsv: row {len(df) + 1}, column 'item_id': 'no-such-prompt|") for e in unmatched.examples)
    assert rep.counts["ratings read"] == rep.counts["ratings used"] + sum(found.values()) - found["items without human ratings"]


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
    # judge calls that did not give a score are counted (file, row, status), not dropped silently
    assert found["judge ratings not submitted (failed or unparseable calls)"] == 4
    failed = next(i for i in rep.issues if i.kind.startswith("judge ratings not submitted"))
    assert failed.examples[0] == f"{tmp_path / 'judgments.parquet'}: row 1, column 'status': 'failed', item_id='i0', metric='task_quality'"


def test_ratings_without_language_or_task_are_counted():
    df = pd.DataFrame({"item_id": ["1", "2", "3"], "metric": "task_quality", "rater": "a", "rater_kind": "human",
                       "score": [0, 1, 2], "language": ["bn", None, "bn"], "task": ["qa", "qa", None]})
    clean, rep = prepare(df, RUBRIC)
    assert clean["language"].tolist() == ["bn", "unknown", "bn"] and clean["task"].tolist() == ["qa", "qa", "unknown"]
    found = {i.kind: i for i in rep.issues}
    assert found["ratings with no language"].count == 1 and not found["ratings with no language"].invalid
    assert found["ratings with no task"].examples == ["ratings table: row 3, column 'task': (empty), item_id='3'"]
    items = pd.DataFrame({"item_id": ["1", "2", "3"], "language": ["bn", "", "bn"], "task": "qa", "length_bin": 1})
    clean, rep = prepare(df, RUBRIC, items)
    assert clean["language"].tolist() == ["bn", "unknown", "bn"]
    assert {i.kind: i.examples for i in rep.issues}["items with no language"] == ["2"]


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
    df.loc[1, "score"] = "high"
    df.to_csv(path, index=False)
    clean, rep = prepare(read_long(path), RUBRIC)  # one unparseable score is excluded like any invalid value
    assert len(clean) == 1
    bad = next(i for i in rep.issues if i.kind == "scores that are not numbers")
    assert bad.count == 1 and bad.invalid and bad.examples == [f"{path}: row 2, column 'score': 'high', item_id='1', metric='hallucination'"]
    assert read_long(path)["_file"].cat.categories.tolist() == [str(path)]  # the file named once, not once per row
    df.drop(columns="rater_kind").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['rater_kind'\]"):
        read_long(path)


def test_invalid_values_are_excluded_counted_and_located(tmp_path):
    """Every invalid value is excluded the same way: counted, with file, 1-based row, column and value."""
    rows = [("1", "task_quality", "a", "human", "1", "2"),
            ("", "task_quality", "a", "human", "1", "2"),        # row 2: no item id (not an item "nan")
            ("2", "task_quality", "a", "human", "1", "long"),    # row 3: length_bin not a number
            ("2", "task_quality", "b", "human", "1.5", "2"),     # row 4: off the scale
            ("2", "task_quality", "c", "human", "n/a", "2"),     # row 5: not a number
            ("2", "Task quality", "d", "human", "2", "2"),       # row 6: a display name with no alias
            ("2", "task_quality", "e", "human", "2", "0"),       # row 7: length_bin below 1
            ("3", "task_quality", "a", "human", "0", "")]        # row 8: no length bin: fine
    path = tmp_path / "r.csv"
    pd.DataFrame(rows, columns=["item_id", "metric", "rater", "rater_kind", "score", "length_bin"]).to_csv(path, index=False)
    clean, rep = prepare(read_long(path), RUBRIC)
    assert clean["item_id"].tolist() == ["1", "3"] and clean["length_bin"].isna().tolist() == [False, True]
    found = {i.kind: i for i in rep.issues if i.invalid}
    expect = {"ratings with no item_id": (1, f"{path}: row 2, column 'item_id': (empty)"),
              "length_bin not a whole number >= 1": (2, f"{path}: row 3, column 'length_bin': 'long'"),
              "scores outside the metric's human scale": (1, f"{path}: row 4, column 'score': '1.5'"),
              "scores that are not numbers": (1, f"{path}: row 5, column 'score': 'n/a'"),
              "ratings of metrics not in rubric set 'pariksha'": (1, f"{path}: row 6, column 'metric': 'Task quality'")}
    assert {k: i.count for k, i in found.items()} == {k: n for k, (n, _) in expect.items()}
    for kind, (_, example) in expect.items():
        assert found[kind].examples[0].startswith(example), found[kind].examples
    assert rep.counts["ratings read"] == rep.counts["ratings used"] + sum(i.count for i in found.values())
    assert rep.invalid_share == pytest.approx(6 / 8)


def test_metric_aliases_and_extra_columns(tmp_path):
    """Display names map through aliases; source_model is kept, other unknown columns are named as ignored."""
    data = yaml.safe_load((SETS_DIR / "pariksha.yaml").read_text(encoding="utf-8"))
    data["families"][0]["metrics"][1]["aliases"] = ["Task Quality", "5W1H"]
    for m in data["families"][0]["metrics"]:
        del m["judge"]  # import only
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rubric = rubrics.load_rubric_set(tmp_path / "custom.yaml", require_judge=False)
    df = pd.DataFrame({"item_id": ["1", "1", "2"], "metric": ["Task Quality", "5W1H", "task_quality"], "rater": ["a", "b", "a"],
                       "rater_kind": "human", "score": [1, 2, 0], "source_model": ["gpt", "gpt", "llama"], "doc": "d", "notes": "n"})
    clean, rep = prepare(df, rubric)
    assert clean["metric"].tolist() == ["task_quality"] * 3
    assert clean["source_model"].tolist() == ["gpt", "gpt", "llama"]
    assert rep.counts["ratings whose metric is given by an alias"] == 2
    assert rep.ignored_columns == ["doc", "notes"]
    assert rep.to_dict()["ignored_columns"] == ["doc", "notes"]
    assert "columns not used by the report (ignored): doc, notes" in rep.lines()


def test_study_items_carry_source_model(tmp_path):
    pd.DataFrame({"item_id": ["i1", "i2"], "language": "hi", "task": "qa", "length_bin": [1, 2],
                  "source_model": ["m1", "m2"]}).to_parquet(tmp_path / "sample.parquet")
    pd.DataFrame({"item_id": ["i1", "i2"], "metric": "task_quality", "rater": "a", "rater_kind": "human",
                  "score": [1.0, 2.0], "status": "submitted"}).to_parquet(tmp_path / "ratings.parquet")
    ratings, items = from_study(tmp_path / "sample.parquet", tmp_path / "ratings.parquet", None)
    clean, _ = prepare(ratings, RUBRIC, items)
    assert dict(zip(clean["item_id"], clean["source_model"])) == {"i1": "m1", "i2": "m2"}


def test_unreadable_source_files_are_named(tmp_path):
    root = tmp_path / "pariksha"
    shutil.copytree(DEMO, root)
    tsv = sorted((root / "human_ratings").glob("*.tsv"))[0]
    tsv.write_bytes(tsv.read_bytes() + "x\tcaf\xe9\n".encode("latin-1"))
    lines = len(tsv.read_bytes().splitlines())
    with pytest.raises(ValueError, match=rf"{tsv}: row {lines - 1}: byte 0xe9 is not UTF-8"):
        from_pariksha(root)
    shutil.copy(DEMO / "human_ratings" / tsv.name, tsv)
    judge = sorted((root / "judge_ratings" / "task_quality").glob("*.json"))[0]
    judge.write_text("{bad", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{judge}: not valid JSON"):
        from_pariksha(root)
    judge.write_text(json.dumps([{"model-a": {"score": 1}}]), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{judge}: entry 1 has no 'prompt_id'"):
        from_pariksha(root)
    (tmp_path / "sample.parquet").write_text("junk")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'sample.parquet'}: not a Parquet file .*; write it again"):
        from_study(tmp_path / "sample.parquet", None, None)
