"""Verdicts and calibration on synthetic judges whose right answer is known."""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

import rubrics
from reports import ReportConfig, build_report

# pandas' deprecations (Pandas4Warning: errors in pandas 4) and FutureWarnings fail these tests
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning", "error::FutureWarning")


def synthetic(rng: np.random.Generator, n: int = 150) -> pd.DataFrame:
    rows = []
    for lang in ("humanlike", "constant", "compressed", "disagree"):
        truth = rng.choice(3, n, p=[0.3, 0.3, 0.4])
        for i, t in enumerate(truth):
            item = f"{lang}-{i}"
            for r in range(3):
                noisy = rng.integers(0, 3) if (lang == "disagree" or rng.random() < 0.1) else t
                rows.append((item, f"h{r}", "human", float(noisy), None, lang))
            if lang == "humanlike":
                rows.append((item, "j", "judge", float(t if rng.random() > 0.1 else rng.integers(0, 3)), None, lang))
            elif lang == "constant":
                rows.append((item, "j", "judge", 2.0, None, lang))
            else:  # probabilities squeezed towards 'good': raw answer useless, expected score monotone in truth
                p2 = 0.55 + 0.15 * t + rng.normal(0, 0.01)
                probs = {"0": 0.0, "1": 1 - p2, "2": p2}
                rows.append((item, "j", "judge", 2.0, json.dumps(probs), lang))
    df = pd.DataFrame(rows, columns=["item_id", "rater", "rater_kind", "score", "probs", "language"])
    return df.assign(metric="task_quality", task="qa", length_bin=1, raw_score=df["score"])


def test_verdict_per_language(tmp_path):
    ratings = synthetic(np.random.default_rng(7))
    paths = build_report(ratings, rubrics.load_rubric_set("pariksha"), tmp_path, config=ReportConfig(n_boot=200))
    doc = json.loads(paths["json"].read_text())
    verdict = {v["language"]: v["verdict"] for v in doc["verdicts"]}
    assert verdict["humanlike"] == "usable as is"
    assert verdict["constant"] == "humans needed"
    assert verdict["compressed"] == "usable after calibration"
    assert verdict["disagree"] == "humans disagree"
    cal = {c["language"]: c for c in doc["calibration"]}
    assert cal["compressed"]["note"] == "fitted on this language"
    html = paths["html"].read_text()
    assert "usable after calibration" in html and "Rule." in html


def test_humans_only_and_judge_only_reports_build(tmp_path):
    ratings = synthetic(np.random.default_rng(1), n=40)
    rs = rubrics.load_rubric_set("pariksha")
    for name, part in (("humans", ratings[ratings["rater_kind"] == "human"]), ("judge", ratings[ratings["rater_kind"] == "judge"])):
        paths = build_report(part, rs, tmp_path / name, config=ReportConfig(n_boot=20))
        doc = json.loads(paths["json"].read_text())
        values = [c for c in doc["cells"] if c["value"] is None]
        assert all(c["note"].startswith("not computable") for c in values)
        assert doc["meta"]["n_charts"] >= 1
    assert json.loads((tmp_path / "humans" / "report.json").read_text())["verdicts"] == []


def verdict_of(paths, language: str = "all languages") -> dict:
    return next(v for v in json.loads(paths["json"].read_text())["verdicts"] if v["language"] == language)


def cell(paths, stat: str, facet: str = "overall", level: str = "all", judge: str = "j") -> dict:
    return next(c for c in json.loads(paths["json"].read_text())["cells"]
                if (c["statistic"], c["facet"], c["level"], c["judge"]) == (stat, facet, level, judge))


def test_human_alpha_of_a_verdict_is_on_the_judged_items(tmp_path):
    """Humans agree on the items the judge scored and not on the others: the verdict's human alpha
    is the one on the judged items (as the rule says), not the one on every item."""
    import krippendorff

    rng = np.random.default_rng(5)
    rows = []
    for i in range(240):
        truth = rng.integers(0, 3)
        for r in range(3):
            rows.append((f"i{i}", f"h{r}", "human", float(truth if i < 120 and rng.random() > 0.1 else rng.integers(0, 3))))
        if i < 120:
            rows.append((f"i{i}", "j", "judge", float(truth)))
    df = pd.DataFrame(rows, columns=["item_id", "rater", "rater_kind", "score"]).assign(metric="task_quality", language="bn", task="qa")
    paths = build_report(df, rubrics.load_rubric_set("pariksha"), tmp_path, config=ReportConfig(n_boot=20))
    humans = df[(df["rater_kind"] == "human") & (df["item_id"].str[1:].astype(int) < 120)]
    reliability = humans.pivot(index="rater", columns="item_id", values="score").to_numpy()
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="ordinal")
    v = verdict_of(paths)
    assert v["n_items"] == 120
    assert v["human_alpha"] == pytest.approx(expected, abs=1e-9)
    assert v["human_alpha"] - cell(paths, "hh_alpha")["value"] > 0.2  # the all-items alpha would mislead


