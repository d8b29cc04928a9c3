"""The report's Pairwise and Decisions sections (issues 9 and 10): HTML, report.json and CSV carry
the numbers the library functions give on the same data; the report builds without them."""

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
from reports.bias import self_preference
from reports.decisions import decision_grid
from reports.escalate import confidence, human_consensus, thresholds
from reports.pairwise.pariksha import from_pariksha_pairwise
from reports.pairwise.report import pairwise_report
from reports.ppi import ppi_means
from tests.test_pariksha_pairwise import release
from tests.test_report_cli import open_in_chromium

# pandas' deprecations (Pandas4Warning: errors in pandas 4) and FutureWarnings fail these tests
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning", "error::FutureWarning")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "kasauti" / "demo_data" / "pariksha"
RUBRIC = rubrics.load_rubric_set("pariksha")
N_BOOT = 20


@pytest.fixture(scope="module")
def with_pairwise(tmp_path_factory) -> Path:
    """The demo subset plus a crafted pairwise release in its ``pairwise/`` folder (the demo has none)."""
    base = tmp_path_factory.mktemp("pw")
    release(base / "src")
    shutil.copytree(DEMO, base / "pariksha")
    shutil.copytree(base / "src" / "pairwise", base / "pariksha" / "pairwise")
    return base / "pariksha"


@pytest.fixture(scope="module")
def cli_report(with_pairwise, tmp_path_factory) -> Path:
    """`kasauti report --pariksha DIR` on it, a real CLI run."""
    out = tmp_path_factory.mktemp("rep") / "rep"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "kasauti", "report", "--pariksha", str(with_pairwise), "--out", str(out),
                          "--n-boot", str(N_BOOT)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


def _no_nan(x):
    """JSON's view of a value: NaN -> None (as report.json writes it)."""
    return json.loads(json.dumps(x).replace("NaN", "null"))


def test_pairwise_section_equals_pairwise_report(with_pairwise, cli_report):
    doc = json.loads((cli_report / "report.json").read_text())
    comparisons = from_pariksha_pairwise(with_pairwise)[0]
    frames, summary = pairwise_report(comparisons, n_boot=N_BOOT, seed=0, min_items=10)
    assert doc["pairwise"] == _no_nan(summary)
    assert doc["pairwise"]["n_boot"] == N_BOOT and summary["leaderboards"] and summary["leaderboard_agreement"]
    for name in ("leaderboards", "leaderboard_agreement", "pair_agreement", "consistency", "first_position"):
        csv = pd.read_csv(cli_report / f"pairwise_{name}.csv")
        assert len(csv) == len(frames[name]) > 0
        num = frames[name].select_dtypes("number").columns
        np.testing.assert_allclose(csv[num].to_numpy(float), frames[name][num].to_numpy(float), rtol=1e-9, equal_nan=True)
    html = (cli_report / "report.html").read_text()
    assert "id='pairwise'" in html and "human rank" in html  # the rank chart
    tau = next(r for r in summary["leaderboard_agreement"] if r["statistic"] == "kendall_tau_b" and r["language"] == "all")
    assert f"{tau['value']:.3f}" in html


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The demo report (no pairwise data, no judge probabilities), GPT models mapped to GPT-4's family."""
    out = tmp_path_factory.mktemp("demo")
    cfg = reports.ReportConfig(n_boot=N_BOOT, model_families=reports.PARIKSHA_FAMILIES)
    paths, _ = reports.report_pariksha(DEMO, out, RUBRIC, cfg)
    return paths, cfg


def _clean():
    ratings, items, imp = reports.from_pariksha(DEMO)
    return reports.prepare(ratings, RUBRIC, items, imp)[0]


