"""Pairwise comparison by native speakers in Argilla: push `pairs.parquet`, pull `comparisons.parquet`.

One pairwise dataset per (language, task family) in the language's workspace
(`<study>-<language>-<family>-pairwise`): one field showing the prompt and the two responses side by
side as A and B in the pair's recorded `shown_order` (`forms.pair_template`), and per rubric metric one
question A better / B better / tie. What annotators must not see never leaves kasauti: a record
carries an opaque id (mapped to its pair in `argilla/pair_records.parquet`), its texts and the
visible metadata (language, task); model names, item ids and the order are kasauti's alone. Pushing reuses direct assessment's machinery: only new
or changed records are sent, in committed batches, and a text changed under responses is refused.
Pull translates each answer into the models' terms through the pair's shown order, after checking
that the record shows the responses in that order. The texts are `sampling.pairs.pair_items`': a
pair of an item's original and boosted version (``kasauti pairs --boosted``) shows the original from
the sample and the boosted one from ``boosted.parquet``; the labels ``original`` / ``boosted`` are
model names like any other and never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import argilla as rg
import numpy as np
import pandas as pd

import studytables
from rubrics.schema import RubricSet
from sampling.pairs import pair_items
from studytables import COMPARISONS, PAIRS

from .forms import (COMPARISON, JUSTIFICATION, OPTIONAL_FIELDS, FormOptions, build_pair_settings, pair_dataset_name,
                    pieces_text, text_pieces, workspace_name)
from .pull import PullError, study_datasets
from .push import (BULK_MAX, DatasetPush, PushError, PushReport, check_batch_size, check_sample, ensure_dataset,
                   iter_records, plan_dataset, record_payload, send, start_report)
from .records import RecordMap, describe

PAIR_COLUMNS = ("pair_id", "prompt_id", "language", "task", "item_a", "item_b", "model_a", "model_b", "shown_order")
ORDERS = ("ab", "ba")


def _check_pairs(pairs: pd.DataFrame, source: str) -> None:
    """Known columns, an order, unique ids; errors name row and column (the items: `sampling.pairs.pair_items`)."""
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise PushError(f"{source}: missing column(s) {missing}; expected the pairs.parquet schema in ARCHITECTURE.md")
    checks = [
        ("shown_order", ~pairs["shown_order"].isin(ORDERS), "'ab' or 'ba'"),
        ("pair_id", pairs["pair_id"].astype(str).duplicated(), "a unique pair id"),
    ]
    for col, mask, expected in checks:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            raise PushError(f"{source}: row {rows[0] + 1}, column {col!r}: expected {expected}, got "
                            f"{pairs[col].iloc[rows[0]]!r} ({len(rows)} such row(s)); write the pairs again from the "
                            "current sample (sampling.pairs.write_pairs)")


def shown_items(pairs: pd.DataFrame, sample: pd.DataFrame, boosted: pd.DataFrame | None, source: str) -> dict[str, tuple[dict, dict]]:
    """Pair id -> (model_a's item, model_b's item), the texts to show (`sampling.pairs.pair_items`)."""
    _check_pairs(pairs, source)
    try:
        items = pair_items(pairs, sample, boosted, source)
    except ValueError as exc:
        raise PushError(str(exc)) from None
    return dict(zip(pairs["pair_id"].astype(str), items))


def read_pairs(path: str | Path) -> pd.DataFrame:
    """pairs.parquet, checked against its schema; a missing or unfit file is a PushError saying what to do."""
    path = Path(path)
    if not path.exists():
        raise PushError(f"{path}: no pairs; write them first (sampling.pairs.write_pairs, the `kasauti pairs` stage)")
    try:
        return studytables.read(PAIRS, path)
    except studytables.TableError as exc:
        raise PushError(f"{exc}; write the pairs again (sampling.pairs.write_pairs)") from None


def _shown(pair: dict, items: dict[str, tuple[dict, dict]]) -> tuple[dict, dict]:
    """The pair's two items in the order shown (A, B)."""
    a, b = items[str(pair["pair_id"])]
    return (a, b) if pair["shown_order"] == "ab" else (b, a)


def pair_payload(pair: dict, items: dict[str, tuple[dict, dict]], record_id: str) -> dict:
    """The bulk-upsert item of a pair: one comparison field with the first shown item's prompt and optional
    texts, its response as `a` and the other's as `b`, each as `forms.text_pieces`."""
    first, second = _shown(pair, items)
    payload = record_payload(first, list(OPTIONAL_FIELDS), record_id)
    texts = payload["fields"]
    texts["a"], texts["b"] = texts.pop("response"), str(second["response"])
    payload["fields"] = {COMPARISON: {key: text_pieces(text) for key, text in texts.items()}}
    return payload


def _shown_a(record: dict) -> str | None:
    """The text a pairwise record shows as response A (in `response_a` for records pushed before A and B were
    side by side, so that their answers still pull)."""
    fields = record["fields"] or {}
    return pieces_text(fields[COMPARISON]["a"]) if COMPARISON in fields else fields.get("response_a")