def test_pooled_verdict_is_never_more_favourable_than_its_languages(tmp_path):
    """Within each language humans (and the judge) rate at random; the languages differ in level, so
    pooled agreement looks good. The pooled verdict must not pass where every language fails."""
    rng = np.random.default_rng(11)
    rows = []
    for lang, levels in (("low", [0, 1]), ("high", [1, 2])):
        for i in range(150):
            for r in ("h0", "h1", "h2", "j"):
                rows.append((f"{lang}{i}", r, "judge" if r == "j" else "human", float(rng.choice(levels)), lang))
    df = pd.DataFrame(rows, columns=["item_id", "rater", "rater_kind", "score", "language"]).assign(metric="task_quality", task="qa")
    paths = build_report(df, rubrics.load_rubric_set("pariksha"), tmp_path, config=ReportConfig(n_boot=100))
    languages = {verdict_of(paths, lang)["verdict"] for lang in ("low", "high")}
    assert languages == {"humans disagree"}
    pooled = verdict_of(paths)
    assert "would be 'usable" in pooled["note"]  # the pooled figures alone would pass the judge
    assert pooled["verdict"] == "humans disagree" and "capped" in pooled["basis"]


def test_prevalence_paradox_gets_its_own_verdict(tmp_path):
    """Three raters give the top score to 99.3% of 2,000 items, flaws at random: they agree on 98.5%
    of pairs, yet alpha is about 0. That is not 'humans disagree'."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(2000):
        for r in ("h0", "h1", "h2", "j"):
            score = 2.0 if rng.random() < 0.993 else float(rng.integers(0, 2))
            rows.append((f"i{i}", r, "judge" if r == "j" else "human", score))
    df = pd.DataFrame(rows, columns=["item_id", "rater", "rater_kind", "score"]).assign(metric="task_quality", language="or", task="qa")
    paths = build_report(df, rubrics.load_rubric_set("pariksha"), tmp_path, config=ReportConfig(n_boot=20))
    v = verdict_of(paths)
    assert v["human_alpha"] < 0.2 and v["human_ac"] > 0.95
    assert v["verdict"] == "compare on prevalence"
    assert "Gwet's AC" in v["basis"] and "not on which items are flawed" in v["basis"]
    humans = df[df["rater_kind"] == "human"]
    assert v["prevalence"]["humans"][2] == pytest.approx((humans["score"] == 2).mean())
    assert "compare on prevalence" in paths["html"].read_text()


def test_consensus_from_one_human_is_counted_and_can_be_required(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for i in range(100):
        truth = float(rng.integers(0, 3))
        for r in range(1 if i < 60 else 2):
            rows.append((f"i{i}", f"h{r}", "human", truth))
        rows.append((f"i{i}", "j", "judge", truth))
    df = pd.DataFrame(rows, columns=["item_id", "rater", "rater_kind", "score"]).assign(metric="task_quality", language="ta", task="qa")
    rs = rubrics.load_rubric_set("pariksha")
    paths = build_report(df, rs, tmp_path / "a", config=ReportConfig(n_boot=0))
    assert "Task quality n=100 (60 with a single human's rating as the consensus)" in unescape(paths["html"].read_text())
    default = cell(paths, "hj_exact")
    assert default["n_items"] == 100 and "40 of 100 items have a consensus of >= 2 humans; on 60 it is one human's rating" in default["note"]
    strict = cell(build_report(df, rs, tmp_path / "b", config=ReportConfig(n_boot=0, consensus_min_humans=2)), "hj_exact")
    assert strict["n_items"] == 40 and "one human" not in (strict["note"] or "")


def test_rule_text_names_every_verdict_and_threshold(tmp_path):
    from reports.analysis import VERDICT_RANK, verdict_rule

    cfg = ReportConfig(n_boot=20, verdict_min_human_ac=0.77, verdict_min_human_alpha=0.33, verdict_min_items=31)
    rule = verdict_rule(cfg)
    assert all(f"<b>{v}</b>" in rule.lower() for v in VERDICT_RANK)
    assert "0.77" in rule and "0.33" in rule and "31" in rule
    paths = build_report(synthetic(np.random.default_rng(1), n=40), rubrics.load_rubric_set("pariksha"), tmp_path, config=cfg)
    assert rule in paths["html"].read_text()


def glossary(paths) -> str:
    html = paths["html"].read_text()
    return html[html.index("id='glossary'"):]


def test_glossary_follows_the_report_scales_and_settings(tmp_path):
    rs = rubrics.load_rubric_set("pariksha")
    binary = synthetic(np.random.default_rng(3), n=40).assign(metric="hallucination")
    binary["score"] = (binary["score"] > 0).astype(float)
    text = glossary(build_report(binary, rs, tmp_path / "binary", config=ReportConfig(n_boot=20, calibration_folds=3)))
    assert not re.search(r"\d-vs-\d", text)  # a 0/1 scale has no near misses to explain
    assert "20 times" in text and "1,000" not in text
    five = json.loads(rs.model_dump_json())
    five["families"][0]["metrics"][1]["human"]["levels"] = [{"value": v, "label": f"l{v}", "anchor": "a"} for v in range(1, 6)]
    del five["families"][0]["metrics"][1]["judge"]
    rs5 = rubrics.RubricSet.model_validate(five)
    ratings = synthetic(np.random.default_rng(3), n=40)
    ratings["score"] += 1
    paths = build_report(ratings, rs5, tmp_path / "five", config=ReportConfig(n_boot=20, calibration_folds=3))
    assert "count a 1-vs-5 disagreement as worse than 1-vs-2" in glossary(paths)
    assert "3-fold" in paths["html"].read_text() and "5-fold" not in paths["html"].read_text()
