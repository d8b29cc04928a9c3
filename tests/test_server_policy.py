"""Blind rating through the API: every route of the running server, called with annotator keys.

Two annotators of one language (``asha``, ``bina``: workspace ``bn``) and one of another
(``tamil``: workspace ``ta``). The routes come from the server's own OpenAPI document, not a
hand-picked list; each is called with real ids substituted for its path parameters.
"""

from __future__ import annotations

import itertools
import json
import re

import argilla as rg
import httpx
import pytest

SECRET_STRATUM, SECRET_MODEL = "bn/culture-HIDDEN", "model-HIDDEN-xyz"
HIDDEN = ("stratum", "source_model", "length_bin")
PEOPLE = {"asha": "bn", "bina": "bn", "tamil": "ta"}
# what each annotator writes: a rating and a revised text that no one else may read
REVISION = {who: f"revision-of-{who}-PRIVATE" for who in PEOPLE}


def _settings() -> rg.Settings:
    return rg.Settings(
        fields=[rg.TextField(name="prompt"), rg.TextField(name="response")],
        questions=[rg.RatingQuestion(name="fluency", values=[0, 1, 2]),
                   rg.TextQuestion(name="revised_response", required=False)],
        metadata=[rg.TermsMetadataProperty(name="language"),
                  rg.TermsMetadataProperty(name="stratum", visible_for_annotators=False),
                  rg.TermsMetadataProperty(name="source_model", visible_for_annotators=False),
                  rg.IntegerMetadataProperty(name="length_bin", visible_for_annotators=False)],
        distribution=rg.TaskDistribution(min_submitted=2),
    )


class World:
    """Ids, keys and the texts that must not leak, built through the real SDK and API."""

    def __init__(self, url: str, owner_key: str):
        self.url, self.owner_key = url, owner_key
        owner = rg.Argilla(api_url=url, api_key=owner_key)
        self.keys, self.user_ids, self.datasets, self.workspaces = {}, {}, {}, {}
        for lang in ("bn", "ta"):
            ws = rg.Workspace(name=lang, client=owner).create()
            self.workspaces[lang] = str(ws.id)
            ds = rg.Dataset(name=f"study-{lang}-secretname", workspace=lang, settings=_settings(), client=owner).create()
            ds.records.log([rg.Record(id=f"{lang}-{i}", fields={"prompt": f"{lang} prompt {i}",
                                                                   "response": f"{lang}-response-text-{i}"},
                                      metadata={"language": lang, "stratum": SECRET_STRATUM if i % 2 else "bn/x-HIDDEN",
                                                "source_model": SECRET_MODEL, "length_bin": 3})
                            for i in range(4)])
            self.datasets[lang] = str(ds.id)
        for who, lang in PEOPLE.items():
            user = rg.User(username=who, password=f"{who}-password-123", role="annotator", client=owner).create()
            user.add_to_workspace(owner.workspaces(lang))
            self.keys[who] = owner.http_client.get(f"/api/v1/users/{user.id}").json()["api_key"]
            self.user_ids[who] = str(user.id)
        self.records = {lang: self._records(lang) for lang in ("bn", "ta")}
        self.responses = {}
        for who, lang in PEOPLE.items():  # everyone answers the first record of their language
            r = self.client(who).post(f"/api/v1/records/{self.records[lang][0]}/responses", json={
                "values": {"fluency": {"value": 2}, "revised_response": {"value": REVISION[who]}},
                "status": "submitted"})
            assert r.status_code == 201, r.text
            self.responses[who] = r.json()["id"]
        with self.client() as c:
            self.ids = {  # path parameter -> real ids to substitute (both languages, other people's)
                "dataset_id": list(self.datasets.values()),
                "workspace_id": list(self.workspaces.values()),
                "record_id": [self.records["bn"][0], self.records["ta"][0]],
                "response_id": list(self.responses.values()),
                "user_id": list(self.user_ids.values()),
                "metadata_property_id": [p["id"] for d in self.datasets.values() for p in
                                         c.get(f"/api/v1/me/datasets/{d}/metadata-properties").json()["items"]],
                "field_id": [c.get(f"/api/v1/datasets/{d}/fields").json()["items"][0]["id"] for d in self.datasets.values()],
                "question_id": [c.get(f"/api/v1/datasets/{d}/questions").json()["items"][0]["id"]
                                for d in self.datasets.values()],
                "provider": ["huggingface"],
            }

    def _records(self, lang: str) -> list:
        """Record ids of a language's dataset, by external id."""
        with self.client() as c:
            items = c.post(f"/api/v1/datasets/{self.datasets[lang]}/records/search", json={},
                           params={"limit": 100}).json()["items"]
        return [it["record"]["id"] for it in sorted(items, key=lambda it: it["record"]["external_id"])]

    def client(self, who: str = "owner") -> httpx.Client:
        key = self.owner_key if who == "owner" else self.keys[who]
        return httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": key}, timeout=60, trust_env=False)

    def owner_view(self) -> dict:
        """Every record with every response, and the datasets, users and workspaces, as the owner sees them."""
        with self.client() as c:
            out = {lang: c.post(f"/api/v1/datasets/{d}/records/search", json={},
                                params={"limit": 100, "include": ["responses"]}).json()["items"]
                   for lang, d in self.datasets.items()}
            out["users"] = sorted(u["username"] for u in c.get("/api/v1/users").json()["items"])
            out["datasets"] = sorted(d["name"] for d in c.get("/api/v1/me/datasets").json()["items"])
        return out