def test_decisions_ppi_equals_ppi_means(demo_report):
    paths, cfg = demo_report
    doc = json.loads(paths["json"].read_text())
    clean = _clean()
    y = clean[clean["rater_kind"] == "human"].groupby(["metric", "item_id"])["score"].mean().rename("y")
    j = clean[clean["rater_kind"] == "judge"].rename(columns={"rater": "judge", "score": "f"}).join(y, on=["metric", "item_id"])
    j = j[["judge", "item_id", "metric", "language", "f", "y"]]
    expect = ppi_means(j[j["y"].notna()], j[j["y"].isna()], by=["judge", "metric", "language"]).cells
    got = pd.DataFrame([r for r in doc["decisions"]["ppi"] if r["target"] == "mean score"])
    assert len(got) == len(expect) == 9  # 3 metrics x 3 languages, one judge
    for col in ("estimate", "ci_low", "ci_high", "classical", "judge_only", "n_effective", "n_labelled", "n_unlabelled"):
        np.testing.assert_allclose(got[col].to_numpy(float), expect[col].to_numpy(float), rtol=1e-9, equal_nan=True)
    # share acceptable: at the top level of each scale by default
    top = j["metric"].map(lambda m: RUBRIC.metrics[m].human.values[-1])
    share = j.assign(y=(j["y"] >= top).where(j["y"].notna()).astype(float), f=(j["f"] >= top).astype(float))
    expect_share = ppi_means(share[share["y"].notna()], share[share["y"].isna()], by=["judge", "metric", "language"]).cells
    got_share = pd.DataFrame([r for r in doc["decisions"]["ppi"] if r["target"] == "share acceptable"])
    np.testing.assert_allclose(got_share["estimate"].to_numpy(float), expect_share["estimate"].to_numpy(float), rtol=1e-9)
    csv = pd.read_csv(paths["decisions_ppi"])
    np.testing.assert_allclose(csv["estimate"].to_numpy(float), pd.DataFrame(doc["decisions"]["ppi"])["estimate"].to_numpy(float))
    html = paths["html"].read_text()
    assert "id='decisions'" in html and f"{got['estimate'].iloc[0]:.3f}" in html


def test_self_preference_and_length_bias_reach_the_verdict_notes(demo_report):
    paths, cfg = demo_report
    doc = json.loads(paths["json"].read_text())
    clean = _clean()
    humans = clean[clean["rater_kind"] == "human"][["item_id", "metric", "score"]].rename(columns={"score": "human"})
    judged = clean[clean["rater_kind"] == "judge"].rename(columns={"score": "judge"})
    pairs = judged.merge(humans, on=["item_id", "metric"])
    sub = pairs[pairs["metric"] == "linguistic_acceptability"]
    expect = self_preference(sub.assign(own=sub["source_model"].isin(["GPT4o", "gpt-4", "gpt-35-turbo"])), "own",
                             n_boot=N_BOOT, seed=0)
    got = next(r for r in doc["decisions"]["self_preference"] if r["metric"] == "linguistic_acceptability")
    assert got["self_preference"] == pytest.approx(expect["self_preference"]) and got["family"] == "gpt"
    assert got["self_preference_ci"] == pytest.approx(expect["self_preference_ci"])
    assert pd.read_csv(paths["decisions_self_preference"])["self_preference"].notna().all()
    for trend in doc["decisions"]["length_trend"]:
        notes = [v["note"] for v in doc["verdicts"] if v["metric"] == trend["metric"]]
        assert all(("length bias" in n) == trend["significant"] for n in notes)
    if expect["significant"]:
        assert all("self-preference" in v["note"] for v in doc["verdicts"] if v["metric"] == "linguistic_acceptability")


def test_self_preference_needs_the_judges_family(tmp_path):
    paths, _ = reports.report_pariksha(DEMO, tmp_path, RUBRIC, reports.ReportConfig(n_boot=5))
    doc = json.loads(paths["json"].read_text())
    assert all(r["self_preference"] is None and "family is unknown" in r["note"] for r in doc["decisions"]["self_preference"])
    assert not any("self-preference" in v["note"] for v in doc["verdicts"])


def test_sections_say_why_they_are_absent(demo_report):
    paths, _ = demo_report
    doc = json.loads(paths["json"].read_text())
    assert "no pairwise comparisons" in doc["pairwise"]["note"]
    assert "no probabilities" in doc["decisions"]["escalation_note"] and doc["decisions"]["escalation"] == []
    assert "fewer than two judges" in doc["decisions"]["panel"]["note"]
    html = paths["html"].read_text()
    assert "no pairwise comparisons" in html and "no probabilities" in html
    assert not any(k.startswith("pairwise_") for k in paths)


