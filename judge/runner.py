"""Run a judge over a sample: plan, skip what the ledger has, hand requests to the backend,
parse, re-ask, record.

Retry policy (per request, in the backends: ``backends.with_retries``): 429, 5xx, 408,
timeouts and connection errors are retried up to ``max_attempts`` with exponential backoff
``min(backoff_max_s, backoff_base_s * 2**(n-1))`` times a uniform jitter in [0.5, 1], or exactly
the server's Retry-After when it sends one. Then the call is recorded ``failed`` with the last
error (a rerun calls it again unless told to skip failed calls). When no connection can be made
at all (refused, unknown host) and no response has come back yet, the run stops after
``UNREACHABLE_ATTEMPTS`` attempts of one request. An unusable answer is re-asked ``reask`` times
(the judge sees its answer and what was wrong), then recorded ``unparseable`` with the raw
text. 401/403/404 stop the run (no call could succeed); other 4xx fail the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import rubrics
import studytables
from rubrics import Metric, RubricSet

from .backends import Backend, Completion, Request, RequestQueue, Result, make_backend
from .config import JudgeConfig
from .ledger import Ledger, now
from .parse import AnswerError, MetricAnswer, parse_answer, score_distributions, summarize
from .prompts import Call, Planner

_GOT = re.compile(r"\bgot .*?(?=; |$)")


@dataclass
class Summary:
    judge: str
    planned: int = 0
    cached: int = 0
    retried: int = 0  # failed in an earlier run, called again
    skipped_failed: int = 0  # failed in an earlier run, left alone (retry_failed=False)
    repeats_skipped: int = 0  # pairwise: pairs repeated for annotators (repeat_of), not asked again
    ok: int = 0
    failed: int = 0
    unparseable: int = 0
    requests: int = 0
    retries: int = 0
    reasks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    elapsed_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)  # error_kind -> calls


def error_kind(error: str) -> str:
    """A call's error for the summary: whole, with the answered value after "got" left out (so
    the same problem counts once however the judge phrased its answer), at most 200 characters."""
    kind = _GOT.sub("got ...", error)
    return kind if len(kind) <= 200 else kind[:199] + "…"

class Progress:
    """Progress callbacks; the default does nothing (see ``judge.progress`` for the rich bar)."""

    def start(self, judge: JudgeConfig, total: int, cached: int) -> None: ...
    def advance(self, status: str, cost: float | None) -> None:
        """One call finished: status is ok, failed, unparseable, or cached (found once rendered)."""
    def stop(self) -> None: ...

def evaluate(metrics: Sequence[Metric], completion: Completion) -> tuple[dict[str, MetricAnswer] | None, str | None]:
    """Parsed answers and the problem with them (None when every metric is usable)."""
    try:
        answers = parse_answer(completion.text, metrics)
    except AnswerError as exc:
        return None, str(exc)
    problems = [a.error for a in answers.values() if a.error]
    return answers, "; ".join(problems) or None

def reask_messages(messages: list[dict], answer: str, problem: str, form: str) -> list[dict]:
    """The conversation of a re-ask: the judge's answer, what was wrong with it and the form wanted."""
    return messages + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": f"Your answer could not be used: {problem}. Answer again with only the JSON "
                                     f"object in the required form, {form}."},
    ]

