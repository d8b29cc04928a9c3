"""reports.pairwise.pariksha: PARIKSHA's pairwise release -> the long pairwise format, and the report on it."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import studytables
from reports.pairwise.pariksha import JUDGE, establish_coding, from_pariksha_pairwise
from studytables import COMPARISONS

REAL = Path("/work/shared/data/pariksha-round1")
MODELS = ["m-alpha", "m-beta", "m-gamma", "m-delta"]  # strengths in this order, strongest first
STRENGTH = {m: s for m, s in zip(MODELS, [2.0, 1.0, 0.0, -1.0])}


def release(root: Path, coding: dict[str, str] = None, seed: int = 0, n_prompts: int = 8) -> dict:
    """A small copy of the release's shape (one language, Hindi) with raters that prefer stronger models.

    ``coding``: what each human code means (shown terms: A, B, tie). Returns the truth for the asserts.
    """
    coding = coding or {"A": "0", "B": "1", "tie": "2"}
    rng = np.random.default_rng(seed)
    pw = root / "pairwise"
    for d in ("human", "gpt4"):
        (pw / d).mkdir(parents=True)
    (root / "responses").mkdir()
    prompts = [f"prompt-{i}" for i in range(n_prompts)]
    out = [{"prompt_id": p, "prompt": f"question {p}", "prompt_type": "finance", "language": "hindi",
            **{m: {"response": "क" * (10 * (j + 1) + i), "timestamp": 0} for j, m in enumerate(MODELS)}}
           for i, p in enumerate(prompts)]
    (root / "responses" / "output_hindi.json").write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    pairings, k = [], 0
    for p in prompts:
        for m1, m2 in combinations(MODELS, 2):
            if rng.random() < 0.5:
                m1, m2 = m2, m1
            pairings.append({"pairing_id": f"pair-{k}", "prompt_id": p, "language": "hindi", "model1": m1, "model2": m2,
                             "is_duplicated": "False", "duplicate_id": "", "source_file": "hindi/hindi_pairings_1.json"})
            k += 1
    for orig in list(pairings[::3]):  # swapped repeats of a third of them; both members are marked
        orig["is_duplicated"] = "True"
        pairings.append({**orig, "pairing_id": f"pair-{k}", "model1": orig["model2"], "model2": orig["model1"],
                         "duplicate_id": orig["pairing_id"]})
        orig["duplicate_id"] = f"pair-{k}"
        k += 1
    with open(pw / "pairings.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(pairings[0]))
        w.writeheader()
        w.writerows(pairings)

    def verdict(m1, m2, noise):
        d = STRENGTH[m1] - STRENGTH[m2] + rng.normal(0, noise)
        return "tie" if abs(d) < 0.4 else ("A" if d > 0 else "B")

    listed = [(p["pairing_id"], p["model1"], p["model2"]) for p in pairings]
    unlisted = [(f"gone-{i}", *rng.choice(MODELS, 2, replace=False)) for i in range(10)]
    human = [(pid, a, verdict(m1, m2, 0.5)) for pid, m1, m2 in listed + unlisted for a in ("11", "12", "13")]
    with open(pw / "human" / "hindi_pairwise_ratings.tsv", "w") as f:
        f.write("pairing_id\tannotator_id\tbattle_outcome\tjustification_native\n")
        for pid, a, v in human:
            f.write(f"{pid}\t{a}\t{coding[v]}\t{'none' if pid != 'pair-0' else 'अच्छा'}\n")
    gpt = [{"pairing_id": pid, "battle_outcome": {"A": "A", "B": "B", "tie": "C"}[verdict(m1, m2, 0.3)],
            "justification": "Response A ..."} for pid, m1, m2 in listed + unlisted]
    (pw / "gpt4" / "battle_outcomes_hindi.json").write_text(json.dumps(gpt), encoding="utf-8")
    return {"pairings": pairings, "human": human, "gpt4": gpt, "n_unlisted": len(unlisted),
            "models": {pid: (m1, m2) for pid, m1, m2 in listed + unlisted}}


def test_crafted_release_imports_in_model_terms_with_every_row_counted(tmp_path):
    truth = release(tmp_path)
    comp, report, evidence = from_pariksha_pairwise(tmp_path)
    studytables.conform(COMPARISONS, comp)
    n_listed = len(truth["pairings"])
    c = report.counts
    assert c["human_rows_read"] == len(truth["human"]) and c["gpt4_rows_read"] == len(truth["gpt4"])
    assert c["human_rows_joined"] == 3 * n_listed and c["human_rows_not_joined"] == 3 * truth["n_unlisted"]
    assert c["gpt4_rows_joined"] == n_listed and c["gpt4_rows_not_joined"] == truth["n_unlisted"]
    kinds = {i.kind: i for i in report.issues}
    assert kinds["human rows whose pairing_id is in no pairing file"].count == 3 * truth["n_unlisted"]
    assert kinds["human rows whose pairing_id is in no pairing file"].examples[0] == \
        f"hindi_pairwise_ratings.tsv: row {3 * n_listed + 1}"
    # outcome in model terms: re-derive each human row's verdict from the file and the pairing
    pairing = {p["pairing_id"]: p for p in truth["pairings"]}
    for (pid, rater, shown), row in zip(truth["human"], comp[comp["rater_kind"] == "human"].itertuples()):
        assert (row.pair_id, row.rater) == (pid, rater)
        p = pairing[pid]
        better = {"A": p["model1"], "B": p["model2"], "tie": "tie"}[shown]
        assert {"a": row.model_a, "b": row.model_b, "tie": "tie"}[row.outcome] == better
        assert row.model_a < row.model_b and (row.shown_order == "ab") == (p["model1"] == row.model_a)
    assert set(comp["language"]) == {"hi"} and set(comp.loc[comp["rater_kind"] == "judge", "rater"]) == {JUDGE}
    assert comp["justification"].notna().sum() == 3 + n_listed  # 'none' is no justification
    lens = comp.apply(lambda r: (r.length_a, r.length_b), axis=1)
    assert all(a == 10 * (MODELS.index(r.model_a) + 1) + int(r.prompt_id.split("-")[1]) for (a, _), r in zip(lens, comp.itertuples()))
    ev = evidence.set_index("reading")
    assert ev.loc["0=A, 1=B, 2=tie", "self_consistency"] == ev["self_consistency"].max() > 2 * ev["self_consistency"].min()


def test_upstream_pairing_files_join_the_pairings_the_csv_does_not_list(tmp_path):
    truth = release(tmp_path)
    gone = [(pid, *models) for pid, models in truth["models"].items() if pid.startswith("gone-")]
    upstream = [{"pairing_id": pid, "prompt_id": "prompt-1", "language": "hindi", "prompt": "...", "is_duplicated": False,
                 "duplicate_id": None, "model1": m1, "response1": "...", "model2": m2, "response2": "..."} for pid, m1, m2 in gone]
    listed = truth["pairings"][0]
    upstream.append({**listed, "is_duplicated": listed["is_duplicated"] == "True"})  # also in pairings.csv: kept once
    upstream.append({**truth["pairings"][1], "model1": "m-other"})  # contradicts pairings.csv: excluded
    folder = tmp_path / "pairwise" / "pairings" / "llm_eval"
    folder.mkdir(parents=True)
    (folder / "hindi_pairings.json").write_text(json.dumps(upstream), encoding="utf-8")
    comp, report, _ = from_pariksha_pairwise(tmp_path)
    c, issues = report.counts, {i.kind: i for i in report.issues}
    assert c["pairings_read"] == len(truth["pairings"]) + len(gone) + 2
    assert c["human_rows_not_joined"] == 3  # only the contradicted pairing's three ratings
    assert issues["pairings listed more than once with the same prompt and models"].count == 1
    assert issues["pairings listed with different prompts or models in different rows"].examples == \
        ["pairings.csv: row 2", f"hindi_pairings.json: row {len(gone) + 2}"]
    joined = comp[comp["pair_id"].str.startswith("gone-")]
    assert len(joined) == 4 * len(gone) and set(joined["prompt_id"]) == {"prompt-1"}
    for row in joined.itertuples():
        assert {row.model_a, row.model_b} == set(truth["models"][row.pair_id])


def test_the_human_coding_is_read_from_the_data_not_assumed(tmp_path):
    release(tmp_path / "usual")
    release(tmp_path / "other", coding={"B": "0", "tie": "1", "A": "2"})
    usual, _, _ = from_pariksha_pairwise(tmp_path / "usual")
    other, _, ev = from_pariksha_pairwise(tmp_path / "other")
    pd.testing.assert_frame_equal(usual, other)
    best = ev.sort_values(["self_consistency", "gpt4_agreement"]).iloc[-1]
    assert best["reading"] == "0=B, 1=tie, 2=A"


def test_ambiguous_codes_are_an_error_not_a_guess():
    humans = pd.DataFrame({"pair_id": ["p1", "p2"], "rater": ["r", "r"], "code": ["0", "1"]})
    gpt4 = pd.DataFrame({"pair_id": ["p1", "p2"], "shown": ["tie", "tie"]})
    pairings = pd.DataFrame({"pairing_id": ["p1", "p2"], "model1": ["x", "y"], "model2": ["y", "x"],
                             "is_duplicated": [True, True], "duplicate_id": ["p2", "p1"]})
    with pytest.raises(ValueError, match="the data do not establish what battle_outcome 0/1/2 mean"):
        establish_coding(humans, gpt4, pairings)


def test_bad_values_are_named_by_file_row_and_column_and_excluded(tmp_path):
    truth = release(tmp_path)
    tsv = tmp_path / "pairwise" / "human" / "hindi_pairwise_ratings.tsv"
    lines = tsv.read_text().splitlines()
    lines[2] = lines[2].replace("\t0\t", "\t7\t").replace("\t1\t", "\t7\t").replace("\t2\t", "\t7\t")
    lines.append(lines[1])  # the same rater again on the same pairing
    tsv.write_text("\n".join(lines) + "\n")
    gpt = json.loads((tmp_path / "pairwise" / "gpt4" / "battle_outcomes_hindi.json").read_text())
    gpt[4]["battle_outcome"] = "D"
    (tmp_path / "pairwise" / "gpt4" / "battle_outcomes_hindi.json").write_text(json.dumps(gpt))
    comp, report, _ = from_pariksha_pairwise(tmp_path)
    issues = {i.kind: i for i in report.issues}
    assert issues["human rows with a bad value"].examples == \
        ["hindi_pairwise_ratings.tsv: row 2, column 'battle_outcome': expected one of ['0', '1', '2'], found '7'"]
    assert issues["gpt-4 rows with a bad value"].examples[0].startswith("battle_outcomes_hindi.json: row 5, column 'battle_outcome'")
    assert issues["second rating of a pairing by the same rater"].count == 1
    c = report.counts
    assert c["human_rows_read"] == len(truth["human"]) + 1
    assert c["human_rows_joined"] + c["human_rows_not_joined"] + 1 + 1 == c["human_rows_read"]  # + bad + second
    assert c["gpt4_rows_joined"] + c["gpt4_rows_not_joined"] + 1 == c["gpt4_rows_read"]


@pytest.mark.skipif(not REAL.is_dir(), reason="the PARIKSHA release is not on this machine (CI has it)")
def test_real_release_counts_and_coding():
    comp, report, evidence = from_pariksha_pairwise(REAL)
    c = report.counts
    assert (c["human_rows_read"], c["gpt4_rows_read"], c["human_pairings_rated"]) == (65150, 21690, 21690)
    assert c["human_rows_joined"] + c["human_rows_not_joined"] == c["human_rows_read"]
    assert c["gpt4_rows_joined"] == c["pairings_listed"] == 6048
    best = evidence.sort_values(["self_consistency", "gpt4_agreement"]).iloc[-1]
    assert best["reading"] == "0=A, 1=B, 2=tie" and best["self_consistency"] > 0.8
    models = pd.concat([comp[["language", "model_a"]], comp[["language", "model_b"]].set_axis(["language", "model_a"], axis=1)])
    assert models.groupby("language")["model_a"].nunique().min() >= 10
    assert comp["length_a"].notna().all() and comp["length_b"].notna().all()


# ------------------------------------------------------------------ the report on comparisons

def simulate(strengths: dict[str, dict[str, float]], languages=("hi", "bn"), n_prompts: int = 30, seed: int = 0) -> pd.DataFrame:
    """Comparisons of every pair of models on each prompt by three humans and each judge in ``strengths``
    (rater group -> model -> log-strength; ``humans`` for the annotators), each judge in both orders."""
    rng = np.random.default_rng(seed)
    rows = []
    for lang in languages:
        for p in range(n_prompts):
            for a, b in combinations(sorted(strengths["humans"]), 2):
                pid = f"{lang}-{p}-{a}-{b}"
                raters = [(f"h{i}", "human", "humans", rng.choice(["ab", "ba"])) for i in range(3)]
                raters += [(j, "judge", j, order) for j in strengths if j != "humans" for order in ("ab", "ba")]
                for rater, kind, group, order in raters:
                    d = strengths[group][a] - strengths[group][b] + rng.logistic()
                    outcome = "tie" if abs(d) < 0.3 else ("a" if d > 0 else "b")
                    rows.append({"pair_id": pid, "prompt_id": f"{lang}-{p}", "language": lang, "model_a": a, "model_b": b,
                                 "criterion": "overall", "rater": rater, "rater_kind": kind, "outcome": outcome,
                                 "shown_order": order, "status": "submitted", "length_a": ord(a), "length_b": ord(b)})
    return pd.DataFrame(rows)


TRUE = {"humans": {"w": 2.0, "x": 1.0, "y": 0.0, "z": -1.0, "v": -2.0},
        "judge-1": {"w": 2.0, "x": 1.0, "y": 0.0, "z": -1.0, "v": -2.0},
        "judge-2": {"w": -2.0, "x": -1.0, "y": 0.0, "z": 1.0, "v": 2.0}}  # judge-2 ranks backwards


def test_report_leaderboards_follow_the_raters_and_agreement_is_kendall_of_the_scores():
    from scipy.stats import kendalltau

    from reports.pairwise.report import pairwise_report

    comp = simulate(TRUE)
    frames, summary = pairwise_report(comp, n_boot=100, seed=1)
    lb = frames["leaderboards"]
    assert set(zip(lb["raters"], lb["language"])) == {(g, lang) for g in TRUE for lang in ("all", "hi", "bn")}
    for (group, lang), board in lb.groupby(["raters", "language"]):
        truth = sorted(TRUE[group], key=TRUE[group].get, reverse=True)
        assert list(board.sort_values("rank")["model"]) == truth, (group, lang)
        assert (board["ci_low"] <= board["score"]).all() and (board["score"] <= board["ci_high"]).all()
    la = frames["leaderboard_agreement"].set_index(["judge", "language", "statistic"])
    for judge in ("judge-1", "judge-2"):
        for lang in ("all", "hi"):
            h = lb[(lb["raters"] == "humans") & (lb["language"] == lang)].set_index("model")["score"]
            j = lb[(lb["raters"] == judge) & (lb["language"] == lang)].set_index("model")["score"].reindex(h.index)
            assert la.loc[(judge, lang, "kendall_tau_b"), "value"] == pytest.approx(kendalltau(h, j).statistic, abs=1e-12)
    assert la.loc[("judge-1", "all", "kendall_tau_b"), "value"] == 1.0
    assert la.loc[("judge-2", "all", "kendall_tau_b"), "value"] == -1.0
    assert la.loc[("judge-2", "all", "top_3"), "ci_high"] <= 1 / 3
    pa = frames["pair_agreement"].set_index(["language", "judge", "ties", "statistic"])["value"]
    assert pa[("all", "judge-1", "without", "accuracy")] > 0.6 > 0.4 > pa[("all", "judge-2", "without", "accuracy")]
    pos = frames["consistency"].set_index("rater")
    assert pos.loc["judge-1", "n_repeated"] == comp["pair_id"].nunique()  # every pair asked in both orders
    assert set(frames["first_position"]["rater"]) == {"h0", "h1", "h2", "judge-1", "judge-2"}
    assert set(frames["length_bias"]["rater"]) >= {"humans", "judge-1", "judge-2"}
    assert summary["counts"] == {"rows": len(comp), "rows_used": len(comp), "rows_not_submitted": 0, "rows_without_lengths": 0}
    json.dumps(summary, allow_nan=False)


def test_report_keeps_cells_it_cannot_compute_and_counts_rows_it_leaves_out():
    from reports.pairwise.report import pairwise_report

    comp = simulate(TRUE, languages=("hi",), n_prompts=10)
    comp.loc[comp.index[:5], "status"] = "draft"
    comp.loc[comp.index[5:8], "length_b"] = 0  # an empty response: no length ratio
    # a third judge that only ever compared two models: no rank agreement possible
    few = comp[(comp["rater"] == "judge-1") & comp["model_a"].isin(["w", "x"]) & comp["model_b"].isin(["w", "x"])].assign(rater="judge-3")
    frames, summary = pairwise_report(pd.concat([comp, few], ignore_index=True), n_boot=50)
    la = frames["leaderboard_agreement"]
    j3 = la[la["judge"] == "judge-3"]
    assert len(j3) == 2 and j3["note"].str.contains("share 2 model").all()  # 'all' and 'hi'
    assert summary["counts"]["rows_not_submitted"] == 5 and summary["counts"]["rows_without_lengths"] == 3
    assert summary["counts"]["rows_used"] == len(comp) + len(few) - 5
    lb_rows = frames["length_bias"].groupby("rater")["n_comparisons"].first()
    assert lb_rows["humans"] == (comp.iloc[8:]["rater_kind"] == "human").sum()


def test_report_names_the_columns_it_needs():
    from reports.pairwise.report import pairwise_report

    with pytest.raises(ValueError, match=r"comparisons: missing column\(s\) \['language', 'shown_order'\]; the pairwise report needs"):
        pairwise_report(simulate(TRUE, languages=("hi",), n_prompts=2).drop(columns=["language", "shown_order"]), n_boot=10)


def test_written_json_and_csv_hold_the_report_numbers(tmp_path):
    from reports.pairwise.report import pairwise_report, write_pairwise

    frames, summary = pairwise_report(simulate(TRUE, languages=("hi",), n_prompts=10), n_boot=50)
    paths = write_pairwise(frames, summary, tmp_path / "report")
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == json.loads(json.dumps(summary))
    assert "notes" not in paths  # nothing to say: no file
    back = pd.read_csv(paths["leaderboards"])
    pd.testing.assert_frame_equal(back[["model", "score", "ci_low", "rank"]], frames["leaderboards"][["model", "score", "ci_low", "rank"]],
                                  check_dtype=False)
    la = pd.read_csv(paths["leaderboard_agreement"])
    assert list(la["value"]) == pytest.approx(list(frames["leaderboard_agreement"]["value"]))


def test_rank_figure_plots_human_against_judge_ranks_with_their_cis():
    from reports.pairwise.report import pairwise_report, rank_figure

    frames, _ = pairwise_report(simulate(TRUE, n_prompts=10), n_boot=50)
    fig = rank_figure(frames["leaderboards"])
    lb = frames["leaderboards"]
    points = [t for t in fig.data if t.mode == "markers"]
    assert len(points) == 2 * 3  # two judges x three panels (all, bn, hi)
    assert [a.text for a in fig.layout.annotations] == ["all", "bn", "hi"]
    first = points[0]
    hum = lb[(lb["raters"] == "humans") & (lb["language"] == "all")].set_index("model")
    assert list(first.x) == list(hum.loc[list(first.text), "rank"])
    assert list(first.error_x.arrayminus) == list(hum.loc[list(first.text), "rank"] - hum.loc[list(first.text), "rank_low"])
    text = fig.to_json()
    assert "human rank" in text and "judge rank" in text


@pytest.mark.skipif(not REAL.is_dir(), reason="the PARIKSHA release is not on this machine (CI has it)")
def test_real_release_leaderboards_for_humans_and_gpt4_and_their_agreement(capsys):
    from reports.pairwise.report import pairwise_report

    comp, _, _ = from_pariksha_pairwise(REAL)
    frames, summary = pairwise_report(comp, n_boot=200, seed=0)
    lb = frames["leaderboards"]
    languages = sorted(set(comp["language"]))
    assert frames["notes"].empty
    assert {(r, lang) for r, lang in zip(lb["raters"], lb["language"])} == {(r, lang) for r in ("humans", JUDGE) for lang in ["all", *languages]}
    la = frames["leaderboard_agreement"]
    tau = la[la["statistic"] == "kendall_tau_b"].set_index("language")
    assert sorted(tau.index) == sorted(["all", *languages]) and tau["note"].isna().all()
    assert (tau["ci_low"] <= tau["value"]).all() and (tau["value"] <= tau["ci_high"]).all()
    with capsys.disabled():
        print("\nPARIKSHA pairwise, Kendall tau-b of the human and GPT-4 leaderboards (95% prompt-bootstrap CI, 200 resamples):")
        for lang, r in tau.iterrows():
            print(f"  {lang}: {r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['n_models']} models, {r['n_prompts']} prompts")
