"""The export's acceptance rule: which items count as accepted, declared and validated.

It is the ``export:`` section of ``kasauti.yaml`` (extra keys are refused, like the rest of the
study config); metrics are checked against the study's rubric set by `ExportConfig.check`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rubrics import RubricSet
from rubrics.schema import unique_names

from .evaluate import EvalConfig
from .train import BoosterConfig, SftConfig

Verdict = Literal["usable as is", "usable after calibration"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricRule(_Strict):
    """The human consensus on one metric reaches a level (or stays under one), over enough submitted ratings."""

    metric: str = Field(min_length=1, description="A metric of the study's rubric set.")
    consensus: Literal["median", "mean", "min", "max"] = Field("median",
                                                               description="How the humans' scores are combined.")
    at_least: float | None = Field(None, description="The lowest accepted value, on the metric's human scale.")
    at_most: float | None = Field(None, description="The highest accepted value (for metrics where lower is better, "
                                                    "e.g. hallucination).")
    min_raters: int = Field(2, ge=1, description="Fewest submitted human ratings of the item on this metric.")

    @model_validator(mode="after")
    def _one_bound(self) -> MetricRule:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(f"{self.metric}: give exactly one of at_least and at_most")
        return self

    @property
    def bound(self) -> str:
        """The bound as text: ``>= 2`` or ``<= 0``."""
        return f">= {self.at_least:g}" if self.at_most is None else f"<= {self.at_most:g}"

    def passes(self, value):
        """Whether `value` (a number or an array; NaN never passes) is within the bound."""
        return value >= self.at_least if self.at_most is None else value <= self.at_most

    def text(self) -> str:
        return f"{self.consensus} of >= {self.min_raters} human ratings of {self.metric} {self.bound}"


class JudgeFallback(_Strict):
    """For items no human rated: the calibrated judge, where the report's verdict allows it."""

    judge: str = Field(min_length=1, description="A judge of the study (a `judges[].name`).")
    verdicts: list[Verdict] = Field(["usable as is", "usable after calibration"], min_length=1,
                                    description="Report verdicts (per metric x language) that let the judge decide.")

    def text(self) -> str:
        return f"judge {self.judge} (calibrated) where the report's verdict is {' or '.join(self.verdicts)}"


class ExportConfig(_Strict):
    """What `training.export` accepts, and which revision pairs it keeps."""

    accept: list[MetricRule] = Field(min_length=1, description="Rules that must all hold for an item to be accepted.")
    judge: JudgeFallback | None = Field(None, description="Let the calibrated judge decide items no human rated.")
    top_share: float = Field(1.0, gt=0, le=1, description="Keep this share of each language's revision pairs, "
                                                           "the most edited first (MIDB kept about 0.3).")

    @field_validator("accept")
    @classmethod
    def _one_rule_per_metric(cls, rules: list[MetricRule]) -> list[MetricRule]:
        return unique_names(rules, "rule metrics (one rule per metric)", "metric")

    def text(self) -> str:
        """The rule as one line (what every accepted item's `accepted_by` says)."""
        humans = " and ".join(r.text() for r in self.accept)
        return humans if self.judge is None else f"{humans}; items no human rated: {self.judge.text()}"

    def check(self, rubric_set: RubricSet) -> None:
        """ValueError for a rule whose metric the rubric set does not have, whose scale has no order
        (nominal, more than two levels), or whose bound is off the scale."""
        metrics = {m.name: m for f in rubric_set.families for m in f.metrics}
        for rule in self.accept:
            if rule.metric not in metrics:
                raise ValueError(f"export.accept: unknown metric {rule.metric!r}; rubric set {rubric_set.name!r} "
                                 f"has {rubric_set.metric_names}")
            scale, level = metrics[rule.metric].human, rule.at_least if rule.at_most is None else rule.at_most
            if metrics[rule.metric].measurement == "nominal" and len(scale.values) > 2:
                raise ValueError(f"export.accept: {rule.metric} is nominal with {len(scale.values)} levels: its "
                                 "levels have no order to bound; choose an ordinal or two-level metric")
            if not scale.min <= level <= scale.max:
                raise ValueError(f"export.accept: {rule.metric}: {rule.bound} is off the metric's human scale "
                                 f"{scale.values}")


class TrainingConfig(_Strict):
    """The ``training:`` section of ``kasauti.yaml``."""

    booster: BoosterConfig | None = Field(None, description="Booster fine-tuning (`kasauti train booster`).")
    sft: SftConfig | None = Field(None, description="Student fine-tuning on the accepted items (`kasauti train sft`).")
    eval: EvalConfig = Field(EvalConfig(), description="The student against its base (`kasauti eval`).")