class JudgeRun:
    """One judge over one sample, writing to one ledger. Use :func:`run_judge`.

    What is asked and how an answer is read are the methods ``schema``, ``evaluate`` and
    ``results`` (with ``planner`` and ``REASK_FORM``); ``judge.pairwise.PairwiseRun`` overrides
    them and shares the rest: the ledger, the backends, retries, re-asks and the summary."""

    REASK_FORM = "each score an integer from its metric's scale"

    def __init__(self, sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger: Ledger, *, progress: Progress | None = None,
                 retry_failed: bool = True, planner: Planner | None = None):
        self.cfg, self.rubric, self.ledger = cfg, rubric, ledger
        self.planner = planner or Planner(sample, rubric, cfg)
        self.progress = progress or Progress()
        self.retry_failed = retry_failed
        self.summary = Summary(cfg.name)
        self._schemas: dict[tuple[str, ...], dict] = {}
        self._params_json: dict[str | None, str] = {}
        self._base = {"judge": cfg.name, "model": cfg.model, "rubric": rubric.name, "rubric_version": rubric.version, "mode": cfg.mode}

    # planning -------------------------------------------------------------------------------
    def pending(self, render: bool = False) -> list[Call]:
        """Calls not in the ledger yet, or failed there (unless not retry_failed). A call never
        planned before has no key until rendered (`render` renders now; else the worker does and
        skips it then if the ledger has it after all, e.g. under another fingerprint)."""
        calls = self.planner.plan(self.ledger.fingerprints(), render=render)
        self.status = self.ledger.statuses(self.cfg.name)
        self.summary.planned = len(calls)
        return [c for c in calls if self._todo(c.key)]

    def _todo(self, key: str | None) -> bool:
        """Whether to call; counts a call the ledger has as cached, retried or skipped."""
        if key is None:
            return True
        status = self.status.get(key)
        s = self.summary
        if status is None:
            return True
        if status != "failed":
            s.cached += 1
        elif self.retry_failed:
            s.retried += 1
            return True
        else:
            s.skipped_failed += 1
        return False

    def schema(self, call: Call) -> dict:
        names = tuple(m.name for m in call.metrics)
        if names not in self._schemas:
            self._schemas[names] = rubrics.judge_response_schema(call.metrics)
        return self._schemas[names]

    # results --------------------------------------------------------------------------------
    def evaluate(self, call: Call, completion: Completion) -> tuple[dict[str, MetricAnswer] | None, str | None]:
        """The parsed answer and the problem with it (None when usable)."""
        return evaluate(call.metrics, completion)

    def results(self, call: Call, status: str, answers: dict[str, MetricAnswer] | None, completion: Completion | None,
                error: str | None) -> dict:
        """The ledger's ``results`` of a call: per metric score, probabilities, reason, status."""
        results = {}
        dists = {}
        if answers and completion is not None and completion.tokens:
            dists = score_distributions(completion.tokens, call.metrics, answers)
        for m in call.metrics:
            a = answers.get(m.name) if answers else None
            if a is not None and a.error is None and status != "failed":
                probs = dists.get(m.name)
                exp, ent = summarize(probs) if probs else (None, None)
                results[m.name] = {"score": a.score, "human_score": m.judge.to_human[a.score], "probs": probs,
                                   "expected_score": exp, "entropy": ent, "reason": a.reason, "status": "ok", "error": None}
            else:
                err = (a.error if a is not None and a.error else None) or error
                results[m.name] = {"score": None, "human_score": None, "probs": None, "expected_score": None, "entropy": None,
                                   "reason": a.reason if a else None, "status": "failed" if status == "failed" else "unparseable", "error": err}
        return results

    def row(self, call: Call, *, started: str, status: str, answers, completion: Completion | None, error: str | None,
            attempts: int, prompt_tokens: int | None, completion_tokens: int | None, response_format: str | None) -> dict:
        results = self.results(call, status, answers, completion, error)
        s = self.summary
        setattr(s, status, getattr(s, status) + 1)
        s.prompt_tokens += prompt_tokens or 0
        s.completion_tokens += completion_tokens or 0
        if error:
            kind = error_kind(error)
            s.errors[kind] = s.errors.get(kind, 0) + 1
        return {**self._base, "key": call.key, "fingerprint": call.fingerprint, "prompt_hash": call.prompt_hash, "repeat": call.repeat, "item_id": call.item_id,
                "status": status, "results": json.dumps(results, ensure_ascii=False),
                "raw_answer": completion.text if completion is not None else None, "error": error, "attempts": attempts,
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "started_at": started,
                "finished_at": now(), "params": self._params(response_format)}

    def _params(self, response_format: str | None) -> str:
        """The `params` column: the call parameters plus the answer format actually used."""
        if response_format not in self._params_json:
            params = self.cfg.call_params()
            if response_format is not None:
                params["response_format_used"] = response_format
            self._params_json[response_format] = json.dumps(params, sort_keys=True, ensure_ascii=False)
        return self._params_json[response_format]

    def _after(self, row: dict) -> None:
        cost = self.cfg.cost(row["prompt_tokens"] or 0, row["completion_tokens"] or 0)
        if cost is not None:
            self.summary.cost = (self.summary.cost or 0.0) + cost
        self.progress.advance(row["status"], cost)

    # the run -------------------------------------------------------------------------------
    def first_requests(self, calls: list[Call]) -> Iterator[Request]:
        """Each call's first request, rendered when the backend takes it (calls found in the
        ledger once rendered are skipped here)."""
        for call in calls:
            resolved = call.key is None
            call, messages = self.planner.resolve(call)
            if resolved and not self._todo(call.key):
                self.progress.advance("cached", None)
                continue
            yield self._request(_Ask(call, messages, now()), messages)

    def _request(self, ask: _Ask, messages: list[dict]) -> Request:
        req = Request(f"{ask.call.key}:{ask.n}", messages, self.schema(ask.call),
                      sum(len(m["content"]) for m in messages) / 3.0 + self.cfg.max_tokens)
        self._asks[req.id] = ask
        return req

    def deliver(self, result: Result) -> None:
        """A request's result: re-ask, or record the call."""
        ask = self._asks.pop(result.request.id)
        s, comp = self.summary, result.completion
        s.requests += result.attempts
        s.retries += result.attempts - 1
        ask.attempts += result.attempts
        if comp is None:
            row = self.row(ask.call, started=ask.started, status="failed", answers=None, completion=None, error=result.error,
                           attempts=ask.attempts, prompt_tokens=ask.prompt_tokens or None,
                           completion_tokens=ask.completion_tokens or None, response_format=None)
        else:
            ask.prompt_tokens += comp.prompt_tokens or 0
            ask.completion_tokens += comp.completion_tokens or 0
            answers, problem = self.evaluate(ask.call, comp)
            if problem is not None and ask.n < self.cfg.reask:
                s.reasks += 1
                again = _Ask(ask.call, ask.messages, ask.started, ask.n + 1, ask.attempts, ask.prompt_tokens, ask.completion_tokens)
                self.queue.put(self._request(again, reask_messages(ask.messages, comp.text, problem, self.REASK_FORM)))
                self.queue.finished()
                return
            row = self.row(ask.call, started=ask.started, status="ok" if problem is None else "unparseable", answers=answers,
                           completion=comp, error=problem, attempts=ask.attempts, prompt_tokens=ask.prompt_tokens,
                           completion_tokens=ask.completion_tokens, response_format=comp.response_format)
        self.writer.put(row)
        self._after(row)
        self.queue.finished()

    async def run(self, calls: list[Call], backend: Backend) -> Summary:
        """Every call through `backend`; each answer is recorded as it is delivered."""
        self._asks: dict[str, _Ask] = {}
        self.queue = RequestQueue(self.first_requests(calls))
        self.writer = self.ledger.writer()
        try:
            await backend.run(self.queue, self.deliver)
        finally:
            self.writer.close()
            await backend.aclose()
        return self.summary


