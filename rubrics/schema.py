"""Pydantic schema of a rubric set: task families, metrics, human and judge scales.

A rubric set is the one definition shared by annotators (Likert forms and guidelines), LLM
judges (prompts and answer format) and the report (scale, level of measurement). Every key is
checked on load; unknown keys are errors, so a misspelt key never passes silently.
"""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = r"^[a-z][a-z0-9_]*$"


def unique_names(items: list, what: str, attr: str = "name") -> list:
    """Validator body: `items` unchanged if their `attr` values are unique, else a ValueError naming
    the repeats ("duplicate <what> names [...]"; with another `attr`, "duplicate <what> [...]")."""
    names = [getattr(item, attr) for item in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {what}{' names' if attr == 'name' else ''} {dupes}")
    return items


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    """One point of a scale with the anchor shown to raters."""

    value: int
    label: str = Field(min_length=1)
    anchor: str = Field(min_length=1, description="One line saying when to give this level.")


class Scale(_Strict):
    """An ordered set of integer levels, lowest first."""

    levels: list[Level] = Field(min_length=2)

    @field_validator("levels")
    @classmethod
    def _ordered_unique(cls, levels: list[Level]) -> list[Level]:
        values = [lv.value for lv in levels]
        if values != sorted(set(values)):
            raise ValueError(f"level values must be unique and ascending, got {values}")
        return levels

    @property
    def values(self) -> list[int]:
        return [lv.value for lv in self.levels]

    @property
    def min(self) -> int:
        return self.levels[0].value

    @property
    def max(self) -> int:
        return self.levels[-1].value


class JudgeSpec(_Strict):
    """What an LLM judge is asked, on which scale, and how its answer maps onto the human scale."""

    question: str = Field(min_length=1)
    scale: Scale
    to_human: dict[int, int] = Field(
        description="Every judge level mapped to one human level; declared, never inferred."
    )


class Metric(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="Other names of the metric in imported ratings, e.g. 'Coherence'.")
    measurement: Literal["ordinal", "nominal"] = "ordinal"
    higher_is_better: bool = True
    human: Scale
    judge: JudgeSpec | None = Field(None, description="Needed to run LLM judges; an import-only rubric leaves it out.")

    @model_validator(mode="after")
    def _mapping_complete(self) -> Metric:
        if self.judge is None:
            return self
        judge_levels = set(self.judge.scale.values)
        human_levels = set(self.human.values)
        if set(self.judge.to_human) != judge_levels:
            raise ValueError(
                f"judge.to_human must map exactly the judge levels {sorted(judge_levels)}, "
                f"got keys {sorted(self.judge.to_human)}"
            )
        bad = sorted({v for v in self.judge.to_human.values() if v not in human_levels})
        if bad:
            raise ValueError(f"judge.to_human maps onto {bad}, which are not human levels {sorted(human_levels)}")
        if self.measurement == "ordinal":
            mapped = [self.judge.to_human[v] for v in self.judge.scale.values]
            if mapped != sorted(mapped):
                raise ValueError("judge.to_human must be monotone (non-decreasing) for an ordinal metric")
        return self


class Family(_Strict):
    """A task family: the metrics that apply to every task whose label matches `tasks`."""

    name: str = Field(pattern=IDENTIFIER)
    title: str = Field(min_length=1)
    description: str = ""
    tasks: list[str] = Field(min_length=1, description="Task labels or glob patterns, e.g. 'creative*'.")
    metrics: list[Metric] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, metrics: list[Metric]) -> list[Metric]:
        return unique_names(metrics, "metric")

    def matches(self, task: str) -> bool:
        return any(fnmatch.fnmatchcase(task.lower(), pat.lower()) for pat in self.tasks)

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"family {self.name!r} has no metric {name!r}; it has {[m.name for m in self.metrics]}")


class RubricSet(_Strict):
    """A named, versioned collection of task families; families are tried in order."""

    name: str = Field(pattern=IDENTIFIER)
    version: str = Field(min_length=1)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    source: str = Field(min_length=1, description="Where the rubric comes from, for attribution.")
    guidelines: str = Field(min_length=1, description="General instructions shown before the metrics.")
    families: list[Family] = Field(min_length=1)

    @field_validator("families")
    @classmethod
    def _unique_families(cls, families: list[Family]) -> list[Family]:
        return unique_names(families, "family")

    @model_validator(mode="after")
    def _one_scale_per_metric(self) -> RubricSet:
        """A metric name used in several families means one metric: same human scale and measurement.
        An alias names one metric and is no metric's name."""
        first: dict[str, tuple[str, Metric]] = {}
        for fam in self.families:
            for m in fam.metrics:
                seen_in, seen = first.setdefault(m.name, (fam.name, m))
                if (seen.human.values, seen.measurement) != (m.human.values, m.measurement):
                    raise ValueError(
                        f"metric {m.name!r} has the human scale {seen.human.values} ({seen.measurement}) in family "
                        f"{seen_in!r} but {m.human.values} ({m.measurement}) in family {fam.name!r}; one name is one "
                        "metric: give both the same scale, or rename one")
        aliases: dict[str, str] = {}
        for fam in self.families:
            for m in fam.metrics:
                for alias in m.aliases:
                    owner = alias if alias in first else aliases.get(alias)
                    if owner not in (None, m.name):
                        raise ValueError(f"alias {alias!r} of metric {m.name!r} already names metric {owner!r}")
                    aliases[alias] = m.name
        return self

    def family_for(self, task: str) -> Family:
        """The first family whose task patterns match `task`."""
        for fam in self.families:
            if fam.matches(task):
                return fam
        raise KeyError(
            f"rubric set {self.name!r} has no family for task {task!r}; "
            f"add the task to a family's 'tasks' (patterns: {[f.tasks for f in self.families]})"
        )

    def family(self, name: str) -> Family:
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(f"rubric set {self.name!r} has no family {name!r}")

    @property
    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(m.name for f in self.families for m in f.metrics))

    @property
    def metrics(self) -> dict[str, Metric]:
        """Each metric by name (its first definition; the validators make all definitions share a scale)."""
        out: dict[str, Metric] = {}
        for fam in self.families:
            for m in fam.metrics:
                out.setdefault(m.name, m)
        return out

    @property
    def aliases(self) -> dict[str, str]:
        """Alias -> metric name."""
        return {a: m.name for f in self.families for m in f.metrics for a in m.aliases}

    @property
    def without_judge(self) -> list[str]:
        """Metrics with no judge section (an import-only rubric)."""
        return [name for name, m in self.metrics.items() if m.judge is None]