def test_escalation_thresholds_and_a_panel_with_two_judges_with_probabilities(tmp_path):
    """Two judges with probabilities on the demo items: thresholds equal escalate.thresholds, and their panel is a judge."""
    ratings, items, imp = reports.from_pariksha(DEMO)
    rng = np.random.default_rng(1)
    gpt = ratings[ratings["rater_kind"] == "judge"]
    other = gpt.assign(rater="judge-b", score=np.where(rng.random(len(gpt)) < 0.2, 0, gpt["score"]))
    both = pd.concat([gpt, other], ignore_index=True)
    p = rng.uniform(0.4, 1.0, len(both))
    both["probs"] = [json.dumps({str(int(s)): q, "9": 1 - q}) for s, q in zip(both["score"], p)]
    table = pd.concat([ratings[ratings["rater_kind"] == "human"], both], ignore_index=True)
    cfg = reports.ReportConfig(n_boot=5, escalation_target=0.6)
    paths = reports.build_report(table, RUBRIC, tmp_path, items, imp, cfg)
    doc = json.loads(paths["json"].read_text())
    clean = reports.prepare(table, RUBRIC, items, reports.ImportReport(source="t"))[0]
    j = clean[(clean["rater_kind"] == "judge")].drop(columns="status").rename(columns={"rater": "judge"})
    conf = confidence(j.assign(human_score=j["score"], score=j["raw_score"]), "probs")
    cal = conf.merge(human_consensus(clean, RUBRIC.metrics), on=["metric", "item_id"]).dropna(subset=["consensus"])
    cal = cal.merge(items[["item_id", "language"]], on="item_id").assign(agree=lambda d: (d["decision"] == d["consensus"]).astype(int))
    cell = ["judge", "metric", "language"]
    all_conf = conf.merge(items[["item_id", "language"]], on="item_id").merge(
        human_consensus(clean, RUBRIC.metrics), on=["metric", "item_id"], how="left")
    todo = dict(tuple(all_conf[all_conf["consensus"].isna()].groupby(cell)))
    grids = {k: decision_grid(todo[k]["confidence"] if k in todo else [], len(c), 0.6, cfg.escalation_delta)[0]
             for k, c in cal.groupby(cell)}
    expect = thresholds(cal, cell, 0.6, cfg.escalation_delta, grids)
    got = pd.DataFrame(doc["decisions"]["escalation"])
    assert len(got) == len(expect) == 18 and got["threshold"].notna().any()
    np.testing.assert_allclose(got["coverage"].to_numpy(float), expect["coverage"].to_numpy(float))
    np.testing.assert_allclose(got["threshold"].to_numpy(float), expect["threshold"].to_numpy(float), equal_nan=True)
    assert pd.read_csv(paths["decisions_escalation"])["n_calibration"].tolist() == expect["n_calibration"].tolist()
    panel = doc["decisions"]["panel"]
    assert panel["items scored by every panel judge"] == gpt[["item_id", "metric"]].drop_duplicates().shape[0]
    panel_judge = "panel (mean: gpt-4 (PARIKSHA) + judge-b)"
    assert panel_judge in {c["judge"] for c in doc["cells"]} and panel_judge in {v["judge"] for v in doc["verdicts"]}
    assert f"Judge: {panel_judge}" in paths["html"].read_text()


def test_report_with_pairwise_renders_in_headless_chromium(cli_report):
    """Every chart, the rank chart included, renders offline (tests/browser, `npm ci` once)."""
    expected = json.loads((cli_report / "report.json").read_text())["meta"]["n_charts"]
    result = open_in_chromium(cli_report / "report.html", cli_report / "shot.png")
    assert result["consoleErrors"] == [] and result["pageErrors"] == [] and result["blocked"] == []
    assert result["charts"] == expected and result["rendered"] == expected


def _study(with_pairwise, tmp_path, bad_outcome: bool = False) -> tuple[Path, pd.DataFrame, subprocess.CompletedProcess]:
    """A study with the demo's human ratings, the crafted comparisons as comparisons.parquet (humans) and
    judge_comparisons.parquet (GPT-4, plus one failed call; ``bad_outcome``: a submitted row with an
    unknown outcome), and `kasauti report STUDY` run on it."""
    import studytables

    comp = from_pariksha_pairwise(with_pairwise)[0]
    study = tmp_path / "s.study"
    study.mkdir()
    (study / "kasauti.yaml").write_text(f"name: t\ndata: {{path: data.jsonl}}\nreport: {{n_boot: {N_BOOT}}}\n")
    ratings, items, _ = reports.from_pariksha(DEMO)
    items.to_parquet(study / "sample.parquet")
    ratings[ratings["rater_kind"] == "human"].drop(columns=["_file", "_row"]).to_parquet(study / "ratings.parquet")
    humans, judged = comp[comp["rater_kind"] == "human"], comp[comp["rater_kind"] == "judge"]
    studytables.write(studytables.COMPARISONS, humans, study / "comparisons.parquet")
    failed = judged.iloc[:1].assign(outcome=None, status="discarded", judge_status="error", error="timeout")
    if bad_outcome:
        judged = judged.assign(outcome=judged["outcome"].where(np.arange(len(judged)) != 4, "A"))
    jc = pd.concat([judged.assign(judge_status="ok"), failed], ignore_index=True).assign(
        repeat=0, task="t", model="gpt-4", prompt_hash="h", verdict=None, raw_answer=None, attempts=1)
    studytables.write(studytables.JUDGE_COMPARISONS, studytables.conform(studytables.JUDGE_COMPARISONS, jc),
                      study / "judge_comparisons.parquet")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "kasauti", "report", str(study)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    return study, comp, res


