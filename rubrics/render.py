"""Render a rubric set to annotator guidelines (Markdown) and to LLM-judge prompts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .schema import Family, Metric, RubricSet

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,
)


def render_guidelines(rs: RubricSet, families: Sequence[Family] | None = None) -> str:
    """Annotator guidelines in Markdown: general instructions, then every metric's anchors."""
    return _ENV.get_template("guidelines.md.j2").render(rs=rs, families=families or rs.families)


def judge_response_schema(metrics: Sequence[Metric]) -> dict:
    """JSON schema of the judge's answer: per metric a reason and an integer score on its scale."""
    props = {
        m.name: {
            "type": "object",
            "properties": {
                "reason": {"type": "string"},
                "score": {"type": "integer", "enum": m.judge.scale.values},
            },
            "required": ["reason", "score"],
            "additionalProperties": False,
        }
        for m in metrics
    }
    return {
        "type": "object",
        "properties": props,
        "required": [m.name for m in metrics],
        "additionalProperties": False,
    }


def _answer_format(metrics: Sequence[Metric]) -> str:
    """The answer example: valid JSON with each score an integer (a model without schema-constrained
    output copies the example's types, and the parser rejects quoted scores)."""
    example = {m.name: {"reason": "...", "score": m.judge.scale.values[0]} for m in metrics}
    return json.dumps(example, ensure_ascii=False)


@lru_cache(maxsize=1024)
def _judge_system(language: str, answer_format: str) -> str:
    """The system message depends on the language and metrics only: rendered once per pair."""
    return _ENV.get_template("judge_system.j2").render(language=language, answer_format=answer_format)


def _turns(item: Mapping) -> list:
    return item.get("conversation") or [{"role": "user", "content": item["prompt"]}]


def judge_messages(
    metrics: Sequence[Metric],
    item: Mapping,
    language: str,
) -> list[dict[str, str]]:
    """Chat messages asking a judge to score `item` on `metrics`.

    `item` has `task` and `response`, and either `conversation` (a list of {role, content}
    turns before the response) or `prompt`; optional `system_prompt` and `context`.
    `language` is the language's English name (e.g. "Odia").
    """
    turns = _turns(item)
    system = _judge_system(language, _answer_format(metrics))
    user = _ENV.get_template("judge_user.j2").render(
        task=item["task"],
        language=language,
        context=item.get("context"),
        system_prompt=item.get("system_prompt"),
        turns=turns,
        response=item["response"],
        metrics=metrics,
    )
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]


VERDICTS = ("A", "B", "tie")


@dataclass(frozen=True)
class Criterion:
    """What a pairwise judge compares two responses on: a rubric metric, or ``overall``."""

    name: str
    title: str
    question: str


def pair_criteria(metrics: Sequence[Metric], overall: bool = False) -> tuple[Criterion, ...]:
    """One criterion per metric (its description; lower is better where the metric says so), or
    one ``overall`` criterion naming every metric."""
    if overall:
        names = "; ".join(f"{m.title} ({m.description.strip()})" for m in metrics)
        return (Criterion("overall", "Overall quality", f"Which response is better overall, taking into account: {names}"),)
    return tuple(Criterion(m.name, m.title, m.description.strip() + ("" if m.higher_is_better else " (Less of this is better.)"))
                 for m in metrics)


def pair_response_schema() -> dict:
    """JSON schema of a pairwise answer: a reason and a verdict "A", "B" or "tie"."""
    return {
        "type": "object",
        "properties": {"reason": {"type": "string"}, "verdict": {"type": "string", "enum": list(VERDICTS)}},
        "required": ["reason", "verdict"],
        "additionalProperties": False,
    }


_PAIR_FORMAT = json.dumps({"reason": "...", "verdict": VERDICTS[0]})


def pair_messages(criterion: Criterion, item: Mapping, response_a: str, response_b: str, language: str) -> list[dict[str, str]]:
    """Chat messages asking a judge which of two responses to `item` is better on `criterion`
    (`item` as in :func:`judge_messages`, without `response`), with an explicit tie."""
    system = _ENV.get_template("pair_system.j2").render(language=language, answer_format=_PAIR_FORMAT)
    user = _ENV.get_template("pair_user.j2").render(
        task=item["task"], language=language, context=item.get("context"), system_prompt=item.get("system_prompt"),
        turns=_turns(item), response_a=response_a, response_b=response_b, criterion=criterion)
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]