@pytest.fixture(scope="module")
def world(server_python, tmp_path_factory):
    from annotator.server import EmbeddedServer

    with EmbeddedServer(tmp_path_factory.mktemp("policy") / "argilla") as srv:
        yield World(srv.url, srv.api_key)


def _routes(world: World) -> list:
    """(method, path template) of every operation in the server's OpenAPI document."""
    doc = httpx.get(f"{world.url}/api/v1/openapi.json", trust_env=False).json()
    return [(m.upper(), "/api/v1" + p) for p, ops in doc["paths"].items() for m in ops
            if m in ("get", "post", "put", "patch", "delete")]


def _calls(world: World, method: str, template: str):
    params = re.findall(r"{(\w+)}", template)
    nil = "00000000-0000-0000-0000-000000000000"  # ids of things this world has none of (jobs, webhooks, ...)
    for combo in itertools.product(*(world.ids.get(p, [nil]) for p in params)):
        path = template
        for p, v in zip(params, combo):
            path = path.replace("{" + p + "}", v)
        yield path


def _leaks(who: str, body: str, world: World) -> list:
    """What in an answer to `who` they must not see."""
    lang = PEOPLE[who]
    found = [s for s in (SECRET_STRATUM, SECRET_MODEL, "bn/x-HIDDEN", '"memory"') if s in body]
    found += [f"{other}'s {what}" for other in PEOPLE if other != who
              for what, s in (("username", f'"{other}"'), ("revision", REVISION[other]), ("id", world.user_ids[other]))
              if s in body]
    found += [s for other in ("bn", "ta") if other != lang
              for s in (f"study-{other}-secretname", f"{other}-response-text", world.datasets[other]) if s in body]

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("responses"), list):
                found.extend(f"response of {r.get('user_id')}" for r in node["responses"]
                             if r.get("user_id") != world.user_ids[who])
            if isinstance(node.get("metadata"), dict) and "dataset_id" in node:
                found.extend(f"metadata {k}" for k in node["metadata"] if k in HIDDEN)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    try:
        walk(json.loads(body))
    except ValueError:
        pass
    return found


def test_record_by_id_shows_only_the_callers_response_and_visible_metadata(world):
    record = world.records["bn"][0]
    with world.client("asha") as c:
        r = c.get(f"/api/v1/records/{record}", params={"include": ["responses"]})
    assert r.status_code == 200, r.text
    data = r.json()
    assert [x["user_id"] for x in data["responses"]] == [world.user_ids["asha"]]
    assert data["responses"][0]["values"]["revised_response"]["value"] == REVISION["asha"]
    assert data["metadata"] == {"language": "bn"}
    with world.client() as c:  # the owner still sees everything
        full = c.get(f"/api/v1/records/{record}", params={"include": ["responses"]}).json()
    assert len(full["responses"]) == 2 and set(full["metadata"]) == {"language", *HIDDEN}