def push_pairs(
    client: rg.Argilla,
    pairs: pd.DataFrame,
    sample: pd.DataFrame,
    rs: RubricSet,
    study: str,
    records: RecordMap,
    opts: FormOptions = FormOptions(),
    batch_size: int = BULK_MAX,
    progress: Callable[[str, int, int], None] | None = None,
    discard_changed_ratings: bool = False,
    boosted: pd.DataFrame | None = None,
) -> PushReport:
    """Push every pair to its (language, family) pairwise dataset; only new or changed records are sent.

    `records` maps pair ids to record ids (`PAIR_MAP`); `boosted` (boosted.parquet) holds the second
    version of pairs of two versions of one item. As `push.push`: a pair whose texts changed
    under responses is refused unless `discard_changed_ratings`; `progress` after each batch.
    """
    check_sample(sample)
    check_batch_size(batch_size)
    items = shown_items(pairs, sample, boosted, "pairs")
    languages = pairs["language"].astype(str).str.lower()
    families = pairs["task"].map(lambda t: rs.family_for(str(t)).name)
    report = start_report(client, languages)
    ids = dict(zip(pairs["pair_id"].astype(str), records.assign(pairs["pair_id"])))
    plans, conflicts = [], []
    for (language, fam_name), group in pairs.groupby([languages, families], sort=True):
        family = rs.family(fam_name)
        rows = group.to_dict("records")
        name, workspace = pair_dataset_name(study, language, fam_name), workspace_name(language)
        ds, created = ensure_dataset(client, build_pair_settings(rs, family, opts), name, workspace)
        if COMPARISON not in [f.name for f in ds.settings.fields]:
            raise PushError(f"dataset {workspace}/{name} was created by an older kasauti (the responses one above the "
                            "other, not side by side); pull its comparisons with `kasauti pull`, then delete the "
                            "dataset in Argilla or set a new study name in kasauti.yaml, and push again")
        payloads = [(f"pair {str(p['pair_id'])!r}", pair_payload(p, items, ids[str(p["pair_id"])])) for p in rows]
        entry = DatasetPush(name=name, workspace=workspace, family=fam_name, items=len(group), created=created)
        plans.append(plan_dataset(client, ds, entry, payloads, records, {m.name for m in family.metrics}, conflicts))
    send(client, plans, conflicts, records, report, batch_size, progress, discard_changed_ratings,
         "the sample and pairs.parquet (the order shown is part of a pair's texts)")
    return report


def collect_comparisons(client: rg.Argilla, study: str, rs: RubricSet, records: RecordMap, pairs: pd.DataFrame,
                        sample: pd.DataFrame, boosted: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every response of the study's pairwise datasets in the long pairwise format (`COMPARISONS`).

    One row per (pair, criterion, annotator) with an answer, any status; `outcome` is `a`/`b`/`tie`
    in terms of `model_a`/`model_b`. A record with responses that the map or `pairs` does not know,
    or whose response A is not the response the pair's `shown_order` puts first (as push shows it), is
    a PullError (nothing is guessed).
    """
    items = shown_items(pairs, sample, boosted, "pairs.parquet")
    by_id = {str(p["pair_id"]): p for p in pairs.to_dict("records")}
    users = {str(u.id): u.username for u in client.api.users.list()}
    rows, unknown, moved = [], [], []
    for sd in study_datasets(client, study, rs, pair_dataset_name):
        metrics = [m.name for m in sd.family.metrics]
        for rec in iter_records(client, sd.id, include="responses"):
            if not rec.get("responses"):
                continue
            pair = by_id.get(records.item_of(rec["external_id"]) or "")
            if pair is None:
                unknown.append(f"{sd.name}: {rec['external_id']!r}")
                continue
            if str(_shown(pair, items)[0]["response"]) != _shown_a(rec):
                moved.append(repr(str(pair["pair_id"])))
                continue
            first = "a" if pair["shown_order"] == "ab" else "b"
            outcome = {"A": first, "B": "b" if first == "a" else "a", "tie": "tie"}
            lengths = dict(zip(("length_a", "length_b"), (i.get("length") for i in items[str(pair["pair_id"])])))
            base = {k: pair[k] for k in ("pair_id", "prompt_id", "language", "model_a", "model_b", "shown_order")}
            for resp in rec["responses"]:
                values = resp.get("values") or {}
                note = (values.get(JUSTIFICATION) or {}).get("value") or None
                for metric in metrics:
                    label = (values.get(metric) or {}).get("value")
                    if label is None:
                        continue
                    rows.append(base | lengths | {
                        "criterion": metric, "rater": users.get(str(resp["user_id"]), str(resp["user_id"])),
                        "rater_kind": "human", "outcome": outcome[label], "probs": None,
                        "justification": note, "status": resp["status"]})
    if unknown:
        raise PullError(f"{len(unknown)} pairwise record(s) with responses are not in {records.path} and pairs.parquet "
                        f"({describe(unknown, 3)}); restore the pair map and the pairs.parquet they were pushed "
                        "from, and pull again; nothing was written")
    if moved:
        raise PullError(f"{len(moved)} pair(s) show a response A other than the one pairs.parquet's shown_order puts "
                        f"first in sample.parquet (boosted.parquet for a boosted version) ({describe(moved, 3)}): the pairs, "
                        "the sample or the boosted items changed since they "
                        "were pushed. Restore them and pull again (or push again to show the new texts); nothing was written")
    frame = pd.DataFrame(rows, columns=COMPARISONS.names)
    frame = frame.sort_values(["pair_id", "criterion", "rater"], kind="stable").reset_index(drop=True)
    return studytables.conform(COMPARISONS, frame, "comparisons")


def pull_comparisons(client: rg.Argilla, study: str, rs: RubricSet, records: RecordMap, pairs: pd.DataFrame,
                     sample: pd.DataFrame, path: str | Path, boosted: pd.DataFrame | None = None) -> pd.DataFrame:
    """Collect every pairwise response and write `comparisons.parquet` (atomically, checked); returns it."""
    frame = collect_comparisons(client, study, rs, records, pairs, sample, boosted)
    studytables.write(COMPARISONS, frame, path)
    return frame
