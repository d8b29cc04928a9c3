"""A key/value cache for batched generation on the CPU that does not copy itself at every step.

transformers' ``DynamicLayer`` appends each step's keys and values with ``torch.cat``, which
copies the whole cache: at batch 16 and 650 tokens of context that copy was ~18% of a
SmolLM2-135M decoding step here. :class:`GrowingLayer` keeps them in a buffer with spare room
(doubled when full, so a sequence of n steps reallocates O(log n) times) and hands attention a
view of the filled part; the values are those ``DynamicLayer`` would hold.
"""

from __future__ import annotations

from transformers.cache_utils import DynamicCache, DynamicLayer


class GrowingLayer(DynamicLayer):
    """``DynamicLayer`` whose keys and values are views into a buffer that grows by doubling."""

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.buffers = None
        n, length = key_states.shape[-2], self.get_seq_length()
        # a new buffer when there is none, it is full, or keys were replaced from outside (crop, batch_select_indices)
        if self.buffers is None or self.keys.data_ptr() != self.buffers[0].data_ptr() or length + n > self.buffers[0].shape[-2]:
            self.buffers = tuple(s.new_empty(*s.shape[:-2], 2 * (length + n), s.shape[-1]) for s in (key_states, value_states))
            if length:
                self.buffers[0][..., :length, :] = self.keys
                self.buffers[1][..., :length, :] = self.values
        self.buffers[0][..., length:length + n, :] = key_states
        self.buffers[1][..., length:length + n, :] = value_states
        self.keys, self.values = (b[..., :length + n, :] for b in self.buffers)
        return self.keys, self.values


def growing_cache(config) -> DynamicCache:
    """A ``DynamicCache`` for the model of ``config`` whose full-attention layers are :class:`GrowingLayer`."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
