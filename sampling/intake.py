"""Validate a data source at the door, streaming: one pass, a few dozen bytes per row kept in memory.

`scan` reads only the id, language, task and response columns (or the conversation), checks
every row, and returns a `Population`: for each row kept, its source row number, stratum and
length. Rows not kept are counted by reason with examples that name file, row and column;
warnings (kept rows that look suspicious) are counted the same way. Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import DataSource, SamplingConfig
from .languages import UnknownLanguage, expected_script, normalise
from .lengths import grapheme_lengths
from .sources import SourceError, available_columns, detect_format, iter_chunks

MAX_EXAMPLES = 5
SCRIPT_PREFIX = 300  # code points of the response used for the script check

# Reasons a row is not kept, in the order they are checked (a row gets the first that applies).
EXCLUDED = {
    "non_text": "a value is not text",
    "missing_id": "empty or missing id",
    "missing_language": "empty or missing language",
    "unknown_language": "language label is not a language name or ISO 639 code",
    "missing_task": "empty or missing task",
    "bad_conversation": "conversation is not a list of {role, content} messages ending with the assistant",
    "empty_prompt": "empty or missing prompt",
    "empty_response": "empty or missing response",
    "duplicate_id": "id already seen on an earlier kept row (the first valid copy is kept)",
}
WARNINGS = {
    "script_mismatch": "response does not start in the script of its language label",
    "numeric_id": "id is an integer; its decimal text is the item id",
    "unknown_source_model": "empty or missing source model, stratified as 'unknown'",
}
_CODE = {name: i + 1 for i, name in enumerate(EXCLUDED)}


@dataclass
class Tally:
    """Counts and examples per reason, for the intake summary."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, n: int, examples: list[str]) -> None:
        if n:
            self.counts[reason] += n
            kept = self.examples.setdefault(reason, [])
            kept.extend(examples[: MAX_EXAMPLES - len(kept)])


@dataclass
class Population:
    """What the sampler needs of every kept row (row numbers are 1-based source rows)."""

    path: Path
    fmt: str
    rows: np.ndarray  # int64
    stratum: np.ndarray  # int32 index into `strata`
    length: np.ndarray  # int64 grapheme units
    key: np.ndarray  # uint64 seeded hash of the id: the sampler's random draw order
    strata: list[str]
    stratum_fields: dict[str, dict[str, str]]  # stratum -> {"language": ..., "task": ...}
    rows_read: int
    excluded: Tally
    warnings: Tally
    languages: dict[str, str]  # source label -> ISO code
    files: list[dict]  # per file read: {"file", "rows_read", "offset"}; source row = offset + the file's own row

    def locate(self, row: int) -> str:
        """'<file>: row <n>' of a source row number."""
        f = next(f for f in reversed(self.files) if f["offset"] < row)
        return f"{f['file']}: row {row - f['offset']}"

    def summary(self) -> dict:
        return {
            "source": str(self.path),
            "format": self.fmt,
            "files": [{"file": f["file"], "rows_read": f["rows_read"], "row_offset": f["offset"]} for f in self.files],
            "rows_read": self.rows_read,
            "rows_kept": int(len(self.rows)),
            "excluded": {k: {"count": v, "why": EXCLUDED[k], "examples": self.excluded.examples[k]} for k, v in self.excluded.counts.items()},
            "warnings": {k: {"count": v, "why": WARNINGS[k], "examples": self.warnings.examples[k]} for k, v in self.warnings.counts.items()},
            "language_labels": self.languages,
        }


def mapped_columns(source: DataSource) -> dict[str, str]:
    """Source column -> the field it holds, for every mapped field."""
    return {c: f for f, c in source.columns.model_dump().items() if c}


