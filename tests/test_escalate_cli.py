"""`kasauti escalate` on the demo study, against the real embedded Argilla server: only the items the
judge may not decide are pushed (to the `<study>-escalated-*` datasets), and a re-run pushes nothing.

The demo's judge is the loopback test server (scores are hashes), so the human ratings are crafted:
two annotators rate a random 60% of the sample and agree with the judge exactly where its
probability of its answer is at least 0.5, so thresholds exist and some unrated items stay with
the judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import studytables
from annotator.escalate import escalation_study
from annotator.records import RECORD_MAP, RecordMap

ROOT = Path(__file__).resolve().parents[1]


def kasauti(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kasauti", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def crafted_ratings(study: Path) -> set[str]:
    judgments = pd.read_parquet(study / "judgments.parquet")
    sample = pd.read_parquet(study / "sample.parquet")
    rng = np.random.default_rng(5)
    rated = set(rng.choice(sample["item_id"], size=int(0.6 * len(sample)), replace=False))
    rows = []
    for j in judgments[judgments["item_id"].isin(rated)].itertuples():
        probs = json.loads(j.probs)
        top = len(probs) - 1
        human = j.human_score if probs[str(j.score)] >= 0.5 else (j.human_score + 1) % (top + 1)
        rows += [{"item_id": j.item_id, "metric": j.metric, "rater": who, "rater_kind": "human", "score": float(human),
                  "status": "submitted"} for who in ("asha", "bina")]
    studytables.write(studytables.RATINGS, pd.DataFrame(rows), study / "ratings.parquet")
    return rated


def escalated_items(srv, study: Path, name: str) -> list[str]:
    """Item ids of every record in the study's escalation datasets, as the server holds them."""
    import argilla as rg

    from annotator.push import iter_records

    client = rg.Argilla(api_url=srv.url, api_key=srv.api_key)
    records = RecordMap(study / "argilla" / RECORD_MAP)
    prefix = escalation_study(name) + "-"
    return [records.item_of(r["external_id"]) for ds in client.api.datasets.list() if ds.name.startswith(prefix)
            for r in iter_records(client, ds.id)]


def rate_escalated(srv, study: Path, name: str, sample: pd.DataFrame, n: int) -> list[str]:
    """As annotator `asha` (all the sample's languages): submit score 1 on every metric of the first `n`
    records of one escalation dataset; returns their item ids."""
    import argilla as rg

    from annotator.people import Annotator, Roster, api_key_of, provision
    from annotator.push import iter_records

    owner = rg.Argilla(api_url=srv.url, api_key=srv.api_key)
    languages = sorted(sample["language"].unique())
    provision(owner, Roster(annotators=[Annotator(username="asha", name="Asha", languages=languages)]),
              study / "argilla" / "annotators.csv")
    asha = rg.Argilla(api_url=srv.url, api_key=api_key_of(owner, "asha"))
    ds = next(d for d in owner.api.datasets.list() if d.name.startswith(escalation_study(name) + "-"))
    records = RecordMap(study / "argilla" / RECORD_MAP)
    done = []
    for rec in list(iter_records(owner, ds.id))[:n]:
        values = {m: {"value": 1} for m in ("linguistic_acceptability", "task_quality", "hallucination")}
        resp = asha.http_client.post(f"/api/v1/records/{rec['id']}/responses",
                                     json={"values": values, "status": "submitted"})
        assert resp.status_code < 300, resp.text
        done.append(records.item_of(rec["external_id"]))
    return done


def test_escalate_pushes_only_items_below_the_threshold_and_a_rerun_pushes_nothing(tmp_path, server_python):
    from annotator.server import EmbeddedServer
    from judge.testing import FakeJudgeServer
    from kasauti.demo import demo_study, use_judge_server

    study = demo_study(tmp_path / "demo").root
    assert kasauti("sample", str(study)).returncode == 0
    with FakeJudgeServer() as judge:
        use_judge_server(demo_study(study), judge.url)
        out = kasauti("judge", str(study))
        assert out.returncode == 0, out.stderr[-2000:]

    missing = kasauti("escalate", str(study))  # no ratings yet: one line, exit 2
    assert missing.returncode == 2 and "no human ratings" in missing.stderr and "Traceback" not in missing.stderr
    rated = crafted_ratings(study)

    srv = EmbeddedServer(study / "argilla", port=0).start()
    try:
        dry = kasauti("escalate", str(study), "--dry-run")
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert "nothing written or pushed" in dry.stdout and not (study / "decisions.parquet").exists()
        assert escalated_items(srv, study, "pariksha-demo") == []

        first = kasauti("escalate", str(study), "--target", "0.9", "--delta", "0.05")
        assert first.returncode == 0, first.stderr[-2000:]
        decisions = studytables.read(studytables.DECISIONS, study / "decisions.parquet")
        sample = pd.read_parquet(study / "sample.parquet")
        assert len(decisions) == 3 * len(sample)  # every item x metric of the pariksha rubric
        to_humans = decisions[(decisions["decided_by"] == "humans") & decisions["human_consensus"].isna()]
        expected = set(to_humans["item_id"])
        pushed = escalated_items(srv, study, "pariksha-demo")
        assert sorted(pushed) == sorted(expected) and len(pushed) == len(set(pushed))
        assert not expected & rated  # rated items are never escalated (all crafted ratings have a consensus)
        judge_only = set(sample["item_id"]) - rated - expected
        assert judge_only  # some unrated items are decided by the judge on every metric, and were not pushed
        trusted = decisions[decisions["item_id"].isin(judge_only)]
        assert (trusted["decided_by"] == "judge").all() and (trusted["confidence"] >= trusted["threshold"]).all()
        assert f"{len(expected)} new items" in first.stdout and "guaranteed agreement" in first.stdout

        again = kasauti("escalate", str(study), "--target", "0.9", "--delta", "0.05")
        assert again.returncode == 0, again.stderr[-2000:]
        assert "0 new items" in again.stdout and " 0 added, 0 updated" in again.stdout
        assert sorted(escalated_items(srv, study, "pariksha-demo")) == sorted(expected)

        # a native speaker rates some escalated items; pull keeps those ratings apart from the calibration ones
        answered = rate_escalated(srv, study, "pariksha-demo", sample, n=3)
        crafted = (study / "ratings.parquet").read_bytes()
        pulled = kasauti("pull", str(study))
        assert pulled.returncode == 0, pulled.stderr[-2000:]
        escalated_ratings = pd.read_parquet(study / "ratings_escalated.parquet")
        assert set(escalated_ratings["item_id"]) == set(answered) and len(answered) == 3
        assert pd.read_parquet(study / "ratings.parquet").empty  # the study's own datasets hold no responses here
        (study / "ratings.parquet").write_bytes(crafted)  # stand-in for the random calibration ratings
        third = kasauti("escalate", str(study), "--target", "0.9", "--delta", "0.05")
        assert third.returncode == 0, third.stderr[-2000:]
        now = studytables.read(studytables.DECISIONS, study / "decisions.parquet")
        assert (now[now["item_id"].isin(answered)]["human_consensus"] == 1).all()
        cols = ["item_id", "metric", "threshold", "guaranteed_agreement", "decided_by"]
        pd.testing.assert_frame_equal(now[cols], decisions[cols])  # escalated ratings never calibrate
        assert "0 new items" in third.stdout
    finally:
        srv.stop()
