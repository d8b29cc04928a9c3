"""training.kvcache: the growing key/value cache holds what transformers' DynamicLayer holds, without a copy per step."""

from __future__ import annotations

import math

import torch
from transformers.cache_utils import DynamicLayer

from training.boost import GenerationParams, TransformersGenerator
from training.examples import booster_prompt
from training.kvcache import GrowingLayer
from training.pairs import Triple

from .test_training import build_tiny_model


def test_growing_layer_holds_what_dynamic_layer_holds_and_reallocates_logarithmically():
    torch.manual_seed(0)
    ours, theirs = GrowingLayer(), DynamicLayer()
    buffers = set()

    def step(n: int, batch: int = 3):
        k, v = torch.randn(batch, 2, n, 8), torch.randn(batch, 2, n, 8)
        for got, want in zip(ours.update(k, v), theirs.update(k, v)):
            assert torch.equal(got, want)
        buffers.add(ours.buffers[0].data_ptr())

    step(7)
    for _ in range(60):
        step(1)
    assert ours.get_seq_length() == theirs.get_seq_length() == 67
    assert len(buffers) <= math.ceil(math.log2(67 / 7)) + 1  # doubling: not one buffer per step
    for layer in (ours, theirs):  # what generation strategies do to a cache, then more steps
        layer.crop(-5)
        layer.batch_select_indices(torch.tensor([2, 0]))
    for _ in range(3):
        step(1, batch=2)
    assert ours.get_seq_length() == theirs.get_seq_length() == 65


def test_cpu_generation_uses_the_growing_cache_and_writes_what_the_default_cache_writes(tmp_path):
    tiny = build_tiny_model(tmp_path / "tiny")
    prompts = [booster_prompt(Triple(text, "", "उत्तर")) for text in ("छोटा", "थोड़ा लंबा प्रश्न है यह", "இது ஒரு நீண்ட கேள்வி, மிக நீண்டது")]
    gen = TransformersGenerator(tiny, GenerationParams(max_new_tokens=24, min_new_tokens=24))
    caches, generate = [], gen.model.generate

    def recording(*args, **kwargs):  # the real generate, recording the cache it is given
        caches.append(kwargs.get("cache"))
        return generate(*args, **kwargs)

    def default_cache(*args, **kwargs):  # the real generate without the cache given: transformers builds its own
        kwargs.pop("cache")
        out = generate(*args, **kwargs, return_dict_in_generate=True)
        caches.append(out.past_key_values)
        return out.sequences

    gen.model.generate = recording
    ours = gen(prompts)
    assert caches and all(isinstance(layer, GrowingLayer) for layer in caches[0].layers)
    gen.model.generate = default_cache  # DynamicLayer: torch.cat per step
    theirs = gen(prompts)
    assert not any(isinstance(layer, GrowingLayer) for layer in caches[1].layers)
    assert ours == theirs and all(ours)
