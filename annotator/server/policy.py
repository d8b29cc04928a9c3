"""Blind rating inside the embedded server: what an annotator's key may call and see.

Runs INSIDE the argilla-server virtualenv (imports argilla_server, starlette and the standard
library only). Argilla's own policies keep annotators inside their workspaces; on top of them,
for callers whose role is ``annotator``:

- every route of the app has a rule in :data:`ANNOTATOR_RULES` (:func:`install` refuses to start a
  server with an unclassified route, so an upgrade that adds one is caught): ``public`` (no
  authentication), ``allow``, ``search`` (filters and sorts on hidden metadata refused),
  ``progress`` (only the caller's own progress) or ``deny`` (403 before the endpoint runs);
  ``GET /status`` (server-wide totals and memory, open to anyone upstream) needs a key;
- every JSON answer to an annotator is filtered: lists under ``responses`` keep the caller's own
  responses only, and records lose the metadata properties not visible to annotators.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any, Dict, Optional, Set

PUBLIC, ALLOW, SEARCH, PROGRESS, DENY = "public", "allow", "search", "progress", "deny"

#: "METHOD path" (path relative to the /api/v1 mount, or of the root app) -> rule for annotators.
ANNOTATOR_RULES: Dict[str, str] = {
    "GET /version": PUBLIC, "POST /token": PUBLIC, "GET /settings": PUBLIC, "GET /oauth2/providers": PUBLIC,
    "GET /oauth2/providers/{provider}/authentication": PUBLIC,
    "GET /oauth2/providers/{provider}/access-token": PUBLIC, "GET /docs": PUBLIC, "GET /api": PUBLIC,
    # the annotator's job: their datasets, the form, their queue, their responses
    "GET /me": ALLOW, "GET /me/datasets": ALLOW, "GET /me/workspaces": ALLOW, "GET /workspaces/{workspace_id}": ALLOW,
    "GET /datasets/{dataset_id}": ALLOW, "GET /datasets/{dataset_id}/fields": ALLOW,
    "GET /datasets/{dataset_id}/questions": ALLOW, "GET /datasets/{dataset_id}/vectors-settings": ALLOW,
    "GET /me/datasets/{dataset_id}/metadata-properties": ALLOW, "GET /me/datasets/{dataset_id}/metrics": ALLOW,
    "GET /metadata-properties/{metadata_property_id}/metrics": ALLOW,
    "GET /datasets/{dataset_id}/records/search/suggestions/options": ALLOW,
    "POST /me/datasets/{dataset_id}/records/search": SEARCH,
    "GET /records/{record_id}": ALLOW, "GET /records/{record_id}/suggestions": ALLOW,
    "POST /records/{record_id}/responses": ALLOW, "POST /me/responses/bulk": ALLOW,
    "PUT /responses/{response_id}": ALLOW, "DELETE /responses/{response_id}": ALLOW,
    "GET /datasets/{dataset_id}/progress": PROGRESS, "GET /datasets/{dataset_id}/users/progress": PROGRESS,
    # everything else is the owner's: server totals, other people, all responses, writes to datasets
    "GET /status": DENY, "GET /users": DENY, "POST /users": DENY, "GET /users/{user_id}": DENY,
    "PATCH /users/{user_id}": DENY, "DELETE /users/{user_id}": DENY, "GET /users/{user_id}/workspaces": DENY,
    "POST /workspaces": DENY, "DELETE /workspaces/{workspace_id}": DENY,
    "GET /workspaces/{workspace_id}/users": DENY, "POST /workspaces/{workspace_id}/users": DENY,
    "DELETE /workspaces/{workspace_id}/users/{user_id}": DENY,
    "POST /datasets": DENY, "PATCH /datasets/{dataset_id}": DENY, "DELETE /datasets/{dataset_id}": DENY,
    "PUT /datasets/{dataset_id}/publish": DENY, "POST /datasets/{dataset_id}/import": DENY,
    "POST /datasets/{dataset_id}/export": DENY, "POST /datasets/{dataset_id}/fields": DENY,
    "POST /datasets/{dataset_id}/questions": DENY, "POST /datasets/{dataset_id}/metadata-properties": DENY,
    "POST /datasets/{dataset_id}/vectors-settings": DENY, "GET /datasets/{dataset_id}/records": DENY,
    "DELETE /datasets/{dataset_id}/records": DENY, "POST /datasets/{dataset_id}/records/search": DENY,
    "POST /datasets/{dataset_id}/records/bulk": DENY, "PUT /datasets/{dataset_id}/records/bulk": DENY,
    "PATCH /fields/{field_id}": DENY, "DELETE /fields/{field_id}": DENY, "PATCH /questions/{question_id}": DENY,
    "DELETE /questions/{question_id}": DENY, "PATCH /metadata-properties/{metadata_property_id}": DENY,
    "DELETE /metadata-properties/{metadata_property_id}": DENY,
    "PATCH /vectors-settings/{vector_settings_id}": DENY, "DELETE /vectors-settings/{vector_settings_id}": DENY,
    "PATCH /records/{record_id}": DENY, "DELETE /records/{record_id}": DENY,
    "PUT /records/{record_id}/suggestions": DENY, "DELETE /records/{record_id}/suggestions": DENY,
    "DELETE /suggestions/{suggestion_id}": DENY, "GET /jobs/{job_id}": DENY,
    "GET /webhooks": DENY, "POST /webhooks": DENY, "PATCH /webhooks/{webhook_id}": DENY,
    "DELETE /webhooks/{webhook_id}": DENY, "POST /webhooks/{webhook_id}/ping": DENY,
}

#: Routes upstream serves without any key that expose server-wide figures: a key is required here.
AUTHENTICATED_HERE = ("GET /status",)

_STATE_KEY = "kasauti_annotator"  # in the request's state: (user id, username, rule) of an annotator caller
_CALLER: contextvars.ContextVar[Optional[Any]] = contextvars.ContextVar("kasauti_caller", default=None)


def _api_routes(app) -> list:
    """Every API route of ``app`` and of the apps mounted in it."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount

    out: list = []
    for route in app.routes:
        if isinstance(route, Mount) and hasattr(route.app, "routes"):
            out += _api_routes(route.app)
        elif isinstance(route, APIRoute):
            out.append(route)
    return out


