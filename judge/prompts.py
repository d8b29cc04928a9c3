"""From sample rows and a rubric set to the list of judge calls: messages, hashes and ledger keys.

Three hashes, each a hex SHA-256 prefix:
- ``fingerprint``: of everything a prompt is rendered from (the item's fields, the language,
  the metrics' judge-facing definitions, the templates and renderer source). It lets a resumed
  run find cached calls without rendering again.
- ``prompt_hash``: of the rendered messages; the prompt version recorded on every judgment.
- ``key``: of judge name + item id + prompt hash + call parameters + repeat index; the ledger's
  key (the item id keeps two items with identical text from sharing one answer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import langcodes
import pandas as pd

import rubrics
from rubrics import Metric, RubricSet

from .config import JudgeConfig

ITEM_FIELDS = ("task", "prompt", "response", "conversation", "system_prompt", "context")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def hash_messages(messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt hash: SHA-256 of the turns as role NUL content NUL ..., 16 hex chars."""
    h = hashlib.sha256()
    for m in messages:
        h.update(m["role"].encode("utf-8") + b"\x00" + m["content"].encode("utf-8") + b"\x00")
    return h.hexdigest()[:16]


def call_key(judge: str, item_id: str, prompt_hash: str, params_json: str, repeat: int) -> str:
    return sha(f"{judge}\x00{item_id}\x00{prompt_hash}\x00{params_json}\x00{repeat}")


@lru_cache(maxsize=4)
def _renderer_source(templates: str = "judge_*.j2") -> str:
    root = Path(rubrics.__file__).parent
    parts = [(root / "render.py").read_text(encoding="utf-8")]
    parts += [p.read_text(encoding="utf-8") for p in sorted((root / "templates").glob(templates))]
    return sha("\x00".join(parts))


@lru_cache(maxsize=256)
def language_name(code: str) -> str:
    """English name of an ISO 639 code (``or`` -> ``Odia``); unknown codes are an error."""
    lang = langcodes.Language.get(code)
    if not lang.is_valid():
        raise ValueError(f"language {code!r} is not a valid ISO 639 / BCP 47 code")
    return lang.display_name()


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _item_for_render(row: Mapping) -> dict:
    item = {k: (None if _missing(row.get(k)) else row.get(k)) for k in ITEM_FIELDS}
    if isinstance(item["conversation"], str):
        item["conversation"] = json.loads(item["conversation"])
    return item


@dataclass(frozen=True, slots=True)
class Call:
    """One judge call: an item, a group of metrics asked together, a repeat index."""

    row: int  # index into the sample's records
    item_id: str
    metrics: tuple[Metric, ...]
    repeat: int
    fingerprint: str
    prompt_hash: str | None = None
    key: str | None = None


