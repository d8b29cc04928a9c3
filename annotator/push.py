"""Push sampled items to Argilla: one dataset per (language, task family), idempotent and resumable.

A record's external id is the item's opaque record id (`records.RecordMap`), so a re-push
updates in place and a larger sample adds only its new items. A record carries only what an
annotator may see: its texts and the visible metadata (language, task); source model, stratum and
length bin stay in kasauti's tables and pull joins them back. Before uploading, the dataset's
records are listed and compared with what would be sent: only new or changed records go out, in
bulk batches the server commits one by one, so an interrupted push resumes where it stopped when
run again. A record whose texts changed after annotators responded is not updated unless those
responses are explicitly discarded: ratings never move to a text they were not given for.
`plan_dataset` and `send` do this for any form; pairwise comparison (`pairwise.py`) uses them too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import argilla as rg
import numpy as np
import pandas as pd

import studytables
from rubrics.schema import RubricSet

from .forms import OPTIONAL_FIELDS, FormOptions, build_settings, dataset_name, render_conversation, workspace_name
from .people import ensure_workspaces
from .records import RecordMap, describe

REQUIRED_COLUMNS = ("item_id", "language", "task", "prompt", "response")
BULK_MAX = 500  # argilla-server's RECORDS_BULK_UPSERT_MAX_ITEMS
PAGE = 1000  # argilla-server's LIST_DATASET_RECORDS_LIMIT_LE
DELETE_MAX = 100  # argilla-server's DELETE_DATASET_RECORDS_LIMIT


class PushError(ValueError):
    """Input or server state that a push cannot use; the message says where and what was expected."""


def _first_bad(sample: pd.DataFrame, mask, col: str, source: str, expected: str) -> None:
    """Raise naming the first row (1-based) where `mask` holds, and how many rows do."""
    rows = np.flatnonzero(np.asarray(mask, dtype=bool))
    if len(rows):
        raise PushError(f"{source}: row {rows[0] + 1}, column {col!r}: expected {expected}, got "
                        f"{sample[col].iloc[rows[0]]!r} ({len(rows)} such row(s)); fix the sample or re-run `kasauti sample`")


def check_sample(sample: pd.DataFrame, source: str = "sample") -> pd.DataFrame:
    """Validate the columns push and pull use (ARCHITECTURE.md `sample.parquet`); errors name row and column."""
    missing = [c for c in REQUIRED_COLUMNS if c not in sample.columns]
    if missing:
        raise PushError(f"{source}: missing column(s) {missing}; expected the sample.parquet schema in ARCHITECTURE.md")
    for col in REQUIRED_COLUMNS:
        _first_bad(sample, sample[col].isna() | (sample[col].astype(str).str.strip() == ""), col, source,
                   "a non-empty string")
    _first_bad(sample, sample["item_id"].astype(str).duplicated(keep="first"), "item_id", source, "a unique id")
    if "length_bin" in sample.columns:
        bins = pd.to_numeric(sample["length_bin"], errors="coerce")
        _first_bad(sample, sample["length_bin"].notna() & ~((bins >= 1) & (bins % 1 == 0)), "length_bin", source,
                   "a length bin (an integer >= 1)")
    return sample


def read_sample(path: str | Path) -> pd.DataFrame:
    """sample.parquet, checked; a missing or unreadable file is a PushError saying what to do."""
    try:
        sample = studytables.read(studytables.SAMPLE, path)
    except studytables.TableError as exc:
        raise PushError(str(exc)) from None
    return check_sample(sample, str(path))


@dataclass
class DatasetPush:
    name: str
    workspace: str
    family: str
    items: int
    created: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    discarded_responses: int = 0


@dataclass
class PushReport:
    datasets: list[DatasetPush] = field(default_factory=list)
    workspaces_created: list[str] = field(default_factory=list)
    unstaffed: dict[str, int] = field(default_factory=dict)  # language -> items no annotator of it can see

    @property
    def added(self) -> int:
        return sum(d.added for d in self.datasets)


def _clean(value):
    """None for missing values (NaN, None, pd.NA), plain Python otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def record_payload(item: dict, optional_fields: list[str], record_id: str) -> dict:
    """The bulk-upsert item for one sample row: its fields, visible metadata and opaque record id."""
    fields = {"prompt": str(item["prompt"]), "response": str(item["response"])}
    extra = {
        "system_prompt": _clean(item.get("system_prompt")),
        "conversation": render_conversation(_clean(item.get("conversation"))),
        "context": _clean(item.get("context")),
    }
    for name, value in extra.items():
        if value is None:
            continue
        if name not in optional_fields:
            raise PushError(f"item {item['item_id']!r} has a {name!r} but its dataset was created without that "
                            f"field; push it to a new study or delete the dataset to recreate its form")
        fields[name] = str(value)
    metadata = {"language": str(item["language"]), "task": str(item["task"])}
    return {"external_id": record_id, "fields": fields, "metadata": metadata}


