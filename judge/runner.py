"""Run a judge over a sample: plan, skip what the ledger has, call with retries and limits, record.

Retry policy (per call): 429, 5xx, 408, timeouts and connection errors are retried up to
``max_attempts`` with exponential backoff ``min(backoff_max_s, backoff_base_s * 2**(n-1))``
times a uniform jitter in [0.5, 1], or exactly the server's Retry-After when it sends one.
Then the call is recorded ``failed`` with the last error (a rerun calls it again unless told
to skip failed calls). When no connection can be made at all (refused, unknown host) and no
response has come back yet, the run stops after ``UNREACHABLE_ATTEMPTS`` attempts of one call. An unusable answer is re-asked
``reask`` times (the judge sees its answer and what was wrong), then recorded ``unparseable``
with the raw text. 401/403/404 stop the run (no call could succeed); other 4xx fail the call.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import rubrics
from rubrics import Metric, RubricSet

from .backends import CallError, Completion, FatalError, OpenAIBackend, TransientError
from .config import JudgeConfig
from .ledger import Ledger
from .parse import AnswerError, MetricAnswer, parse_answer, score_distributions, summarize
from .prompts import Call, Planner

UNREACHABLE_ATTEMPTS = 3
_GOT = re.compile(r"\bgot .*?(?=; |$)")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")

@dataclass
class Summary:
    judge: str
    planned: int = 0
    cached: int = 0
    retried: int = 0  # failed in an earlier run, called again
    skipped_failed: int = 0  # failed in an earlier run, left alone (retry_failed=False)
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

class RateLimiter:
    """Token buckets for requests and tokens per minute that pace evenly (no bursts): each holds
    at most one request's worth, so any window of T seconds sees at most 1 + rate * T requests."""

    def __init__(self, rpm: float | None, tpm: float | None):
        self.rates = [r / 60.0 if r else None for r in (rpm, tpm)]
        self.level = [1.0, float("inf")]
        self.t = time.monotonic()

    async def acquire(self, tokens: float) -> None:
        if self.rates == [None, None]:
            return
        need = [1.0, tokens]
        while True:
            t = time.monotonic()
            dt, self.t = t - self.t, t
            wait = 0.0
            for i, rate in enumerate(self.rates):
                if rate is None:
                    continue
                cap = max(1.0, need[i])
                self.level[i] = min(cap, self.level[i] + dt * rate)
                if self.level[i] < need[i]:
                    wait = max(wait, (need[i] - self.level[i]) / rate)
            if wait == 0.0:
                for i, rate in enumerate(self.rates):
                    if rate is not None:
                        self.level[i] -= need[i]
                return
            await asyncio.sleep(wait)

    def correct(self, estimated: float, actual: float) -> None:
        if self.rates[1] is not None:
            self.level[1] -= actual - estimated

def evaluate(metrics: Sequence[Metric], completion: Completion) -> tuple[dict[str, MetricAnswer] | None, str | None]:
    """Parsed answers and the problem with them (None when every metric is usable)."""
    try:
        answers = parse_answer(completion.text, metrics)
    except AnswerError as exc:
        return None, str(exc)
    problems = [a.error for a in answers.values() if a.error]
    return answers, "; ".join(problems) or None

def reask_messages(messages: list[dict], answer: str, problem: str) -> list[dict]:
    return messages + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": f"Your answer could not be used: {problem}. Answer again with only the JSON "
                                     "object in the required form, each score an integer from its metric's scale."},
    ]

