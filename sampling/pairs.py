"""Pairs of responses to the same prompt for pairwise comparison (``pairs.parquet``).

A prompt is identified by the sample's ``prompt_id`` column when it has one, else by its content
within a language: 16 hex characters of SHA-256 over language, task, prompt, conversation, system
prompt and context, so responses by different source models to the same prompt share it
(PARIKSHA-shaped item ids ``<uuid>|<model>`` need no special case). Within a pair the two items are in model-name order (``item_a`` by the
alphabetically first model); the order an annotator sees them in is drawn per pair (seeded) and
recorded in ``shown_order``. Pair ids hash the two items (and the repeat marker), so the same
sample and seed give the same ids.

Designs: ``all`` (every pair of models per prompt) or ``balanced`` (``n_per_prompt`` pairs per
prompt, chosen greedily so that each model, then each pair of models, has been used about equally
often). ``repeat_share`` of the pairs are repeated in swapped order (``repeat_of``) as a
consistency check on annotators. What could not be paired is counted in ``frame.attrs["counts"]``.
"""

from __future__ import annotations

import hashlib
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

import studytables
from studytables import BOOSTED, PAIRS, SAMPLE

from .lengths import grapheme_length

DESIGNS = ("all", "balanced")
PROMPT_KEY = ("language", "task", "prompt", "conversation", "system_prompt", "context")
NEEDED = ("item_id", "language", "task", "prompt", "source_model")


def _digest(*parts) -> str:
    return hashlib.sha256("\0".join("" if p is None or p is pd.NA else str(p) for p in parts).encode()).hexdigest()[:16]


def prompt_ids(sample: pd.DataFrame) -> pd.Series:
    """Each row's prompt id: its ``prompt_id`` when the sample has that column, else a hash of its
    language, task, prompt and (when present) conversation, system prompt and context."""
    if "prompt_id" in sample.columns:
        empty = sample["prompt_id"].isna().to_numpy()
        if empty.any():
            raise ValueError(f"sample: row {int(empty.argmax()) + 1}, column 'prompt_id': empty; every item needs the id "
                             "of the prompt it answers (or leave the column out to identify prompts by their text)")
        return sample["prompt_id"].astype(str)
    cols = [c for c in PROMPT_KEY if c in sample.columns]
    values = sample[cols].astype(object).where(sample[cols].notna(), None)
    return pd.Series([_digest(*row) for row in values.itertuples(index=False)], index=sample.index, dtype=object)


