"""Annotation progress of a study: per dataset (language x family) and per annotator.

Counted from the responses the server stored, not from its per-record status: a crash between a
response's commit and the record's status update (the server does these in two steps) leaves a
record marked pending although it has its submitted responses, and a bulk write cut short stores
only some of its items. Either way `status` reports exactly what was stored, as `pull` does.
"""

from __future__ import annotations

from collections import Counter

import argilla as rg
import pandas as pd

from rubrics.schema import RubricSet

from .pull import study_datasets
from .push import iter_records

RESPONSE_STATUSES = ("submitted", "draft", "discarded")


def progress(client: rg.Argilla, study: str, rs: RubricSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(datasets, annotators).

    datasets: language, family, dataset, records, completed (records with the dataset's
    min_submitted submitted responses), pending. annotators: language, family, annotator,
    submitted, draft, discarded (response counts).
    """
    users = {str(u.id): u.username for u in client.api.users.list()}
    ds_rows, user_rows = [], []
    for sd in study_datasets(client, study, rs):
        resp = client.http_client.get(f"/api/v1/datasets/{sd.id}")
        resp.raise_for_status()
        need = resp.json()["distribution"]["min_submitted"]
        records = completed = 0
        per_user: Counter = Counter()
        for rec in iter_records(client, sd.id, include="responses"):
            responses = rec.get("responses") or []
            records += 1
            completed += sum(r["status"] == "submitted" for r in responses) >= need
            per_user.update((users.get(str(r["user_id"]), str(r["user_id"])), r["status"]) for r in responses)
        ds_rows.append({"language": sd.workspace, "family": sd.family.name, "dataset": sd.name,
                        "records": records, "completed": completed, "pending": records - completed})
        for who in sorted({u for u, _ in per_user}):
            user_rows.append({"language": sd.workspace, "family": sd.family.name, "annotator": who}
                             | {s: per_user[(who, s)] for s in RESPONSE_STATUSES})
    datasets = pd.DataFrame(ds_rows, columns=["language", "family", "dataset", "records", "completed", "pending"])
    annotators = pd.DataFrame(user_rows, columns=["language", "family", "annotator", *RESPONSE_STATUSES])
    return datasets, annotators.sort_values(["language", "family", "annotator"]).reset_index(drop=True)