class JudgeRun:
    """One judge over one sample, writing to one ledger. Use :func:`run_judge`."""

    def __init__(self, sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger: Ledger, *, progress: Progress | None = None, retry_failed: bool = True):
        self.cfg, self.rubric, self.ledger = cfg, rubric, ledger
        self.planner = Planner(sample, rubric, cfg)
        self.progress = progress or Progress()
        self.retry_failed = retry_failed
        self.summary = Summary(cfg.name)
        self.limiter = RateLimiter(cfg.requests_per_minute, cfg.tokens_per_minute)
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

    def schema(self, metrics: Sequence[Metric]) -> dict:
        names = tuple(m.name for m in metrics)
        if names not in self._schemas:
            self._schemas[names] = rubrics.judge_response_schema(metrics)
        return self._schemas[names]

    # results --------------------------------------------------------------------------------
    def row(self, call: Call, *, started: str, status: str, answers: dict[str, MetricAnswer] | None, completion: Completion | None,
            error: str | None, attempts: int, prompt_tokens: int | None, completion_tokens: int | None, response_format: str | None) -> dict:
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

    # the async path (openai) ----------------------------------------------------------------
    async def _complete(self, backend, convo: list[dict], schema: dict, est: float) -> tuple[Completion | None, int, str | None]:
        cfg = self.cfg
        last: TransientError | None = None
        for attempt in range(1, cfg.max_attempts + 1):
            await self.limiter.acquire(est)
            self.summary.requests += 1
            try:
                return await backend.complete(convo, schema), attempt, None
            except TransientError as exc:
                last = exc
                if exc.unreachable and not getattr(backend, "reached", True) and attempt >= UNREACHABLE_ATTEMPTS:
                    raise FatalError(f"cannot reach {cfg.endpoint} ({exc}): check base_url in the judge's config "
                                     "and that the server is up") from None
                if attempt == cfg.max_attempts:
                    break
                self.summary.retries += 1
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:
                    delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                await asyncio.sleep(delay)
            except CallError as exc:
                return None, attempt, str(exc)
        return None, cfg.max_attempts, f"gave up after {cfg.max_attempts} attempts: {last}"

    async def _one(self, backend, call: Call) -> dict | None:
        started = now()
        resolved = call.key is None
        call, messages = self.planner.resolve(call)
        if resolved and not self._todo(call.key):
            self.progress.advance("cached", None)
            return None
        schema = self.schema(call.metrics)
        est = sum(len(m["content"]) for m in messages) / 3.0 + self.cfg.max_tokens
        convo, attempts, pt, ct = messages, 0, 0, 0
        for ask in range(self.cfg.reask + 1):
            completion, n, error = await self._complete(backend, convo, schema, est)
            attempts += n
            if completion is None:
                return self.row(call, started=started, status="failed", answers=None, completion=None, error=error,
                                attempts=attempts, prompt_tokens=pt or None, completion_tokens=ct or None, response_format=None)
            pt += completion.prompt_tokens or 0
            ct += completion.completion_tokens or 0
            self.limiter.correct(est, (completion.prompt_tokens or 0) + (completion.completion_tokens or 0) or est)
            answers, problem = evaluate(call.metrics, completion)
            if problem is None or ask == self.cfg.reask:
                return self.row(call, started=started, status="ok" if problem is None else "unparseable", answers=answers,
                                completion=completion, error=problem, attempts=attempts, prompt_tokens=pt, completion_tokens=ct,
                                response_format=completion.response_format)
            self.summary.reasks += 1
            convo = reask_messages(messages, completion.text, problem)
        raise AssertionError("unreachable")

    async def run_async(self, calls: list[Call], backend=None) -> Summary:
        backend = backend or OpenAIBackend(self.cfg)
        it = iter(calls)
        writer = self.ledger.writer()

        async def worker() -> None:
            for call in it:
                row = await self._one(backend, call)
                if row is not None:
                    writer.put(row)
                    self._after(row)

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(self.cfg.concurrency, len(calls))):
                    tg.create_task(worker())
        except* FatalError as eg:
            raise eg.exceptions[0] from None
        finally:
            writer.close()
            if hasattr(backend, "aclose"):
                await backend.aclose()
        return self.summary

    # the batched path (vllm) ----------------------------------------------------------------
    def run_batched(self, calls: list[Call], backend) -> Summary:
        bs = self.cfg.batch_size
        for lo in range(0, len(calls), bs):
            chunk = calls[lo:lo + bs]
            started = now()
            resolved = [(c.key is None, *self.planner.resolve(c)) for c in chunk]
            keep = [not new or self._todo(c.key) for new, c, _ in resolved]
            chunk = [c for (_, c, _), k in zip(resolved, keep) if k]
            base = [b for (_, _, b), k in zip(resolved, keep) if k]
            cached = len(keep) - len(chunk)
            for _ in range(cached):
                self.progress.advance("cached", None)
            if not chunk:
                continue
            convos = list(base)
            live = list(range(len(chunk)))
            tokens = [[0, 0] for _ in chunk]
            rows: dict[int, dict] = {}
            for ask in range(self.cfg.reask + 1):
                self.summary.requests += len(live)
                outs = backend.complete_batch([convos[i] for i in live], [self.schema(chunk[i].metrics) for i in live])
                nxt = []
                for i, comp in zip(live, outs):
                    tokens[i][0] += comp.prompt_tokens or 0
                    tokens[i][1] += comp.completion_tokens or 0
                    answers, problem = evaluate(chunk[i].metrics, comp)
                    if problem is None or ask == self.cfg.reask:
                        rows[i] = self.row(chunk[i], started=started, status="ok" if problem is None else "unparseable",
                                           answers=answers, completion=comp, error=problem, attempts=ask + 1,
                                           prompt_tokens=tokens[i][0], completion_tokens=tokens[i][1], response_format="json_schema")
                    else:
                        self.summary.reasks += 1
                        convos[i] = reask_messages(base[i], comp.text, problem)
                        nxt.append(i)
                live = nxt
                if not live:
                    break
            ordered = [rows[i] for i in range(len(chunk))]
            self.ledger.record_many(ordered)
            for row in ordered:
                self._after(row)
        return self.summary

def make_backend(cfg: JudgeConfig):
    if cfg.backend == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(cfg)
    return OpenAIBackend(cfg)

def read_sample(path: str | Path) -> pd.DataFrame:
    """The study's sample.parquet; a ValueError naming the file when it cannot be read."""
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"{path}: not a Parquet file that can be read ({exc}); write it again with `kasauti sample`") from None


def limit_items(sample: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    return sample if limit is None else sample.iloc[:limit]

def run_judge(sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger_path: str | Path, *, progress: Progress | None = None,
              retry_failed: bool = True, backend=None) -> Summary:
    """Score every pending call of `cfg` over `sample` (calls that failed in an earlier run too,
    unless not `retry_failed`); answers go to the ledger as they come."""
    t0 = time.perf_counter()
    with Ledger(ledger_path) as ledger:
        run = JudgeRun(sample, rubric, cfg, ledger, progress=progress, retry_failed=retry_failed)
        calls = run.pending()
        run.progress.start(cfg, run.summary.planned, run.summary.planned - len(calls))
        try:
            if calls:
                if cfg.backend == "vllm":
                    run.run_batched(calls, backend or make_backend(cfg))
                else:
                    asyncio.run(run.run_async(calls, backend))
        finally:
            run.progress.stop()
            run.summary.elapsed_s = time.perf_counter() - t0
    return run.summary

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
    with Ledger(ledger_path) as ledger:
        run = JudgeRun(sample, rubric, cfg, ledger, retry_failed=retry_failed)
        calls = run.pending(render=True)
        ex = [(c, run.planner.messages(c.row, c.metrics)) for c in calls[:show]]
        return DryRun(cfg.name, run.summary.planned, run.summary.planned - len(calls), ex)