def needed_columns(source: DataSource, path: Path, strata: list[str]) -> dict[str, str]:
    """Map field -> source column for the fields intake needs."""
    cols = source.columns
    if cols.conversation is None and cols.response is None:
        raise SourceError(f"{path}: set columns.response or columns.conversation in kasauti.yaml")
    if "source_model" in strata and cols.source_model is None:
        raise SourceError(f"{path}: sampling.strata names source_model, but columns.source_model maps no column; set it in kasauti.yaml")
    wanted = {"id": cols.id, "language": cols.language, "task": cols.task}
    if cols.conversation:
        wanted["conversation"] = cols.conversation
    else:
        wanted["response"] = cols.response
        if cols.prompt:
            wanted["prompt"] = cols.prompt
    if "source_model" in strata:
        wanted["source_model"] = cols.source_model
    return wanted


def check_columns(path: Path, fmt: str, wanted: dict[str, str], have: list[str]) -> None:
    """Error on a mapped column the source lacks, with the nearest column name as a suggestion."""
    missing = [(f, c) for f, c in wanted.items() if c not in have]
    if not missing:
        return
    lines = []
    for f, c in missing:
        near = get_close_matches(c, have, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        lines.append(f"  columns.{f} = {c!r}: no such column{hint}")
    if fmt == "csv" and len(have) == 1 and "\t" in have[0]:
        lines.append("  the header holds tabs: if the file is tab-separated, name it .tsv")
    raise SourceError(f"{path}: columns not found; the file has {have}:\n" + "\n".join(lines))


def split_conversation(text: str | None) -> tuple[str, str, list[dict]] | None:
    """(last user prompt, final assistant response, turns before it), or None if malformed."""
    try:
        turns = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    if not isinstance(turns, list) or len(turns) < 2:
        return None
    if not all(isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("content"), str) for t in turns):
        return None
    if turns[-1]["role"] != "assistant":
        return None
    prompts = [t["content"] for t in turns[:-1] if t["role"] == "user"]
    if not prompts:
        return None
    return prompts[-1], turns[-1]["content"], [{"role": t["role"], "content": t["content"]} for t in turns[:-1]]


def _blank(arr: pa.Array) -> np.ndarray:
    """Null, empty or whitespace-only."""
    return pc.invert(pc.fill_null(pc.match_substring_regex(arr, r"\S"), False)).to_numpy(zero_copy_only=False)


