"""`kasauti report` end to end, and the HTML report in a real headless browser with no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import reports
import rubrics

# pandas' deprecations (Pandas4Warning: errors in pandas 4) and FutureWarnings fail these tests
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning", "error::FutureWarning")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "kasauti" / "demo_data" / "pariksha"
BROWSER_DIR = ROOT / "tests" / "browser"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kasauti", "report", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_cli_pariksha(tmp_path):
    res = run_cli("--pariksha", str(DEMO), "--out", str(tmp_path / "rep"), "--n-boot", "50")
    assert res.returncode == 0, res.stderr
    assert "items without human ratings: 205" in res.stdout
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert {v["language"] for v in doc["verdicts"]} == {"all languages", "bn", "or", "ta"}
    assert {v["verdict"] for v in doc["verdicts"]} <= {"usable as is", "usable after calibration", "humans needed", "humans disagree", "not enough data"}
    csv = pd.read_csv(tmp_path / "rep" / "report.csv")
    assert {"metric", "judge", "facet", "level", "statistic", "value", "ci_low", "ci_high", "n_items", "note"} <= set(csv.columns)
    # every NaN value in the CSV carries its reason
    assert csv.loc[csv["value"].isna(), "note"].str.startswith("not computable").all()


def test_cli_study(tmp_path):
    rng = np.random.default_rng(0)
    study = tmp_path / "s.study"
    study.mkdir()
    (study / "kasauti.yaml").write_text("name: t\ndata: {path: data.jsonl}\nreport: {n_boot: 40}\n")
    n = 120
    ids = [f"i{k}" for k in range(n)]
    pd.DataFrame({"item_id": ids, "language": rng.choice(["hi", "bn"], n), "task": "qa", "length_bin": rng.integers(1, 6, n)}).to_parquet(study / "sample.parquet")
    truth = rng.integers(0, 3, n)
    humans = [(i, "task_quality", r, "human", float(np.clip(t + rng.integers(-1, 2), 0, 2)), "submitted")
              for i, t in zip(ids, truth) for r in ("ann1", "ann2")]
    pd.DataFrame(humans, columns=["item_id", "metric", "rater", "rater_kind", "score", "status"]).to_parquet(study / "ratings.parquet")
    pd.DataFrame({"judge": "j", "model": "m", "prompt_hash": "h", "item_id": ids, "metric": "task_quality",
                  "score": truth, "human_score": truth, "probs": None, "status": "ok"}).to_parquet(study / "judgments.parquet")
    res = run_cli(str(study))
    assert res.returncode == 0, res.stderr
    doc = json.loads((study / "report" / "report.json").read_text())
    assert doc["meta"]["config"]["n_boot"] == 40
    assert {v["metric"] for v in doc["verdicts"]} == {"task_quality"}
    assert any(i["kind"].startswith("metrics of rubric set") for i in doc["import"]["issues"])


def test_cli_needs_exactly_one_source(tmp_path):
    res = run_cli()
    assert res.returncode == 2 and "exactly one of" in res.stderr
    res = run_cli("--pariksha", str(DEMO))
    assert res.returncode == 2 and "--out" in res.stderr


def _browser_ready() -> str | None:
    if not shutil.which("node"):
        return "node not installed"
    if not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists():
        return "Debian chromium not installed (apt-get install chromium)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        return "playwright-core not installed (cd tests/browser && npm install)"
    return None


def open_in_chromium(page: Path, shot: Path) -> dict:
    """What tests/browser/report_screenshot.js saw opening ``page`` (skipped without the browser, failed then
    under KASAUTI_REQUIRE_BROWSER)."""
    missing = _browser_ready()
    if missing:
        if os.environ.get("KASAUTI_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    res = subprocess.run(["node", str(BROWSER_DIR / "report_screenshot.js"), str(page), str(shot)],
                         capture_output=True, text=True, timeout=300, cwd=BROWSER_DIR)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_report_renders_offline_in_headless_chromium(tmp_path):
    paths, _ = reports.report_pariksha(DEMO, tmp_path, rubrics.load_rubric_set("pariksha"), reports.ReportConfig(n_boot=100))
    expected = json.loads(paths["json"].read_text())["meta"]["n_charts"]
    html = paths["html"].read_text()
    assert "<script src" not in html and "<link" not in html  # nothing external is loaded
    assert html.count("window.PlotlyConfig") == 1  # plotly.js embedded once, not per chart
    shot = tmp_path / "report.png"
    result = open_in_chromium(paths["html"], shot)
    assert result["consoleErrors"] == [] and result["pageErrors"] == []
    assert result["blocked"] == [], "the report tried to reach the network"
    assert all(u.startswith("file://") for u in result["requested"])
    assert result["plotlyLoaded"]
    assert expected >= 7 and result["charts"] == expected and result["rendered"] == expected
    assert shot.stat().st_size > 100_000


def test_cli_long_format_file(tmp_path):
    ratings, items, _ = reports.from_pariksha(DEMO)
    long = ratings.merge(items, on="item_id")
    long.to_parquet(tmp_path / "long.parquet")
    res = run_cli("--ratings", str(tmp_path / "long.parquet"), "--out", str(tmp_path / "rep"), "--n-boot", "30")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["import"]["counts"]["ratings used"] == len(long)
    assert {c["level"] for c in doc["cells"] if c["facet"] == "language"} == {"bn", "or", "ta"}


def assert_clean_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2 with a message naming what is wrong, and no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)


def small_long_csv(path: Path) -> Path:
    pd.DataFrame({"item_id": ["1", "1"], "metric": "task_quality", "rater": ["a", "b"], "rater_kind": "human",
                  "score": [1, 2], "language": "bn", "task": "qa", "length_bin": 1}).to_csv(path, index=False)
    return path


def test_cli_without_bootstrap_gives_verdicts_on_point_estimates(tmp_path):
    res = run_cli("--pariksha", str(DEMO), "--out", str(tmp_path / "rep"), "--n-boot", "0")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    decided = [v for v in doc["verdicts"] if v["verdict"] != "not enough data"]
    assert decided and all(v["delta_alpha_ci"] == [None, None] for v in decided)
    assert all("no bootstrap" in v["note"] for v in decided)


def test_cli_negative_bootstrap_is_refused(tmp_path):
    res = run_cli("--ratings", str(small_long_csv(tmp_path / "r.csv")), "--out", str(tmp_path / "rep"), "--n-boot", "-5")
    assert_clean_error(res, "--n-boot")
    assert not (tmp_path / "rep").exists()


def test_cli_out_is_a_file(tmp_path):
    (tmp_path / "rep").write_text("keep me")
    res = run_cli("--ratings", str(small_long_csv(tmp_path / "r.csv")), "--out", str(tmp_path / "rep"))
    assert_clean_error(res, str(tmp_path / "rep"), "not a directory")
    assert (tmp_path / "rep").read_text() == "keep me"


def test_cli_ratings_is_a_directory(tmp_path):
    (tmp_path / "r.csv").mkdir()
    res = run_cli("--ratings", str(tmp_path / "r.csv"), "--out", str(tmp_path / "rep"))
    assert_clean_error(res, str(tmp_path / "r.csv"), "is a directory")


def test_cli_ratings_not_utf8_names_file_and_row(tmp_path):
    path = small_long_csv(tmp_path / "r.csv")
    pd.read_csv(path).assign(task=["qa", "café"]).to_csv(path, index=False, encoding="latin-1")
    res = run_cli("--ratings", str(path), "--out", str(tmp_path / "rep"))
    assert_clean_error(res, str(path), "row 2", "UTF-8")


def test_cli_large_excluded_share_is_loud(tmp_path):
    """Ratings on a 1-3 scale against the 0-2 rubric: a third is off the scale. The report is written
    with the warning at the top, and the command exits 2 unless the user accepts it explicitly."""
    rng = np.random.default_rng(3)
    n = 90
    rows = [(f"i{i}", "task_quality", r, "human" if r != "j" else "judge", int(rng.integers(1, 4)), "bn", "qa", 1)
            for i in range(n) for r in ("a", "b", "j")]
    path = tmp_path / "r.csv"
    df = pd.DataFrame(rows, columns=["item_id", "metric", "rater", "rater_kind", "score", "language", "task", "length_bin"])
    df.to_csv(path, index=False)
    off = int((df["score"] == 3).sum())
    share = f"{off / len(df):.0%}"
    res = run_cli("--ratings", str(path), "--out", str(tmp_path / "rep"), "--n-boot", "20")
    assert_clean_error(res, f"{off} of {len(df)} ratings ({share})", "--allow-excluded", "scores outside the metric's human scale")
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["import"]["invalid_share"] == pytest.approx(off / len(df))
    assert f"{off} of {len(df)} ratings" in doc["import"]["warning"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.index("class='warning'") < html.index("<h2>Verdicts")
    res = run_cli("--ratings", str(path), "--out", str(tmp_path / "rep2"), "--n-boot", "20", "--allow-excluded")
    assert res.returncode == 0, res.stderr
    assert f"{off} of {len(df)} ratings ({share})" in res.stderr


def test_cli_small_excluded_share_passes(tmp_path):
    path = small_long_csv(tmp_path / "r.csv")
    pd.concat([pd.read_csv(path)] * 10).assign(item_id=[str(i // 2) for i in range(20)]).to_csv(path, index=False)
    res = run_cli("--ratings", str(path), "--out", str(tmp_path / "rep"), "--n-boot", "0")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["import"]["warning"] is None


def test_cli_nothing_usable_is_one_clear_line(tmp_path):
    path = small_long_csv(tmp_path / "r.csv")
    pd.read_csv(path).assign(score=[5, 7]).to_csv(path, index=False)
    res = run_cli("--ratings", str(path), "--out", str(tmp_path / "rep"))
    assert_clean_error(res, "no usable ratings", "2 of 2", f"{path}: row 1, column 'score': '5'")
    assert len(res.stderr.strip().splitlines()) == 1


def test_cli_can_require_a_consensus_of_two_humans(tmp_path):
    rows = [(f"i{i}", "task_quality", r, kind, i % 3, "bn", "qa", 1) for i in range(40)
            for r, kind in (("a", "human"), ("b", "human"), ("j", "judge")) if not (r == "b" and i < 25)]
    path = tmp_path / "r.csv"
    pd.DataFrame(rows, columns=["item_id", "metric", "rater", "rater_kind", "score", "language", "task", "length_bin"]).to_csv(path, index=False)
    res = run_cli("--ratings", str(path), "--out", str(tmp_path / "rep"), "--n-boot", "0", "--consensus-min-humans", "2")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["meta"]["config"]["consensus_min_humans"] == 2
    exact = next(c for c in doc["cells"] if (c["statistic"], c["facet"], c["judge"]) == ("hj_exact", "overall", "j"))
    assert exact["n_items"] == 15


def test_cli_empty_ratings_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("")
    assert_clean_error(run_cli("--ratings", str(path), "--out", str(tmp_path / "rep")), str(path), "empty")
    path.write_text("item_id,metric,rater,rater_kind,score\n")
    assert_clean_error(run_cli("--ratings", str(path), "--out", str(tmp_path / "rep")), str(path), "no ratings")