class Planner:
    """Enumerates the calls a judge makes over a sample, in order: item, metric group, repeat."""

    TEMPLATES = "judge_*.j2"  # the templates the prompts are rendered from (part of the fingerprint)

    def __init__(self, sample: pd.DataFrame, rubric: RubricSet, judge: JudgeConfig):
        check_ids(sample, ("item_id", "language", "task", "response"), "item_id", "sample.parquet", "`kasauti sample`")
        self.records = sample.to_dict("records")
        self.rubric = rubric
        self.judge = judge
        self.params_json = judge.params_json()
        self._groups: dict[str, list[tuple[Metric, ...]]] = {}
        self._group_hash: dict[tuple[str, ...], str] = {}

    def groups(self, task: str) -> list[tuple[Metric, ...]]:
        if task not in self._groups:
            metrics = tuple(self.rubric.family_for(task).metrics)
            self._groups[task] = [metrics] if self.judge.mode == "per_item" else [(m,) for m in metrics]
        return self._groups[task]

    def _metrics_hash(self, metrics: tuple) -> str:
        names = tuple(m.name for m in metrics)
        if names not in self._group_hash:
            spec = [self._spec(m) for m in metrics]
            self._group_hash[names] = sha(_renderer_source(self.TEMPLATES) + json.dumps(spec, sort_keys=True))
        return self._group_hash[names]

    @staticmethod
    def _spec(m: Metric) -> list:
        """What of a metric the prompt is rendered from."""
        return [m.name, m.title, m.judge.model_dump(mode="json")]

    def _where(self, row: int) -> str:
        """A record for an error message: its file and 1-based row."""
        return f"sample.parquet row {row + 1} (item {self.records[row]['item_id']!r})"

    def _content(self, rec: Mapping) -> str:
        """Hash of what of a record the prompt is rendered from."""
        return sha("\x00".join([str(rec["language"])] + [_field(rec.get(k)) for k in ITEM_FIELDS]))

    def fingerprints(self) -> Iterator[tuple[int, tuple[Metric, ...], str]]:
        for i, rec in enumerate(self.records):
            try:
                groups = self.groups(str(rec["task"]))
            except KeyError as exc:
                raise ValueError(f"{self._where(i)}, column task: {exc.args[0]}") from None
            try:
                language_name(str(rec["language"]))
            except ValueError as exc:
                raise ValueError(f"{self._where(i)}, column language: {exc}") from None
            content = self._content(rec)
            for metrics in groups:
                yield i, metrics, sha(self._metrics_hash(metrics) + content)

    def messages(self, row: int, metrics: Sequence[Metric]) -> list[dict[str, str]]:
        rec = self.records[row]
        code = str(rec["language"])
        try:
            name = language_name(code)
        except ValueError as exc:
            raise ValueError(f"{self._where(row)}, column language: {exc}") from None
        return self._render(rec, metrics, name)

    def _render(self, rec: Mapping, metrics: Sequence[Metric], language: str) -> list[dict[str, str]]:
        return rubrics.judge_messages(metrics, _item_for_render(rec), language)

    def plan(self, known: Mapping[str, str], render: bool = False) -> list[Call]:
        """All calls. `known` maps fingerprint -> prompt hash; a call whose fingerprint is not
        known gets its prompt hash and key when it is rendered (here if `render`, else by
        :meth:`resolve` just before it is sent), so a fresh run renders each prompt once."""
        calls = []
        for row, metrics, fp in self.fingerprints():
            ph = known.get(fp)
            if render and ph is None:  # the prompt is the same for every repeat: render it once
                ph = hash_messages(self.messages(row, metrics))
            item_id = str(self.records[row]["item_id"])
            for r in range(self.judge.repeats):
                calls.append(Call(row, item_id, metrics, r, fp, ph, ph and call_key(self.judge.name, item_id, ph, self.params_json, r)))
        return calls

    def resolve(self, call: Call) -> tuple[Call, list[dict[str, str]]]:
        """The call with its prompt hash and key, and its rendered messages."""
        messages = self.messages(call.row, call.metrics)
        if call.key is None:
            ph = hash_messages(messages)
            call = replace(call, prompt_hash=ph, key=call_key(self.judge.name, call.item_id, ph, self.params_json, call.repeat))
        return call, messages


def check_ids(frame: pd.DataFrame, needed: Sequence[str], id_column: str, file: str, remedy: str) -> None:
    """A ValueError naming the missing columns, or the first two rows (1-based) sharing an id: one
    answer per ledger key, so an id twice would share it."""
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{file}: missing column(s) {missing}; see ARCHITECTURE.md for the schema")
    ids = frame[id_column].astype(str).reset_index(drop=True)
    dupes = ids[ids.duplicated()]
    if len(dupes):
        rows = ids.index[ids == dupes.iloc[0]] + 1
        raise ValueError(f"{file} rows {rows[0]} and {rows[1]}, column {id_column}: {dupes.iloc[0]!r} appears more than "
                         f"once ({len(dupes)} repeated ids in all); {id_column.replace('_', ' ')}s must be unique (write the "
                         f"file again with {remedy})")


def _field(v) -> str:
    """A field for the fingerprint: missing values are distinct from every string."""
    return "\x01" if _missing(v) else str(v)
