"""`kasauti demo` end to end, as the README runs it (on the shipped data, no keys, no network)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run_demo(directory: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "kasauti", "demo", "--dir", str(directory), "--no-wait", "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=900)


def test_demo_runs_every_stage_and_resumes(tmp_path):
    study = tmp_path / "demo"
    out = run_demo(study)
    assert out.returncode == 0, out.stderr[-3000:]
    sample = pd.read_parquet(study / "sample.parquet")
    assert len(sample) == 220 and set(sample["language"]) == {"bn", "or", "ta"}
    judgments = pd.read_parquet(study / "judgments.parquet")
    assert len(judgments) == 3 * len(sample) and (judgments["status"] == "ok").all()
    report = json.loads((study / "report" / "report.json").read_text())
    # the two judges scored the same items: their panel is evaluated like a third judge
    assert {v["judge"] for v in report["verdicts"]} == {"gpt-4 (PARIKSHA)", "loopback", "panel (mean: gpt-4 (PARIKSHA) + loopback)"}
    assert "report:" in out.stdout and (study / "report" / "report.html").exists()
    assert "demo login: demo / " in out.stdout and (study / "argilla" / "annotators.csv").stat().st_mode & 0o077 == 0
    again = run_demo(study)  # the judge's ledger makes the second run call nothing
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 requests" in again.stdout and "220 cached" in again.stdout
    assert "0 added, 0 updated" in again.stdout  # re-push changes nothing
