"""The annotation commands on a study directory, as library functions: what `kasauti people`, `push`
and `pull` call. Each takes the owner's client (`annotator.connect.connect(root, cfg)`); the study's
Argilla-side files (record map, annotator passwords) live in ``<root>/argilla/``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import argilla as rg
import pandas as pd

import studytables
from rubrics.schema import RubricSet
from sampling.pairs import read_boosted

from .adjudicate import adjudicate as add_suggestions
from .config import AnnotationConfig
from .forms import FormOptions
from .people import ProvisionReport, load_roster, provision
from .pull import pull, stale_items
from .push import BULK_MAX, PushError, PushReport, push, read_sample
from .escalate import pull_escalated
from .pairwise import pull_comparisons, push_pairs, read_pairs
from .records import PAIR_MAP, RECORD_MAP, RecordMap
from .slices import draw_random, read_slices

HOME = "argilla"  # the study's Argilla directory (the embedded server's state, the record map, passwords)
PASSWORD_FILE = "annotators.csv"


@dataclass
class StudyPush:
    """What `push_study` did: provisioning (when the config names a roster), the push, the number
    of records given judge suggestions (when adjudicating) and the random slice (``slices.parquet``
    rows, when pushing one)."""

    push: PushReport
    provision: ProvisionReport | None = None
    adjudicated: int | None = None
    slice: pd.DataFrame | None = None


@dataclass
class StudyPull:
    ratings: pd.DataFrame
    revisions: pd.DataFrame
    stale: list[str]  # items rated on texts that are no longer the sample's
    comparisons: pd.DataFrame | None = None  # once pairs were pushed
    escalated: tuple[pd.DataFrame, pd.DataFrame] | None = None  # ratings and revisions of escalated items, once escalated


def provision_study(client: rg.Argilla, root: str | Path, roster: str | Path, languages: Sequence[str] = ()) -> ProvisionReport:
    """`kasauti people`: provision the roster's annotators and one workspace per language (and per
    `languages`); a relative `roster` is taken from the study directory. New users' passwords go to
    the 0600 file ``<root>/argilla/annotators.csv``."""
    root, roster = Path(root), Path(roster)
    return provision(client, load_roster(roster if roster.is_absolute() else root / roster),
                     root / HOME / PASSWORD_FILE, list(languages))


def push_study(client: rg.Argilla, root: str | Path, study: str, rs: RubricSet, cfg: AnnotationConfig, *,
               batch_size: int = BULK_MAX, adjudicate: bool | None = None, judge: str | None = None,
               discard_changed_ratings: bool = False, pairs: bool = False, random: int | None = None,
               seed: int | None = None, progress: Callable[[str, int, int], None] | None = None) -> StudyPush:
    """`kasauti push`: provision ``cfg.roster`` when set (with a workspace for every sample language),
    push ``sample.parquet`` (see `annotator.push.push`; record map ``<root>/argilla/records.parquet``)
    and, when adjudicating (`adjudicate`, default ``cfg.adjudication``), add `judge`'s scores from
    ``judgments.parquet`` as suggestions on items with ``cfg.min_submitted`` submitted responses.
    With `pairs`, push ``pairs.parquet`` as pairwise forms instead (`annotator.pairwise.push_pairs`;
    record map ``<root>/argilla/pair_records.parquet``), without adjudication. With `random` = N, push
    only the study's random slice of N items (`annotator.slices.draw_random` with `seed`; recorded in
    ``<root>/slices.parquet`` before anything is sent), to the same datasets."""
    root = Path(root)
    judgments = root / studytables.JUDGMENTS.file
    adjudicating = not pairs and (cfg.adjudication if adjudicate is None else adjudicate)
    if adjudicating and not judgments.exists():  # before anything is sent
        raise PushError(f"{judgments}: no judgments to adjudicate with; run `kasauti judge` first")
    sample = read_sample(root / studytables.SAMPLE.file)
    records = RecordMap(root / HOME / RECORD_MAP)
    drawn = None
    if random is not None:
        if pairs:
            raise PushError("--random draws a random slice of the sample's items, not pairs: push it without --pairs")
        drawn = draw_random(sample, random, seed, read_slices(root / studytables.SLICES.file))
        studytables.write(studytables.SLICES, drawn, root / studytables.SLICES.file)
    provisioned = None
    if cfg.roster is not None:
        provisioned = provision_study(client, root, cfg.roster, sorted(sample["language"].str.lower().unique()))
    opts = dict(opts=FormOptions(cfg.min_submitted, cfg.revision_question, cfg.comment_question), batch_size=batch_size,
                progress=progress, discard_changed_ratings=discard_changed_ratings)
    if pairs:
        report = push_pairs(client, read_pairs(root / studytables.PAIRS.file), sample, rs, study,
                            RecordMap(root / HOME / PAIR_MAP, "pair_id"), boosted=read_boosted(root), **opts)
    else:
        report = push(client, sample, rs, study, records, only=None if drawn is None else set(drawn["item_id"]), **opts)
    done = StudyPush(report, provisioned, slice=drawn)
    if adjudicating:
        done.adjudicated = add_suggestions(client, study, rs, records, studytables.read(studytables.JUDGMENTS, judgments),
                                           cfg.min_submitted, judge)
    return done


def pull_study(client: rg.Argilla, root: str | Path, study: str, rs: RubricSet) -> StudyPull:
    """`kasauti pull`: every response into ``ratings.parquet`` and ``revisions.parquet`` (see
    `annotator.pull.pull`), with the items rated on texts that differ from ``sample.parquet``; the
    pairwise comparisons into ``comparisons.parquet`` once pairs were pushed, and the escalated
    items' responses into ``ratings_escalated.parquet`` / ``revisions_escalated.parquet`` once items
    were escalated."""
    root = Path(root)
    path = root / studytables.SAMPLE.file
    sample = read_sample(path) if path.exists() else None
    records = RecordMap(root / HOME / RECORD_MAP)
    ratings, revisions = pull(client, study, rs, records, sample,
                              root / studytables.RATINGS.file, root / studytables.REVISIONS.file)
    done = StudyPull(ratings, revisions, [] if sample is None else stale_items(revisions, sample))
    if (root / HOME / PAIR_MAP).exists():
        done.comparisons = pull_comparisons(client, study, rs, RecordMap(root / HOME / PAIR_MAP, "pair_id"),
                                            read_pairs(root / studytables.PAIRS.file), read_sample(path),
                                            root / studytables.COMPARISONS.file, read_boosted(root))
    done.escalated = pull_escalated(client, study, rs, records, sample, root / studytables.RATINGS_ESCALATED_FILE,
                                   root / studytables.REVISIONS_ESCALATED_FILE)
    return done
