"""annotator.slices: the random calibration slice is a seeded, nested, uniform draw of the sample
(pushing it to the embedded server: tests/test_annotator.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

import studytables
from annotator.slices import SliceError, draw_random, ranks
from tests.annotator_data import make_sample

T1, T2 = datetime(2026, 11, 28, 9, tzinfo=timezone.utc), datetime(2026, 11, 28, 10, tzinfo=timezone.utc)


def test_the_slice_is_the_first_n_of_the_seeded_permutation_and_grows_nested():
    sample = make_sample(per_language=4)
    first = draw_random(sample, 5, seed=3, now=T1)
    by_hash = sorted(sample["item_id"], key=lambda i: hashlib.sha256(f"3\0{i}".encode()).hexdigest())
    assert first["item_id"].tolist() == by_hash[:5] and first["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (first["inclusion_probability"] == 5 / len(sample)).all() and (first["drawn_by"] == "random").all()
    assert first["stratum"].tolist() == sample.set_index("item_id").loc[by_hash[:5], "stratum"].tolist()
    studytables.conform(studytables.SLICES, first)  # the documented table
    again = draw_random(sample, 5, now=T2, drawn=first)  # the slice's seed; the same items, drawn when first drawn
    pd.testing.assert_frame_equal(again, first)
    more = draw_random(sample, 9, now=T2, drawn=first)
    assert more["item_id"].tolist() == by_hash[:9] and (more["inclusion_probability"] == 9 / len(sample)).all()
    assert (more["drawn_at"].iloc[:5] == pd.Timestamp(T1)).all() and (more["drawn_at"].iloc[5:] == pd.Timestamp(T2)).all()
    shuffled = sample.sample(frac=1, random_state=1)  # the row order of the sample does not matter
    assert draw_random(shuffled, 9, seed=3, now=T2)["item_id"].tolist() == by_hash[:9]


def test_every_item_has_the_same_chance_to_be_drawn():
    sample = make_sample(per_language=4)
    m, n, seeds = len(sample), 4, 3000
    hits = sum((ranks(sample["item_id"], s) <= n).astype(int) for s in range(seeds))  # draw_random's slice
    p = n / m
    assert np.abs(hits / seeds - p).max() < 4.5 * np.sqrt(p * (1 - p) / seeds)


def test_a_slice_that_cannot_be_extended_is_refused_with_what_to_do():
    sample = make_sample(per_language=4)
    drawn = draw_random(sample, 6, seed=3)
    with pytest.raises(SliceError, match=r"drawn with seed 3; push with --seed 3"):
        draw_random(sample, 8, seed=4, drawn=drawn)
    with pytest.raises(SliceError, match=r"already holds 6 items; --random takes at least 6"):
        draw_random(sample, 5, drawn=drawn)
    with pytest.raises(SliceError, match=rf"--random {len(sample) + 1}: expected a number of items from 1 to the sample's {len(sample)}"):
        draw_random(sample, len(sample) + 1)
    gone = sample[sample["item_id"] != drawn["item_id"].iloc[2]]
    with pytest.raises(SliceError, match=r"sample.parquet changed since the random slice was drawn \(1 of its items, e.g. '"):
        draw_random(gone, 8, drawn=drawn)
    # items added to the sample take places among the others: a slice before them all can still grow
    places = sorted(sample["item_id"], key=lambda i: hashlib.sha256(f"3\0{i}".encode()).hexdigest())
    before = draw_random(sample[~sample["item_id"].isin(places[6:9])], 6, seed=3)
    assert draw_random(sample, 8, drawn=before)["item_id"].tolist() == places[:8]
    with pytest.raises(SliceError, match=r"sample.parquet changed"):  # an added item took a place in the slice
        draw_random(sample, 8, drawn=draw_random(sample[sample["item_id"] != places[0]], 6, seed=3))
