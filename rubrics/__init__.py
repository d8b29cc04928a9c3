"""Rubric sets: one declarative, validated definition of what is rated and how."""

from .load import RubricError, builtin_names, load_rubric_set
from .render import (VERDICTS, Criterion, judge_messages, judge_response_schema, pair_criteria, pair_messages,
                     pair_response_schema, render_guidelines)
from .schema import Family, JudgeSpec, Level, Metric, RubricSet, Scale

__all__ = [
    "VERDICTS",
    "Criterion",
    "Family",
    "JudgeSpec",
    "Level",
    "Metric",
    "RubricError",
    "RubricSet",
    "Scale",
    "builtin_names",
    "judge_messages",
    "judge_response_schema",
    "load_rubric_set",
    "pair_criteria",
    "pair_messages",
    "pair_response_schema",
    "render_guidelines",
]
