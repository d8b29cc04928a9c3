"""Configuration of data intake and sampling, as it appears in a study's ``kasauti.yaml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    """Unknown keys are errors and values are not coerced (``per_stratum: true`` is not 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Columns(_Strict):
    """Which source column holds each field; optional fields may be null."""

    id: str = "id"
    language: str = "language"
    task: str = "task"
    prompt: str | None = "prompt"
    response: str | None = "response"
    conversation: str | None = Field(
        default=None,
        description="A list of {role, content} messages; the last assistant message is the response.",
    )
    system_prompt: str | None = None
    source_model: str | None = None
    context: str | None = None

    @model_validator(mode="after")
    def _one_field_per_column(self) -> Columns:
        seen: dict[str, str] = {}
        for name, column in self.model_dump().items():
            if column is not None and column in seen:
                raise ValueError(f"columns.{seen[column]} and columns.{name} both name column {column!r}; map each field to its own column")
            seen.setdefault(column, name)
        return self


class DataSource(_Strict):
    path: str = Field(min_length=1, description="File or directory, relative to the study directory or absolute.")
    format: Literal["auto", "jsonl", "json", "parquet", "csv", "hf", "pariksha"] = "auto"
    split: str = Field(default="train", description="Split to read when format is 'hf'.")
    columns: Columns = Columns()


class LanguageIdFilter(_Strict):
    enabled: bool = False
    min_confidence: float = Field(default=0.75, ge=0, le=1)


class RepetitionFilter(_Strict):
    enabled: bool = False
    max_ratio: float = Field(default=0.75, ge=0, le=1)


class Filters(_Strict):
    language_id: LanguageIdFilter = LanguageIdFilter()
    repetition: RepetitionFilter = RepetitionFilter()


class SamplingConfig(_Strict):
    per_stratum: int = Field(default=100, gt=0, description="Items drawn from each language x task stratum.")
    strata: list[Literal["language", "task", "source_model"]] = Field(default=["language", "task"], min_length=1)
    length_bins: int = Field(default=5, ge=1, le=100, description="Length quantile bins per stratum (5 = quintiles).")
    seed: int = 0
    check_script: bool = Field(default=True, description="Warn when a row's text is not in its language's script.")
    filters: Filters = Filters()

    @field_validator("strata")
    @classmethod
    def _unique_strata(cls, strata: list[str]) -> list[str]:
        if len(set(strata)) < len(strata):
            raise ValueError(f"{strata} names a field twice; name each once")
        return strata