def iter_records(client: rg.Argilla, dataset_id, include: str | None = None, page: int = PAGE) -> Iterator[dict]:
    """Every record of a dataset as the API returns it (owner/admin only), page by page."""
    offset = 0
    while True:
        params = {"offset": offset, "limit": page} | ({"include": include} if include else {})
        resp = client.http_client.get(f"/api/v1/datasets/{dataset_id}/records", params=params)
        resp.raise_for_status()
        items = resp.json()["items"]
        yield from items
        if len(items) < page:
            return
        offset += len(items)


def bulk_upsert(client: rg.Argilla, dataset_id, items: list[dict]) -> None:
    resp = client.http_client.put(f"/api/v1/datasets/{dataset_id}/records/bulk", json={"items": items})
    if resp.status_code >= 400:
        raise PushError(f"Argilla refused a batch of {len(items)} records for dataset {dataset_id}: "
                        f"HTTP {resp.status_code} {resp.text[:500]}")


def _form_signature(settings_questions) -> list[tuple]:
    return sorted((q.name, tuple(getattr(q, "values", None) or getattr(q, "labels", None) or ()))
                  for q in settings_questions)


def ensure_dataset(client: rg.Argilla, settings: rg.Settings, name: str, workspace: str) -> tuple[rg.Dataset, bool]:
    """The dataset `name` in `workspace`, created with `settings` if missing; (dataset, created)."""
    ds = client.datasets(name, workspace=workspace)
    if ds is None:
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create(), True
    have, want = _form_signature(ds.settings.questions), _form_signature(settings.questions)
    if have != want:
        raise PushError(f"dataset {workspace}/{name} exists with questions {have}, but the rubric now asks {want}; "
                        "a published Argilla form cannot change its questions: use a new study name")
    return ds, False


def existing_fields(ds: rg.Dataset) -> list[str]:
    return [f.name for f in ds.settings.fields if f.name in OPTIONAL_FIELDS]


def _delete_records(client: rg.Argilla, dataset_id, record_ids: list[str]) -> None:
    for start in range(0, len(record_ids), DELETE_MAX):
        resp = client.http_client.delete(f"/api/v1/datasets/{dataset_id}/records",
                                         params={"ids": ",".join(record_ids[start:start + DELETE_MAX])})
        if resp.status_code >= 400:
            raise PushError(f"Argilla refused to delete records of dataset {dataset_id}: "
                            f"HTTP {resp.status_code} {resp.text[:500]}")


def unstaffed_languages(client: rg.Argilla, workspaces: dict[str, rg.Workspace]) -> list[str]:
    """The languages whose workspace has no annotator member: nobody can rate their items."""
    return [lang for lang, ws in sorted(workspaces.items())
            if not any(u.role == "annotator" for u in client.api.users.list_by_workspace_id(ws.id))]


@dataclass
class _Plan:
    dataset: rg.Dataset
    entry: DatasetPush
    todo: list[dict]
    replace: list[str]  # Argilla ids of records whose texts changed under responses (deleted first)


def plan_dataset(client: rg.Argilla, ds: rg.Dataset, entry: DatasetPush, payloads: list[tuple[str, dict]],
                 records: RecordMap, questions: set[str], conflicts: list[str]) -> _Plan:
    """Compare `payloads` ((what it is, for messages; payload)) with the dataset's records: what to send.

    Counts added/updated/unchanged into `entry`; a changed record with responses is appended to
    `conflicts` (with its number of answers to `questions`) and its record id to the plan's `replace`.
    """
    existing = {r["external_id"]: r for r in iter_records(client, ds.id, include="responses")}
    foreign = sorted(x for x in existing if records.item_of(x) is None)
    if foreign:
        raise PushError(
            f"dataset {entry.workspace}/{entry.name} holds {len(foreign)} record(s) whose ids are not in {records.path} "
            f"(e.g. {describe([repr(x) for x in foreign], 3)}): pushed by an older kasauti, which used item ids as record ids and so "
            "showed annotators the source model, or the record map was lost. Pull their ratings with "
            "`kasauti pull`, then delete the dataset in Argilla or set a new study name in kasauti.yaml, and push again")
    plan = _Plan(ds, entry, [], [])
    for what, payload in payloads:
        old = existing.get(payload["external_id"])
        if old is None:
            entry.added += 1
        elif old["fields"] != payload["fields"]:
            entry.updated += 1
            responses = old.get("responses") or []
            if responses:
                plan.replace.append(old["id"])
                entry.discarded_responses += len(responses)
                rated = sum(k in questions for r in responses for k in (r.get("values") or {}))
                conflicts.append(f"{what} ({rated} ratings in {len(responses)} responses)")
        elif (old.get("metadata") or {}) != payload["metadata"]:
            entry.updated += 1
        else:
            entry.unchanged += 1
            continue
        plan.todo.append(payload)
    return plan