def id_keys(ids: pa.Array, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of each id: uniform, reproducible and independent of row order."""
    return pd.util.hash_array(ids.to_numpy(zero_copy_only=False), hash_key=f"kasauti{seed:09d}"[-16:])


def scan(source: DataSource, path: Path, cfg: SamplingConfig, progress=None, retain=None) -> Population:
    """Read and validate every row once; see the module docstring.

    `retain(rows, stratum, key, table)`, if given, is called per batch with the kept rows and all
    mapped columns, so a caller can hold on to candidates without a second pass.
    """
    if not path.exists():
        raise SourceError(f"{path}: data source not found")
    fmt = detect_format(path, source.format)
    wanted = needed_columns(source, path, cfg.strata)
    names = {c: f for f, c in wanted.items()}
    if retain:
        names = {**mapped_columns(source), **names}
    have = available_columns(path, fmt, source.split)
    if have is not None:
        check_columns(path, fmt, {f: c for c, f in names.items()}, have)
    excluded, warnings = Tally(), Tally()
    labels: dict[str, str | None] = {}
    strata_index: dict[str, int] = {}
    fields: dict[str, dict[str, str]] = {}
    keep_rows, keep_stratum, keep_len, keep_key = [], [], [], []
    files: dict[str, dict] = {}
    keys_seen: set[str] = set()
    rows_read = 0

    for chunk in iter_chunks(path, fmt, names, source.split):
        b = {names[c]: chunk.batch.column(c) for c in chunk.batch.schema.names}
        n = chunk.batch.num_rows
        rownums = chunk.rows.to_numpy()
        local = rownums - chunk.offset
        where = chunk.file
        files.setdefault(where, {"file": where, "rows_read": 0, "offset": chunk.offset})["rows_read"] += n
        keys_seen |= chunk.keys or set()
        rows_read += n
        code = np.zeros(n, np.int8)

        def flag(reason: str, mask: np.ndarray, column: str, message, values=None) -> None:
            new = mask & (code == 0)
            code[new] = _CODE[reason]
            hits = np.flatnonzero(new)
            excluded.add(reason, len(hits), [
                f"{where}: row {local[i]}, column {column!r}: {message if values is None else message.format(values[i])}"
                for i in hits[:MAX_EXAMPLES]
            ])

        if chunk.problems:
            pos = {r: i for i, r in enumerate(rownums)}
            for r, col, msg in chunk.problems:
                i = pos[r]
                if code[i] == 0:
                    code[i] = _CODE["non_text"]
                    excluded.add("non_text", 1, [f"{where}: row {local[i]}, column {col!r}: {msg}"])
        if chunk.numeric_ids is not None:
            hits = np.flatnonzero(chunk.numeric_ids)
            warnings.add("numeric_id", len(hits), [f"{where}: row {local[i]}, column {wanted['id']!r}: id {b['id'][int(i)].as_py()}"
                                                   for i in hits[:MAX_EXAMPLES]])
        flag("missing_id", _blank(b["id"]), wanted["id"], "expected a non-empty id")
        flag("missing_language", _blank(b["language"]), wanted["language"], "expected a language name or ISO 639 code")
        lang_labels = b["language"]
        for label in pc.unique(pc.drop_null(lang_labels)).to_pylist():
            if label not in labels:
                try:
                    labels[label] = normalise(label)
                except UnknownLanguage:
                    labels[label] = None
        bad_labels = [k for k, v in labels.items() if v is None]
        if bad_labels:
            mask = pc.fill_null(pc.is_in(lang_labels, pa.array(bad_labels, pa.string())), False).to_numpy(zero_copy_only=False)
            flag("unknown_language", mask, wanted["language"], "{!r} is not a language name or ISO 639 code",
                 lang_labels.to_numpy(zero_copy_only=False))
        flag("missing_task", _blank(b["task"]), wanted["task"], "expected a non-empty task label")

        if "conversation" in wanted:
            parts = [split_conversation(t) for t in b["conversation"].to_pylist()]
            flag("bad_conversation", np.array([p is None for p in parts]), wanted["conversation"],
                 "expected a JSON list of {role, content} messages with a user turn and ending with the assistant")
            response = pa.array([p[1] if p else None for p in parts], pa.string())
        else:
            response = b["response"]
            if "prompt" in wanted:
                flag("empty_prompt", _blank(b["prompt"]), wanted["prompt"], "expected non-empty text")
        flag("empty_response", _blank(response), wanted.get("response", wanted.get("conversation")), "expected non-empty text")

        ok = code == 0
        if progress:
            progress(rows_read)
        if not ok.any():
            continue
        sel = pa.array(ok)
        hashes = id_keys(pc.filter(b["id"], sel), cfg.seed)
        lang = pc.filter(lang_labels, sel)
        lang_codes = pa.array([labels[v] for v in lang.to_pylist()], pa.string())
        resp = pc.filter(response, sel)
        if cfg.check_script:
            _check_script(lang_codes, resp, local[ok], where, wanted.get("response", wanted.get("conversation")), warnings)
        values = {"language": lang_codes, "task": pc.filter(b["task"], sel)}
        if "source_model" in cfg.strata:
            model = pc.filter(b["source_model"], sel)
            hits = np.flatnonzero(_blank(model))
            warnings.add("unknown_source_model", len(hits), [
                f"{where}: row {local[ok][i]}, column {wanted['source_model']!r}: stratified as 'unknown'" for i in hits[:MAX_EXAMPLES]])
            values["source_model"] = pc.if_else(_blank(model), "unknown", model)
        keys = pc.binary_join_element_wise(*[values[f] for f in cfg.strata], "/")
        for key in pc.unique(keys).to_pylist():
            if key not in strata_index:
                strata_index[key] = len(strata_index)
                fields[key] = dict(zip(cfg.strata, key.split("/", len(cfg.strata) - 1)))
        stratum_ids = pc.index_in(keys, pa.array(list(strata_index), pa.string())).to_numpy().astype(np.int32)
        keep_stratum.append(stratum_ids)
        keep_rows.append(rownums[ok])
        keep_key.append(hashes)
        if retain:
            retain(rownums[ok], stratum_ids, hashes, pa.Table.from_batches([chunk.batch]).filter(sel))
        keep_len.append(grapheme_lengths(resp).to_numpy(zero_copy_only=False).astype(np.int64))

    if have is None and rows_read:
        check_columns(path, fmt, {f: c for c, f in names.items()}, sorted(keys_seen))
    rows = np.concatenate(keep_rows) if keep_rows else np.zeros(0, np.int64)
    stratum = np.concatenate(keep_stratum) if keep_stratum else np.zeros(0, np.int32)
    length = np.concatenate(keep_len) if keep_len else np.zeros(0, np.int64)
    key = np.concatenate(keep_key) if keep_key else np.zeros(0, np.uint64)
    pop = Population(
        path=path, fmt=fmt, rows=rows, stratum=stratum, length=length, key=key,
        strata=list(strata_index), stratum_fields=fields, rows_read=rows_read,
        excluded=excluded, warnings=warnings, languages={k: v for k, v in labels.items() if v},
        files=list(files.values()),
    )
    dup = _duplicates(key, rows)
    if dup.size:
        excluded.add("duplicate_id", len(dup), [
            f"{pop.locate(r)}, column {wanted['id']!r}: duplicate id (first seen on {_same_file(pop.locate(first), pop.locate(r))})"
            for r, first in dup[:MAX_EXAMPLES]
        ])
        _drop(pop, ~np.isin(rows, dup[:, 0]))
    return pop


def _same_file(first: str, later: str) -> str:
    """'row 3' when both are in one file, else 'a.jsonl row 3'."""
    file, row = first.split(": ", 1)
    return row if later.startswith(file + ": ") else f"{file} {row}"


def _drop(pop: Population, keep: np.ndarray) -> None:
    """Keep only the rows where `keep`; strata left with no row are dropped and renumbered."""
    pop.rows, pop.stratum, pop.length, pop.key = pop.rows[keep], pop.stratum[keep], pop.length[keep], pop.key[keep]
    used = np.unique(pop.stratum)
    if len(used) < len(pop.strata):
        pop.strata = [pop.strata[s] for s in used]
        pop.stratum = np.searchsorted(used, pop.stratum).astype(np.int32)


def _duplicates(hashes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(row, first row) pairs of kept rows whose id hash appeared on an earlier kept row."""
    order = np.lexsort((rows, hashes))
    h = hashes[order]
    same = np.flatnonzero(h[1:] == h[:-1]) + 1
    if not same.size:
        return np.zeros((0, 2), np.int64)
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    first_of = starts[np.searchsorted(starts, same, side="right") - 1]
    return np.stack([rows[order[same]], rows[order[first_of]]], axis=1)


def _check_script(lang: pa.Array, resp: pa.Array, rownums: np.ndarray, where: str, column: str, warnings: Tally) -> None:
    """Warn where the start of a response has letters but none in its language's script.

    This catches the common failure (a model answering in English or another language) with one
    regex search a row that stops at the first letter of the right script; mixed-language text
    is the language-identification filter's job.
    """
    prefix = pc.utf8_slice_codeunits(resp, 0, SCRIPT_PREFIX)
    codes = lang.to_numpy(zero_copy_only=False)
    wrong = np.zeros(len(codes), bool)
    for code in pc.unique(lang).to_pylist():
        script = expected_script(code)
        if script is None:
            continue
        rows_of = codes == code
        found = pc.match_substring_regex(pc.filter(prefix, pa.array(rows_of)), rf"\p{{{script}}}")
        wrong[rows_of] = ~found.to_numpy(zero_copy_only=False)
    suspects = np.flatnonzero(wrong)
    has_letters = pc.match_substring_regex(prefix.take(pa.array(suspects)), r"\pL").to_numpy(zero_copy_only=False)
    hits = suspects[has_letters]
    warnings.add("script_mismatch", len(hits), [
        f"{where}: row {rownums[i]}, column {column!r}: language {codes[i]!r} expects {expected_script(codes[i])} script, "
        f"but the first {SCRIPT_PREFIX} characters have no letter in it" for i in hits[:MAX_EXAMPLES]
    ])
