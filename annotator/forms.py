"""Argilla dataset settings (the annotator's form) built from a rubric family.

One dataset per (language, task family): its fields show the item, one RatingQuestion per
metric carries the rubric's levels with each level's anchor, optional text questions take a
revised response and a comment, and the visible metadata (language, task) allow filtering.
Blind by default: nothing about the source model, stratum, length bin or any judge is sent to
Argilla at all (kasauti keeps them in its tables).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import argilla as rg

from rubrics.schema import Family, Metric, RubricSet
from rubrics.render import render_guidelines

REVISION = "revised_response"
COMMENT = "comment"
# Optional item columns that become optional fields when a dataset's items have them.
OPTIONAL_FIELDS = {
    "system_prompt": "System prompt",
    "conversation": "Earlier turns of the conversation",
    "context": "Source context",
}
# Pairwise forms: the two responses in the order shown, one label per outcome, an optional justification.
RESPONSE_A, RESPONSE_B, JUSTIFICATION = "response_a", "response_b", "justification"
PAIR_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie"}
PAIR_PREFACE = (
    "# Pairwise comparison\n\nYou will read a prompt and two responses to it, A and B. For each criterion, say "
    "which response is better on that criterion alone, or tie when neither is: the level anchors of the rubric "
    "below are the yardstick. Who wrote a response is not shown and does not matter; A and B are in random "
    "order. Say why in the justification when it helps.\n\n")
# Metadata (sample columns), visible to annotators: only what annotators may see leaves kasauti.
METADATA = ("language", "task")


@dataclass(frozen=True)
class FormOptions:
    """What a form asks besides the rubric metrics."""

    min_submitted: int = 2
    revision: bool = True
    comment: bool = True


def level_text(metric: Metric) -> str:
    """A metric's description followed by one line per level: `value = label: anchor`."""
    lines = [metric.description.strip(), ""]
    lines += [f"{lv.value} = {lv.label}: {lv.anchor}" for lv in metric.human.levels]
    return "\n".join(lines)


def render_conversation(conversation: str | None) -> str | None:
    """The JSON list of {role, content} turns as readable Markdown, one block per turn."""
    if conversation is None:
        return None
    turns = json.loads(conversation)
    return "\n\n".join(f"**{t['role'].capitalize()}:**\n\n{t['content']}" for t in turns) or None


def _settings(rs: RubricSet, family: Family, shown: list, optional_fields: list[str], questions: list,
              opts: FormOptions, preface: str = "") -> rg.Settings:
    """A form: the prompt, the `shown` response field(s), the optional fields used, `questions`, metadata;
    the guidelines are `preface` and the family's rubric."""
    unknown = sorted(set(optional_fields) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(f"unknown optional fields {unknown}; known: {sorted(OPTIONAL_FIELDS)}")
    fields = [rg.TextField(name="prompt", title="Prompt", use_markdown=False), *shown]
    fields += [
        rg.TextField(name=name, title=title, use_markdown=True, required=False)
        for name, title in OPTIONAL_FIELDS.items()
        if name in optional_fields
    ]
    metadata = [rg.TermsMetadataProperty(name=name, visible_for_annotators=True) for name in METADATA]
    return rg.Settings(
        guidelines=preface + render_guidelines(rs, [family]),
        fields=fields,
        questions=questions,
        metadata=metadata,
        distribution=rg.TaskDistribution(min_submitted=opts.min_submitted),
    )


def build_settings(rs: RubricSet, family: Family, optional_fields: list[str], opts: FormOptions) -> rg.Settings:
    """Settings for a dataset of `family` items; `optional_fields` names the optional fields used."""
    questions: list = [
        rg.RatingQuestion(name=m.name, title=m.title, description=level_text(m), values=m.human.values)
        for m in family.metrics
    ]
    if opts.revision:
        questions.append(rg.TextQuestion(
            name=REVISION, title="Revised response (optional)", use_markdown=True, required=False,
            description="If the response can be fixed, write the corrected response here in full.",
        ))
    if opts.comment:
        questions.append(rg.TextQuestion(
            name=COMMENT, title="Comment (optional)", required=False,
            description="Anything the scores do not say: why you hesitated between two levels, errors you saw.",
        ))
    return _settings(rs, family, [rg.TextField(name="response", title="Response", use_markdown=True)],
                     optional_fields, questions, opts)


def build_pair_settings(rs: RubricSet, family: Family, optional_fields: list[str], opts: FormOptions) -> rg.Settings:
    """Settings for pairwise comparisons of `family` items: the prompt, responses A and B, and per metric
    one question (A better / B better / tie) whose description is the metric with its levels' anchors."""
    shown = [rg.TextField(name=RESPONSE_A, title="Response A", use_markdown=True),
             rg.TextField(name=RESPONSE_B, title="Response B", use_markdown=True)]
    questions: list = [
        rg.LabelQuestion(name=m.name, title=f"{m.title}: which response is better?", labels=PAIR_LABELS,
                         description=level_text(m) + "\n\nCompare A and B on this criterion alone; tie if neither is better.")
        for m in family.metrics
    ]
    questions.append(rg.TextQuestion(
        name=JUSTIFICATION, title="Justification (optional)", required=False,
        description="Why one response is better, or why they tie: the errors or strengths you saw.",
    ))
    return _settings(rs, family, shown, optional_fields, questions, opts, PAIR_PREFACE)


_NAME_BAD = re.compile(r"[^a-z0-9_-]+")


def slug(text: str) -> str:
    """Lower-case name usable for Argilla workspaces and datasets (`[a-z0-9_-]`, no leading - or _)."""
    out = _NAME_BAD.sub("-", text.lower()).strip("-_")
    if not out:
        raise ValueError(f"{text!r} has no letters or digits to build an Argilla name from")
    return out


def workspace_name(language: str) -> str:
    """The workspace of a language: its code, so annotators see only their languages."""
    return slug(language)


def dataset_name(study: str, language: str, family: str) -> str:
    return f"{slug(study)}-{slug(language)}-{slug(family)}"


def pair_dataset_name(study: str, language: str, family: str) -> str:
    """The pairwise dataset of a (language, family): the direct assessment's name with `-pairwise`."""
    return dataset_name(study, language, family) + "-pairwise"
