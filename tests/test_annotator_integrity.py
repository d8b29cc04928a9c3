"""Annotation data integrity against the real embedded Argilla server, mostly through the real CLI.

Opaque record ids (nothing an annotator must not see reaches Argilla), ratings never moved to a
text they were not given for, the roster as the truth for workspaces and memberships, clear
one-line errors on bad samples, and pull/status reporting exactly what the server stored.
Each test uses its own study name and annotators on one module-wide server.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import argilla as rg
import pandas as pd
import pytest
import yaml
from argilla._models._record._response import UserResponseModel

import rubrics
from annotator.forms import dataset_name
from annotator.people import api_key_of
from annotator.pull import PullError, collect
from annotator.push import PushError, bulk_upsert, iter_records, push, record_payload
from annotator.records import RECORD_MAP, RecordMap, text_hash
from annotator.status import progress
from tests.annotator_data import make_sample

ROOT = Path(__file__).resolve().parents[1]
RS = rubrics.load_rubric_set("pariksha")
KEY_ENV = "KASAUTI_TEST_INTEGRITY_KEY"
METRICS = ("linguistic_acceptability", "task_quality", "hallucination")
warnings.filterwarnings("ignore", module="argilla")


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_python):
    from annotator.server import EmbeddedServer

    server = EmbeddedServer(tmp_path_factory.mktemp("integrity") / "argilla", port=0).start()
    try:
        yield server
    finally:
        server.stop()


def owner(srv) -> rg.Argilla:
    return rg.Argilla(api_url=srv.url, api_key=srv.api_key)


def make_study(root: Path, srv, name: str, sample: pd.DataFrame | None, roster: dict | None = None,
               min_submitted: int = 2) -> Path:
    """A study directory on the module's server (as an external Argilla: annotation.url + key variable)."""
    root.mkdir(parents=True, exist_ok=True)
    annotation = {"url": srv.url, "api_key_env": KEY_ENV, "min_submitted": min_submitted}
    if roster is not None:
        (root / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
        annotation["roster"] = "roster.yaml"
    (root / "kasauti.yaml").write_text(yaml.safe_dump({"name": name, "data": {"path": "unused.jsonl"},
                                                       "annotation": annotation}))
    if sample is not None:
        sample.to_parquet(root / "sample.parquet")
    return root


def kasauti(srv, *args: str, cwd: Path = ROOT, code: int = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{KEY_ENV: srv.api_key})
    proc = subprocess.run([sys.executable, "-m", "kasauti", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert srv.api_key not in proc.stdout + proc.stderr
    return proc


def user_client(srv, username: str) -> rg.Argilla:
    return rg.Argilla(api_url=srv.url, api_key=api_key_of(owner(srv), username))


def seen_by(srv, username: str, dataset_id) -> list[dict]:
    """The records `username` is shown (their pending queue), as the annotator's API returns them."""
    resp = user_client(srv, username).http_client.post(
        f"/api/v1/me/datasets/{dataset_id}/records/search", params={"limit": 100},
        json={"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                    "values": ["pending"]}]}})
    resp.raise_for_status()
    return [item["record"] for item in resp.json()["items"]]


def answer(srv, username: str, records: list[dict], values: dict, status: str = "submitted") -> list[str]:
    """As `username`: respond to `records` (as listed by the API) with `values`; returns their external ids."""
    user = user_client(srv, username)
    for rec in records:
        model = UserResponseModel(values={k: {"value": v} for k, v in values.items()}, status=status, user_id=user.me.id)
        user.api.records.create_record_response(rec["id"], model)
    return [rec["external_id"] for rec in records]


def memberships(srv, username: str) -> set[str]:
    client = owner(srv)
    return {w.name for w in client.api.workspaces.list_by_user_id(client.users(username).id)}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("error:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_records_reveal_nothing_and_pull_joins_back(srv, tmp_path):
    """PARIKSHA item ids are `<uuid>|<model>`: the annotator sees an opaque id, kasauti joins back at pull."""
    sample = make_sample(per_language=2, hindi=False)
    sample = sample[sample["language"] == "bn"].reset_index(drop=True)
    assert sample["item_id"].str.contains("|", regex=False).all()
    roster = {"annotators": [{"username": "opq1", "name": "O", "languages": ["bn"]}]}
    study = make_study(tmp_path / "s", srv, "opaque", sample, roster)
    kasauti(srv, "push", str(study))
    client = owner(srv)
    ds = client.datasets(dataset_name("opaque", "bn", "general"), workspace="bn")
    stored = list(iter_records(client, ds.id))
    assert len(stored) == len(sample)
    for rec in stored:
        sent = json.dumps(rec, ensure_ascii=False)
        assert not any(item in sent or model in sent for item, model in zip(sample["item_id"], sample["source_model"]))
        assert set(rec["metadata"]) == {"language", "task"}
    # the annotator's own view: opaque ids only
    seen = seen_by(srv, "opq1", ds.id)
    assert sorted(r["external_id"] for r in seen) == sorted(r["external_id"] for r in stored)
    assert not any(item in json.dumps(seen, ensure_ascii=False) for item in sample["item_id"])
    done = answer(srv, "opq1", seen[:1], {"linguistic_acceptability": 2, "task_quality": 1, "hallucination": 0})
    # the map lives in the study and joins back; hidden columns come from the sample
    records = RecordMap(study / "argilla" / RECORD_MAP)
    assert sorted(records.item_of(r["external_id"]) for r in stored) == sorted(sample["item_id"])
    kasauti(srv, "pull", str(study))
    ratings = pd.read_parquet(study / "ratings.parquet")
    item = records.item_of(done[0])
    assert set(ratings["item_id"]) == {item} and len(ratings) == 3
    row = sample.set_index("item_id").loc[item]
    assert set(ratings["length_bin"]) == {row["length_bin"]} and set(ratings["task"]) == {row["task"]}
    # idempotent: a second push sends nothing and keeps the ids
    again = kasauti(srv, "push", str(study)).stdout
    assert f"{len(sample)} unchanged" in again and len(RecordMap(study / "argilla" / RECORD_MAP)) == len(sample)


def test_records_of_an_older_kasauti_are_refused_not_duplicated(srv, tmp_path):
    """A dataset pushed with item ids as record ids: push says so; pull still joins its ratings."""
    client = owner(srv)
    sample = make_sample(per_language=2, hindi=False)
    sample = sample[sample["language"] == "ta"].reset_index(drop=True)
    records = RecordMap(tmp_path / RECORD_MAP)
    push(client, sample.head(1), RS, "legacy", records)  # creates the dataset
    ds = client.datasets(dataset_name("legacy", "ta", "general"), workspace="ta")
    client.http_client.delete(f"/api/v1/datasets/{ds.id}/records",
                              params={"ids": ",".join(r["id"] for r in iter_records(client, ds.id))}).raise_for_status()
    old = [record_payload(item, ["system_prompt"], item["item_id"]) for item in sample.to_dict("records")]
    bulk_upsert(client, ds.id, old)  # what the older kasauti sent
    before = sorted(r["external_id"] for r in iter_records(client, ds.id))
    with pytest.raises(PushError, match=r"holds 2 record\(s\) whose ids are not in .*pushed by an older kasauti"):
        push(client, sample, RS, "legacy", RecordMap(tmp_path / RECORD_MAP))
    assert sorted(r["external_id"] for r in iter_records(client, ds.id)) == before
    rec = next(iter_records(client, ds.id))
    client.api.records.create_record_response(rec["id"], UserResponseModel(
        values={m: {"value": 1} for m in METRICS}, status="submitted", user_id=client.me.id))
    ratings, _ = collect(client, "legacy", RS, RecordMap(tmp_path / RECORD_MAP), sample)
    assert set(ratings["item_id"]) == {rec["external_id"]} and sorted(ratings["metric"]) == sorted(METRICS)
    # without the sample those ratings cannot be joined: an error, not a silent drop
    with pytest.raises(PullError, match=r"1 record\(s\) with responses are not in .* nor the sample"):
        collect(client, "legacy", RS, RecordMap(tmp_path / RECORD_MAP), None)


def test_changed_text_never_carries_old_ratings(srv, tmp_path):
    sample = make_sample(per_language=2, hindi=False)
    sample = sample[sample["language"] == "or"].reset_index(drop=True)
    roster = {"annotators": [{"username": f"chg{i}", "name": "C", "languages": ["or"]} for i in (1, 2)]}
    study = make_study(tmp_path / "s", srv, "changed", sample, roster)
    kasauti(srv, "push", str(study))
    client = owner(srv)
    ds = client.datasets(dataset_name("changed", "or", "general"), workspace="or")
    values = {"linguistic_acceptability": 2, "task_quality": 1, "hallucination": 0}
    target = next(iter_records(client, ds.id))
    rid, old_fields = target["external_id"], target["fields"]
    answer(srv, "chg1", [target], values)
    answer(srv, "chg2", [target], values)
    records = RecordMap(study / "argilla" / RECORD_MAP)
    rated = records.item_of(rid)
    other = next(i for i in sample["item_id"] if i != rated)

    # the rated item's text changes (and an unrated one's): refused, nothing sent
    sample.loc[sample["item_id"] == rated, "response"] += " (edited)"
    sample.loc[sample["item_id"] == other, "response"] += " (edited)"
    sample.to_parquet(study / "sample.parquet")
    refused = kasauti(srv, "push", str(study), code=2)
    msg = one_line_error(refused)
    assert f"'{rated}' (6 ratings in 2 responses)" in msg and "--discard-changed-ratings" in msg and other not in msg
    now = {r["external_id"]: r for r in iter_records(client, ds.id, include="responses")}
    assert now[rid]["fields"] == old_fields and len(now[rid]["responses"]) == 2
    assert "(edited)" not in json.dumps(now, ensure_ascii=False)

    # pull says which text each rating was for, and that it is not the sample's text any more
    pulled = kasauti(srv, "pull", str(study))
    ratings = pd.read_parquet(study / "ratings.parquet")
    assert len(ratings) == 6 and set(ratings["text_hash"]) == {text_hash(old_fields)}
    assert [line for line in pulled.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: 1 items were rated on texts that differ from {study / 'sample.parquet'} (e.g. '{rated}'); their "
        "ratings and the judges' are about different texts: restore the sample, or push (--discard-changed-ratings) "
        "to have the new texts rated"]

    # explicit discard: the responses go, the new text is shown, pull has no rating of the old text
    out = kasauti(srv, "push", str(study), "--discard-changed-ratings").stdout
    assert "2 updated" in out and "2 responses discarded" in out
    now = {records.item_of(r["external_id"]): r for r in iter_records(client, ds.id, include="responses")}
    assert now[rated]["fields"]["response"].endswith("(edited)") and not now[rated]["responses"]
    assert now[other]["fields"]["response"].endswith("(edited)")
    kasauti(srv, "pull", str(study))
    assert pd.read_parquet(study / "ratings.parquet").empty
    rid2 = answer(srv, "chg1", list(iter_records(client, ds.id)), values)
    pulled = kasauti(srv, "pull", str(study))
    assert "warning" not in pulled.stderr
    ratings = pd.read_parquet(study / "ratings.parquet")
    hashes = {records.item_of(r["external_id"]): text_hash(r["fields"]) for r in iter_records(client, ds.id)}
    assert len(rid2) == 2 and {(i, h) for i, h in zip(ratings["item_id"], ratings["text_hash"])} == set(hashes.items())


def test_relative_roster_option_is_relative_to_the_current_directory(srv, tmp_path):
    study = make_study(tmp_path / "s", srv, "people", None)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "team.yaml").write_text("annotators:\n  - {username: rost0, name: R, languages: [hi]}\n")
    out = kasauti(srv, "people", str(study), "--roster", "team.yaml", cwd=elsewhere).stdout
    assert "new users ['rost0']" in out and memberships(srv, "rost0") == {"hi"}


def test_roster_languages_are_normalised_and_checked(srv, tmp_path):
    study = make_study(tmp_path / "s", srv, "people", None)
    roster = tmp_path / "team.yaml"
    roster.write_text("annotators:\n  - {username: rost1, name: R, languages: [Bengali, tam]}\n")
    kasauti(srv, "people", str(study), "--roster", str(roster))
    assert memberships(srv, "rost1") == {"bn", "ta"}
    assert owner(srv).workspaces("bengali") is None and owner(srv).workspaces("tam") is None
    # unknown languages are refused, naming file, entry and key; nothing is created
    roster.write_text("annotators:\n  - {username: rost2, name: R, languages: [xx]}\n")
    bad = kasauti(srv, "people", str(study), "--roster", str(roster), code=2)
    assert str(roster) in bad.stderr and "annotators[0].languages" in bad.stderr
    assert "'xx' is not a language name" in bad.stderr and "Traceback" not in bad.stderr
    assert owner(srv).workspaces("xx") is None and owner(srv).users("rost2") is None


def test_memberships_follow_the_roster(srv, tmp_path):
    study = make_study(tmp_path / "s", srv, "people", None)
    roster = tmp_path / "team.yaml"
    roster.write_text("annotators:\n  - {username: rost3, name: R, languages: [bn, ta]}\n")
    kasauti(srv, "people", str(study), "--roster", str(roster))
    assert memberships(srv, "rost3") == {"bn", "ta"}
    # languages changed: the old memberships go, though no one else on the roster uses those workspaces
    roster.write_text("annotators:\n  - {username: rost3, name: R, languages: [or]}\n")
    out = kasauti(srv, "people", str(study), "--roster", str(roster)).stdout
    assert memberships(srv, "rost3") == {"or"} and "memberships +1 -2" in out


def test_push_warns_about_languages_nobody_speaks(srv, tmp_path):
    sample = make_sample(per_language=3, hindi=False)
    sample = sample[sample["language"] == "bn"].reset_index(drop=True)
    sample.loc[:1, "language"] = "pa"  # 2 Punjabi items; the roster has no Punjabi speaker
    roster = {"annotators": [{"username": "warn1", "name": "W", "languages": ["bn"]}]}
    study = make_study(tmp_path / "s", srv, "unstaffed", sample, roster)
    proc = kasauti(srv, "push", str(study))
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warning == ["warning: 2 items in language 'pa', but no annotator is a member of workspace 'pa': "
                       "add one to the roster and run `kasauti people`"]


@pytest.mark.parametrize("damage", ["empty", "random", "truncated", "length_bin"])
def test_bad_sample_is_one_clear_error(srv, tmp_path, damage):
    sample = make_sample(per_language=1, hindi=False)
    study = make_study(tmp_path / "s", srv, f"bad-{damage}", sample)
    path = study / "sample.parquet"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    else:
        sample["length_bin"] = sample["length_bin"].astype(str)
        sample.loc[1, "length_bin"] = "x"
        sample.to_parquet(path)
    for command in ("push", "pull"):
        msg = one_line_error(kasauti(srv, command, str(study), code=2))
        assert str(path) in msg
        if damage == "length_bin":
            assert "column 'length_bin': expected int8, found string (row 2: 'x')" in msg
        else:
            assert "not a Parquet file" in msg and "`kasauti sample` writes it" in msg


def _stored(db: Path, dataset_id: str) -> tuple[int, dict[tuple[str, str], int]]:
    """(records with >= 2 submitted responses, {(username, status): responses}) as argilla.db holds them."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT r.id, u.username, s.status FROM responses s JOIN records r ON s.record_id = r.id "
                           "JOIN users u ON s.user_id = u.id WHERE r.dataset_id = ?",
                           (dataset_id.replace("-", ""),)).fetchall()
        if not rows:
            rows = con.execute("SELECT r.id, u.username, s.status FROM responses s JOIN records r ON s.record_id = r.id "
                               "JOIN users u ON s.user_id = u.id WHERE r.dataset_id = ?", (dataset_id,)).fetchall()
    per_record, per_user = {}, {}
    for rec, user, status in rows:
        per_record[rec] = per_record.get(rec, 0) + (status == "submitted")
        per_user[(user, status)] = per_user.get((user, status), 0) + 1
    return sum(n >= 2 for n in per_record.values()), per_user


def test_pull_and_status_report_what_was_stored_after_a_crash(srv, tmp_path):
    """A crash between a response's commit and the record's status update leaves the record 'pending'
    in argilla.db although it has min_submitted submitted responses: status counts what is stored."""
    sample = make_sample(per_language=4, hindi=False)
    sample = sample[sample["language"] == "bn"].reset_index(drop=True)
    roster = {"annotators": [{"username": f"crash{i}", "name": "C", "languages": ["bn"]} for i in (1, 2)]}
    study = make_study(tmp_path / "s", srv, "crash", sample, roster)
    kasauti(srv, "push", str(study))
    client = owner(srv)
    ds = client.datasets(dataset_name("crash", "bn", "general"), workspace="bn")
    values = {"linguistic_acceptability": 1, "task_quality": 1, "hallucination": 1}
    recs = list(iter_records(client, ds.id))
    answer(srv, "crash1", recs[:3], values)
    answer(srv, "crash2", recs[:2], values)
    answer(srv, "crash2", recs[3:4], {"task_quality": 0}, status="draft")
    # the state a kill -9 right after a response's commit leaves: the record's status not yet updated
    srv.process.kill()
    srv.process.wait()
    db = srv.home / "argilla.db"
    with sqlite3.connect(db) as con:
        changed = con.execute("UPDATE records SET status = 'pending' WHERE status = 'completed'").rowcount
    assert changed == 2
    srv.start()
    client = owner(srv)
    completed, per_user = _stored(db, str(ds.id))
    assert completed == 2 and per_user == {("crash1", "submitted"): 3, ("crash2", "submitted"): 2,
                                           ("crash2", "draft"): 1}
    datasets, annotators = progress(client, "crash", RS)
    row = datasets.set_index("language").loc["bn"]
    assert (row["records"], row["completed"], row["pending"]) == (len(sample), completed, len(sample) - completed)
    got = {(a.annotator, s): getattr(a, s) for a in annotators.itertuples() for s in ("submitted", "draft", "discarded")}
    assert {k: v for k, v in got.items() if v} == per_user
    ratings, revisions = collect(client, "crash", RS, RecordMap(study / "argilla" / RECORD_MAP), sample)
    assert revisions.groupby(["annotator", "status"]).size().to_dict() == per_user
    assert len(ratings) == 3 * 3 + 2 * 3 + 1
