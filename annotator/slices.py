"""The study's random calibration slice: the items `kasauti push --random N` pushes.

PPI (`reports.ppi`) is valid only when the human-labelled items are a uniformly random subset of
the items estimated. The slice is drawn uniformly over the whole sample, not per stratum: each
item's place in one seeded permutation is the SHA-256 of the seed and its item id, and the slice
of N is the first N places. Every item of the sample so had the same chance N / M to be drawn (M
items), and the slice's items in any cell (a language, a stratum) are a uniformly random subset
of the cell's items, so PPI per cell needs no weights. A larger N extends the slice (nested
draws: the first N places include the first N' < N), the same N draws the same items.
``slices.parquet`` (`studytables.SLICES`) records which items were drawn and how; it is written
before the items are pushed, so a push that crashed is completed by running it again.

An item's place depends only on the seed and its own id: items added to the sample later fall
between the others without moving them. A slice that is no longer the first places of the
current sample (new items took places before its last one, or some of its items left the sample)
is not a uniform draw of it, and extending it is refused.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import studytables

from .push import PushError
from .records import describe

DRAWN_BY = "random"
DEFAULT_SEED = 0


class SliceError(PushError):
    """A random slice that cannot be drawn or extended; the message is one line saying what to do."""


def ranks(item_ids, seed: int) -> np.ndarray:
    """1-based place of each (distinct) item in the seed's permutation: items by SHA-256 of ``seed NUL item_id``."""
    keys = [hashlib.sha256(f"{seed}\0{i}".encode()).hexdigest() for i in item_ids]
    out = np.empty(len(keys), np.int64)
    out[sorted(range(len(keys)), key=keys.__getitem__)] = np.arange(1, len(keys) + 1)
    return out


def read_slices(path: str | Path) -> pd.DataFrame | None:
    """``slices.parquet``, checked; None when no slice was drawn."""
    return studytables.read(studytables.SLICES, path) if Path(path).exists() else None


def draw_random(sample: pd.DataFrame, n: int, seed: int | None = None, drawn: pd.DataFrame | None = None,
                now: datetime | None = None) -> pd.DataFrame:
    """The random slice of ``n`` items of ``sample`` (module doc) as SLICES rows, extending ``drawn``
    (the slice drawn before, or None): its items keep their ``drawn_at``, every row gets the
    inclusion probability n / len(sample). ``seed`` defaults to the earlier slice's, else 0."""
    where = studytables.SLICES.file
    if drawn is not None and len(drawn):
        seeds = sorted(set(drawn["seed"].astype(int)))
        if len(seeds) > 1 or (seed is not None and seed != seeds[0]):
            raise SliceError(f"{where}: the random slice was drawn with seed {seeds[0]}; push with --seed {seeds[0]} "
                             "(or none) to extend it: one slice has one seed")
        seed = seeds[0]
        if n < len(drawn):
            raise SliceError(f"{where}: the random slice already holds {len(drawn)} items; --random takes at least "
                             f"{len(drawn)} (a slice only grows, its items are pushed)")
    seed = DEFAULT_SEED if seed is None else int(seed)
    if not 1 <= n <= len(sample):
        raise SliceError(f"--random {n}: expected a number of items from 1 to the sample's {len(sample)}")
    ids = sample["item_id"].astype(str).to_numpy()
    place = ranks(ids, seed)
    chosen = place <= n
    if drawn is not None and len(drawn):
        first = set(ids[place <= len(drawn)])
        moved = sorted(set(drawn["item_id"]) - first)
        if moved:
            raise SliceError(
                f"{where}: sample.parquet changed since the random slice was drawn ({len(moved)} of its items, e.g. "
                f"{describe([repr(x) for x in moved], 3)}, are not among the first {len(drawn)} of the sample's "
                "permutation now), so the slice is not a uniform draw of this sample: restore the sample, or move "
                f"{where} away to draw a new slice (ratings of the old one then count as of unknown provenance)")
    stamp = pd.Timestamp(now or datetime.now(timezone.utc))
    out = pd.DataFrame({"item_id": ids[chosen], "drawn_by": DRAWN_BY, "seed": seed, "rank": place[chosen],
                        "inclusion_probability": n / len(sample), "stratum": sample["stratum"].to_numpy()[chosen],
                        "drawn_at": stamp})
    if drawn is not None and len(drawn):
        out["drawn_at"] = out["item_id"].map(dict(zip(drawn["item_id"], drawn["drawn_at"]))).fillna(stamp)
    return studytables.conform(studytables.SLICES, out.sort_values("rank").reset_index(drop=True), where)
