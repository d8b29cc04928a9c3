"""The judge ledger: a SQLite file in the study, written as each answer arrives.

One row per call (judge x item x prompt hash x parameters x repeat), handed to a writer thread
as each answer arrives and committed at once (answers that arrive while a commit is under way
go into the next one: group commit, never a timer), so a killed run loses only the calls in
flight and the few answers of one commit. ``judgments.parquet`` is exported from it (one row
per call x metric). The Batch API backend also records each batch it submits (``batches``), so
a killed run goes back to the same batch.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import studytables


_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
  key TEXT PRIMARY KEY,
  judge TEXT NOT NULL, model TEXT NOT NULL, rubric TEXT NOT NULL, rubric_version TEXT NOT NULL,
  prompt_hash TEXT NOT NULL, mode TEXT NOT NULL, repeat INTEGER NOT NULL, item_id TEXT NOT NULL,
  status TEXT NOT NULL, results TEXT NOT NULL, raw_answer TEXT, error TEXT,
  attempts INTEGER NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER,
  started_at TEXT NOT NULL, finished_at TEXT NOT NULL, params TEXT NOT NULL, fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS calls_judge ON calls(judge);
CREATE TABLE IF NOT EXISTS batches (
  batch_id TEXT PRIMARY KEY, judge TEXT NOT NULL, input_file_id TEXT NOT NULL,
  request_ids TEXT NOT NULL, created_at TEXT NOT NULL
);
"""

_INSERT = (
    "INSERT OR REPLACE INTO calls VALUES (:key, :judge, :model, :rubric, :rubric_version, :prompt_hash, :mode,"
    " :repeat, :item_id, :status, :results, :raw_answer, :error, :attempts, :prompt_tokens,"
    " :completion_tokens, :started_at, :finished_at, :params, :fingerprint)"
)

PAIRWISE = "pairwise"  # the `mode` of a pairwise call (judge.pairwise), exported to judge_comparisons.parquet

COLUMNS = studytables.JUDGMENTS.names


def now() -> str:
    """The ledger's timestamps: UTC, ISO 8601 with microseconds (they sort as strings)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Ledger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (not a power cut) and is much faster.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise ValueError(f"{self.path}: not a judge ledger ({exc}); move it away to start a new one") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fingerprints(self) -> dict[str, str]:
        """Fingerprint -> prompt hash of every recorded call (see ``judge/prompts.py``)."""
        return dict(self.db.execute("SELECT DISTINCT fingerprint, prompt_hash FROM calls WHERE fingerprint IS NOT NULL"))

    def statuses(self, judge: str) -> dict[str, str]:
        """key -> status of every recorded call of `judge`."""
        return dict(self.db.execute("SELECT key, status FROM calls WHERE judge = ?", (judge,)))

    def record_batch(self, judge: str, batch_id: str, input_file_id: str, request_ids: list[str], created_at: str) -> None:
        """A submitted provider batch (Batch API), committed at once so a killed run finds it."""
        self.db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?)",
                        (batch_id, judge, input_file_id, json.dumps(request_ids), created_at))

    def open_batches(self, judge: str) -> list[tuple[str, list[str]]]:
        """(batch id, request ids) of `judge`'s recorded batches whose answers are not all in the
        ledger: some request's call (its id is ``<call key>:<ask>``) has no row finished after the
        batch was created."""
        finished = dict(self.db.execute("SELECT key, finished_at FROM calls WHERE judge = ?", (judge,)))
        out = []
        for batch_id, ids, created in self.db.execute(
                "SELECT batch_id, request_ids, created_at FROM batches WHERE judge = ? ORDER BY created_at", (judge,)):
            ids = json.loads(ids)
            if any(finished.get(i.rsplit(":", 1)[0], "") < created for i in ids):
                out.append((batch_id, ids))
        return out

    def record_many(self, rows: Iterable[Mapping]) -> None:
        """Call rows in one transaction."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(_INSERT, rows)

    def writer(self) -> LedgerWriter:
        return LedgerWriter(self.path)

    def pairwise_calls(self) -> list[tuple]:
        """(judge, model, prompt_hash, repeat, results, raw_answer, attempts) of every pairwise call."""
        return self.db.execute("SELECT judge, model, prompt_hash, repeat, results, raw_answer, attempts FROM calls"
                               f" WHERE mode = '{PAIRWISE}' ORDER BY judge, item_id, repeat, key").fetchall()

    def judgments(self) -> pd.DataFrame:
        """The judgments table: one row per call x metric (schema in ARCHITECTURE.md); pairwise calls are not judgments."""
        cur = self.db.execute(
            "SELECT judge, model, rubric, rubric_version, prompt_hash, mode, repeat, item_id, results, raw_answer,"
            " attempts, prompt_tokens, completion_tokens, started_at, finished_at, params FROM calls"
            f" WHERE mode != '{PAIRWISE}' ORDER BY judge, item_id, repeat, key"
        )
        rows = []
        for (judge, model, rubric, version, ph, mode, repeat, item_id, results, raw, attempts, pt, ct, t0, t1, params) in cur:
            for metric, r in json.loads(results).items():
                rows.append((judge, model, rubric, version, ph, mode, repeat, item_id, metric, r["score"], r["human_score"],
                             None if r["probs"] is None else json.dumps(r["probs"]), r["expected_score"], r["entropy"],
                             r["reason"], raw, r["status"], r["error"], attempts, pt, ct, t0, t1, params))
        df = pd.DataFrame(rows, columns=COLUMNS)
        for col in ("started_at", "finished_at"):
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        return studytables.conform(studytables.JUDGMENTS, df, str(self.path))

    def export(self, out: str | Path) -> pd.DataFrame:
        df = self.judgments()
        studytables.write(studytables.JUDGMENTS, df, out)
        return df


class LedgerWriter:
    """Commits call rows from a background thread; `put` never blocks the event loop on disk."""

    _STOP = object()

    def __init__(self, path: str | Path):
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(str(path),), name="ledger-writer", daemon=True)
        self.thread.start()

    def put(self, row: Mapping) -> None:
        if self.error is not None:
            raise RuntimeError(f"the ledger writer failed: {self.error}") from self.error
        self.q.put(row)

    def close(self) -> None:
        self.q.put(self._STOP)
        self.thread.join()
        if self.error is not None:
            raise RuntimeError(f"the ledger writer failed: {self.error}") from self.error

    def _run(self, path: str) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            stop = False
            while not stop:
                batch = [self.q.get()]
                while not self.q.empty():
                    batch.append(self.q.get())
                if batch[-1] is self._STOP:
                    stop = True
                    batch.pop()
                if batch:
                    with db:
                        db.execute("BEGIN")
                        db.executemany(_INSERT, batch)
        except BaseException as exc:  # surfaced to the run by put/close
            self.error = exc
        finally:
            db.close()
