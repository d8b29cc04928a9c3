"""Load and validate rubric sets from YAML: built-in ones by name, others by path."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from .schema import RubricSet

SETS_DIR = Path(__file__).parent / "sets"


class RubricError(ValueError):
    """A rubric file that cannot be used; the message names the file and the offending key."""


def builtin_names() -> list[str]:
    return sorted(p.stem for p in SETS_DIR.glob("*.yaml"))


def resolve(name_or_path: str | Path) -> Path:
    """A built-in set name (``updesh``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        if not path.is_file():
            raise RubricError(f"{path}: rubric file not found")
        return path
    builtin = SETS_DIR / f"{name_or_path}.yaml"
    if not builtin.exists():
        raise RubricError(
            f"unknown rubric set {str(name_or_path)!r}: built-in sets are {builtin_names()}, "
            "or give a path to a .yaml file"
        )
    return builtin


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def load_rubric_set(name_or_path: str | Path, require_judge: bool = True) -> RubricSet:
    """Read, validate and return a rubric set; raises RubricError naming file and key.

    ``require_judge=False`` accepts an import-only set (metrics without a ``judge`` section),
    for the report and for showing guidelines; judging needs every metric's judge section.
    """
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: cannot read as UTF-8 text: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RubricError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        rs = RubricSet.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_path(err["loc"])
            msg = "unknown key (check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"  {key}: {msg}")
        raise RubricError(f"{path}: invalid rubric set:\n" + "\n".join(lines)) from None
    if require_judge and rs.without_judge:
        raise RubricError(f"{path}: metric(s) {rs.without_judge} have no judge section; LLM judges need one per metric "
                          "(question, scale, to_human). Without it the set is import only: `kasauti report` and "
                          "`kasauti rubrics validate/show` accept it")
    return rs
