"""Annotation workflow against the real embedded Argilla server through the real `argilla` SDK.

One server for the module (start-up costs seconds on a shared machine); each test works with its
own annotators and checks only their responses. CLI commands run as subprocesses with the
worktree's code, reading the study's kasauti.yaml, server.json and owner.json as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
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
import studytables
from annotator.adjudicate import adjudicate
from annotator.forms import FormOptions, build_settings, dataset_name, level_text, render_conversation, slug
from annotator.people import Roster, api_key_of, load_roster, provision, read_passwords
from annotator.pull import collect, study_datasets
from annotator.push import iter_records, push
from annotator.records import RECORD_MAP, RecordMap
from annotator.status import progress
from tests.annotator_data import kasauti, make_sample, write_study

ROOT = Path(__file__).resolve().parents[1]
STUDY = "tstudy"
RS = rubrics.load_rubric_set("pariksha")
ROSTER = {"annotators": [
    {"username": "asha", "name": "Asha Verma", "languages": ["hi"]},
    {"username": "kavi", "name": "Kavi Raman", "languages": ["ta", "hi"]},
    {"username": "meera", "name": "Meera S", "languages": ["ta"]},
]}
warnings.filterwarnings("ignore", module="argilla")


@pytest.fixture(scope="module")
def study(tmp_path_factory, server_python):
    from annotator.server import EmbeddedServer

    root = tmp_path_factory.mktemp("study")
    write_study(root, STUDY, ROSTER)
    make_sample(per_language=3).to_parquet(root / "sample.parquet")
    srv = EmbeddedServer(root / "argilla", port=0).start()
    try:
        yield root, srv
    finally:
        srv.stop()


def rmap(root: Path) -> RecordMap:
    """The study's record map as it is on disk now (the CLI writes it too)."""
    return RecordMap(root / "argilla" / RECORD_MAP)


def owner(srv) -> rg.Argilla:
    return rg.Argilla(api_url=srv.url, api_key=srv.api_key)


def as_user(srv, client, username) -> rg.Argilla:
    return rg.Argilla(api_url=srv.url, api_key=api_key_of(client, username))


def counts(client) -> dict[str, int]:
    return {sd.name: sum(1 for _ in iter_records(client, sd.id)) for sd in study_datasets(client, STUDY, RS)}


