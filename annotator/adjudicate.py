"""Adjudication mode (opt-in): a judge's scores shown as Argilla suggestions, only after humans rated.

Blind by default: `push` never sends suggestions. With adjudication, records whose item already
has at least `min_submitted` submitted human responses get one suggestion per metric from one
judge (its score on the human scale; the most frequent over repeats, the lower on a tie), so an
adjudicator sees humans and judge side by side without the judge anchoring the first ratings.
"""

from __future__ import annotations

import pandas as pd
import argilla as rg

from rubrics.schema import RubricSet

from .pull import study_datasets
from .push import BULK_MAX, PushError, bulk_upsert, iter_records
from .records import RecordMap

USED_COLUMNS = ("judge", "item_id", "metric", "human_score", "status")  # of judgments.parquet


def judge_scores(judgments: pd.DataFrame, judge: str | None = None) -> tuple[str, dict[tuple[str, str], int]]:
    """(judge, {(item_id, metric): its modal human-scale score over successful repeats})."""
    missing = [c for c in USED_COLUMNS if c not in judgments.columns]
    if missing:
        raise PushError(f"judgments: missing column(s) {missing}; expected judgments.parquet from `kasauti judge`")
    ok = judgments[(judgments["status"] == "ok") & judgments["human_score"].notna()]
    judges = sorted(ok["judge"].unique())
    if judge is None:
        if len(judges) != 1:
            raise PushError(f"judgments hold {len(judges)} judges {judges}: name the one to show as suggestions")
        judge = judges[0]
    elif judge not in judges:
        raise PushError(f"judge {judge!r} has no successful judgments; judges with some: {judges}")
    mine = ok[ok["judge"] == judge]
    modal = (mine.groupby(["item_id", "metric", "human_score"]).size().rename("n").reset_index()
             .sort_values(["item_id", "metric", "n", "human_score"], ascending=[True, True, False, True])
             .drop_duplicates(["item_id", "metric"]))
    return judge, {(r.item_id, r.metric): int(r.human_score) for r in modal.itertuples()}


def adjudicate(client: rg.Argilla, study: str, rs: RubricSet, records: RecordMap, judgments: pd.DataFrame,
               min_submitted: int, judge: str | None = None) -> int:
    """Add the judge's suggestions to records with >= `min_submitted` submitted responses; returns records changed."""
    agent, scores = judge_scores(judgments, judge)
    changed = 0
    for sd in study_datasets(client, study, rs):
        ds = client.datasets(sd.name, workspace=sd.workspace)
        qids = {q.name: str(q.id) for q in ds.settings.questions}
        todo = []
        for rec in iter_records(client, sd.id, include="responses"):
            if sum(r["status"] == "submitted" for r in rec.get("responses") or []) < min_submitted:
                continue
            item = records.item_of(rec["external_id"])
            sugg = [{"question_id": qids[m.name], "value": scores[(item, m.name)], "agent": agent,
                     "type": "model"} for m in sd.family.metrics if (item, m.name) in scores]
            if sugg:
                todo.append({"external_id": rec["external_id"], "suggestions": sugg})
        for start in range(0, len(todo), BULK_MAX):
            bulk_upsert(client, sd.id, todo[start:start + BULK_MAX])
        changed += len(todo)
    return changed
