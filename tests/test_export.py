"""`training.export`: accepted items and revision pairs as Hugging Face datasets, from real study tables."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from datasets import load_dataset
from pydantic import ValidationError

import reports
import rubrics
import studytables as st
from training.config import ExportConfig
from training.export import ExportError, NoAcceptedItems, export, external_pairs, push_to_hub

RS = rubrics.load_rubric_set("pariksha")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
RULE = ExportConfig.model_validate({"accept": [
    {"metric": "linguistic_acceptability", "consensus": "median", "at_least": 2, "min_raters": 2},
    {"metric": "task_quality", "at_least": 1},
]})


def sample(ids: list[str], language: str = "hi") -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({
        "item_id": ids, "language": language, "task": ["qa", "story"] * (n // 2) + ["qa"] * (n % 2),
        "prompt": [f"प्रश्न {i}: भारत की राजधानी?" for i in ids], "response": [f"उत्तर {i}: नई दिल्ली भारत की राजधानी है।" for i in ids],
        "conversation": None, "system_prompt": None, "source_model": "m1",
        "context": [None if k % 2 else f"संदर्भ {k}" for k in range(n)],
        "length": 20, "stratum": [f"{language}/qa"] * n, "length_bin": 1, "source_row": range(1, n + 1),
    })


def ratings(rows: list[tuple]) -> pd.DataFrame:
    """rows: (item, metric, rater, score[, status])."""
    return pd.DataFrame([{"item_id": r[0], "metric": r[1], "rater": r[2], "rater_kind": "human", "score": float(r[3]),
                          "status": r[4] if len(r) > 4 else "submitted", "inserted_at": T0, "updated_at": T0}
                         for r in rows])


def revisions(rows: list[tuple]) -> pd.DataFrame:
    """rows: (item, annotator, revised_response, status)."""
    return pd.DataFrame([{"item_id": i, "annotator": a, "revised_response": text, "comment": None, "status": status,
                          "language": "hi", "task": "qa", "inserted_at": T0, "updated_at": T0}
                         for i, a, text, status in rows])


def study(root: Path, items: pd.DataFrame, rated: pd.DataFrame, revised: pd.DataFrame | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    st.write(st.SAMPLE, items, root / "sample.parquet")
    st.write(st.RATINGS, rated, root / "ratings.parquet")
    if revised is not None:
        st.write(st.REVISIONS, revised, root / "revisions.parquet")
    return root


def both(item: str, rater: str, la: float, tq: float, status: str = "submitted") -> list[tuple]:
    return [(item, "linguistic_acceptability", rater, la, status), (item, "task_quality", rater, tq, status)]


def load(root: Path, name: str) -> pd.DataFrame:
    files = str(root / "export" / name / "data" / "train.parquet")
    return load_dataset("parquet", data_files=files, split="train").to_pandas()


def card(root: Path, name: str) -> dict:
    text = (root / "export" / name / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_accepts_items_whose_human_consensus_meets_every_rule_and_says_why(tmp_path):
    rated = ratings(both("a", "h1", 2, 1) + both("a", "h2", 2, 2) + both("a", "h3", 1, 2)  # median 2, 2: accepted
                    + both("b", "h1", 2, 2) + both("b", "h2", 1, 2)                       # median 1.5: rejected
                    + both("c", "h1", 2, 2)                                               # one rater: rejected
                    + both("d", "h1", 2, 0) + both("d", "h2", 2, 0)                       # task quality 0
                    + both("e", "h1", 2, 2, "draft") + both("e", "h2", 2, 2, "draft")     # drafts: no human rating
                    + both("zz", "h1", 2, 2))                                             # not in the sample
    root = study(tmp_path / "s", sample(list("abcde")), rated)
    result = export(root, RULE, RS, "demo-study")
    assert "ratings.parquet: 2 submitted human ratings of 1 item(s) not in sample.parquet, not used (e.g. 'zz')" \
        in result.notes

    got = load(root, "accepted")
    assert got["item_id"].tolist() == ["a"] and result.accepted == 1
    assert got.loc[0, "decided_by"] == "humans"
    assert got.loc[0, "accepted_by"] == ("median of >= 2 human ratings of linguistic_acceptability >= 2 and "
                                         "median of >= 2 human ratings of task_quality >= 1")
    assert json.loads(got.loc[0, "evidence"]) == {
        "linguistic_acceptability": {"consensus": "median", "value": 2.0, "n_raters": 3},
        "task_quality": {"consensus": "median", "value": 2.0, "n_raters": 3}}
    assert got.loc[0, "response"] == sample(["a"])["response"][0]
    assert result.rejected == {"linguistic_acceptability: median below 2": 1,
                               "linguistic_acceptability: fewer than 2 human ratings": 1,
                               "task_quality: median below 1": 1, "no human rating": 1}
    assert result.accepted + sum(result.rejected.values()) == 5


def test_a_metric_where_lower_is_better_takes_at_most(tmp_path):
    rule = ExportConfig.model_validate({"accept": [{"metric": "hallucination", "consensus": "max", "at_most": 0}]})
    rated = ratings([("a", "hallucination", "h1", 0), ("a", "hallucination", "h2", 0),
                     ("b", "hallucination", "h1", 0), ("b", "hallucination", "h2", 1)])
    root = study(tmp_path / "s", sample(["a", "b"]), rated)
    result = export(root, rule, RS, "demo-study")
    got = load(root, "accepted")
    assert got["item_id"].tolist() == ["a"] and got["accepted_by"][0] == "max of >= 2 human ratings of hallucination <= 0"
    assert result.rejected == {"hallucination: max above 0": 1}


def test_dataset_card_has_counts_rule_and_provenance(tmp_path):
    rated = ratings(both("a", "h1", 2, 2) + both("a", "h2", 2, 2) + both("b", "h1", 2, 1) + both("b", "h2", 2, 1)
                    + both("c", "h1", 0, 0) + both("c", "h2", 0, 0))
    root = study(tmp_path / "s", sample(list("abc")), rated)
    export(root, RULE, RS, "demo-study")
    meta = card(root, "accepted")["kasauti"]
    assert meta["counts"]["rows"] == 2
    assert meta["counts"]["language"] == {"hi": 2}
    assert meta["counts"]["task"] == {"qa": 1, "story": 1}
    assert meta["counts"]["metric"] == {"linguistic_acceptability": 2, "task_quality": 2}
    assert meta["not accepted"] == {"linguistic_acceptability: median below 2": 1}
    assert meta["rule"] == RULE.text()
    prov = meta["provenance"]
    assert (prov["study"], prov["rubric"], prov["rubric_version"]) == ("demo-study", "pariksha", RS.version)
    assert prov["kasauti_version"] not in ("", "unknown")
    files = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in ("ratings.parquet", "sample.parquet")}
    assert prov["input_files_sha256"] == files
    first = prov["inputs_sha256"]
    rated.loc[0, "score"] = 1.0  # another input gives another hash
    st.write(st.RATINGS, rated, root / "ratings.parquet")
    export(root, RULE, RS, "demo-study")
    assert card(root, "accepted")["kasauti"]["provenance"]["inputs_sha256"] != first
    # the card's `configs` make the directory itself a dataset that `datasets` reads offline
    assert load_dataset(str(root / "export" / "accepted"), split="train").num_rows == 1


def test_revision_pairs_with_the_annotators_ratings_and_unchanged_prefills_counted(tmp_path):
    items = sample(["a", "b"])
    original = items["response"][0]
    rated = ratings(both("a", "asha", 1, 1) + both("a", "ravi", 2, 2) + both("b", "asha", 2, 2) + both("b", "ravi", 2, 2))
    revised = revisions([
        ("a", "asha", "उत्तर a: नई दिल्ली भारत की राजधानी है, 1911 से।", "submitted"),   # small edit
        ("a", "ravi", "  " + original.replace(" ", "\n  ") + " ", "submitted"),           # pre-fill, only whitespace
        ("b", "asha", "पूरी तरह नया उत्तर, कुछ और ही बात।", "submitted"),                   # large edit
        ("b", "ravi", "मसौदा", "draft"),
        ("b", "meena", None, "submitted"),
        ("zz", "asha", "किसी और का उत्तर", "submitted"),
    ])
    root = study(tmp_path / "s", items, rated, revised)
    result = export(root, RULE, RS, "demo-study")

    pairs = load(root, "revisions")
    assert pairs[["item_id", "annotator"]].values.tolist() == [["b", "asha"], ["a", "asha"]]  # most edited first
    a = pairs.set_index("item_id").loc["a"]
    assert (a["original_instruction"], a["original_input"], a["original_response"]) == \
        (items["prompt"][0], items["context"][0], original)
    assert (a["revised_instruction"], a["revised_input"]) == (items["prompt"][0], items["context"][0])
    assert a["revised_response"].endswith("1911 से।") and a["source"] == "study"
    assert json.loads(a["ratings"]) == {"linguistic_acceptability": 1.0, "task_quality": 1.0}  # asha's, not ravi's
    assert 0 < pairs["edit_distance"][1] < pairs["edit_distance"][0] <= 1
    assert pairs["original_input"][0] == ""  # no context: empty input
    assert result.revisions_not_exported == {
        "revision equals the original after whitespace normalisation (pre-fill left unchanged)": 1,
        "not submitted (draft or discarded)": 1, "no revised response": 1, "item not in sample.parquet": 1}
    assert result.revisions + sum(result.revisions_not_exported.values()) == len(revised)
    meta = card(root, "revisions")["kasauti"]
    assert meta["counts"]["metric"] == {"linguistic_acceptability": 2, "task_quality": 2}
    assert meta["not exported"] == result.revisions_not_exported


def test_top_share_keeps_the_most_edited_pairs(tmp_path):
    ids = [f"i{k}" for k in range(10)]
    words = [f"शब्द{j}" for j in range(20)]
    items = sample(ids).assign(response=" ".join(words))
    rated = ratings([r for i in ids for h in ("h1", "h2") for r in both(i, h, 2, 2)])
    # item k's revision replaces its first k + 1 words: the higher k, the more edited
    revised = revisions([(i, "asha", " ".join(["नया"] * (k + 1) + words[k + 1:]), "submitted") for k, i in enumerate(ids)])
    root = study(tmp_path / "s", items, rated, revised)
    result = export(root, RULE.model_copy(update={"top_share": 0.3}), RS, "demo-study")
    pairs = load(root, "revisions")
    assert pairs["item_id"].tolist() == ["i9", "i8", "i7"]
    assert pairs["edit_distance"].is_monotonic_decreasing and pairs["edit_distance"].nunique() == 3
    assert result.revisions_not_exported == {"below the top share by edit distance": 7}


def midb_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "language": ["Spanish", "es", "es"],
        "original_instruction": ["Traduce", "Resume", "Explica"], "original_input": ["hola", None, ""],
        "original_response": ["hello", "Un resumen", "Una explicación"],
        "revised_instruction": ["Traduce al inglés", "Resume", "Explica"], "revised_input": ["hola", "", ""],
        "revised_response": ["Hello.", "Un resumen", "Una explicación clara y completa"],
        "edit_distance": [0.99, 0.99, 0.99],  # an input's distance is never used
    })


def test_external_pairs_are_a_second_input_with_their_distance_computed(tmp_path):
    rated = ratings(both("a", "h1", 2, 2) + both("a", "h2", 2, 2))
    root = study(tmp_path / "s", sample(["a"]), rated)
    result = export(root, RULE, RS, "demo-study", external=external_pairs(midb_frame(), "midb"))
    pairs = load(root, "revisions")
    assert pairs["source"].tolist() == ["midb", "midb"] and pairs["language"].tolist() == ["es", "es"]
    assert sorted(pairs["item_id"]) == ["midb/1", "midb/3"] and pairs["annotator"].isna().all()
    assert pairs["edit_distance"].between(0, 0.9).all() and pairs["edit_distance"].is_monotonic_decreasing
    assert result.revisions_not_exported == {
        "revision equals the original after whitespace normalisation (pre-fill left unchanged)": 1}
    assert "external pairs" in card(root, "revisions")["kasauti"]["provenance"]["input_files_sha256"]
    assert any("no revisions.parquet" in note for note in result.notes)


@pytest.mark.parametrize("change, expected", [
    (lambda f: f.drop(columns=["revised_response"]), "midb: missing column(s) ['revised_response']"),
    (lambda f: f.assign(original_response=["x", 3, "y"]), "midb: row 2, column 'original_response': expected text, found 3"),
    (lambda f: f.assign(item_id=["y", None, "x"]), "midb: row 2, column 'item_id': expected text, found None"),
    (lambda f: f.assign(task=["qa", 7, None]), "midb: row 2, column 'task': expected text, found 7"),
    (lambda f: f.assign(item_id=["y", "x", "x"]), "midb: rows 2 and 3, column 'item_id': the same id 'x' twice"),
    (lambda f: f.assign(language=["es", "es", "qqq"]), "midb: row 3, column 'language': 'qqq' is not a language"),
])
def test_malformed_external_pairs_are_one_line_errors(change, expected):
    with pytest.raises(ExportError) as exc:
        external_pairs(change(midb_frame()), "midb")
    assert str(exc.value).startswith(expected) and "\n" not in str(exc.value)


def test_no_accepted_item_is_a_typed_error_and_the_previous_export_stays(tmp_path):
    rated = ratings(both("a", "h1", 1, 2) + both("a", "h2", 1, 2) + both("b", "h1", 2, 2))
    root = study(tmp_path / "s", sample(["a", "b"]), rated)
    export(root, RULE.model_copy(update={"accept": [RULE.accept[1]]}), RS, "demo-study")
    before = {p: p.read_bytes() for p in (root / "export").rglob("*") if p.is_file()}
    with pytest.raises(NoAcceptedItems) as exc:
        export(root, RULE, RS, "demo-study")
    msg = str(exc.value)
    assert "\n" not in msg and "no item of 2 meets the acceptance rule" in msg and RULE.text() in msg
    assert "linguistic_acceptability: median below 2: 1" in msg and "fewer than 2 human ratings: 1" in msg
    assert {p: p.read_bytes() for p in (root / "export").rglob("*") if p.is_file()} == before


def test_a_study_without_revisions_exports_accepted_items_and_says_so(tmp_path):
    rated = ratings(both("a", "h1", 2, 2) + both("a", "h2", 2, 2))
    root = study(tmp_path / "s", sample(["a"]), rated)
    result = export(root, RULE, RS, "demo-study")
    assert result.accepted == 1 and result.revisions == 0
    assert not (root / "export" / "revisions").exists()
    assert any("revisions.parquet" in n and "kasauti pull" in n for n in result.notes)
    assert any("no revision pairs to export" in n for n in result.notes)


def test_missing_ratings_and_unknown_metric_are_clear_errors(tmp_path):
    root = study(tmp_path / "s", sample(["a"]), ratings(both("a", "h1", 2, 2)))
    bad = ExportConfig.model_validate({"accept": [{"metric": "fluency", "at_least": 1}]})
    with pytest.raises(ExportError, match=r"^export.accept: unknown metric 'fluency'; rubric set 'pariksha' has \["):
        export(root, bad, RS, "demo-study")
    off = ExportConfig.model_validate({"accept": [{"metric": "task_quality", "at_least": 5}]})
    with pytest.raises(ExportError, match="task_quality: >= 5 is off the metric's human scale"):
        export(root, off, RS, "demo-study")
    three = RS.model_dump()  # a nominal metric with three levels has no order to bound
    for metric in three["families"][0]["metrics"]:
        if metric["name"] == "hallucination":
            for scale in (metric["human"], metric["judge"]["scale"]):
                scale["levels"].append({"value": 2, "label": "unsure", "anchor": "Cannot tell."})
            metric["judge"]["to_human"]["2"] = 2
    nominal = ExportConfig.model_validate({"accept": [{"metric": "hallucination", "at_most": 0}]})
    with pytest.raises(ExportError, match="hallucination is nominal with 3 levels: its levels have no order"):
        export(root, nominal, rubrics.RubricSet.model_validate(three), "demo-study")
    (root / "ratings.parquet").unlink()
    with pytest.raises(ExportError, match=r"ratings.parquet: no human ratings; run `kasauti pull`"):
        export(root, RULE, RS, "demo-study")
    assert not (root / "export").exists()


def test_the_rule_is_validated():
    with pytest.raises(ValidationError, match="extra"):
        ExportConfig.model_validate({"accept": [{"metric": "task_quality", "at_least": 1, "atleast": 2}]})
    with pytest.raises(ValidationError, match="at least 1"):
        ExportConfig.model_validate({"accept": []})
    with pytest.raises(ValidationError, match="one rule per metric"):
        ExportConfig.model_validate({"accept": [{"metric": "task_quality", "at_least": 1}] * 2})
    with pytest.raises(ValidationError):
        ExportConfig.model_validate({"accept": [{"metric": "task_quality", "at_least": 1}], "top_share": 0})
    for bounds in ({}, {"at_least": 1, "at_most": 1}):
        with pytest.raises(ValidationError, match="exactly one of at_least and at_most"):
            ExportConfig.model_validate({"accept": [{"metric": "task_quality", **bounds}]})


def judged_study(root: Path, n: int = 60) -> Path:
    """Rated items in hi (the judge agrees with humans) and ta (the judge always says 2), and
    unrated items in both languages that only the judge scored; `kasauti report` run on it."""
    rng = np.random.default_rng(5)
    frames, rows, judged = [], [], []
    for lang in ("hi", "ta"):
        ids = [f"{lang}{k}" for k in range(n)] + [f"{lang}-new{k}" for k in range(6)]
        frames.append(sample(ids, lang))
        truth = rng.choice(3, n, p=[0.3, 0.3, 0.4])
        for i, t in zip(ids, truth):
            rows += [(i, "task_quality", h, t if rng.random() > 0.05 else rng.integers(0, 3)) for h in ("h1", "h2", "h3")]
        for k, i in enumerate(ids):
            score = (truth[k] if k < n else [0, 1, 2, 2, 2, 1][k - n]) if lang == "hi" else 2
            judged.append({"judge": "gpt", "model": "gpt-x", "rubric": "pariksha", "rubric_version": RS.version,
                           "prompt_hash": "0123456789abcdef", "mode": "per_item", "repeat": 0, "item_id": i,
                           "metric": "task_quality", "score": int(score), "human_score": int(score), "probs": None,
                           "expected_score": None, "entropy": None, "reason": None, "raw_answer": "{}", "status": "ok",
                           "error": None, "attempts": 1, "prompt_tokens": 1, "completion_tokens": 1, "started_at": T0,
                           "finished_at": T0, "params": "{}"})
    study(root, pd.concat(frames, ignore_index=True), ratings(rows))
    st.write(st.JUDGMENTS, pd.DataFrame(judged), root / "judgments.parquet")
    write_report(root)
    return root


def write_report(root: Path) -> None:
    table, items = reports.from_study(root / "sample.parquet", root / "ratings.parquet", root / "judgments.parquet")
    reports.build_report(table, RS, root / "report", items, config=reports.ReportConfig(n_boot=30, verdict_min_items=30))


JUDGE_RULE = ExportConfig.model_validate({"accept": [{"metric": "task_quality", "at_least": 2}], "judge": {"judge": "gpt"}})


def test_the_calibrated_judge_decides_unrated_items_only_where_the_verdict_allows(tmp_path):
    root = judged_study(tmp_path / "s")
    verdicts = {v["language"]: v["verdict"] for v in json.loads((root / "report" / "report.json").read_text())["verdicts"]}
    assert verdicts["hi"].startswith("usable") and not verdicts["ta"].startswith("usable")
    result = export(root, JUDGE_RULE, RS, "demo-study")
    got = load(root, "accepted").set_index("item_id")
    by_judge = got[got["decided_by"] == "judge"]
    assert sorted(by_judge.index) == ["hi-new2", "hi-new3", "hi-new4"]  # the judge said 2; ta's unrated items: none
    evidence = json.loads(by_judge.loc["hi-new2", "evidence"])["task_quality"]
    assert evidence["judge"] == "gpt" and evidence["judge_score"] == 2 and evidence["calibrated_score"] == 2
    assert evidence["verdict"] == verdicts["hi"] and evidence["cell"] == {"metric": "task_quality", "language": "hi"}
    assert by_judge.loc["hi-new2", "accepted_by"].startswith("judge gpt (calibrated) where the report's verdict is")
    assert (got["decided_by"] == "humans").sum() > 0
    assert result.rejected[f"task_quality: no human rating, and the judge is not allowed in task_quality x ta "
                           f"(verdict: {verdicts['ta']})"] == 6
    assert result.rejected["task_quality: calibrated judge score not >= 2"] == 3
    assert result.accepted + sum(result.rejected.values()) == 132
    judges = card(root, "accepted")["kasauti"]["provenance"]["judges"]
    assert judges == [{"judge": "gpt", "model": "gpt-x", "prompt_hash": "0123456789abcdef"}]


def test_the_judge_needs_a_report_newer_than_the_ratings(tmp_path):
    root = judged_study(tmp_path / "s", n=30)
    other = JUDGE_RULE.model_copy(update={"judge": JUDGE_RULE.judge.model_copy(update={"judge": "other"})})
    with pytest.raises(ExportError, match=r"report.json: no verdicts for judge 'other' \(the report has \['gpt'\]\)"):
        export(root, other, RS, "demo-study")
    report = root / "report" / "report.json"
    text = report.read_text(encoding="utf-8")
    report.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ExportError, match=r"report.json: not valid JSON \(truncated\?\): .*; run `kasauti report` again"):
        export(root, JUDGE_RULE, RS, "demo-study")
    report.write_text(text, encoding="utf-8")
    later = (root / "report" / "report.json").stat().st_mtime + 60
    os.utime(root / "ratings.parquet", (later, later))
    with pytest.raises(ExportError, match=r"report.json: older than ratings.parquet; run `kasauti report` again"):
        export(root, JUDGE_RULE, RS, "demo-study")
    (root / "report" / "report.json").unlink()
    with pytest.raises(ExportError, match=r"report.json: no report; .* run `kasauti report` first"):
        export(root, JUDGE_RULE, RS, "demo-study")
    (root / "judgments.parquet").unlink()
    with pytest.raises(ExportError, match=r"judgments.parquet: no judgments; run `kasauti judge` and `kasauti report`"):
        export(root, JUDGE_RULE, RS, "demo-study")
    assert not (root / "export").exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_to_hub_without_token_or_network_refuses_and_keeps_the_export(tmp_path, monkeypatch):
    rated = ratings(both("a", "h1", 2, 2) + both("a", "h2", 2, 2))
    root = study(tmp_path / "s", sample(["a"]), rated)
    export(root, RULE, RS, "demo-study")
    accepted = root / "export" / "accepted"
    before = {p: p.read_bytes() for p in accepted.rglob("*") if p.is_file()}
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ExportError, match=r"^push me/data: no HF_TOKEN in the environment; nothing pushed, the export "
                                          r"stays in .*accepted"):
        push_to_hub(accepted, "me/data")
    secret = "hf_secret_never_printed_123"
    monkeypatch.setenv("HF_TOKEN", secret)
    with pytest.raises(ExportError) as exc:
        push_to_hub(accepted, "me/data", endpoint=f"http://127.0.0.1:{closed_port()}")
    msg = str(exc.value)
    assert "did not accept the upload" in msg and "the export stays in" in msg and secret not in msg and "\n" not in msg
    assert {p: p.read_bytes() for p in accepted.rglob("*") if p.is_file()} == before
