"""Pairwise comparison by native speakers against the real embedded Argilla server (issue 9).

One server for the module; CLI commands run as subprocesses with the worktree's code. Annotators
answer with their own API keys (and, in the browser test, in the real UI); everything their key
can read is searched for model names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import argilla as rg
import httpx
import pandas as pd
import pytest
import yaml
from argilla._models._record._response import UserResponseModel

import rubrics
import studytables
from annotator.forms import (COMPARISON, PAIR_LABELS, FormOptions, build_pair_settings, pair_dataset_name, pieces_text,
                             text_pieces)
from annotator.pairwise import collect_comparisons, push_pairs
from annotator.people import api_key_of, load_roster, provision, read_passwords
from annotator.pull import PullError, study_datasets
from annotator.push import PushError, bulk_upsert, iter_records
from annotator.records import PAIR_MAP, RecordMap
from sampling.lengths import grapheme_length
from sampling.pairs import make_pairs
from studytables import COMPARISONS, PAIRS
from tests.annotator_data import kasauti, make_sample, write_study

ROOT = Path(__file__).resolve().parents[1]
STUDY = "pstudy"
RS = rubrics.load_rubric_set("pariksha")
CRITERIA = [m.name for m in RS.family("general").metrics]
ROSTER = {"annotators": [
    {"username": "ravi", "name": "Ravi K", "languages": ["ta"]},
    {"username": "tara", "name": "Tara S", "languages": ["ta", "bn"]},
    {"username": "uma", "name": "Uma P", "languages": ["or"]},
]}
warnings.filterwarnings("ignore", module="argilla")


@pytest.fixture(scope="module")
def study(tmp_path_factory, server_python):
    from annotator.server import EmbeddedServer

    root = tmp_path_factory.mktemp("pstudy")
    write_study(root, STUDY, ROSTER)
    sample = make_sample(per_language=6)
    sample.to_parquet(root / "sample.parquet")
    pairs = make_pairs(sample, "balanced", seed=3, n_per_prompt=4)
    assert set(pairs["shown_order"]) == {"ab", "ba"}
    studytables.write(PAIRS, pairs, root / PAIRS.file)
    srv = EmbeddedServer(root / "argilla", port=0).start()
    try:
        yield root, srv
    finally:
        srv.stop()


def owner(srv) -> rg.Argilla:
    return rg.Argilla(api_url=srv.url, api_key=srv.api_key)


def pmap(root: Path) -> RecordMap:
    return RecordMap(root / "argilla" / PAIR_MAP, "pair_id")


def pair_counts(client) -> dict[str, int]:
    return {sd.name: sum(1 for _ in iter_records(client, sd.id))
            for sd in study_datasets(client, STUDY, RS, pair_dataset_name)}


def respond_all(client: rg.Argilla, dataset_id, answers: list[dict]) -> list[dict]:
    """As the annotator behind `client`: answer their pending records in turn with `answers`; returns the records."""
    resp = client.http_client.post(
        f"/api/v1/me/datasets/{dataset_id}/records/search", params={"limit": len(answers)},
        json={"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                    "values": ["pending"]}]}})
    resp.raise_for_status()
    records = [item["record"] for item in resp.json()["items"]]
    for rec, values in zip(records, answers):
        model = UserResponseModel(values={k: {"value": v} for k, v in values.items()}, status="submitted",
                                  user_id=client.me.id)
        client.api.records.create_record_response(rec["id"], model)
    return records[:len(answers)]


def model_shown(rec: dict, pair: pd.Series, sample: pd.DataFrame, side: str) -> str:
    """The model whose response the record shows as `side` ("a" or "b"), found by its text in the sample."""
    texts = sample.set_index("item_id")["response"]
    shown = pieces_text(rec["fields"][COMPARISON][side])
    [model] = [pair[f"model_{x}"] for x in "ab" if texts[pair[f"item_{x}"]] == shown]
    return model


def readable_by(url: str, key: str) -> tuple[str, int]:
    """Everything the holder of `key` can read about their datasets through the API (what it is refused,
    403, it cannot read), as one text, and the number of records its searches list."""
    seen, n = [], 0
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": key}, timeout=60) as http:
        def get(path, refusable=False, **kw):
            r = http.get(path, **kw)
            assert r.status_code == 200 or (refusable and r.status_code == 403), (path, r.status_code)
            seen.append(r.text)
            return r.json()

        get("/api/v1/me")
        get("/api/v1/me/workspaces")
        for ds in get("/api/v1/me/datasets")["items"]:
            for part in ("", "/fields", "/questions", "/vectors-settings", "/progress", "/users/progress"):
                get(f"/api/v1/datasets/{ds['id']}{part}", refusable=True)
            for prop in get(f"/api/v1/me/datasets/{ds['id']}/metadata-properties")["items"]:
                get(f"/api/v1/metadata-properties/{prop['id']}/metrics", refusable=True)
            get(f"/api/v1/me/datasets/{ds['id']}/metrics")
            get(f"/api/v1/datasets/{ds['id']}/records", refusable=True, params={"include": "responses"})
            for status in ("pending", "submitted"):
                r = http.post(f"/api/v1/me/datasets/{ds['id']}/records/search",
                              params={"limit": 1000, "include": "responses"},
                              json={"filters": {"and": [{"type": "terms", "values": [status],
                                                         "scope": {"entity": "response", "property": "status"}}]}})
                assert r.status_code == 200, r.text
                seen.append(r.text)
                for item in r.json()["items"]:
                    n += 1
                    get(f"/api/v1/records/{item['record']['id']}", refusable=True)
                    get(f"/api/v1/records/{item['record']['id']}/suggestions", refusable=True)
    return "\n".join(seen), n


def test_pairwise_push_respond_pull(study):
    root, srv = study
    client = owner(srv)
    sample = pd.read_parquet(root / "sample.parquet")
    pairs = studytables.read(PAIRS, root / PAIRS.file)

    # push through the CLI: one pairwise dataset per language, every pair once; re-push sends nothing
    out = kasauti("push", str(root), "--pairs").stdout
    want = {pair_dataset_name(STUDY, lang, "general"): int(n) for lang, n in pairs["language"].value_counts().items()}
    assert pair_counts(client) == want
    assert len(pmap(root)) == len(pairs)
    again = kasauti("push", str(root), "--pairs").stdout
    stats = [tuple(map(int, m)) for m in re.findall(r"(\d+) pairs, (\d+) added, (\d+) updated, (\d+) unchanged", again)]
    assert [s[1:3] for s in stats] == [(0, 0)] * len(want) and sum(s[3] for s in stats) == len(pairs)
    assert pair_counts(client) == want and len(pmap(root)) == len(pairs) and " pairs, " in out

    # the form: one field with the prompt, A and B (Handlebars' escaping only); one A/B/tie question per
    # criterion; only language and task as metadata
    ta = client.datasets(pair_dataset_name(STUDY, "ta", "general"), workspace="ta")
    [field] = ta.settings.fields
    assert (field.name, type(field), field.advanced_mode) == (COMPARISON, rg.CustomField, False)
    assert "{{{" not in field.template and all(f'id="kasauti-{k}"' in field.template for k in ("prompt", "a", "b"))
    labels = {q.name: q.labels for q in ta.settings.questions if type(q).__name__ == "LabelQuestion"}
    assert list(labels) == CRITERIA and all(v == list(PAIR_LABELS) for v in labels.values())
    assert [m.name for m in ta.settings.metadata] == ["language", "task"]
    described = {q.name: q.description for q in ta.settings.questions}
    assert all(lv.anchor in described[m.name] for m in RS.family("general").metrics for lv in m.human.levels)
    assert ta.settings.guidelines.startswith("# Pairwise comparison") and "Linguistic acceptability" in ta.settings.guidelines

    # annotators answer with their own keys; the records they see in both orders
    keys = {u: api_key_of(client, u) for u in ("ravi", "tara")}
    ravi, tara = (rg.Argilla(api_url=srv.url, api_key=keys[u]) for u in ("ravi", "tara"))
    answers = [dict(zip(CRITERIA, ("A", "B", "tie")), justification="A is more fluent"),
               dict(zip(CRITERIA, ("B", "B", "A")))]
    n_ta = want[ta.name]
    ravi_recs = respond_all(ravi, ta.id, answers * (n_ta // 2) + answers[:n_ta % 2])
    tara_recs = respond_all(tara, ta.id, answers[:1])
    assert len(ravi_recs) == n_ta and len(tara_recs) == 1

    kasauti("pull", str(root))
    comparisons = studytables.read(COMPARISONS, root / COMPARISONS.file)
    by_pair = pairs.set_index("pair_id")
    item_of = pmap(root).item_of
    expected = []
    for who, recs in (("ravi", ravi_recs), ("tara", tara_recs)):
        for rec, values in zip(recs, answers * n_ta):
            pair_id = item_of(rec["external_id"])
            pair = by_pair.loc[pair_id]
            shown = {"A": model_shown(rec, pair, sample, "a"), "B": model_shown(rec, pair, sample, "b")}
            for criterion in CRITERIA:
                label = values[criterion]
                outcome = "tie" if label == "tie" else "a" if shown[label] == pair["model_a"] else "b"
                order = "ab" if shown["A"] == pair["model_a"] else "ba"
                expected.append((pair_id, criterion, who, outcome, order, values.get("justification")))
    got = [(r.pair_id, r.criterion, r.rater, r.outcome, r.shown_order, r.justification if pd.notna(r.justification) else None)
           for r in comparisons.itertuples()]
    assert sorted(got) == sorted(expected)
    assert len(comparisons) == (n_ta + 1) * len(CRITERIA)
    assert {o for (_, _, _, _, o, _) in expected} == {"ab", "ba"}  # both orders answered
    assert set(comparisons["rater_kind"]) == {"human"} and set(comparisons["status"]) == {"submitted"}
    assert set(comparisons["language"]) == {"ta"}
    lengths = sample.set_index("item_id")["length"]
    row = comparisons.iloc[0]
    assert row["length_a"] == lengths[by_pair.loc[row["pair_id"], "item_a"]]

    # nothing an annotator's key can read names a model or an item id
    text, listed = readable_by(srv.url, keys["tara"])
    assert listed == sum(n for name, n in want.items() if "-ta-" in name or "-bn-" in name)
    secrets = set(pairs["model_a"]) | set(pairs["model_b"]) | set(pairs["item_a"]) | set(pairs["item_b"])
    secrets |= {m.split("/")[-1] for m in secrets if "/" in m}
    assert not [s for s in secrets if s in text]


def test_pairwise_order_and_text_changes_are_refused(study):
    """Pull refuses a pairs.parquet whose order no longer matches what was shown; push refuses new texts under answers."""
    root, srv = study
    client = owner(srv)
    provision(client, load_roster(root / "roster.yaml"), root / "argilla" / "annotators.csv", [])
    sample = pd.read_parquet(root / "sample.parquet")
    pairs = studytables.read(PAIRS, root / PAIRS.file)
    push_pairs(client, pairs, sample, RS, STUDY, pmap(root))
    od = client.datasets(pair_dataset_name(STUDY, "or", "general"), workspace="or")
    uma = rg.Argilla(api_url=srv.url, api_key=api_key_of(client, "uma"))
    [rec] = respond_all(uma, od.id, [dict(zip(CRITERIA, ("A", "A", "A")))])
    pair_id = pmap(root).item_of(rec["external_id"])

    flipped = pairs.copy()
    at = flipped["pair_id"] == pair_id
    flipped.loc[at, "shown_order"] = flipped.loc[at, "shown_order"].map({"ab": "ba", "ba": "ab"})
    with pytest.raises(PullError, match=rf"1 pair\(s\) show a response A other than .*'{pair_id}'"):
        collect_comparisons(client, STUDY, RS, pmap(root), flipped, sample)
    before = pair_counts(client)
    with pytest.raises(PushError, match=rf"changed their texts after annotators responded: pair '{pair_id}' \(3 ratings"
                                        r".* Restore the old texts in the sample and pairs.parquet"):
        push_pairs(client, flipped, sample, RS, STUDY, pmap(root))
    assert pair_counts(client) == before
    uma_rows = collect_comparisons(client, STUDY, RS, pmap(root), pairs, sample).query("rater == 'uma'")
    shown_a = "a" if pairs.set_index("pair_id").loc[pair_id, "shown_order"] == "ab" else "b"
    assert list(uma_rows["outcome"]) == [shown_a] * len(CRITERIA)


def test_pairs_that_cannot_be_pushed(study, tmp_path):
    root, srv = study
    sample = pd.read_parquet(root / "sample.parquet")
    pairs = studytables.read(PAIRS, root / PAIRS.file)
    bad = pairs.copy()
    bad.loc[2, "item_b"] = "nowhere|x"
    with pytest.raises(PushError, match=r"^pairs: row 3, column 'item_b': expected an item_id of sample.parquet, "
                                        r"got 'nowhere\|x' \(1 such row\(s\)\); write the pairs again"):
        push_pairs(owner(srv), bad, sample, RS, STUDY, pmap(root))
    boosted = pairs.assign(item_b=pairs["item_a"])
    with pytest.raises(PushError, match=r"row 1, column 'item_b': expected an item_id of boosted.parquet .*kasauti boost"):
        push_pairs(owner(srv), boosted, sample, RS, STUDY, pmap(root))

    # the CLI: a study without pairs.parquet, on the same server through annotation.url
    ext = tmp_path / "ext"
    (ext / "argilla").mkdir(parents=True)
    shutil.copy(root / "sample.parquet", ext / "sample.parquet")
    (ext / "kasauti.yaml").write_text(yaml.safe_dump({
        "name": STUDY, "data": {"path": "unused.jsonl"},
        "annotation": {"url": srv.url, "api_key_env": "KASAUTI_TEST_ARGILLA_KEY"}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), KASAUTI_TEST_ARGILLA_KEY=srv.api_key)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kasauti", *args, str(ext)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    pushed = cli("push", "--pairs")
    ext_map = RecordMap(ext / "argilla" / PAIR_MAP, "pair_id")  # pairs were pushed once, pairs.parquet is gone since
    ext_map.assign(pairs["pair_id"])
    ext_map.save()
    for proc in (pushed, cli("pull")):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{ext / PAIRS.file}: no pairs; write them first" in " ".join(proc.stderr.split())
        assert "Traceback" not in proc.stderr and srv.api_key not in proc.stdout + proc.stderr
    assert not (ext / COMPARISONS.file).exists()


# Record texts that would run as script, or be garbled, if the UI put them into its page unescaped.
HOSTILE = ("\n</script><script>parent.kasautiPwned = 1</script><img src=x onerror=\"parent.kasautiPwned = 2\">"
           " $' $& $$ $` #TEMPLATE# #RECORD_OBJECT# {{record.id}} {{{record.id}}} <b>not bold</b> &amp; \\u003c")


def test_pair_texts_carry_no_script_breaking_characters():
    """What a pairwise record carries has no `<`, `$` or `#` (see forms.SPECIAL), and gives the text back exactly."""
    for text in (HOSTILE, "", "plain", "<<$$##", "বাংলা # শিরোনাম $5 < 6"):
        pieces = text_pieces(text)
        assert pieces_text(pieces) == text
        assert not set(json.dumps(pieces, ensure_ascii=False)) & set("<$#")


def test_browser_pairwise_comparison(study, tmp_path):
    """An annotator sees A and B side by side in the real UI, texts exactly as written (script-like texts
    inert), rates, and pull maps the answers back; no model name or item id reaches the browser."""
    root, srv = study
    browser_dir = ROOT / "tests" / "browser"
    assert shutil.which("node") and Path("/usr/bin/chromium").exists() and (browser_dir / "node_modules").exists(), \
        "the browser test needs node, Debian chromium and `npm ci` in tests/browser (see .ci/run)"
    client = owner(srv)
    provision(client, load_roster(root / "roster.yaml"), root / "argilla" / "annotators.csv", [])
    sample = pd.read_parquet(root / "sample.parquet")
    bn = sample["language"] == "bn"
    sample.loc[bn, "prompt"] += HOSTILE
    sample.loc[bn, "response"] += HOSTILE
    pairs = studytables.read(PAIRS, root / PAIRS.file)
    study_name, records = "pside", RecordMap(tmp_path / PAIR_MAP, "pair_id")
    push_pairs(client, pairs, sample, RS, study_name, records)
    ds = client.datasets(pair_dataset_name(study_name, "bn", "general"), workspace="bn")
    password = {r["username"]: r["password"] for r in read_passwords(root / "argilla" / "annotators.csv")}["tara"]
    picks = dict(zip(CRITERIA, ("B", "tie", "A")))
    job = {"base": srv.url, "username": "tara", "password": password, "datasetId": str(ds.id),
           "labels": {q: PAIR_LABELS[v] for q, v in picks.items()}, "justification": "B উত্তরটি বেশি স্পষ্ট",
           "screenshot": str(tmp_path / "pair.png"), "out": str(tmp_path / "out.json")}
    (tmp_path / "job.json").write_text(json.dumps(job, ensure_ascii=False))
    proc = subprocess.run(["node", str(browser_dir / "compare.js"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = json.loads((tmp_path / "out.json").read_text())
    assert seen["saveStatus"] in (200, 201) and seen["saveBody"]["status"] == "submitted"

    secrets = set(pairs["model_a"]) | set(pairs["model_b"]) | set(pairs["item_a"]) | set(pairs["item_b"])
    secrets |= {m.split("/")[-1] for m in secrets if "/" in m}
    assert seen["pageText"] and seen["apiText"]
    assert not [s for s in secrets if s in seen["pageText"] or s in seen["apiText"]]

    rows = collect_comparisons(client, study_name, RS, records, pairs, sample).query("rater == 'tara'")
    assert rows["pair_id"].nunique() == 1 and set(rows["language"]) == {"bn"}
    pair = pairs.set_index("pair_id").loc[rows["pair_id"].iloc[0]]
    items = sample.set_index("item_id")
    first, second = ("a", "b") if pair["shown_order"] == "ab" else ("b", "a")
    # exactly the texts, in the recorded order, none of them run as script or read as HTML or template
    shown = {k: v["text"] for k, v in seen["sections"].items()}
    assert shown == {"prompt": items.loc[pair[f"item_{first}"], "prompt"],
                     "a": items.loc[pair[f"item_{first}"], "response"],
                     "b": items.loc[pair[f"item_{second}"], "response"]}
    assert seen["pwned"] is None
    # side by side: A left of B, tops aligned, not overlapping, both below the prompt
    box = {k: v["box"] for k, v in seen["sections"].items()}
    assert abs(box["a"]["y"] - box["b"]["y"]) <= 2 and min(box["a"]["width"], box["b"]["width"]) >= 240
    assert box["a"]["x"] + box["a"]["width"] <= box["b"]["x"]
    assert box["prompt"]["y"] + box["prompt"]["height"] <= box["a"]["y"]
    outcome = {"A": first, "B": second, "tie": "tie"}
    assert dict(zip(rows["criterion"], rows["outcome"])) == {c: outcome[v] for c, v in picks.items()}
    assert set(rows["justification"]) == {job["justification"]} and set(rows["shown_order"]) == {pair["shown_order"]}


def test_pairwise_dataset_of_the_stacked_layout_is_refused_and_pulled(study, tmp_path):
    """A pairwise dataset made by an older kasauti (prompt, A and B as stacked text fields): push refuses it
    and leaves it untouched, pull still maps its answers back."""
    root, srv = study
    client = owner(srv)
    provision(client, load_roster(root / "roster.yaml"), root / "argilla" / "annotators.csv", [])
    sample = pd.read_parquet(root / "sample.parquet")
    pairs = studytables.read(PAIRS, root / PAIRS.file).query("language == 'or'")
    now = build_pair_settings(RS, RS.family("general"), FormOptions())
    stacked = rg.Settings(guidelines=now.guidelines, questions=now.questions, metadata=now.metadata,
                          fields=[rg.TextField(name=n) for n in ("prompt", "response_a", "response_b")])
    name = pair_dataset_name("pold", "or", "general")
    old = rg.Dataset(name=name, workspace="or", settings=stacked, client=client).create()
    records = RecordMap(tmp_path / PAIR_MAP, "pair_id")
    texts = sample.set_index("item_id")[["prompt", "response"]]
    pair = pairs.iloc[0]
    first, second = (pair["item_a"], pair["item_b"])[::1 if pair["shown_order"] == "ab" else -1]
    [record_id] = records.assign(pairs["pair_id"].iloc[:1])
    records.save()
    bulk_upsert(client, old.id, [{"external_id": record_id, "metadata": {"language": "or", "task": pair["task"]},
                                  "fields": {"prompt": texts.loc[first, "prompt"], "response_a": texts.loc[first, "response"],
                                             "response_b": texts.loc[second, "response"]}}])
    with pytest.raises(PushError, match=rf"^dataset or/{name} was created by an older kasauti \(the responses one "
                                        r"above the other, not side by side\); pull its comparisons"):
        push_pairs(client, pairs, sample, RS, "pold", records)
    assert sum(1 for _ in iter_records(client, old.id)) == 1

    uma = rg.Argilla(api_url=srv.url, api_key=api_key_of(client, "uma"))
    respond_all(uma, old.id, [dict(zip(CRITERIA, ("B", "B", "tie")))])
    rows = collect_comparisons(client, "pold", RS, records, pairs, sample)
    b_model = "b" if pair["shown_order"] == "ab" else "a"
    assert dict(zip(rows["criterion"], rows["outcome"])) == dict(zip(CRITERIA, (b_model, b_model, "tie")))
    assert set(rows["pair_id"]) == {pair["pair_id"]}


def test_interrupted_pairwise_push_resumes(study, tmp_path):
    """A push stopped after its first committed batch sends only the rest when run again, under the same ids."""
    root, srv = study
    client = owner(srv)
    sample = pd.read_parquet(root / "sample.parquet")
    pairs = studytables.read(PAIRS, root / PAIRS.file).query("language == 'bn'")
    assert len(pairs) > 2

    class Stop(Exception):
        pass

    def stop_after_first(name, done, todo):
        if done < todo:
            raise Stop

    with pytest.raises(Stop):
        push_pairs(client, pairs, sample, RS, "presume", RecordMap(tmp_path / PAIR_MAP, "pair_id"), batch_size=2,
                   progress=stop_after_first)
    ds = client.datasets(pair_dataset_name("presume", "bn", "general"), workspace="bn")
    assert sum(1 for _ in iter_records(client, ds.id)) == 2
    records = RecordMap(tmp_path / PAIR_MAP, "pair_id")
    again = push_pairs(client, pairs, sample, RS, "presume", records, batch_size=2)
    assert [(d.added, d.unchanged) for d in again.datasets] == [(len(pairs) - 2, 2)]
    assert sorted(records.item_of(r["external_id"]) for r in iter_records(client, ds.id)) == sorted(pairs["pair_id"])


def test_boosted_vs_original_push_respond_pull_report_blind(study, tmp_path):
    """`kasauti pairs --boosted`, `push --pairs`, annotators answer, `pull`, `report`: each item's original and
    boosted version in the recorded order, outcomes in the versions' terms, the win rate in the report, and
    nothing an annotator's key reads says which version is which."""
    _, srv = study
    root = tmp_path / "bstudy"
    (root / "argilla").mkdir(parents=True)
    sample = make_sample(per_language=6, hindi=False)
    sample.to_parquet(root / "sample.parquet")
    ta = sample[sample["language"].isin(["ta", "bn"])]
    boosted = pd.DataFrame({
        "item_id": ta["item_id"], "language": ta["language"], "task": ta["task"], "prompt": ta["prompt"], "context": "",
        "response": ta["response"] + " (सुधार: स्पष्ट)", "original_prompt": ta["prompt"], "original_context": "",
        "original_response": ta["response"], "edit_distance": 0.1, "source_model": ta["source_model"],
        "booster": "0" * 64, "params": "{}"})
    studytables.write(studytables.BOOSTED, boosted, root / studytables.BOOSTED.file)
    shutil.copy(study[0] / "roster.yaml", root / "roster.yaml")
    (root / "kasauti.yaml").write_text(yaml.safe_dump({
        "name": "bstudy", "data": {"path": "unused.jsonl"},
        "annotation": {"url": srv.url, "api_key_env": "KASAUTI_TEST_ARGILLA_KEY", "roster": "roster.yaml"}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), KASAUTI_TEST_ARGILLA_KEY=srv.api_key)

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "kasauti", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return " ".join(proc.stdout.split())

    assert f"{len(ta)} pairs and 0 repeats" in cli("pairs", str(root), "--boosted", "--seed", "1")
    pairs = studytables.read(PAIRS, root / PAIRS.file)
    assert set(pairs["shown_order"]) == {"ab", "ba"} and (pairs["item_a"] == pairs["item_b"]).all()
    cli("push", str(root), "--pairs")
    client = owner(srv)
    ds = client.datasets(pair_dataset_name("bstudy", "ta", "general"), workspace="ta")
    ravi = rg.Argilla(api_url=srv.url, api_key=api_key_of(client, "ravi"))
    n_ta = int((pairs["language"] == "ta").sum())
    recs = respond_all(ravi, ds.id, [dict(zip(CRITERIA, ("A", "A", "tie")))] * n_ta)
    assert len(recs) == n_ta
    by_pair = pairs.set_index("pair_id")
    original = sample.set_index("item_id")["response"]
    revised = boosted.set_index("item_id")["response"]
    for rec in recs:  # response A is the version the recorded order puts first
        pair = by_pair.loc[pmap(root).item_of(rec["external_id"])]
        first, second = (original, revised) if pair["shown_order"] == "ab" else (revised, original)
        shown = tuple(pieces_text(rec["fields"][COMPARISON][side]) for side in "ab")
        assert shown == (first[pair["item_a"]], second[pair["item_a"]])

    cli("pull", str(root))
    comparisons = studytables.read(COMPARISONS, root / COMPARISONS.file)
    assert len(comparisons) == n_ta * len(CRITERIA) and set(comparisons["rater"]) == {"ravi"}
    for r in comparisons.itertuples():  # "A" = the version shown first, in the versions' terms
        want = "tie" if r.criterion == CRITERIA[2] else "a" if r.shown_order == "ab" else "b"
        assert (r.outcome, r.model_a, r.model_b) == (want, "original", "boosted")
        assert r.length_b == r.length_a + grapheme_length(" (सुधार: स्पष्ट)")  # lengths of the texts shown

    # the report: boosted over original, per language, ties half
    from reports.pairwise.winrate import win_rate

    assert "pairwise.json" in cli("report", str(root))  # no direct ratings: the pairwise statistics alone
    report = json.loads((root / "report" / "pairwise.json").read_text(encoding="utf-8"))
    got = {(r["criterion"], r["language"]): r for r in report["win_rates"]}
    table = win_rate(comparisons, "boosted", "original", n_boot=1000, seed=0)
    assert len(got) == len(table) > 0
    for r in table.itertuples():
        g = got[(r.criterion, r.language)]
        assert (g["model"], g["over"], g["raters"], g["wins"], g["losses"], g["ties"]) == ("boosted", "original", "humans",
                                                                                            r.wins, r.losses, r.ties)
    n_ba = int((pairs.query("language == 'ta'")["shown_order"] == "ba").sum())
    assert got[(CRITERIA[0], "ta")]["win_rate"] == pytest.approx(n_ba / n_ta)
    assert got[(CRITERIA[2], "ta")]["win_rate"] == 0.5

    # blind: nothing ravi's key reads names a version, an item id or the order
    text, _ = readable_by(srv.url, api_key_of(client, "ravi"))
    secrets = {"original", "boosted", "shown_order", *pairs["item_a"], *pairs["pair_id"]}
    assert not [s for s in secrets if s.lower() in text.lower()]