def respond(client: rg.Argilla, dataset_id, n: int, values, status: str) -> list[str]:
    """As the annotator behind `client`: answer the first `n` of their pending records; returns record ids."""
    resp = client.http_client.post(
        f"/api/v1/me/datasets/{dataset_id}/records/search", params={"limit": n},
        json={"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                    "values": ["pending"]}]}})
    resp.raise_for_status()
    done = []
    for item in resp.json()["items"]:
        rec = item["record"]
        model = UserResponseModel(values={k: {"value": v} for k, v in values.items()}, status=status,
                                  user_id=client.me.id)
        client.api.records.create_record_response(rec["id"], model)
        done.append(rec["external_id"])
    return done


def test_provision_push_respond_pull_restart(study):
    root, srv = study
    client = owner(srv)
    sample = pd.read_parquet(root / "sample.parquet")

    # push through the CLI: roster provisioning, then one dataset per language
    out = kasauti("push", str(root)).stdout
    assert "new users ['asha', 'kavi', 'meera']" in out
    pw_file = root / "argilla" / "annotators.csv"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    passwords = {r["username"]: r["password"] for r in read_passwords(pw_file)}
    assert set(passwords) == {"asha", "kavi", "meera"} and all(len(p) >= 12 for p in passwords.values())
    assert not any(p in out for p in passwords.values())
    want = {dataset_name(STUDY, lang, "general"): int(n) for lang, n in sample["language"].value_counts().items()}
    assert counts(client) == want

    # re-push: nothing sent, no duplicates; a larger sample adds only its new items
    again = push(client, sample, RS, STUDY, rmap(root))
    assert {(d.added, d.updated) for d in again.datasets} == {(0, 0)}
    bigger = make_sample(per_language=5)
    grown = push(client, bigger, RS, STUDY, rmap(root))
    assert sum(d.added for d in grown.datasets) == len(bigger) - len(sample)
    assert counts(client) == {dataset_name(STUDY, lang, "general"): int(n)
                              for lang, n in bigger["language"].value_counts().items()}
    bigger.to_parquet(root / "sample.parquet")

    # annotators answer with their own keys
    ta = client.datasets(dataset_name(STUDY, "ta", "general"), workspace="ta")
    hi = client.datasets(dataset_name(STUDY, "hi", "general"), workspace="hi")
    asha, kavi = as_user(srv, client, "asha"), as_user(srv, client, "kavi")
    v1 = {"linguistic_acceptability": 2, "task_quality": 1, "hallucination": 0, "revised_response": "सुधरा हुआ उत्तर"}
    v2 = {"linguistic_acceptability": 1, "task_quality": 0, "hallucination": 1, "comment": "தவறான தகவல்"}
    item_of = rmap(root).item_of
    asha_hi = [item_of(r) for r in respond(asha, hi.id, 2, v1, "submitted")]
    kavi_hi = [item_of(r) for r in respond(kavi, hi.id, 2, v1 | {"task_quality": 2}, "submitted")]
    kavi_ta = [item_of(r) for r in respond(kavi, ta.id, 1, v2, "submitted")]
    kavi_draft = [item_of(r) for r in respond(kavi, ta.id, 1, {"task_quality": 1}, "draft")]
    assert len(asha_hi) == len(kavi_hi) == 2 and len(kavi_ta) == len(kavi_draft) == 1

    # pull through the CLI: exactly those values, statuses kept
    kasauti("pull", str(root))
    ratings = studytables.read(studytables.RATINGS, root / "ratings.parquet")
    revisions = studytables.read(studytables.REVISIONS, root / "revisions.parquet")
    got = {(r.item_id, r.metric, r.rater, r.status): r.score for r in ratings.itertuples()}
    expect = {}
    for items, who, values, status in ((asha_hi, "asha", v1, "submitted"), (kavi_hi, "kavi", v1 | {"task_quality": 2}, "submitted"),
                                       (kavi_ta, "kavi", v2, "submitted"), (kavi_draft, "kavi", {"task_quality": 1}, "draft")):
        for item in items:
            for metric in ("linguistic_acceptability", "task_quality", "hallucination"):
                if metric in values:
                    expect[(item, metric, who, status)] = float(values[metric])
    assert got == expect
    assert set(ratings["rater_kind"]) == {"human"} and ratings["score"].notna().all()
    assert set(ratings.loc[ratings.item_id.isin(kavi_ta), "language"]) == {"ta"}
    rev = revisions.set_index(["item_id", "annotator"])
    assert rev.loc[(asha_hi[0], "asha"), "revised_response"] == "सुधरा हुआ उत्तर"
    assert rev.loc[(kavi_ta[0], "kavi"), "comment"] == "தவறான தகவல்"
    assert pd.isna(rev.loc[(kavi_ta[0], "kavi"), "revised_response"])
    assert len(revisions) == 6

    # items both asha and kavi submitted are complete (min_submitted=2)
    datasets, annotators = progress(client, STUDY, RS)
    hi_row = datasets.set_index("language").loc["hi"]
    assert hi_row["completed"] == len(set(asha_hi) & set(kavi_hi))
    per = annotators.set_index(["language", "annotator"])
    assert per.loc[("ta", "kavi"), ["submitted", "draft", "discarded"]].tolist() == [1, 1, 0]
    kasauti("status", str(root))

    # pull again, then restart the server (kill -9) and pull again: identical tables
    first = collect(client, STUDY, RS, rmap(root), bigger)
    pd.testing.assert_frame_equal(first[0], ratings)
    pd.testing.assert_frame_equal(first[1], revisions)
    srv.process.kill()
    srv.process.wait()
    srv.start()
    client = owner(srv)
    after = collect(client, STUDY, RS, rmap(root), bigger)
    pd.testing.assert_frame_equal(after[0], ratings)
    pd.testing.assert_frame_equal(after[1], revisions)

    # adjudication: the judge's modal score becomes a suggestion, only where 2 humans submitted
    hi_items = bigger.loc[bigger.language == "hi", "item_id"].tolist()
    judgments = pd.DataFrame([
        {"judge": "j1", "item_id": item, "metric": metric, "human_score": float(score), "status": status}
        for item in hi_items for metric in ("linguistic_acceptability", "task_quality", "hallucination")
        for score, status in ((1, "ok"), (0, "ok"), (0, "ok"), (1, "failed"))])
    both = sorted(set(asha_hi) & set(kavi_hi))
    assert adjudicate(client, STUDY, RS, rmap(root), judgments, min_submitted=2) == len(both) > 0
    suggested = {}
    for rec in iter_records(client, hi.id, include="suggestions"):
        for sug in rec.get("suggestions") or []:
            suggested.setdefault(item_of(rec["external_id"]), []).append((sug["value"], sug["agent"]))
    assert sorted(suggested) == both
    assert all(v == [(0, "j1")] * 3 for v in suggested.values())
    pd.testing.assert_frame_equal(collect(client, STUDY, RS, rmap(root), bigger)[0], ratings)


def test_annotator_isolation(study):
    root, srv = study
    client = owner(srv)
    provision(client, load_roster(root / "roster.yaml"), root / "argilla" / "annotators.csv", ["bn", "or"])
    push(client, make_sample(per_language=2), RS, STUDY, rmap(root), FormOptions())
    meera = as_user(srv, client, "meera")
    assert sorted(d.name for d in meera.datasets) == [dataset_name(STUDY, "ta", "general")]
    bn = client.datasets(dataset_name(STUDY, "bn", "general"), workspace="bn")
    ta = client.datasets(dataset_name(STUDY, "ta", "general"), workspace="ta")
    for path, method in ((f"/api/v1/datasets/{bn.id}", "get"), (f"/api/v1/datasets/{bn.id}/records", "get"),
                         (f"/api/v1/me/datasets/{bn.id}/records/search", "post"),
                         (f"/api/v1/datasets/{ta.id}/records", "get"),
                         (f"/api/v1/datasets/{ta.id}/records/search", "post"), ("/api/v1/users", "get")):
        resp = getattr(meera.http_client, method)(path, **({"json": {}} if method == "post" else {}))
        assert resp.status_code == 403, (path, resp.status_code)
    ws = {w["name"] for w in meera.http_client.get("/api/v1/me/workspaces").json()["items"]}
    assert ws == {"ta"}
    # roster change: meera now reads Odia instead of Tamil
    moved = Roster.model_validate({"annotators": [{"username": "meera", "name": "Meera S", "languages": ["or"]}]})
    rep = provision(client, moved, root / "argilla" / "annotators.csv", ["ta"])
    assert rep.memberships_added == [("meera", "or")] and rep.memberships_removed == [("meera", "ta")]
    assert sorted(d.name for d in meera.datasets) == [dataset_name(STUDY, "or", "general")]
    provision(client, load_roster(root / "roster.yaml"), root / "argilla" / "annotators.csv", ["or"])


def test_browser_annotation_in_tamil(study, tmp_path):
    root, srv = study
    browser_dir = ROOT / "tests" / "browser"
    assert shutil.which("node") and Path("/usr/bin/chromium").exists() and (browser_dir / "node_modules").exists(), \
        "the browser test needs node, Debian chromium and `npm ci` in tests/browser (see .ci/run)"
    client = owner(srv)
    provision(client, load_roster(root / "roster.yaml"), root / "argilla" / "annotators.csv", [])
    push(client, make_sample(per_language=2), RS, STUDY, rmap(root))
    ta = client.datasets(dataset_name(STUDY, "ta", "general"), workspace="ta")
    password = {r["username"]: r["password"] for r in read_passwords(root / "argilla" / "annotators.csv")}["meera"]
    picks = {"linguistic_acceptability": 1, "task_quality": 2, "hallucination": 1}
    revision, comment = "திருத்தப்பட்ட பதில்: சென்னை தமிழ்நாட்டின் தலைநகரம்.", "ஒரு தகவல் பிழை உள்ளது"
    shot = Path(os.environ.get("KASAUTI_FORM_SCREENSHOT") or tmp_path / "form.png")
    job = {"base": srv.url, "username": "meera", "password": password, "datasetId": str(ta.id), "ratings": picks,
           "revision": revision, "comment": comment, "screenshot": str(shot), "out": str(tmp_path / "out.json")}
    (tmp_path / "job.json").write_text(json.dumps(job, ensure_ascii=False))
    proc = subprocess.run(["node", str(browser_dir / "annotate.js"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = json.loads((tmp_path / "out.json").read_text())
    assert seen["meDatasets"] == [ta.name] and ta.name in seen["homeText"]
    assert seen["saveStatus"] in (200, 201) and seen["saveBody"]["status"] == "submitted"
    assert shot.stat().st_size > 10_000

    ratings, revisions = collect(client, STUDY, RS, rmap(root), make_sample(per_language=5))
    mine = ratings[ratings["rater"] == "meera"]
    assert len(mine["item_id"].unique()) == 1
    item = mine["item_id"].iloc[0]
    prompt = make_sample(per_language=5).set_index("item_id").loc[item, "prompt"]
    assert prompt.strip()[:40] in seen["fieldsText"]
    assert dict(zip(mine["metric"], mine["score"])) == {k: float(v) for k, v in picks.items()}
    assert set(mine["status"]) == {"submitted"}
    row = revisions[revisions["annotator"] == "meera"].iloc[0]
    assert (row["item_id"], row["revised_response"], row["comment"]) == (item, revision, comment)


def test_external_url_by_configuration(study, tmp_path):
    """The same commands against 'any Argilla 2.x URL': annotation.url plus the key's env variable."""
    root, srv = study
    ext = tmp_path / "ext"
    (ext / "argilla").mkdir(parents=True)
    shutil.copy(root / "argilla" / RECORD_MAP, ext / "argilla" / RECORD_MAP)
    shutil.copy(root / "sample.parquet", ext / "sample.parquet")
    (ext / "kasauti.yaml").write_text(yaml.safe_dump({
        "name": STUDY, "data": {"path": "unused.jsonl"},
        "annotation": {"url": srv.url, "api_key_env": "KASAUTI_TEST_ARGILLA_KEY"}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KASAUTI_TEST_ARGILLA_KEY", None)
    missing = subprocess.run([sys.executable, "-m", "kasauti", "status", str(ext)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "KASAUTI_TEST_ARGILLA_KEY" in missing.stderr
    env["KASAUTI_TEST_ARGILLA_KEY"] = srv.api_key
    ok = subprocess.run([sys.executable, "-m", "kasauti", "pull", str(ext)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert srv.api_key not in ok.stdout + ok.stderr
    pd.testing.assert_frame_equal(studytables.read(studytables.RATINGS, ext / "ratings.parquet"),
                                  collect(owner(srv), STUDY, RS, rmap(root), pd.read_parquet(root / "sample.parquet"))[0])
    env["KASAUTI_TEST_ARGILLA_KEY"] = "not-a-key-" + srv.api_key[:4]
    bad = subprocess.run([sys.executable, "-m", "kasauti", "status", str(ext)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot use the Argilla server" in bad.stderr
    assert env["KASAUTI_TEST_ARGILLA_KEY"] not in bad.stderr


def test_form_follows_the_rubric(study):
    owner(study[1])  # the SDK builds settings objects through a default client
    fam = RS.families[0]
    settings = build_settings(RS, fam, ["conversation"], FormOptions(min_submitted=3, comment=False))
    ratings = [q for q in settings.questions if type(q).__name__ == "RatingQuestion"]
    assert [(q.name, q.values) for q in ratings] == [(m.name, m.human.values) for m in fam.metrics]
    assert [q.name for q in settings.questions][-1] == "revised_response"
    assert [f.name for f in settings.fields] == ["prompt", "response", "conversation"]
    assert settings.distribution.min_submitted == 3
    assert [(m.name, m.visible_for_annotators) for m in settings.metadata] == [("language", True), ("task", True)]
    text = level_text(fam.metric("hallucination"))
    assert all(f"{lv.value} = {lv.label}: {lv.anchor}" in text for lv in fam.metric("hallucination").human.levels)
    assert render_conversation('[{"role": "user", "content": "नमस्ते"}]') == "**User:**\n\nनमस्ते"
    assert dataset_name("My Study!", "HI", "general") == "my-study-hi-general" and slug("ta") == "ta"


def test_demo_push(study, tmp_path):
    from annotator.demo import demo_push

    _, srv = study
    sample = make_sample(per_language=1, hindi=False)
    user, pw_file, report = demo_push(tmp_path, "demo-study", sample, RS, srv.url, srv.api_key)
    password = {r["username"]: r["password"] for r in read_passwords(pw_file)}[user]
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600 and report.added == len(sample)
    login = rg.Argilla(api_url=srv.url, api_key=api_key_of(owner(srv), user))
    assert sorted(d.name for d in login.datasets if d.name.startswith("demo-study")) == sorted(
        dataset_name("demo-study", lang, "general") for lang in sample["language"].unique())
    resp = login.http_client.post("/api/v1/token", data={"username": user, "password": password})
    assert resp.status_code == 201 and resp.json()["access_token"]  # the password logs in


def test_interrupted_push_resumes(study, tmp_path):
    _, srv = study
    client = owner(srv)
    sample = make_sample(per_language=5, hindi=False)
    sample = sample[sample["language"] == "bn"]

    class Stop(Exception):
        pass

    def stop_after_first(name, done, todo):
        if done < todo:
            raise Stop

    with pytest.raises(Stop):
        push(client, sample, RS, "resume", RecordMap(tmp_path / RECORD_MAP), batch_size=2, progress=stop_after_first)
    ds = client.datasets(dataset_name("resume", "bn", "general"), workspace="bn")
    assert sum(1 for _ in iter_records(client, ds.id)) == 2  # the first batch was committed
    records = RecordMap(tmp_path / RECORD_MAP)
    again = push(client, sample, RS, "resume", records, batch_size=2)
    assert [(d.added, d.unchanged) for d in again.datasets] == [(len(sample) - 2, 2)]
    assert sorted(records.item_of(r["external_id"]) for r in iter_records(client, ds.id)) == sorted(sample["item_id"])


def test_python_api_provision_push_pull(study, tmp_path):
    """The annotation commands from Python on a study directory: each writes its documented tables."""
    import annotator
    from annotator.config import AnnotationConfig

    _, srv = study
    client = owner(srv)
    sample = make_sample(per_language=2)
    studytables.write(studytables.SAMPLE, sample, tmp_path / studytables.SAMPLE.file)
    (tmp_path / "team.yaml").write_text(yaml.safe_dump({"annotators": [
        {"username": "nila", "name": "Nila", "languages": sorted(sample["language"].unique())}]}))
    cfg = AnnotationConfig(min_submitted=1, roster="team.yaml")
    with pytest.raises(ValueError, match="judgments.parquet: no judgments"):
        annotator.push_study(client, tmp_path, "pyapi", RS, cfg, adjudicate=True)
    done = annotator.push_study(client, tmp_path, "pyapi", RS, cfg)
    assert done.provision.users_created == ["nila"] and done.push.added == len(sample) and done.adjudicated is None
    records = studytables.read(studytables.RECORDS, tmp_path / studytables.RECORDS.file)
    assert sorted(records["item_id"]) == sorted(sample["item_id"])
    hi = client.datasets(dataset_name("pyapi", "hi", "general"), workspace="hi")
    values = {"linguistic_acceptability": 2, "task_quality": 1, "hallucination": 0}
    rated = respond(as_user(srv, client, "nila"), hi.id, 1, values, "submitted")
    pulled = annotator.pull_study(client, tmp_path, "pyapi", RS)
    ratings = studytables.read(studytables.RATINGS, tmp_path / studytables.RATINGS.file)
    revisions = studytables.read(studytables.REVISIONS, tmp_path / studytables.REVISIONS.file)
    assert len(ratings) == len(pulled.ratings) == 3 and set(ratings["rater"]) == {"nila"}
    assert list(revisions["item_id"]) == [rmap(tmp_path).item_of(r) for r in rated] and pulled.stale == []
    assert dict(zip(ratings["metric"], ratings["score"])) == values


def _pushed(client, root: Path, name: str) -> dict[str, dict]:
    """Item id -> record (as the server holds it) of every record of study `name`'s datasets."""
    records = rmap(root)
    return {records.item_of(r["external_id"]): r for sd in study_datasets(client, name, RS)
            for r in iter_records(client, sd.id)}


def test_push_random_slice_through_the_cli(study, tmp_path, monkeypatch):
    """`kasauti push --random N --seed S`: only the slice's items reach Argilla, as blind as a full push, and
    slices.parquet records them; the same push sends nothing new, a larger N only the new items, a smaller
    N or another seed is refused in one line."""
    _, srv = study
    client = owner(srv)
    root = tmp_path / "sliced"
    root.mkdir()
    (root / "kasauti.yaml").write_text(yaml.safe_dump({"name": "sliced", "data": {"path": "unused.jsonl"},
                                                       "annotation": {"url": srv.url, "api_key_env": "SLICED_KEY"}}))
    monkeypatch.setenv("SLICED_KEY", srv.api_key)
    sample = make_sample(per_language=3)
    studytables.write(studytables.SAMPLE, sample, root / studytables.SAMPLE.file)

    out = kasauti("push", str(root), "--random", "6", "--seed", "3").stdout
    slices = studytables.read(studytables.SLICES, root / studytables.SLICES.file)
    pushed = _pushed(client, root, "sliced")
    assert len(slices) == 6 and sorted(pushed) == sorted(slices["item_id"])
    assert (slices["seed"] == 3).all() and (slices["inclusion_probability"] == 6 / len(sample)).all()
    assert f"random slice of 6 items (seed 3, inclusion probability {6 / len(sample):.4g})" in out
    for item, rec in pushed.items():  # blind: texts and visible metadata only
        assert rec["metadata"] == {"language": sample.set_index("item_id").loc[item, "language"],
                                   "task": sample.set_index("item_id").loc[item, "task"]}
        assert item not in json.dumps(rec, ensure_ascii=False) and "stratum" not in json.dumps(rec)

    again = kasauti("push", str(root), "--random", "6").stdout  # the slice's seed by default
    assert again.count(" 0 added, 0 updated") == len(study_datasets(client, "sliced", RS)) and "added" in again
    pd.testing.assert_frame_equal(studytables.read(studytables.SLICES, root / studytables.SLICES.file), slices)

    kasauti("push", str(root), "--random", "10")
    grown = studytables.read(studytables.SLICES, root / studytables.SLICES.file)
    now = _pushed(client, root, "sliced")
    assert sorted(now) == sorted(grown["item_id"]) and len(now) == 10 and set(slices["item_id"]) < set(now)
    assert {item: now[item]["id"] for item in pushed} == {item: rec["id"] for item, rec in pushed.items()}  # not re-sent
    assert grown.set_index("item_id").loc[slices["item_id"], "drawn_at"].tolist() == slices["drawn_at"].tolist()

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args, says in ((["--random", "4"], "already holds 10 items"), (["--random", "12", "--seed", "5"], "push with --seed 3")):
        bad = subprocess.run([sys.executable, "-m", "kasauti", "push", str(root), *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert len(_pushed(client, root, "sliced")) == 10


def test_python_api_push_random_slice_resumes_after_a_crash(study, tmp_path):
    """`annotator.push_study(..., random=N)`: slices.parquet is written before anything is sent, so a push
    interrupted after its first batch sends the rest of the same slice when run again."""
    import annotator
    from annotator.config import AnnotationConfig

    _, srv = study
    client = owner(srv)
    sample = make_sample(per_language=3, hindi=False)
    studytables.write(studytables.SAMPLE, sample, tmp_path / studytables.SAMPLE.file)
    cfg = AnnotationConfig(min_submitted=1)

    class Stop(Exception):
        pass

    def stop(name, done, todo):
        raise Stop

    with pytest.raises(Stop):
        annotator.push_study(client, tmp_path, "pyslice", RS, cfg, random=5, seed=2, batch_size=1, progress=stop)
    drawn = studytables.read(studytables.SLICES, tmp_path / studytables.SLICES.file)
    assert len(drawn) == 5 and len(_pushed(client, tmp_path, "pyslice")) == 1
    done = annotator.push_study(client, tmp_path, "pyslice", RS, cfg, random=5)
    assert done.push.added == 4 and sorted(_pushed(client, tmp_path, "pyslice")) == sorted(drawn["item_id"])
    pd.testing.assert_frame_equal(done.slice, drawn)
    with pytest.raises(ValueError, match="draws a random slice of the sample's items, not pairs"):
        annotator.push_study(client, tmp_path, "pyslice", RS, cfg, random=5, pairs=True)


def test_escalated_items_pushed_later_fit_their_datasets_form(study, tmp_path):
    """An escalation dataset's form has the optional fields of every sample item of its language and family:
    an item with a conversation escalated after one without is pushed, not refused."""
    from annotator.escalate import escalate, escalation_study

    _, srv = study
    client = owner(srv)
    sample = make_sample(per_language=1)
    records = RecordMap(tmp_path / RECORD_MAP)
    assert escalate(client, sample, ["hi-001|hand"], RS, "late", records).added == 1
    assert escalate(client, sample, ["hi-000|hand"], RS, "late", records).added == 1  # has a conversation
    ds = client.datasets(dataset_name(escalation_study("late"), "hi", "general"), workspace="hi")
    assert "conversation" in [f.name for f in ds.settings.fields]
    assert sorted(records.item_of(r["external_id"]) for r in iter_records(client, ds.id)) == ["hi-000|hand", "hi-001|hand"]
