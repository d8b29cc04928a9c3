"""Read MIDB's released revision pairs (``train/<Language>.json``) as `RevisionPair`s.

Every record needs the six text keys below; MIDB's own ``Distance`` is accepted and ignored (it
is the same column, row for row, in every language's file, and non-zero for pairs whose
revision changes nothing: it does not measure these texts). Pairs that cannot teach a booster
are set aside with their reason and 1-based record number, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sampling.languages import UnknownLanguage, normalise

from .pairs import RevisionPair, Triple

FIELDS = ("Instruction", "Input", "Response")
KEYS = tuple(f"{side} {f}" for side in ("Raw", "Revised") for f in FIELDS)
IGNORED_KEYS = ("Distance",)

UNCHANGED = "revision changes nothing"
EMPTY_REVISED_RESPONSE = "revised response is empty"


class MidbError(ValueError):
    """A MIDB file that cannot be used; the message names the file, record (1-based) and key."""


@dataclass
class MidbFile:
    """The pairs of one file, and the records set aside: reason -> 1-based record numbers."""

    path: Path
    language: str
    records: int
    pairs: list[RevisionPair]
    set_aside: dict[str, list[int]] = field(default_factory=dict)


def read_midb(path: str | Path, language: str | None = None) -> MidbFile:
    """Read one MIDB file; the language comes from the file name (``Spanish.json``) unless given."""
    path = Path(path)
    try:
        code = normalise(language or path.stem)
    except UnknownLanguage:
        raise MidbError(
            f"{path}: cannot tell the language from the file name {path.stem!r}; "
            "name the file after its language (Spanish.json) or pass the language"
        ) from None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MidbError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MidbError(f"{path}: cannot read as UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MidbError(f"{path}: not valid JSON ({exc}); expected a list of MIDB records") from None
    if not isinstance(data, list):
        raise MidbError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    out = MidbFile(path=path, language=code, records=len(data), pairs=[])
    for number, record in enumerate(data, 1):
        pair = _pair(path, number, record, code)
        reason = _unusable(pair)
        if reason:
            out.set_aside.setdefault(reason, []).append(number)
        else:
            out.pairs.append(pair)
    return out


def _pair(path: Path, number: int, record: object, language: str) -> RevisionPair:
    where = f"{path}: record {number}"
    if not isinstance(record, dict):
        raise MidbError(f"{where}: expected an object with keys {list(KEYS)}, got {type(record).__name__}")
    for key in record:
        if key not in KEYS and key not in IGNORED_KEYS:
            raise MidbError(f"{where}: unknown key {key!r}; MIDB records have {list(KEYS + IGNORED_KEYS)}")
    for key in KEYS:
        if key not in record:
            raise MidbError(f"{where}: missing key {key!r}; every record needs {list(KEYS)}")
        if not isinstance(record[key], str):
            raise MidbError(f"{where}, key {key!r}: expected text, got {type(record[key]).__name__}; fix or remove the record")
    original, revised = (Triple(*(record[f"{side} {f}"] for f in FIELDS)) for side in ("Raw", "Revised"))
    return RevisionPair(item_id=f"midb/{language}/{number}", language=language, original=original, revised=revised)


def _unusable(pair: RevisionPair) -> str | None:
    if pair.original == pair.revised:
        return UNCHANGED
    if not pair.revised.response.strip():
        return EMPTY_REVISED_RESPONSE
    return None
