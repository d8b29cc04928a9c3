"""The judge backend protocol, the backend registry, and the OpenAI-compatible backend.

A backend answers :class:`Request`s: ``await backend.run(queue, deliver)`` takes requests from
the queue (``await queue.take(n)``: at least one, at most `n`, ``[]`` when the run is over) and
calls ``deliver(Result)`` once for each, in any order and as soon as it has the answer. The
runner (``runner.py``) owns everything else: planning, parsing, re-asks (put back on the queue
as new requests), the ledger. Backends register under the name ``backend:`` takes in the judge's
config with :func:`register_backend`; built in: ``openai`` (here), ``vllm``
(``vllm_backend.py``) and ``openai_batch`` (``batch_backend.py``).

``OpenAIBackend`` speaks to any OpenAI-compatible server through the official async client,
with the client's own retries off: it retries itself (policy in ``runner.py``'s docstring).
"""

from __future__ import annotations

import asyncio
import difflib
import email.utils
import importlib
import json
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import openai

from .config import JudgeConfig
from .parse import Token

if TYPE_CHECKING:
    from .ledger import Ledger

UNREACHABLE_ATTEMPTS = 3  # attempts of one call before a run that has reached nothing stops


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tokens: tuple[Token, ...] | None
    prompt_tokens: int | None
    completion_tokens: int | None
    response_format: str  # what was actually asked for: json_schema, json_object or none


class TransientError(Exception):
    """Worth retrying (429, 5xx, timeout, connection); `retry_after` in seconds if the server said;
    `unreachable` when no connection could be made at all (refused, unknown host)."""

    def __init__(self, message: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.unreachable = unreachable


class CallError(Exception):
    """This call cannot succeed (e.g. 400); recorded as failed, the run continues.
    `attempts`: requests made for it."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


class FatalError(Exception):
    """No call can succeed (bad key, unknown model): the run stops."""


def retry_after_seconds(headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(float(ra), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):  # neither seconds nor an HTTP date: back off as usual
        return None
    return max(parsed.timestamp() - time.time(), 0.0)


def _refused(exc: BaseException) -> bool:
    """Whether the connection could not be made at all (refused, unknown host): a ConnectError of
    the client's HTTP library (httpx, or the httpx2 that newer openai releases ship) behind it."""
    while exc is not None:
        if type(exc).__name__ == "ConnectError":
            return True
        exc = exc.__cause__
    return False


_FORMATS = ("json_schema", "json_object", "none")
_CARRIER = re.compile(r"\d|^\W*(?:A|B|ti?e?)(?!\w)")  # a token that can carry a score or a pairwise verdict


@dataclass(frozen=True, slots=True)
class Request:
    """One request to a judge: `id` is stable across runs (call key and re-ask number)."""

    id: str
    messages: list[dict]
    schema: dict
    est_tokens: float  # prompt and answer tokens, estimated (for tokens-per-minute limits)


@dataclass(frozen=True, slots=True)
class Result:
    """A request's answer, or why there is none (`error`); `attempts`: requests sent for it."""

    request: Request
    completion: Completion | None
    error: str | None
    attempts: int = 1


class RequestQueue:
    """The requests of a run: the first asks, made as they are taken, and re-asks put back.

    The run is over when every first ask was taken and every taken request delivered
    (:meth:`finished`) with no re-ask left: then :meth:`take` returns ``[]``."""

    def __init__(self, first: Iterator[Request]):
        self._first, self._more = first, deque()
        self._exhausted, self._open = False, 0
        self._changed = asyncio.Event()

    def put(self, request: Request) -> None:
        self._more.append(request)
        self._changed.set()

    def finished(self) -> None:
        """One taken request was delivered (after its re-ask, if any, was put)."""
        self._open -= 1
        self._changed.set()

    async def take(self, n: int | None = 1) -> list[Request]:
        """At least one request and at most `n` (None: all there are now); [] when the run is over."""
        while True:
            out = []
            while self._more and (n is None or len(out) < n):
                out.append(self._more.popleft())
            while not self._exhausted and (n is None or len(out) < n):
                nxt = next(self._first, None)
                if nxt is None:
                    self._exhausted = True
                else:
                    out.append(nxt)
            if out:
                self._open += len(out)
                return out
            if self._exhausted and self._open == 0:
                self._changed.set()  # wake the other takers: they return [] too
                return []
            self._changed.clear()
            await self._changed.wait()


class Backend(Protocol):
    """What the runner calls; constructed as ``factory(cfg, ledger)``."""

    async def run(self, queue: RequestQueue, deliver: Callable[[Result], None]) -> None:
        """Answer every request the queue gives, calling `deliver` once for each; raise
        FatalError when no request can succeed."""

    async def aclose(self) -> None:
        """Release clients and connections."""


_REGISTRY: dict[str, Callable[[JudgeConfig, Ledger], Backend]] = {}
_BUILTIN = ("judge.backends", "judge.vllm_backend", "judge.batch_backend")


def register_backend(name: str):
    """Class decorator: make a backend available as ``backend: <name>`` in a judge's config.
    The class (or any callable) is called as ``factory(cfg, ledger)``."""

    def deco(factory):
        _REGISTRY[name] = factory
        return factory

    return deco


def backend_names() -> list[str]:
    for module in _BUILTIN:  # each registers itself on import (none imports its heavy package then)
        importlib.import_module(module)
    return sorted(_REGISTRY)


def check_backend(name: str) -> str:
    """`name` if a backend is registered under it, else a ValueError with a suggestion."""
    names = backend_names()
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown backend {name!r}: {hint}known backends: {', '.join(names)}")


def make_backend(cfg: JudgeConfig, ledger: Ledger) -> Backend:
    return _REGISTRY[check_backend(cfg.backend)](cfg, ledger)


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


async def run_all(coros) -> None:
    """Run the coroutines concurrently; the first FatalError cancels the others and is raised as is."""
    try:
        async with asyncio.TaskGroup() as tg:
            for coro in coros:
                tg.create_task(coro)
    except* FatalError as eg:
        raise eg.exceptions[0] from None


async def with_retries(cfg: JudgeConfig, attempt_once: Callable[[], Awaitable], reached: Callable[[], bool],
                       on_retry: Callable[[], None] = lambda: None):
    """`attempt_once()` until it returns, retrying TransientErrors with backoff (Retry-After when
    given) up to ``cfg.max_attempts``; returns (value, attempts) or raises the last error wrapped
    in CallError("gave up after N attempts: ..."). FatalError when nothing was ever reached."""
    for attempt in range(1, cfg.max_attempts + 1):
        try:
            return await attempt_once(), attempt
        except CallError as exc:
            exc.attempts = attempt
            raise
        except TransientError as exc:
            if exc.unreachable and not reached() and attempt >= min(UNREACHABLE_ATTEMPTS, cfg.max_attempts):
                raise FatalError(f"cannot reach {cfg.endpoint} ({exc}): check base_url in the judge's config "
                                 "and that the server is up") from None
            if attempt == cfg.max_attempts:
                raise CallError(f"gave up after {cfg.max_attempts} attempts: {exc}", attempt) from None
            on_retry()
            if exc.retry_after is not None:
                delay = exc.retry_after
            else:
                delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)


