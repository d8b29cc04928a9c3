"""Push the items the judge may not decide to native speakers, in datasets of their own.

`kasauti escalate` decides every item x metric (`reports.decisions`); the items that humans must
still rate (decided by humans for some metric, with no human consensus on it yet) go to the
datasets ``<study>-escalated-<language>-<family>`` in the language's workspace: the same forms,
record ids and idempotent machinery as `push` (a re-run sends only new or changed items), kept apart
from the study's datasets so annotators and `kasauti status` see the escalation queue on its own,
and so their ratings (chosen by the judge's confidence, not at random) never mix with the random
calibration ratings: `kasauti pull` writes theirs to ``ratings_escalated.parquet`` and
``revisions_escalated.parquet`` (:func:`pull_escalated`). Items escalated earlier stay in their dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import argilla as rg
import pandas as pd

from rubrics.schema import RubricSet

from .forms import FormOptions
from .pull import pull, study_datasets
from .push import BULK_MAX, PushError, PushReport, check_sample, push
from .records import RecordMap

SUFFIX = "escalated"


def escalation_study(study: str) -> str:
    """The study name whose datasets (``<study>-escalated-<language>-<family>``) hold the escalated items."""
    return f"{study}-{SUFFIX}"


def escalate(client: rg.Argilla, sample: pd.DataFrame, items: list[str], rs: RubricSet, study: str, records: RecordMap,
             opts: FormOptions = FormOptions(), batch_size: int = BULK_MAX,
             progress: Callable[[str, int, int], None] | None = None) -> PushReport:
    """Push the sample rows of `items` to the study's escalation datasets (module doc); their forms fit
    every sample item, so items escalated later fit them too."""
    check_sample(sample)
    unknown = sorted(set(items) - set(sample["item_id"].astype(str)))
    if unknown:
        raise PushError(f"{len(unknown)} item(s) to escalate are not in the sample (e.g. {unknown[0]!r}); "
                        "decide on the study's current sample.parquet")
    return push(client, sample, rs, escalation_study(study), records, opts, batch_size, progress, only=set(items))


def pull_escalated(client: rg.Argilla, study: str, rs: RubricSet, records: RecordMap, sample: pd.DataFrame | None,
                   ratings_path: str | Path, revisions_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Pull the escalation datasets' responses into their own tables (as `pull.pull`); None when the
    study has never escalated (nothing is written)."""
    name = escalation_study(study)
    if not study_datasets(client, name, rs):
        return None
    return pull(client, name, rs, records, sample, ratings_path, revisions_path)
