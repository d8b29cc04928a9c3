"""A study: one directory, one ``kasauti.yaml``, and the tables each stage writes beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

import rubrics
import studytables
from annotator.config import AnnotationConfig
from judge.config import JudgeConfig
from reports.config import ReportConfig
from rubrics.schema import unique_names
from sampling.config import DataSource, SamplingConfig
from sampling.sources import SourceError, detect_format, not_utf8
from training.config import ExportConfig, TrainingConfig

CONFIG_NAME = "kasauti.yaml"


class StudyError(ValueError):
    """A study directory or config that cannot be used."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that repeats a key (plain PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the base class names it
                break
            if first != key_node.start_mark.line + 1:
                raise yaml.MarkedYAMLError(problem=f"key {key!r} appears twice (first on line {first}); keep one",
                                           problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path):
    """Parse a YAML file; StudyError in one line naming file, line and what is wrong."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(not_utf8(path, data, exc)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StudyError(f"{path}: not valid YAML{where}: {problem}") from None


def validate_config(raw, path: Path) -> StudyConfig:
    """The study config, or a StudyError naming the file and each invalid key in one line."""
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: expected a mapping of study settings, got {type(raw).__name__}")
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StudyError(f"{path}: invalid study config: {problems}") from None


def _check_outside(root: Path, data: Path) -> None:
    """A study inside its data directory would read its own tables back as data."""
    if data.is_dir() and root.resolve().is_relative_to(data.resolve()):
        raise StudyError(f"{root}: the study directory is inside its data directory {data}, whose files are all read; "
                         "put the study elsewhere")


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    data: DataSource
    sampling: SamplingConfig = SamplingConfig()
    rubric: str = "pariksha"
    report: ReportConfig = ReportConfig()
    judges: list[JudgeConfig] = []
    annotation: AnnotationConfig = AnnotationConfig()
    export: ExportConfig | None = None
    training: TrainingConfig = TrainingConfig()

    @field_validator("judges")
    @classmethod
    def _unique_judges(cls, judges: list[JudgeConfig]) -> list[JudgeConfig]:
        return unique_names(judges, "judge")


class Study:
    """Paths of a study's tables; every stage reads and writes through these."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.config_path = self.root / CONFIG_NAME
        if self.root.is_file():
            raise StudyError(f"{root} is a file, not a study directory; create a study for it with "
                             f"`kasauti init STUDY_DIR --data {root}`")
        if not self.config_path.exists():
            raise StudyError(f"{self.root}: no {CONFIG_NAME}; create one with `kasauti init {root} --data DATA`")
        self.config = validate_config(read_yaml(self.config_path) or {}, self.config_path)
        _check_outside(self.root, self.data_path)

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def data_path(self) -> Path:
        p = Path(self.config.data.path).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()

    sample = property(lambda self: self.root / studytables.SAMPLE.file)
    strata = property(lambda self: self.root / studytables.STRATA.file)
    intake_report = property(lambda self: self.root / "intake.json")
    judgments = property(lambda self: self.root / studytables.JUDGMENTS.file)
    judge_ledger = property(lambda self: self.root / "judge_ledger.sqlite")
    ratings = property(lambda self: self.root / studytables.RATINGS.file)
    decisions = property(lambda self: self.root / studytables.DECISIONS.file)
    slices = property(lambda self: self.root / studytables.SLICES.file)
    ratings_escalated = property(lambda self: self.root / studytables.RATINGS_ESCALATED_FILE)
    revisions_escalated = property(lambda self: self.root / studytables.REVISIONS_ESCALATED_FILE)
    revisions = property(lambda self: self.root / studytables.REVISIONS.file)
    report_dir = property(lambda self: self.root / "report")
    argilla_dir = property(lambda self: self.root / "argilla")


def init_study(
    root: str | Path,
    data_path: str,
    *,
    name: str | None = None,
    data_format: str = "auto",
    source_model: str | None = None,
    per_stratum: int = 100,
    rubric: str = "pariksha",
) -> Study:
    """Create a study directory with a commented ``kasauti.yaml``; refuses to overwrite one.

    A relative `data_path` is taken from the working directory and recorded relative to the study.
    Nothing is written unless the config is valid, the data exists in a readable format and the
    rubric set loads.
    """
    root = Path(root)
    cfg = root / CONFIG_NAME
    if root.exists() and not root.is_dir():
        raise StudyError(f"{root}: exists and is not a directory; choose a directory for the study")
    if cfg.exists():
        raise StudyError(f"{cfg} already exists; edit it or choose another directory")
    data = Path(data_path).expanduser()
    if not data.exists():
        raise StudyError(f"--data {data_path}: not found (relative paths are relative to the working directory)")
    template = (Path(__file__).parent / "study_template.yaml").read_text(encoding="utf-8")
    text = template.format(
        name=json.dumps(name or root.resolve().name, ensure_ascii=False),
        data_path=json.dumps(str(data) if data.is_absolute() else os.path.relpath(data.resolve(), root.resolve()), ensure_ascii=False),
        data_format=json.dumps(data_format),
        source_model=json.dumps(source_model) if source_model else "null",
        per_stratum=json.dumps(per_stratum),
        rubric=json.dumps(rubric, ensure_ascii=False),
    )
    config = validate_config(yaml.load(text, Loader=_UniqueKeyLoader), cfg)
    _check_outside(root, data)
    try:
        detect_format(data, config.data.format)
        rubrics.load_rubric_set(rubric)
    except SourceError as exc:
        raise StudyError(str(exc)) from None
    except rubrics.RubricError as exc:
        raise StudyError(f"--rubric {rubric}: {exc}") from None
    root.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text, encoding="utf-8")
    return Study(root)
