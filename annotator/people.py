"""Annotators and language workspaces: a roster file provisions users, one workspace per language.

Roster languages are normalised to ISO 639 codes as the sampler does ('Bengali' -> 'bn'); unknown
ones are refused. The roster is the truth: an annotator is a member of exactly the workspaces of
their roster languages (memberships of any other workspace are removed), so they only ever see
datasets of those languages. New users get a generated password, written once to a 0600
CSV file for the study owner to hand out; passwords are never printed or logged.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import argilla as rg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rubrics.schema import unique_names
from sampling.languages import UnknownLanguage, normalise

from .forms import workspace_name

PASSWORD_COLUMNS = ["username", "name", "languages", "password"]


class RosterError(ValueError):
    """A roster file that cannot be used; the message names the file, the entry and the key."""


class Annotator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)
    name: str = Field(min_length=1)
    languages: list[str] = Field(min_length=1)

    @field_validator("languages")
    @classmethod
    def _codes(cls, langs: list[str]) -> list[str]:
        """ISO 639 codes, as the sampler normalises the data's labels ('Bengali', 'ben' -> 'bn')."""
        try:
            return list(dict.fromkeys(normalise(label) for label in langs))
        except UnknownLanguage as exc:
            raise ValueError(f"{exc}; use a language name or ISO 639 code, as in the data (e.g. hi, bn, Tamil)") from None


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    annotators: list[Annotator] = Field(min_length=1)

    @field_validator("annotators")
    @classmethod
    def _unique(cls, people: list[Annotator]) -> list[Annotator]:
        return unique_names(people, "usernames", "username")

    @property
    def languages(self) -> list[str]:
        return sorted({lang for p in self.annotators for lang in p.languages})


def load_roster(path: str | Path) -> Roster:
    """Read a roster YAML: ``annotators: [{username, name, languages: [hi, ta]}, ...]``."""
    path = Path(path)
    if not path.exists():
        raise RosterError(f"{path}: roster file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RosterError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Roster.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
            lines.append(f"  {loc or '<top level>'}: {err['msg']}")
        raise RosterError(
            f"{path}: invalid roster (expected annotators: [{{username, name, languages}}]):\n" + "\n".join(lines)
        ) from None


@dataclass
class ProvisionReport:
    workspaces_created: list[str] = field(default_factory=list)
    users_created: list[str] = field(default_factory=list)
    memberships_added: list[tuple[str, str]] = field(default_factory=list)
    memberships_removed: list[tuple[str, str]] = field(default_factory=list)
    password_file: Path | None = None
    annotators: int = 0  # on the roster


def ensure_workspaces(client: rg.Argilla, languages: list[str]) -> tuple[dict[str, rg.Workspace], list[str]]:
    """The workspace of each language, created where missing; returns (by language, created names)."""
    out, created = {}, []
    for lang in languages:
        name = workspace_name(lang)
        ws = client.workspaces(name)
        if ws is None:
            ws = rg.Workspace(name=name, client=client).create()
            created.append(name)
        out[lang] = ws
    return out, created


def read_passwords(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_private(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the password CSV atomically with mode 0600 (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PASSWORD_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(buf.getvalue())
    os.replace(tmp, path)


def provision(
    client: rg.Argilla, roster: Roster, password_file: str | Path, languages: list[str] = ()
) -> ProvisionReport:
    """Create the language workspaces and annotator users, and sync each user's memberships.

    `languages` adds workspaces for languages nobody on the roster speaks yet (e.g. the sample's).
    Each roster user ends up a member of exactly the workspaces of their roster languages: other
    memberships are removed.
    """
    report = ProvisionReport(password_file=Path(password_file), annotators=len(roster.annotators))
    managed = sorted(set(roster.languages) | {lang.lower() for lang in languages})
    workspaces, report.workspaces_created = ensure_workspaces(client, managed)
    rows = read_passwords(report.password_file)
    for person in roster.annotators:
        user = client.users(person.username)
        if user is None:
            password = secrets.token_urlsafe(12)
            user = rg.User(
                username=person.username, first_name=person.name, password=password, role="annotator", client=client
            ).create()
            report.users_created.append(person.username)
            rows = [r for r in rows if r["username"] != person.username]
            rows.append({"username": person.username, "name": person.name,
                         "languages": " ".join(person.languages), "password": password})
        member_of = {w.name for w in client.api.workspaces.list_by_user_id(user.id)}
        want = {workspace_name(lang) for lang in person.languages}
        for lang in person.languages:
            ws = workspaces[lang]
            if ws.name not in member_of:
                user.add_to_workspace(ws)
                report.memberships_added.append((person.username, ws.name))
        for name in sorted(member_of - want):
            user.remove_from_workspace(client.workspaces(name))
            report.memberships_removed.append((person.username, name))
    if report.users_created:
        _write_private(report.password_file, rows)
    return report


def api_key_of(client: rg.Argilla, username: str) -> str:
    """A user's API key, read by an owner (the SDK's User model does not expose it)."""
    user = client.users(username)
    if user is None:
        raise KeyError(f"no Argilla user {username!r}")
    resp = client.http_client.get(f"/api/v1/users/{user.id}")
    resp.raise_for_status()
    return resp.json()["api_key"]
