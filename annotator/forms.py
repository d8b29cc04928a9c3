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
# Pairwise forms: one custom field shows the prompt and the responses A and B side by side; one label per
# outcome; an optional justification.
COMPARISON, JUSTIFICATION = "comparison", "justification"
# Argilla 2.8 shows a custom field in an iframe of the page's own origin (no sandbox) and puts the whole record
# there as JSON inside an inline <script>, pasted with String.replace: a "<" in any field could close that script
# and run the rest as HTML, "$" starts a replacement pattern, "#" could spell its "#TEMPLATE#" marker. So a
# pairwise record carries each text as pieces (`text_pieces`): strings without those characters, and
# {"lt"|"dollar"|"hash": 1} for each of them, which the template writes back as HTML entities.
SPECIAL = {"<": "lt", "$": "dollar", "#": "hash"}
_SPECIAL_RE = re.compile("([" + re.escape("".join(SPECIAL)) + "])")
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


def _settings(rs: RubricSet, family: Family, fields: list, questions: list, opts: FormOptions,
              preface: str = "") -> rg.Settings:
    """A form: `fields`, `questions`, the visible metadata; the guidelines are `preface` and the family's rubric."""
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
    unknown = sorted(set(optional_fields) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(f"unknown optional fields {unknown}; known: {sorted(OPTIONAL_FIELDS)}")
    fields = [rg.TextField(name="prompt", title="Prompt", use_markdown=False),
              rg.TextField(name="response", title="Response", use_markdown=True)]
    fields += [
        rg.TextField(name=name, title=title, use_markdown=True, required=False)
        for name, title in OPTIONAL_FIELDS.items()
        if name in optional_fields
    ]
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
    return _settings(rs, family, fields, questions, opts)


def text_pieces(text: str) -> list:
    """`text` as a pairwise record carries it: its runs without `<`, `$` or `#`, and {name: 1} for each of those."""
    return [{SPECIAL[p]: 1} if p in SPECIAL else p for p in _SPECIAL_RE.split(text) if p]


def pieces_text(pieces: list) -> str:
    """The text that `text_pieces` made `pieces` from."""
    chars = {name: char for char, name in SPECIAL.items()}
    return "".join(p if isinstance(p, str) else chars[next(iter(p))] for p in pieces)


def _section(key: str, title: str) -> str:
    """One text of the comparison: a titled box whose pieces are written with Handlebars' escaping `{{ }}`
    (never `{{{ }}}`) and the special characters as HTML entities."""
    cases = "".join("{{%s %s}}&#%d;" % ("#if" if i == 0 else "else if", name, ord(char))
                    for i, (char, name) in enumerate(SPECIAL.items()))
    text = "{{#each record.fields.%s.%s}}%s{{else}}{{this}}{{/if}}{{/each}}" % (COMPARISON, key, cases)
    return f'<section id="kasauti-{key}"><h4>{title}</h4><div class="text">{text}</div></section>'


_PAIR_STYLE = """<style>
.kasauti-pair { color: var(--fg-primary); line-height: 1.5; }
.kasauti-pair section { min-width: 0; margin-bottom: 12px; padding: 8px 12px; border: 1px solid var(--bg-opacity-10);
  border-radius: 6px; }
.kasauti-pair h4 { margin: 0 0 6px; font-size: 13px; font-weight: 600; color: var(--fg-secondary); }
.kasauti-pair .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.kasauti-ab { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 12px;
  align-items: start; }
.kasauti-ab section { margin-bottom: 0; }
</style>"""


def pair_template() -> str:
    """The comparison field's template: the optional texts an item has, the prompt, then A and B in two
    columns (one above the other when the panel is too narrow for two)."""
    optional = "".join("{{#if record.fields.%s.%s}}%s{{/if}}" % (COMPARISON, key, _section(key, title))
                       for key, title in OPTIONAL_FIELDS.items())
    return (f'{_PAIR_STYLE}<div class="kasauti-pair">{optional}{_section("prompt", "Prompt")}'
            f'<div class="kasauti-ab">{_section("a", "Response A")}{_section("b", "Response B")}</div></div>')


def build_pair_settings(rs: RubricSet, family: Family, opts: FormOptions) -> rg.Settings:
    """Settings for pairwise comparisons of `family` items: one field showing the prompt and responses A and B
    side by side, and per metric one question (A better / B better / tie) whose description is the metric
    with its levels' anchors."""
    shown = rg.CustomField(name=COMPARISON, title="Prompt and responses", template=pair_template(),
                           advanced_mode=False)
    questions: list = [
        rg.LabelQuestion(name=m.name, title=f"{m.title}: which response is better?", labels=PAIR_LABELS,
                         description=level_text(m) + "\n\nCompare A and B on this criterion alone; tie if neither is better.")
        for m in family.metrics
    ]
    questions.append(rg.TextQuestion(
        name=JUSTIFICATION, title="Justification (optional)", required=False,
        description="Why one response is better, or why they tie: the errors or strengths you saw.",
    ))
    return _settings(rs, family, [shown], questions, opts, PAIR_PREFACE)


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