def _check(sample: pd.DataFrame, what: str) -> None:
    missing = [c for c in NEEDED if c not in sample.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; pairs need {list(NEEDED)} (see ARCHITECTURE.md, sample.parquet)")
    dup = sample["item_id"].duplicated().to_numpy()
    if dup.any():
        row = int(dup.argmax())
        raise ValueError(f"{what}: row {row + 1}, column 'item_id': {sample['item_id'].iloc[row]!r} appears twice; "
                         "item ids must be unique")


def _options(design: str, n_per_prompt: int | None, repeat_share: float) -> None:
    if design not in DESIGNS:
        raise ValueError(f"design {design!r}: expected one of {list(DESIGNS)}")
    if n_per_prompt is not None and (design == "all" or int(n_per_prompt) != n_per_prompt or n_per_prompt < 1):
        raise ValueError(f"n_per_prompt={n_per_prompt!r}: expected a positive whole number, and only with design 'balanced'")
    if not 0.0 <= repeat_share <= 1.0:
        raise ValueError(f"repeat_share={repeat_share!r}: expected a share between 0 and 1")


def _balanced(groups: list[list[tuple]], n_per_prompt: int | None, rng: np.random.Generator) -> list[tuple]:
    """Per prompt, the candidate pairs least used so far: by model use, then model-pair use, then at random."""
    model_use: dict[str, int] = {}
    pair_use: dict[tuple[str, str], int] = {}
    chosen = []
    for g in rng.permutation(len(groups)):
        candidates = list(groups[g])
        n_models = len({c[3] for c in candidates} | {c[4] for c in candidates})
        n = min(len(candidates), n_per_prompt or max(1, n_models // 2))
        for _ in range(n):
            keys = [(model_use.get(c[3], 0) + model_use.get(c[4], 0), pair_use.get((c[3], c[4]), 0), rng.random())
                    for c in candidates]
            pick = candidates.pop(min(range(len(keys)), key=keys.__getitem__))
            for m in pick[3:5]:
                model_use[m] = model_use.get(m, 0) + 1
            pair_use[pick[3], pick[4]] = pair_use.get((pick[3], pick[4]), 0) + 1
            chosen.append(pick)
    return chosen


def _frame(rows: list[tuple], repeat_share: float, rng: np.random.Generator) -> pd.DataFrame:
    """PAIRS rows from (prompt_id, item_a, item_b, model_a, model_b, language, task) with orders and repeats."""
    cols = ["prompt_id", "item_a", "item_b", "model_a", "model_b", "language", "task"]
    f = pd.DataFrame(rows, columns=cols, dtype=object)
    f["pair_id"] = pd.Series([_digest(p, a, b, ma, mb) for p, a, b, ma, mb in zip(f["prompt_id"], f["item_a"], f["item_b"], f["model_a"], f["model_b"])],
                            index=f.index, dtype=object)
    f["shown_order"] = np.where(rng.random(len(f)) < 0.5, "ab", "ba")
    f["repeat_of"] = None
    rep = f.iloc[np.sort(rng.choice(len(f), int(round(repeat_share * len(f))), replace=False))].copy()
    rep["repeat_of"] = rep["pair_id"]
    rep["pair_id"] = [_digest(p, "repeat") for p in rep["pair_id"]]
    rep["shown_order"] = np.where(rep["shown_order"] == "ab", "ba", "ab")
    out = pd.concat([f, rep], ignore_index=True)[PAIRS.names]
    return studytables.conform(PAIRS, out, "pairs")


def make_pairs(sample_df: pd.DataFrame, design: str = "all", seed: int = 0, n_per_prompt: int | None = None,
               repeat_share: float = 0.0) -> pd.DataFrame:
    """Pairs of responses to the same prompt by two different source models, as ``pairs.parquet`` rows.

    ``frame.attrs["counts"]``: items, items_without_source_model (not paired), prompts,
    items_alone (in prompts answered by one model only: no pair possible), candidate_pairs,
    pairs (chosen), repeats. A model with two responses to one prompt is an error naming them.
    """
    _check(sample_df, "sample")
    _options(design, n_per_prompt, repeat_share)
    rng = np.random.default_rng(seed)
    no_model = sample_df["source_model"].isna().to_numpy()
    s = sample_df[~no_model].assign(_prompt=prompt_ids(sample_df[~no_model]), _row=np.flatnonzero(~no_model) + 1)
    twice = s.duplicated(["_prompt", "source_model"]).to_numpy()
    if twice.any():
        first = s.iloc[twice.argmax()]
        rows = s[(s["_prompt"] == first["_prompt"]) & (s["source_model"] == first["source_model"])]
        raise ValueError(f"sample: rows {', '.join(map(str, rows['_row']))}, column 'source_model': "
                         f"{rows['source_model'].iloc[0]!r} answers the same prompt more than once; "
                         "a pair compares two models, so keep one response per model and prompt")
    groups, alone = [], 0
    for pid, g in s.sort_values(["_prompt", "source_model"]).groupby("_prompt", sort=True):
        if len(g) < 2:
            alone += len(g)
            continue
        items = list(zip(g["item_id"], g["source_model"]))
        groups.append([(pid, a, b, ma, mb, g["language"].iloc[0], g["task"].iloc[0])
                       for (a, ma), (b, mb) in combinations(items, 2)])
    candidates = [c for g in groups for c in g]
    rows = candidates if design == "all" else _balanced(groups, n_per_prompt, rng)
    out = _frame(rows, repeat_share, rng)
    out.attrs["counts"] = {"items": len(sample_df), "items_without_source_model": int(no_model.sum()),
                           "prompts": int(s["_prompt"].nunique()), "items_alone": alone,
                           "candidate_pairs": len(candidates), "pairs": len(rows),
                           "repeats": int(out["repeat_of"].notna().sum())}
    return out


def _texts(frame: pd.DataFrame) -> pd.Series:
    """Each row's whole item (prompt, context, response) as one comparable value; no context = empty."""
    context = frame["context"].fillna("") if "context" in frame.columns else pd.Series("", index=frame.index)
    return frame["prompt"].astype(str) + "\x1f" + context.astype(str) + "\x1f" + frame["response"].astype(str)


def boosted_pairs(original: pd.DataFrame, boosted: pd.DataFrame, seed: int = 0, repeat_share: float = 0.0,
                  labels: tuple[str, str] = ("original", "boosted")) -> pd.DataFrame:
    """Original vs boosted: one pair per item id in both tables (same ids, two versions of the item).

    ``item_a`` and ``item_b`` are the same item id; ``model_a`` / ``model_b`` are ``labels`` (the data
    versions: ``item_a`` is the original in `original`, ``item_b`` its version in `boosted`; see
    :func:`pair_items`). ``frame.attrs["counts"]``: original_items, boosted_items, only_original,
    only_boosted, unchanged (the booster changed neither instruction, input nor response: not paired,
    nothing to compare), pairs, repeats.
    """
    _check(original, "original")
    _check(boosted, "boosted")
    _options("all", None, repeat_share)
    if labels[0] == labels[1]:
        raise ValueError(f"labels {labels!r}: the two versions need different labels")
    both = original.merge(boosted.assign(_boosted=_texts(boosted))[["item_id", "_boosted"]], on="item_id")
    same = (_texts(both) == both["_boosted"]).to_numpy()
    both = both[~same]
    rows = list(zip(prompt_ids(both), both["item_id"], both["item_id"], [labels[0]] * len(both),
                    [labels[1]] * len(both), both["language"], both["task"]))
    out = _frame(rows, repeat_share, np.random.default_rng(seed))
    out.attrs["counts"] = {"original_items": len(original), "boosted_items": len(boosted),
                           "only_original": int((~original["item_id"].isin(boosted["item_id"])).sum()),
                           "only_boosted": int((~boosted["item_id"].isin(original["item_id"])).sum()),
                           "unchanged": int(same.sum()), "pairs": len(rows),
                           "repeats": int(out["repeat_of"].notna().sum())}
    return out


VERSION_FIELDS = ("prompt", "context", "response")


def read_boosted(study_root: str | Path) -> pd.DataFrame | None:
    """The study's ``boosted.parquet`` (checked), or None when there is none."""
    path = Path(study_root) / BOOSTED.file
    return studytables.read(BOOSTED, path) if path.exists() else None


def _text(value) -> str:
    """A text field's value; missing (None, NaN, NA) as empty."""
    return "" if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) else str(value)


def version_text(item: dict) -> str:
    """A whole item (instruction, input when any, response) as one text to show."""
    parts = [("Instruction", item["prompt"]), ("Input", item.get("context")), ("Response", item["response"])]
    return "\n\n".join(f"## {name}\n{_text(text)}" for name, text in parts if _text(text))


def pair_items(pairs: pd.DataFrame, sample: pd.DataFrame, boosted: pd.DataFrame | None = None,
               source: str = "pairs.parquet") -> list[tuple[dict, dict]]:
    """Per row of `pairs`: (model_a's item, model_b's item) as sample records holding the texts to show.

    A pair of two source models' responses takes both items from `sample`. A pair of two versions of
    one item (``item_a == item_b``, :func:`boosted_pairs`) takes model_a's from `sample` (the
    original) and model_b's from `boosted` (``boosted.parquet``: its prompt, context and response over
    the sample record); both keep the original's prompt as the one shown. When the booster changed
    the instruction or input, each side's ``response`` is its whole item (:func:`version_text`), so
    nothing the booster changed is hidden; a version's ``length`` is that of the text it shows.
    ValueError naming the row and column of an item missing from the table that should hold it.
    """
    items = {str(r["item_id"]): r for r in sample.to_dict("records")}
    versions = {} if boosted is None else {str(r["item_id"]): r for r in boosted.to_dict("records")}
    checks = [("item_a", ~pairs["item_a"].astype(str).isin(items), "an item_id of sample.parquet",
               "write the pairs again from the current sample (`kasauti pairs`)"),
              ("item_b", ~pairs["item_b"].astype(str).isin(items), "an item_id of sample.parquet",
               "write the pairs again from the current sample (`kasauti pairs`)"),
              ("item_b", (pairs["item_a"] == pairs["item_b"]) & ~pairs["item_b"].astype(str).isin(versions),
               "an item_id of boosted.parquet (a pair of two versions of one item shows the boosted one)",
               "boost the sample first (`kasauti boost`), then write the pairs again (`kasauti pairs --boosted`)")]
    for col, mask, expected, todo in checks:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            raise ValueError(f"{source}: row {rows[0] + 1}, column {col!r}: expected {expected}, got "
                             f"{pairs[col].iloc[rows[0]]!r} ({len(rows)} such row(s)); {todo}")
    out = []
    for a_id, b_id in zip(pairs["item_a"].astype(str), pairs["item_b"].astype(str)):
        a, b = items[a_id], items[b_id]
        if a_id == b_id:
            b = {**a, **{k: versions[b_id].get(k) for k in VERSION_FIELDS}}
            if any(_text(a.get(k)) != _text(b.get(k)) for k in ("prompt", "context")):
                a, b = ({**x, "response": version_text(x)} for x in (a, b))
            a, b = ({**x, "prompt": items[a_id]["prompt"], "context": items[a_id].get("context"),
                     "length": grapheme_length(x["response"])} for x in (a, b))
        out.append((a, b))
    return out


def write_pairs(study_root: str | Path, design: str = "all", seed: int = 0, n_per_prompt: int | None = None,
                repeat_share: float = 0.0, boosted: bool = False) -> tuple[Path, dict]:
    """Read the study's ``sample.parquet``, make pairs and write ``pairs.parquet`` beside it; with
    `boosted`, pairs of each item's original and boosted version (``boosted.parquet``, :func:`boosted_pairs`).

    Returns (path written, counts as in :func:`make_pairs` or :func:`boosted_pairs`).
    """
    root = Path(study_root)
    sample = studytables.read(SAMPLE, root / SAMPLE.file)
    if boosted:
        if design != "all" or n_per_prompt is not None:
            raise ValueError("boosted pairs pair each item with its own boosted version; --design and --per-prompt "
                             "do not apply to them")
        versions = read_boosted(root)
        if versions is None:
            raise ValueError(f"{root / BOOSTED.file}: not found; boost the sample first (`kasauti boost`)")
        pairs = boosted_pairs(sample, versions, seed, repeat_share)
    else:
        pairs = make_pairs(sample, design, seed, n_per_prompt, repeat_share)
    path = root / PAIRS.file
    studytables.write(PAIRS, pairs, path)
    return path, pairs.attrs["counts"]