def test_study_report_reads_human_and_judge_comparisons(with_pairwise, tmp_path):
    """`kasauti report STUDY`: comparisons.parquet + judge_comparisons.parquet (a failed call included) -> the Pairwise section."""
    import studytables

    study, comp, res = _study(with_pairwise, tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads((study / "report" / "report.json").read_text())
    both = pd.concat([studytables.read(studytables.COMPARISONS, study / "comparisons.parquet"),
                      studytables.read(studytables.JUDGE_COMPARISONS, study / "judge_comparisons.parquet")], ignore_index=True)
    assert doc["pairwise"] == _no_nan(pairwise_report(both, n_boot=N_BOOT, seed=0, min_items=10)[1])
    assert doc["pairwise"]["counts"]["rows_not_submitted"] == 1 and doc["pairwise"]["counts"]["rows"] == len(comp) + 1
    assert "no judge ratings" in doc["decisions"]["note"] and "no judge ratings" in (study / "report" / "report.html").read_text()


def test_a_bad_judge_comparison_names_its_file_row_and_column(with_pairwise, tmp_path):
    study, _, res = _study(with_pairwise, tmp_path, bad_outcome=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{study / 'judge_comparisons.parquet'}: row 5, column 'outcome': expected one of" in " ".join(res.stderr.split())


def test_without_bootstrap_no_bias_is_called_significant(tmp_path):
    """n_boot = 0: no intervals, so no length-bias or self-preference note claims significance."""
    cfg = reports.ReportConfig(n_boot=0, model_families=reports.PARIKSHA_FAMILIES)
    paths, _ = reports.report_pariksha(DEMO, tmp_path, RUBRIC, cfg)
    doc = json.loads(paths["json"].read_text())
    assert not any("length bias" in v["note"] or "self-preference" in v["note"] for v in doc["verdicts"])
    assert all(t["significant"] is None for t in doc["decisions"]["length_trend"])
    assert all(s["significant"] is None for s in doc["decisions"]["self_preference"])


def test_system_agreement_section_equals_system_agreement(demo_report, tmp_path):
    """Issue 9: the System-level agreement table (JSON, CSV, HTML) carries system_agreement's numbers;
    without source models it is absent with a note."""
    from reports.pairwise.system import system_agreement

    paths, cfg = demo_report
    doc = json.loads(paths["json"].read_text())
    expect, systems, counts = system_agreement(_clean(), n_boot=cfg.n_boot, seed=cfg.seed)
    got = pd.DataFrame(doc["system"]["agreement"])
    assert len(got) == len(expect) > 0 and doc["system"]["counts"] == counts
    assert set(expect["statistic"]) == {"spearman", "kendall_tau_b", "pearson"} and "all" in set(got["language"])
    for col in ("value", "ci_low", "ci_high", "n_systems", "n_items"):
        np.testing.assert_allclose(got[col].to_numpy(float), expect[col].to_numpy(float), rtol=1e-9, equal_nan=True)
    csv = pd.read_csv(paths["system_agreement"])
    assert paths["system_agreement"].name == "system_agreement.csv"
    assert list(csv[["metric", "language", "judge", "statistic"]].astype(str).itertuples(index=False)) == \
        list(expect[["metric", "language", "judge", "statistic"]].astype(str).itertuples(index=False))
    np.testing.assert_allclose(csv["value"].to_numpy(float), expect["value"].to_numpy(float), rtol=1e-9, equal_nan=True)
    assert len(doc["system"]["systems"]) == len(systems)
    html = paths["html"].read_text()
    assert "id='system'" in html and f"{expect['value'].iloc[0]:.3f}" in html

    ratings, items, imp = reports.from_pariksha(DEMO)
    paths = reports.build_report(ratings, RUBRIC, tmp_path, items.assign(source_model=None), imp,
                                 reports.ReportConfig(n_boot=5))
    doc = json.loads(paths["json"].read_text())
    assert "source_model" in doc["system"]["note"] and "agreement" not in doc["system"]
    assert "system_agreement" not in paths and not (tmp_path / "system_agreement.csv").exists()
    assert doc["system"]["note"] in paths["html"].read_text()
    two = items.assign(source_model=np.where(np.arange(len(items)) % 2, "model-a", "model-b"))
    doc = json.loads(reports.build_report(ratings, RUBRIC, tmp_path / "two", two, imp,
                                          reports.ReportConfig(n_boot=5))["json"].read_text())
    assert "fewer than 3 source models" in doc["system"]["note"] and doc["system"]["counts"]["cells_with_too_few_systems"] > 0
    humans_only = reports.build_report(ratings[ratings["rater_kind"] == "human"], RUBRIC, tmp_path / "h", items, imp,
                                       reports.ReportConfig(n_boot=5))
    assert "no judge ratings" in json.loads(humans_only["json"].read_text())["system"]["note"]


def test_study_report_ppi_uses_the_random_slice_and_refuses_escalated_labels(tmp_path):
    """A study whose humans rated its random slice (`kasauti push --random`), the judge's 40 top-scored items
    (unknown provenance) and 10 escalated items: PPI uses only the slice's labels, the others count as
    judge-only items, and the cell's note says why; the escalation threshold calibrates on the slice alone."""
    import studytables
    from annotator.slices import draw_random

    rng = np.random.default_rng(21)
    n = 300
    sample = pd.DataFrame({"item_id": [f"i{k:03d}" for k in range(n)], "language": "bn", "task": "qa",
                           "length_bin": rng.integers(1, 6, n), "stratum": "bn/qa", "prompt": "p", "response": "r"})
    sample.to_parquet(tmp_path / "sample.parquet")
    y = rng.choice(3, n, p=[0.2, 0.3, 0.5])
    f = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    conf = rng.uniform(0.34, 1.0, n)
    probs = [json.dumps({str(v): c if v == s else (1 - c) / 2 for v in range(3)}) for s, c in zip(f, conf)]
    pd.DataFrame({"judge": "j1", "model": "m", "prompt_hash": "abc", "item_id": sample["item_id"], "metric": "task_quality",
                  "score": f, "human_score": f, "probs": probs, "status": "ok", "repeat": 0}).to_parquet(tmp_path / "judgments.parquet")
    drawn = draw_random(sample, 60, seed=4)
    studytables.write(studytables.SLICES, drawn, tmp_path / "slices.parquet")
    rest = sample.loc[~sample["item_id"].isin(drawn["item_id"]), "item_id"].to_numpy()
    top = rest[np.argsort(-f[~sample["item_id"].isin(drawn["item_id"]).to_numpy()], kind="stable")]
    chosen, escalated = top[:40], top[40:50]
    rated = np.concatenate([drawn["item_id"].to_numpy(), chosen, escalated])
    truth = dict(zip(sample["item_id"], y.astype(float)))
    ratings = pd.DataFrame({"item_id": rated, "metric": "task_quality", "rater": "h1", "rater_kind": "human",
                            "score": [truth[i] for i in rated], "status": "submitted"})
    ratings.to_parquet(tmp_path / "ratings.parquet")
    ratings[ratings["item_id"].isin(escalated)].to_parquet(tmp_path / "ratings_escalated.parquet")

    paths, _ = reports.report_study(tmp_path, RUBRIC, reports.ReportConfig(n_boot=N_BOOT))
    doc = json.loads(paths["json"].read_text())
    got = next(r for r in doc["decisions"]["ppi"] if r["target"] == "mean score" and r["metric"] == "task_quality")
    scores = sample.assign(judge="j1", metric="task_quality", f=f.astype(float),
                           y=[truth[i] if i in set(drawn["item_id"]) else np.nan for i in sample["item_id"]])
    expect = ppi_means(scores[scores["y"].notna()], scores[scores["y"].isna()], by=["judge", "metric", "language"]).cells.iloc[0]
    assert got["n_labelled"] == 60 and got["n_unlabelled"] == n - 60
    for col in ("estimate", "ci_low", "ci_high", "classical", "n_effective"):
        assert got[col] == pytest.approx(expect[col], rel=1e-9)
    assert "10 labels of escalated items not used: the human-labelled items were chosen by the judge" in got["note"]
    assert "40 labels outside the random slice not used" in got["note"]
    esc = doc["decisions"]["escalation"][0]  # the threshold calibrates on the slice's labels alone, too
    assert (esc["metric"], esc["n_calibration"], esc["n_left_out"]) == ("task_quality", 60, 50)
