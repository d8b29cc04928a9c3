"""Strict reading of a judge's JSON answer, and score distributions from token logprobs.

Nothing is coerced: an answer that is not a JSON object, lacks a metric or its integer score,
or gives a score off the scale is an :class:`AnswerError` naming what is wrong.

Distribution over the scale: at the token that carries each metric's score (the first token
after ``"score":`` inside that metric's object) the alternatives in ``top_logprobs`` that are a
level, led by the same non-digit characters as the chosen token up to whitespace (``"2"`` and
``" 2"`` are both level 2; after a chosen ``":2"`` only ``":1"``-like tokens count), are summed
per level and renormalised over the levels:
``p(v) = sum_{t: level(t)=v} exp(lp_t) / sum_{t: level(t) in scale} exp(lp_t)``.
Expected score ``E = sum_v v p(v)``; entropy ``H = -sum_v p(v) ln p(v)`` in **nats**.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rubrics import Metric


class AnswerError(ValueError):
    """The answer cannot be used; the message says why (it is shown to the judge on re-ask)."""


@dataclass(frozen=True, slots=True)
class Token:
    """One generated token: its text, logprob and the top alternatives as (text, logprob)."""

    text: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class MetricAnswer:
    score: int | None
    reason: str | None
    error: str | None = None  # set when this metric's part of the answer is unusable


_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.S)


def parse_answer(text: str, metrics: Sequence[Metric]) -> dict[str, MetricAnswer]:
    """Per metric the score and reason; raises AnswerError if the text is not a JSON object.

    A JSON object with one metric wrong gives that metric an ``error`` and keeps the others.
    """
    obj = load_object(text)
    return {m.name: _metric_answer(obj, m) for m in metrics}


def load_object(text: str) -> dict:
    """The answer's JSON object (a ```json fence around it is allowed); AnswerError otherwise."""
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise AnswerError(f"the answer must be a JSON object, got {type(obj).__name__}")
    return obj


def _metric_answer(obj: dict, m: Metric) -> MetricAnswer:
    part = obj.get(m.name)
    if not isinstance(part, dict):
        return MetricAnswer(None, None, f"missing object for metric {m.name!r}")
    reason = part.get("reason")
    reason = reason if isinstance(reason, str) else None
    if "score" not in part:
        return MetricAnswer(None, reason, f"metric {m.name!r} has no score")
    score = part["score"]
    if not isinstance(score, int) or isinstance(score, bool):
        return MetricAnswer(None, reason, f"metric {m.name!r}: score must be an integer, got {json.dumps(score)}")
    if score not in m.judge.scale.values:
        return MetricAnswer(None, reason, f"metric {m.name!r}: score {score} is not on the scale {m.judge.scale.values}")
    return MetricAnswer(score, reason)


_SCORE_KEY = re.compile(r'(?<!\\)"score"\s*:\s*$')
_LEAD = re.compile(r"^(\D*?)(-?\d+)")
_DIGIT = re.compile(r"\d")
_ALT = re.compile(r"^(\D*?)(-?\d+)(?!\d)")


def score_distributions(tokens: Sequence[Token], metrics: Sequence[Metric], answers: dict[str, MetricAnswer]) -> dict[str, dict[int, float] | None]:
    """Per metric the renormalised distribution over its judge levels, or None if not found."""
    by_name = {m.name: m for m in metrics}
    out: dict[str, dict[int, float] | None] = {n: None for n in by_name}
    texts = [t.text for t in tokens]
    text = "".join(texts)
    key_re = re.compile(r'(?<!\\)"(' + "|".join(re.escape(n) for n in by_name) + r')"\s*:\s*\{')
    keys = [(m.start(), m.group(1)) for m in key_re.finditer(text)]
    offset = 0
    for tok, t in zip(tokens, texts):
        start, offset = offset, offset + len(t)
        lead = _LEAD.match(t) if _DIGIT.search(t) else None
        if lead is None or not _SCORE_KEY.search(text[max(0, start - 48):start] + lead.group(1)):
            continue
        name = next((n for pos, n in reversed(keys) if pos < start), None)
        ans = answers.get(name) if name else None
        if ans is not None and ans.score is not None and int(lead.group(2)) == ans.score and out[name] is None:
            out[name] = _level_probs(tok, lead.group(1), by_name[name].judge.scale.values)
    return out


def _level_probs(tok: Token, prefix: str, levels: Sequence[int]) -> dict[int, float] | None:
    alts = dict(tok.top)
    alts.setdefault(tok.text, tok.logprob)
    mass = dict.fromkeys(levels, 0.0)
    for text, lp in alts.items():
        m = _ALT.match(text)
        if m and m.group(1).strip() == prefix.strip() and int(m.group(2)) in mass and lp is not None and math.isfinite(lp):
            mass[int(m.group(2))] += math.exp(lp)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {v: p / total for v, p in mass.items()}


def summarize(probs: dict[int, float]) -> tuple[float, float]:
    """Expected score and entropy (nats) of a distribution over levels."""
    expected = sum(v * p for v, p in probs.items())
    entropy = -sum(p * math.log(p) for p in probs.values() if p > 0)
    return expected, entropy