@pytest.mark.parametrize("query", [
    {"filters": {"and": [{"type": "terms", "scope": {"entity": "metadata", "metadata_property": "stratum"},
                          "values": [SECRET_STRATUM]}]}},
    {"filters": {"and": [{"type": "range", "ge": 1, "scope": {"entity": "metadata", "metadata_property": "length_bin"}}]}},
    {"sort": [{"scope": {"entity": "metadata", "metadata_property": "source_model"}, "order": "asc"}]},
])
def test_search_on_hidden_metadata_is_refused(world, query):
    with world.client("bina") as c:
        r = c.post(f"/api/v1/me/datasets/{world.datasets['bn']}/records/search", json=query)
    assert r.status_code == 403, r.text
    assert "not visible to annotators" in r.text


def test_annotator_queue_progress_and_visible_filters_still_work(world):
    dataset = world.datasets["bn"]
    visible = {"filters": {"and": [{"type": "terms", "scope": {"entity": "metadata", "metadata_property": "language"},
                                    "values": ["bn"]}]}}
    with world.client("bina") as c:
        queue = c.post(f"/api/v1/me/datasets/{dataset}/records/search", json=visible, params={"include": ["responses"]})
        users = c.get(f"/api/v1/datasets/{dataset}/users/progress")
        progress = c.get(f"/api/v1/datasets/{dataset}/progress")
        status = c.get("/api/v1/status")
    assert queue.status_code == 200 and queue.json()["total"] == 4
    assert [u["username"] for u in users.json()["users"]] == ["bina"]
    assert progress.status_code == 200 and progress.json()["total"] == 4
    assert status.status_code == 403


def test_every_route_with_annotator_keys_leaks_nothing(world):
    before = world.owner_view()
    routes = _routes(world)
    assert len(routes) > 70  # the whole API, not a sample
    leaks, answered = [], {who: 0 for who in PEOPLE}
    include = {"include": ["responses", "suggestions", "vectors"]}
    for who in PEOPLE:
        with world.client(who) as c:
            for method, template in routes:
                for path in _calls(world, method, template):
                    body = {"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                                 "values": ["submitted", "pending"]}]}} if path.endswith("/search") else {}
                    r = c.request(method, path, params=include, **({} if method in ("GET", "DELETE") else {"json": body}))
                    answered[who] += r.status_code < 400
                    leaks += [(who, method, path, r.status_code, leak) for leak in _leaks(who, r.text, world)]
    assert leaks == []
    assert min(answered.values()) > 10  # the annotators were let in where they work
    after = world.owner_view()
    # no annotator call changed anything but, at most, the caller's own response
    for lang in ("bn", "ta"):
        assert [it["record"]["fields"] for it in after[lang]] == [it["record"]["fields"] for it in before[lang]]
        others = lambda items: sorted((r["user_id"], r["values"]["revised_response"]["value"])  # noqa: E731
                                      for it in items for r in it["record"]["responses"])
        assert set(others(after[lang])) <= set(others(before[lang]))
    assert after["users"] == before["users"] and after["datasets"] == before["datasets"]


def test_a_route_without_an_annotator_rule_stops_the_server(server_python, tmp_path):
    """An argilla-server upgrade that adds a route must be classified before the server starts."""
    import subprocess

    from annotator.server.embedded import RUNNER

    code = ("import sys; sys.path.insert(0, sys.argv[1]); import policy; from fastapi import FastAPI\n"
            "app = FastAPI()\n"
            "app.get('/me')(lambda: {})\n"
            "app.post('/records/{record_id}/share')(lambda record_id: {})\n"
            "policy.install(app)\n")
    proc = subprocess.run([str(server_python), "-c", code, str(RUNNER.parent)], capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode != 0
    assert "routes without an annotator rule" in proc.stderr and "'POST /records/{record_id}/share'" in proc.stderr
    assert "GET /me'" not in proc.stderr