def _keys(route) -> Set[str]:
    return {f"{m} {route.path}" for m in route.methods}


def _hidden(metadata_property) -> bool:
    return not metadata_property.visible_for_annotators


def _check_search(query, dataset) -> None:
    """An annotator may neither filter nor sort on metadata hidden from annotators."""
    from argilla_server.errors import ForbiddenOperationError

    hidden = {mp.name for mp in dataset.metadata_properties if _hidden(mp)}
    scopes = [f.scope for f in (query.filters.and_ or [] if query.filters else [])]
    scopes += [o.scope for o in query.sort or []]
    for scope in scopes:
        if getattr(scope, "entity", None) == "metadata" and scope.metadata_property in hidden:
            raise ForbiddenOperationError(f"metadata property {scope.metadata_property!r} is not visible to "
                                          "annotators: it cannot be filtered or sorted on")


async def _hidden_metadata() -> Dict[str, Set[str]]:
    """dataset id -> names of its metadata properties hidden from annotators."""
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import MetadataProperty
    from sqlalchemy import select

    out: Dict[str, Set[str]] = {}
    async with AsyncSessionLocal() as db:
        for mp in (await db.execute(select(MetadataProperty))).scalars():
            if _hidden(mp):
                out.setdefault(str(mp.dataset_id), set()).add(mp.name)
    return out


def _strip(node: Any, user_id: str, hidden: Dict[str, Set[str]]) -> Any:
    """Drop other users' responses and hidden record metadata anywhere in a JSON answer."""
    if isinstance(node, list):
        return [_strip(v, user_id, hidden) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strip(v, user_id, hidden) for k, v in node.items()}
    if isinstance(out.get("responses"), list):
        out["responses"] = [r for r in out["responses"] if not isinstance(r, dict) or r.get("user_id") == user_id]
    if isinstance(out.get("metadata"), dict) and "dataset_id" in out:
        names = hidden.get(str(out["dataset_id"]), set())
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in names}
    return out


async def _filter_answer(body: bytes, caller: tuple) -> bytes:
    user_id, username, rule = caller
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if rule == PROGRESS and isinstance(data, dict) and isinstance(data.get("users"), list):
        data["users"] = [u for u in data["users"] if isinstance(u, dict) and u.get("username") == username]
    hidden = await _hidden_metadata() if b'"metadata"' in body else {}
    return json.dumps(_strip(data, user_id, hidden), ensure_ascii=False, separators=(",", ":")).encode()


class AnnotatorFilter:
    """ASGI wrapper of one route (inside upstream's gzip): an annotator's JSON answers pass through
    :func:`_strip`, and progress answers keep the caller's own entry only."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        state = scope.setdefault("state", {})
        start: dict = {}
        chunks: list = []

        async def filtered_send(message):
            caller = state.get(_STATE_KEY)
            if caller is None:
                return await send(message)
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = dict(start.get("headers") or [])
            if headers.get(b"content-type", b"").startswith(b"application/json"):
                body = await _filter_answer(body, caller)
            headers[b"content-length"] = str(len(body)).encode()
            await send({**start, "headers": list(headers.items())})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, filtered_send)


def _require_key(route) -> None:
    from argilla_server.security import auth
    from fastapi import Security
    from fastapi.dependencies.utils import get_parameterless_sub_dependant
    from starlette.routing import request_response

    route.dependant.dependencies.insert(0, get_parameterless_sub_dependant(
        depends=Security(auth.get_current_user), path=route.path_format))
    route.app = request_response(route.get_route_handler())


def install(app) -> None:
    """Enforce the rules on ``app`` (argilla_server._app.app); raise if a route has no rule."""
    from argilla_server.api.handlers.v1.datasets import records as records_handler
    from argilla_server.errors import ForbiddenOperationError
    from argilla_server.security.authentication import provider

    routes = _api_routes(app)
    unclassified = sorted(set().union(*map(_keys, routes)) - set(ANNOTATOR_RULES))
    if unclassified:
        raise RuntimeError(f"argilla-server routes without an annotator rule in {__file__}: {unclassified}")
    for route in routes:
        if _keys(route) & set(AUTHENTICATED_HERE):
            _require_key(route)
        route.app = AnnotatorFilter(route.app)

    set_request_user = provider.set_request_user

    def set_request_user_checked(request, user):
        set_request_user(request, user)
        if not user.is_annotator:
            return
        route = request.scope.get("route")
        rule = ANNOTATOR_RULES.get(f"{request.method} {getattr(route, 'path', '')}", DENY)
        if rule == DENY:
            raise ForbiddenOperationError("annotators may not call this endpoint")
        request.scope.setdefault("state", {})[_STATE_KEY] = (str(user.id), user.username, rule)
        _CALLER.set(user)

    provider.set_request_user = set_request_user_checked

    validate = records_handler._validate_search_records_query

    async def validate_for_caller(db, query, dataset):
        await validate(db, query, dataset)
        user = _CALLER.get()
        if user is not None and user.is_annotator:
            _check_search(query, dataset)

    records_handler._validate_search_records_query = validate_for_caller
