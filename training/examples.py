"""Booster examples in MIDB's shape, student chat prompts, the held-out split, and the strict parser of booster output.

An example is a conversation: the user turn is a fixed improve instruction followed by the
original item, the assistant turn (the training target, the only tokens with loss) is the
revised item. Items are written as a JSON object with exactly the keys instruction, input and
response, so that generated text parses back unambiguously whatever the items contain.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from .pairs import RevisionPair, Triple

IMPROVE_INSTRUCTION = (
    "You are a linguistic expert and native speaker of the item's language. Improve this instruction-tuning "
    "item: fix content errors, translation defects and missing localisation, keeping what is already right. "
    "Answer with the whole improved item as one JSON object with exactly the keys instruction, input and "
    "response, and nothing else."
)
TRIPLE_KEYS = ("instruction", "input", "response")


class UnparseableOutput(ValueError):
    """Booster output that is not one JSON object with exactly the keys instruction, input, response."""


def render_triple(item: Triple) -> str:
    return json.dumps(dict(zip(TRIPLE_KEYS, (item.instruction, item.input, item.response))), ensure_ascii=False)


def parse_triple(text: str) -> Triple:
    """The item in generated `text` (surrounding whitespace allowed, nothing else); raises UnparseableOutput."""

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise UnparseableOutput(f"duplicate key in {keys}")
        return dict(pairs)

    try:
        obj = json.loads(text.strip(), object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise UnparseableOutput(f"not a JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise UnparseableOutput(f"expected a JSON object, got {type(obj).__name__}")
    if set(obj) != set(TRIPLE_KEYS):
        raise UnparseableOutput(f"expected exactly the keys {list(TRIPLE_KEYS)}, got {list(obj)}")
    for key in TRIPLE_KEYS:
        if not isinstance(obj[key], str):
            raise UnparseableOutput(f"{key!r} is {type(obj[key]).__name__}, expected text")
    if not obj["response"].strip():
        raise UnparseableOutput("the response is empty")
    return Triple(*(obj[k] for k in TRIPLE_KEYS))


def booster_prompt(original: Triple) -> list[dict[str, str]]:
    """The chat messages that ask the booster to improve `original`."""
    return [{"role": "user", "content": f"{IMPROVE_INSTRUCTION}\n\n{render_triple(original)}"}]


def chat_prompt(prompt: str, context: str | None = None, conversation: str | None = None,
                system_prompt: str | None = None) -> list[dict[str, str]]:
    """The chat messages of an item as a student sees them: its system prompt, earlier turns (a JSON list of
    role/content turns), then the prompt as the user turn, its context (input) after a blank line."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": t["role"], "content": t["content"]} for t in json.loads(conversation)] if conversation else []
    return [*messages, {"role": "user", "content": f"{prompt}\n\n{context}" if context else prompt}]


def booster_example(pair: RevisionPair) -> dict[str, list[dict[str, str]]]:
    """A conversational prompt-completion example (TRL's format: loss on the completion only)."""
    return {
        "prompt": booster_prompt(pair.original),
        "completion": [{"role": "assistant", "content": render_triple(pair.revised)}],
    }


def split_by_item(pairs: Sequence[RevisionPair], eval_share: float, seed: int) -> tuple[list[RevisionPair], list[RevisionPair]]:
    """(train, held out): a seeded draw of items, so every revision of one item falls on the same side.

    ``round(eval_share * items)`` items are held out, at least one when eval_share > 0 and there
    are two items or more; the draw does not depend on the order of `pairs`.
    """
    items = sorted({p.item_id for p in pairs})
    n_eval = int(eval_share * len(items) + 0.5)
    if eval_share > 0 and len(items) > 1:
        n_eval = min(max(n_eval, 1), len(items) - 1)
    held = set(random.Random(seed).sample(items, n_eval))
    return [p for p in pairs if p.item_id not in held], [p for p in pairs if p.item_id in held]
