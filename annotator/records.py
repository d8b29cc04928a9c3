"""Opaque Argilla record ids, kept in the study: a record's id tells an annotator nothing.

Item ids can name the source model (PARIKSHA's are `<uuid>|<model>`), and Argilla shows a
record's external id to whoever sees the record. So each item gets a random record id the first
time it is pushed; the map item -> record id lives only in the study (`argilla/records.parquet`,
written before the records it names are uploaded, never shrinking) and pull joins back through it.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pandas as pd

import studytables

MAPS = {"item_id": studytables.RECORDS, "pair_id": studytables.PAIR_RECORDS}  # key -> its map's table
RECORD_MAP = Path(studytables.RECORDS.file).name  # under the study's argilla/ directory
PAIR_MAP = Path(studytables.PAIR_RECORDS.file).name  # the pairs' map, beside it


class RecordMapError(ValueError):
    """A record map that cannot be read; the message names the file and what to do."""


def text_hash(fields: dict[str, str]) -> str:
    """16 hex chars of SHA-256 over a record's fields (name NUL text NUL ..., sorted): the text version."""
    digest = hashlib.sha256()
    for name in sorted(fields):
        digest.update(f"{name}\0{fields[name]}\0".encode())
    return digest.hexdigest()[:16]


class RecordMap:
    """The study's item id (or, with `key="pair_id"`, pair id) <-> opaque record id map, kept in `path`."""

    def __init__(self, path: str | Path, key: str = "item_id"):
        self.path = Path(path)
        self.key, self.table = key, MAPS[key]
        self._ids: dict[str, str] = {}
        if self.path.exists():
            try:
                df = studytables.read(self.table, self.path)
            except studytables.TableError:  # not rewritable: it is the only link between records and items
                raise RecordMapError(f"{self.path}: not a readable record map (damaged, or not a record map); it is the only link "
                                     "between Argilla records and items: restore it from a backup") from None
            self._ids = dict(zip(df[key], df["record_id"]))
        self._items = {rid: item for item, rid in self._ids.items()}
        self._dirty = False

    def __len__(self) -> int:
        return len(self._ids)

    def assign(self, item_ids) -> list[str]:
        """The record id of each item, drawing a new random one for items never pushed."""
        out = []
        for item in map(str, item_ids):
            rid = self._ids.get(item)
            if rid is None:
                rid = self._ids[item] = secrets.token_hex(16)
                self._items[rid] = item
                self._dirty = True
            out.append(rid)
        return out

    def item_of(self, record_id: str) -> str | None:
        return self._items.get(record_id)

    def save(self) -> None:
        """Write the map atomically if it gained ids (before the records that carry them are uploaded)."""
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        studytables.write(self.table, pd.DataFrame({"record_id": list(self._ids.values()), self.key: list(self._ids)}),
                          self.path)
        self._dirty = False


def describe(items: list[str], limit: int = 5) -> str:
    """A short list for a message: the first `limit` entries, then how many more."""
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")
