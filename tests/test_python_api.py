"""Each stage's operation called from Python writes its documented outputs (what the CLI commands call),
and the CLI module itself stays light: `kasauti --help` imports no stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

import judge
import reports
import rubrics
import sampling
import studytables
from judge.testing import FakeJudgeServer
from tests.judge_support import ROOT, demo_sample, modules_loaded
from tests.test_sampling import synthetic


def test_sample_study_writes_sample_strata_and_intake(tmp_path):
    data = synthetic(tmp_path, n=400)
    root = tmp_path / "study"
    root.mkdir()
    result = sampling.sample_study(root, sampling.DataSource(path=str(data)), data, sampling.SamplingConfig(per_stratum=20))
    sample = studytables.read(studytables.SAMPLE, root / studytables.SAMPLE.file)
    strata = studytables.read(studytables.STRATA, root / studytables.STRATA.file)
    intake = json.loads((root / sampling.INTAKE_FILE).read_text(encoding="utf-8"))
    assert len(sample) == len(result.sample) == strata["sampled"].sum() > 0
    assert intake["rows_read"] == 400 == intake["rows_kept"] + sum(v["count"] for v in intake["excluded"].values())


def test_judge_study_writes_the_ledger_and_judgments(tmp_path):
    studytables.write(studytables.SAMPLE, demo_sample(2), tmp_path / studytables.SAMPLE.file)
    rs = rubrics.load_rubric_set("pariksha")
    with FakeJudgeServer() as srv:
        cfg = judge.JudgeConfig(name="fake", model="fake-judge", base_url=srv.url, concurrency=2)
        summaries = judge.judge_study(tmp_path, rs, [cfg])
        again = judge.judge_study(tmp_path, rs, [cfg])
    assert [s.ok for s in summaries] == [6] and [s.cached for s in again] == [6]
    assert (tmp_path / judge.LEDGER_FILE).is_file()
    judgments = studytables.read(studytables.JUDGMENTS, tmp_path / studytables.JUDGMENTS.file)
    assert len(judgments) == 6 * 3 and (judgments["status"] == "ok").all()


def test_report_study_writes_the_report(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(60)]
    pd.DataFrame({"item_id": ids, "language": "hi", "task": "qa", "length_bin": rng.integers(1, 6, 60)}).to_parquet(
        tmp_path / "sample.parquet")
    truth = rng.integers(0, 3, 60)
    pd.DataFrame([(i, "task_quality", r, "human", float(t), "submitted") for i, t in zip(ids, truth) for r in ("a", "b")],
                 columns=["item_id", "metric", "rater", "rater_kind", "score", "status"]).to_parquet(tmp_path / "ratings.parquet")
    paths, imp = reports.report_study(tmp_path, rubrics.load_rubric_set("pariksha"), reports.ReportConfig(n_boot=0))
    assert paths["html"] == tmp_path / "report" / "report.html" and paths["html"].is_file()
    cells = studytables.read(studytables.REPORT_CELLS, tmp_path / studytables.REPORT_CELLS.file)
    assert set(cells["metric"]) == {"task_quality"} and imp.counts["ratings read"] == 120


def test_report_study_without_a_sample_names_it(tmp_path):
    try:
        reports.report_study(tmp_path, rubrics.load_rubric_set("pariksha"))
    except FileNotFoundError as exc:
        assert str(tmp_path / "sample.parquet") in str(exc) and "kasauti sample" in str(exc)
    else:
        raise AssertionError("no error without a sample")


def test_cli_module_imports_no_stage():
    """`kasauti --help` loads typer and rich only; the stages (pandas, scipy, openai, argilla) load in the commands,
    and the study config (`kasauti.study`) loads the stages' config modules only."""
    heavy = ["pandas", "pyarrow", "sampling", "judge", "annotator", "reports", "training", "kasauti.study"]
    assert modules_loaded("import kasauti.cli", heavy) == []
    # the study config imports no stage's engine
    assert modules_loaded("import kasauti.study", ("pandas", "scipy", "sklearn", "openai", "argilla")) == []
    help_ = subprocess.run([sys.executable, "-m", "kasauti", "--help"], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}, timeout=120)
    assert help_.returncode == 0 and all(c in help_.stdout for c in ("sample", "judge", "push", "pull", "report", "demo"))