@register_backend("openai")
class OpenAIBackend:
    """Chat completions on an OpenAI-compatible endpoint, ``concurrency`` requests at a time.

    With ``response_format: auto`` it asks for a JSON schema and, if the server rejects that
    (HTTP 400/422 naming response_format), steps down to ``json_object`` and then to plain text
    for the rest of the run; likewise it stops asking for logprobs if they are rejected.
    """

    def __init__(self, cfg: JudgeConfig, ledger: Ledger | None = None, *, client: openai.AsyncOpenAI | None = None):
        self.cfg = cfg
        self.client = client or openai.AsyncOpenAI(
            base_url=cfg.base_url, api_key=cfg.api_key(), timeout=cfg.timeout_s, max_retries=0
        )
        self.format = "json_schema" if cfg.response_format == "auto" else cfg.response_format
        self.logprobs = cfg.logprobs
        self.reached = False  # whether any HTTP response has come back
        self.limiter = RateLimiter(cfg.requests_per_minute, cfg.tokens_per_minute)

    async def run(self, queue: RequestQueue, deliver: Callable[[Result], None]) -> None:
        async def worker() -> None:
            while reqs := await queue.take(1):
                deliver(await self.answer(reqs[0]))

        await run_all(worker() for _ in range(self.cfg.concurrency))

    async def answer(self, req: Request) -> Result:
        """One request, with retries and rate limits."""

        async def once() -> Completion:
            await self.limiter.acquire(req.est_tokens)
            return await self.complete(req.messages, req.schema)

        try:
            completion, attempts = await with_retries(self.cfg, once, lambda: self.reached)
        except CallError as exc:
            return Result(req, None, str(exc), exc.attempts)
        self.limiter.correct(req.est_tokens, (completion.prompt_tokens or 0) + (completion.completion_tokens or 0) or req.est_tokens)
        return Result(req, completion, None, attempts)

    def request(self, messages: Sequence[dict], schema: dict) -> dict:
        """The keyword arguments of ``chat.completions.create``."""
        cfg = self.cfg
        kw: dict = {"model": cfg.model, "messages": list(messages), "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
        if cfg.top_p is not None:
            kw["top_p"] = cfg.top_p
        if cfg.seed is not None:
            kw["seed"] = cfg.seed
        if self.logprobs:
            kw["logprobs"] = True
            kw["top_logprobs"] = cfg.top_logprobs
        if self.format == "json_schema":
            kw["response_format"] = {"type": "json_schema", "json_schema": {"name": "judgment", "schema": schema, "strict": True}}
        elif self.format == "json_object":
            kw["response_format"] = {"type": "json_object"}
        if cfg.extra_body:
            kw["extra_body"] = cfg.extra_body
        return kw

    async def complete(self, messages: Sequence[dict], schema: dict) -> Completion:
        """One request (no retries): a Completion, or TransientError, CallError or FatalError."""
        while True:
            used = (self.format, self.logprobs)
            kw = self.request(messages, schema)
            try:
                # the raw body: the client's typed response models cost more CPU than the rest of a call
                raw = await self.client.chat.completions.with_raw_response.create(**kw)
                self.reached = True
                resp = json.loads(raw.http_response.content)
            except json.JSONDecodeError as exc:
                raise TransientError(f"the response body is not JSON ({exc.msg})") from None
            except openai.APIStatusError as exc:
                self.reached = True
                if exc.status_code in (400, 422) and self._step_down(str(exc), used):
                    continue
                raise self.error(exc) from None
            except openai.OpenAIError as exc:
                raise self.error(exc) from None
            return self._completion(resp)

    def error(self, exc: openai.OpenAIError) -> Exception:
        """The client's exception as a TransientError, CallError or FatalError."""
        if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError: it is a subclass
            return TransientError(f"timeout: {exc}")
        if isinstance(exc, openai.APIConnectionError):
            return TransientError(f"connection error: {exc.__cause__ or exc}", unreachable=_refused(exc))
        if isinstance(exc, openai.APIStatusError):
            status, text = exc.status_code, str(exc)
            if status == 429 or status >= 500 or status == 408:
                return TransientError(f"HTTP {status}: {text[:300]}", retry_after_seconds(exc.response.headers))
            if status in (401, 403, 404):
                return FatalError(f"HTTP {status} from {self.cfg.endpoint}: {text[:300]}")
            return CallError(f"HTTP {status}: {text[:500]}")
        return CallError(f"{type(exc).__name__}: {str(exc)[:500]}")  # e.g. a response the client cannot read

    def _step_down(self, text: str, used: tuple[str, bool]) -> bool:
        if used != (self.format, self.logprobs):  # a concurrent call already stepped down
            return True
        low = text.lower()
        if self.cfg.response_format == "auto" and self.format != "none" and ("response_format" in low or "json_schema" in low):
            self.format = _FORMATS[_FORMATS.index(self.format) + 1]
            return True
        if self.logprobs and "logprobs" in low:
            self.logprobs = False
            return True
        return False

    def _completion(self, resp: dict) -> Completion:
        """A chat-completions response body (JSON) as a Completion."""
        choices = resp.get("choices") if isinstance(resp, dict) else None
        if not choices:
            raise TransientError("the server returned no choices")
        choice = choices[0]
        tokens = None
        content = (choice.get("logprobs") or {}).get("content")
        if content:
            # only a token with a digit can carry a score, and one like "A", "B", "tie" a verdict: keep their alternatives alone
            tokens = tuple(
                Token(t["token"], t["logprob"],
                      tuple((a["token"], a["logprob"]) for a in (t.get("top_logprobs") or ())) if _CARRIER.search(t["token"]) else ())
                for t in content
            )
        usage = resp.get("usage") or {}
        return Completion(
            text=(choice.get("message") or {}).get("content") or "",
            tokens=tokens,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            response_format=self.format,
        )

    async def aclose(self) -> None:
        await self.client.close()
