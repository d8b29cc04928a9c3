"""Pull every human response of a study from Argilla into `ratings.parquet` and `revisions.parquet`.

The study's datasets are found by name (`<study>-<language>-<family>` in the language's
workspace). Every record is read page by page with its responses; each response keeps its
status (submitted, draft, discarded), annotator and timestamps. A record's opaque id is mapped
back to its item through the study's record map, and what annotators never saw (length bin) is
joined from the sample. Each row carries `text_hash`, the version of the texts the response was
given for. The tables hold exactly what the server stored: a bulk write that a crash cut short
shows up as the responses that landed, no more. Rows are sorted, so pulling an unchanged server
twice gives identical tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import argilla as rg
import pandas as pd

import studytables
from rubrics.schema import Family, RubricSet

from .forms import COMMENT, OPTIONAL_FIELDS, REVISION, dataset_name, slug
from .push import iter_records, record_payload
from .records import RecordMap, describe, text_hash



class PullError(ValueError):
    """Responses that cannot be joined back to items; the message says which and what to do."""


@dataclass(frozen=True)
class StudyDataset:
    """One Argilla dataset of a study: its id, name, workspace (= language) and rubric family."""

    id: str
    name: str
    workspace: str
    family: Family


def study_datasets(client: rg.Argilla, study: str, rs: RubricSet,
                   naming: Callable[[str, str, str], str] = dataset_name) -> list[StudyDataset]:
    """The datasets `push` created for `study` (named by `naming`), sorted by name (owner/admin key)."""
    workspaces = {str(w.id): w.name for w in client.api.workspaces.list()}
    prefix = slug(study) + "-"
    out = []
    for ds in client.api.datasets.list():
        ws = workspaces.get(str(ds.workspace_id))
        if ws is None or not ds.name.startswith(prefix):
            continue
        for fam in rs.families:
            if ds.name == naming(study, ws, fam.name):
                out.append(StudyDataset(str(ds.id), ds.name, ws, fam))
    return sorted(out, key=lambda d: d.name)


def _frame(rows: list[dict], table: studytables.Table, keys: list[str]) -> pd.DataFrame:
    absent = [c for c in table.names if not any(c in r for r in rows)]  # pandas makes these float NaN
    df = pd.DataFrame(rows, columns=table.names).astype({c: object for c in absent})
    for col in ("inserted_at", "updated_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return studytables.conform(table, df.sort_values(keys, kind="stable").reset_index(drop=True), table.file)


def _value(values: dict, name: str):
    v = (values or {}).get(name)
    return None if v is None else v.get("value")


def collect(client: rg.Argilla, study: str, rs: RubricSet, records: RecordMap,
            sample: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings, revisions) of every response in the study's datasets.

    ratings: the long ratings format, one row per (item, metric, annotator) with a value, any status.
    revisions: one row per (item, annotator) response; `revised_response`/`comment` null when empty.
    `sample` supplies language, task and length bin (else the record's language and task). A
    record whose id is in neither `records` nor (as an item id, from an older kasauti) the sample
    cannot be joined: if it has responses, PullError.
    """
    items = {} if sample is None else {
        str(r["item_id"]): {"language": r["language"], "task": r["task"], "length_bin": r.get("length_bin")}
        for r in sample.to_dict("records")}
    users = {str(u.id): u.username for u in client.api.users.list()}
    ratings, revisions, unknown = [], [], []
    for sd in study_datasets(client, study, rs):
        metrics = [m.name for m in sd.family.metrics]
        for rec in iter_records(client, sd.id, include="responses"):
            if not rec.get("responses"):
                continue
            item_id = records.item_of(rec["external_id"]) or (rec["external_id"] if rec["external_id"] in items else None)
            if item_id is None:
                unknown.append(f"{sd.name}: {rec['external_id']!r}")
                continue
            meta = rec.get("metadata") or {}
            known = items.get(item_id, {})
            item = {"item_id": item_id, "language": known.get("language", meta.get("language", sd.workspace)),
                    "task": known.get("task", meta.get("task")), "text_hash": text_hash(rec["fields"])}
            for resp in rec["responses"]:
                who = users.get(str(resp["user_id"]), str(resp["user_id"]))
                stamp = {"status": resp["status"], "inserted_at": resp["inserted_at"], "updated_at": resp["updated_at"]}
                for metric in metrics:
                    value = _value(resp.get("values"), metric)
                    if value is None:
                        continue
                    ratings.append(item | stamp | {
                        "metric": metric, "rater": who, "rater_kind": "human", "score": float(value),
                        "raw_score": float(value), "length_bin": known.get("length_bin"),
                    })
                revised, comment = _value(resp.get("values"), REVISION), _value(resp.get("values"), COMMENT)
                revisions.append(item | stamp | {"annotator": who, "revised_response": revised or None,
                                                 "comment": comment or None})
    if unknown:
        raise PullError(f"{len(unknown)} record(s) with responses are not in {records.path} nor the sample "
                        f"({describe(unknown, 3)}); restore the record map (or the sample.parquet they were pushed "
                        "from) and pull again; nothing was written")
    return (_frame(ratings, studytables.RATINGS, ["item_id", "metric", "rater"]),
            _frame(revisions, studytables.REVISIONS, ["item_id", "annotator"]))


def stale_items(revisions: pd.DataFrame, sample: pd.DataFrame) -> list[str]:
    """Items whose responses were given for texts other than the sample's now (edited, not pushed).

    Their ratings and the judges' (which rate the sample's texts) would be about two texts.
    """
    current = {str(item["item_id"]): text_hash(record_payload(item, list(OPTIONAL_FIELDS), "")["fields"])
               for item in sample.to_dict("records")}
    given = revisions.drop_duplicates(["item_id", "text_hash"])
    return sorted({i for i, h in zip(given["item_id"], given["text_hash"]) if i in current and current[i] != h})


def pull(client: rg.Argilla, study: str, rs: RubricSet, records: RecordMap, sample: pd.DataFrame | None,
         ratings_path: str | Path, revisions_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collect every response and write both tables (each replaced atomically); returns them."""
    ratings, revisions = collect(client, study, rs, records, sample)
    studytables.write(studytables.RATINGS, ratings, ratings_path)
    studytables.write(studytables.REVISIONS, revisions, revisions_path)
    return ratings, revisions