@dataclass(slots=True)
class _Ask:
    """A call's state between requests: its n-th ask (0 = first), and what its requests used."""

    call: Call
    messages: list[dict]  # the first ask's messages; a re-ask adds the answer and the problem
    started: str
    n: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def read_sample(path: str | Path) -> pd.DataFrame:
    """The study's sample.parquet; a ValueError naming the file when it cannot be read."""
    return studytables.read(studytables.SAMPLE, path)


def limit_items(sample: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    return sample if limit is None else sample.iloc[:limit]

def run_judge(sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger_path: str | Path, *, progress: Progress | None = None,
              retry_failed: bool = True, backend=None) -> Summary:
    """Score every pending call of `cfg` over `sample` (calls that failed in an earlier run too,
    unless not `retry_failed`); answers go to the ledger as they come."""
    return execute(lambda ledger: JudgeRun(sample, rubric, cfg, ledger, progress=progress, retry_failed=retry_failed),
                   ledger_path, backend)


def execute(make_run, ledger_path: str | Path, backend=None) -> Summary:
    """Open the ledger, make the run (``make_run(ledger)``) and make its pending calls."""
    t0 = time.perf_counter()
    with Ledger(ledger_path) as ledger:
        run = make_run(ledger)
        cfg = run.cfg
        calls = run.pending()
        run.progress.start(cfg, run.summary.planned, run.summary.planned - len(calls))
        try:
            if calls:
                asyncio.run(run.run(calls, backend or make_backend(cfg, ledger)))
        finally:
            run.progress.stop()
            run.summary.elapsed_s = time.perf_counter() - t0
    return run.summary

LEDGER_FILE = "judge_ledger.sqlite"  # the study's judge ledger, beside its sample


def judge_study(root: str | Path, rubric: RubricSet, judges: Sequence[JudgeConfig], *, limit: int | None = None,
                progress: Progress | None = None, retry_failed: bool = True) -> list[Summary]:
    """`kasauti judge`: run each judge over the study's ``sample.parquet`` (its first `limit` items)
    into ``judge_ledger.sqlite``, then export ``judgments.parquet`` from the ledger, also when a
    judge fails (what was answered is kept). Returns one summary per judge."""
    root = Path(root)
    ledger_path = root / LEDGER_FILE
    sample = limit_items(read_sample(root / studytables.SAMPLE.file), limit)
    try:
        summaries = [run_judge(sample, rubric, cfg, ledger_path, progress=progress, retry_failed=retry_failed)
                     for cfg in judges]
    except BaseException:
        with contextlib.suppress(ValueError):  # not a ledger: the run's own error says so
            _export(ledger_path, root)
        raise
    _export(ledger_path, root)
    return summaries


def _export(ledger_path: Path, root: Path) -> None:
    if ledger_path.exists():
        with Ledger(ledger_path) as ledger:
            ledger.export(root / studytables.JUDGMENTS.file)


@dataclass
class DryRun:
    judge: str
    planned: int
    cached: int
    examples: list[tuple[Call, list[dict]]]

    @property
    def pending(self) -> int:
        return self.planned - self.cached

def dry_run(sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger_path: str | Path, *, show: int = 2,
            retry_failed: bool = True) -> DryRun:
    """The calls a run would make (none is made) and the first `show` rendered prompts."""
    return plan_only(lambda ledger: JudgeRun(sample, rubric, cfg, ledger, retry_failed=retry_failed),
                     ledger_path, show)


def plan_only(make_run, ledger_path: str | Path, show: int) -> DryRun:
    """The pending calls of the run ``make_run(ledger)`` and the first `show` rendered prompts."""
    with Ledger(ledger_path) as ledger:
        run = make_run(ledger)
        calls = run.pending(render=True)
        ex = [run.planner.resolve(c) for c in calls[:show]]
        return DryRun(run.cfg.name, run.summary.planned, run.summary.planned - len(calls), ex)
