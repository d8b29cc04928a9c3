"""Verdicts and calibration on synthetic judges whose right answer is known."""

from __future__ import annotations

import json

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