def send(client: rg.Argilla, plans: list[_Plan], conflicts: list[str], records: RecordMap, report: PushReport,
         batch_size: int, progress: Callable[[str, int, int], None] | None, discard_changed_ratings: bool,
         source: str = "the sample") -> None:
    """Refuse text changes under responses (unless discarding them), save the map, then upload batch by batch.

    `source` names where the texts come from, for the message."""
    if conflicts and not discard_changed_ratings:
        raise PushError(
            f"{len(conflicts)} item(s) changed their texts after annotators responded: {describe(conflicts)}. "
            f"Updating them would attach those ratings to a text they were not given for. Restore the old texts in "
            f"{source}, or pull the ratings and push with --discard-changed-ratings to delete them and show the new texts")
    records.save()
    for plan in plans:
        _delete_records(client, plan.dataset.id, plan.replace)
        for start in range(0, len(plan.todo), batch_size):
            bulk_upsert(client, plan.dataset.id, plan.todo[start:start + batch_size])
            if progress:
                progress(plan.entry.name, min(start + batch_size, len(plan.todo)), len(plan.todo))
        report.datasets.append(plan.entry)


def check_batch_size(batch_size: int) -> None:
    if not 1 <= batch_size <= BULK_MAX:
        raise PushError(f"batch_size must be in 1..{BULK_MAX} (the server's bulk limit), got {batch_size}")


def start_report(client: rg.Argilla, languages: pd.Series) -> PushReport:
    """Create the languages' missing workspaces; a report naming them and the unstaffed languages."""
    report = PushReport()
    workspaces, report.workspaces_created = ensure_workspaces(client, sorted(languages.unique()))
    report.unstaffed = {lang: int((languages == lang).sum()) for lang in unstaffed_languages(client, workspaces)}
    return report


def push(
    client: rg.Argilla,
    sample: pd.DataFrame,
    rs: RubricSet,
    study: str,
    records: RecordMap,
    opts: FormOptions = FormOptions(),
    batch_size: int = BULK_MAX,
    progress: Callable[[str, int, int], None] | None = None,
    discard_changed_ratings: bool = False,
    only: set[str] | None = None,
) -> PushReport:
    """Push every sample item (or those of `only`) to its (language, family) dataset; only new or
    changed records are sent. A dataset's form has the optional fields any item of the sample in it
    has, so items pushed later fit the form.

    An item whose texts changed while its record has responses is refused (PushError naming the
    items, before anything is sent) unless `discard_changed_ratings`: then that record and its
    responses are deleted and the item is pushed afresh. `records` maps items to record ids and is
    saved before any record is uploaded. `progress(dataset_name, done, todo)` is called after each
    committed batch.
    """
    check_sample(sample)
    check_batch_size(batch_size)
    families = sample["task"].map(lambda t: rs.family_for(str(t)).name)
    languages = sample["language"].str.lower()
    sent = np.ones(len(sample), bool) if only is None else sample["item_id"].astype(str).isin(only).to_numpy()
    report = start_report(client, languages[sent])
    ids = dict(zip(sample["item_id"][sent].astype(str), records.assign(sample["item_id"][sent])))
    plans, conflicts = [], []
    for (language, fam_name), whole in sample.assign(_sent=sent).groupby([languages, families], sort=True):
        group = whole[whole["_sent"]]
        if group.empty:
            continue
        family = rs.family(fam_name)
        used = [c for c in OPTIONAL_FIELDS if c in whole.columns and whole[c].notna().any()]
        name, workspace = dataset_name(study, language, fam_name), workspace_name(language)
        ds, created = ensure_dataset(client, build_settings(rs, family, used, opts), name, workspace)
        fields = existing_fields(ds) if not created else used
        payloads = [(repr(str(item["item_id"])), record_payload(item, fields, ids[str(item["item_id"])]))
                    for item in group.to_dict("records")]
        entry = DatasetPush(name=name, workspace=workspace, family=fam_name, items=len(group), created=created)
        plans.append(plan_dataset(client, ds, entry, payloads, records, {m.name for m in family.metrics}, conflicts))
    send(client, plans, conflicts, records, report, batch_size, progress, discard_changed_ratings)
    return report
