"""A record re-indexed by a re-push must be the one the annotator's queue and filters see."""

import warnings

import argilla as rg
from argilla._models._record._response import UserResponseModel

import rubrics
from annotator.forms import dataset_name
from annotator.people import Roster, api_key_of, provision
from annotator.push import push
from annotator.records import RecordMap
from tests.annotator_data import make_sample

RS = rubrics.load_rubric_set("pariksha")
PENDING = {"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]}]}}


def test_repushed_record_leaves_the_pending_queue_once_answered(embedded_server, tmp_path):
    warnings.filterwarnings("ignore", module=r"argilla\.")
    owner = rg.Argilla(api_url=embedded_server.url, api_key=embedded_server.api_key)
    sample = make_sample(per_language=3, hindi=False)
    sample = sample[sample["language"] == "bn"].reset_index(drop=True)
    provision(owner, Roster.model_validate({"annotators": [{"username": "u1", "name": "U", "languages": ["bn"]}]}), tmp_path / "pw.csv")
    records = RecordMap(tmp_path / "records.parquet")
    push(owner, sample, RS, "st", records)
    ds = owner.datasets(dataset_name("st", "bn", "general"), workspace="bn")
    owner.http_client.post(f"/api/v1/datasets/{ds.id}/records/search", json={}).raise_for_status()  # caches the order
    sample.loc[0, "response"] += " (revised)"
    assert [(d.added, d.updated) for d in push(owner, sample, RS, "st", records).datasets] == [(0, 1)]
    user = rg.Argilla(api_url=embedded_server.url, api_key=api_key_of(owner, "u1"))

    def pending() -> dict[str, str]:
        r = user.http_client.post(f"/api/v1/me/datasets/{ds.id}/records/search", params={"limit": 50}, json=PENDING)
        r.raise_for_status()
        return {i["record"]["external_id"]: i["record"]["id"] for i in r.json()["items"]}

    target = records.assign([sample.loc[0, "item_id"]])[0]
    before = pending()
    values = {"linguistic_acceptability": {"value": 1}, "task_quality": {"value": 1}, "hallucination": {"value": 0}}
    user.api.records.create_record_response(before[target], UserResponseModel(values=values, status="submitted", user_id=user.me.id))
    after = pending()
    assert target not in after and len(after) == len(before) - 1
