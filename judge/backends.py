"""Judge backends behind one interface: ``complete(messages, schema) -> Completion``.

``OpenAIBackend`` speaks to any OpenAI-compatible server through the official async client,
with the client's own retries off (the runner retries, see ``runner.py``). The vLLM offline
backend is in ``vllm_backend.py`` and is imported only when used.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import openai

from .config import JudgeConfig
from .parse import Token


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
    """This call cannot succeed (e.g. 400); recorded as failed, the run continues."""


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
_DIGIT = re.compile(r"\d")


class OpenAIBackend:
    """Chat completions on an OpenAI-compatible endpoint.

    With ``response_format: auto`` it asks for a JSON schema and, if the server rejects that
    (HTTP 400/422 naming response_format), steps down to ``json_object`` and then to plain text
    for the rest of the run; likewise it stops asking for logprobs if they are rejected.
    """

    def __init__(self, cfg: JudgeConfig, client: openai.AsyncOpenAI | None = None):
        self.cfg = cfg
        self.client = client or openai.AsyncOpenAI(
            base_url=cfg.base_url, api_key=cfg.api_key(), timeout=cfg.timeout_s, max_retries=0
        )
        self.format = "json_schema" if cfg.response_format == "auto" else cfg.response_format
        self.logprobs = cfg.logprobs
        self.reached = False  # whether any HTTP response has come back

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
            except openai.APITimeoutError as exc:  # before APIConnectionError: it is a subclass
                raise TransientError(f"timeout: {exc}") from None
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise TransientError(f"connection error: {cause}", unreachable=_refused(exc)) from None
            except openai.APIStatusError as exc:
                self.reached = True
                status, text = exc.status_code, str(exc)
                if status == 429 or status >= 500 or status == 408:
                    raise TransientError(f"HTTP {status}: {text[:300]}", retry_after_seconds(exc.response.headers)) from None
                if status in (400, 422) and self._step_down(text, used):
                    continue
                if status in (401, 403, 404):
                    raise FatalError(f"HTTP {status} from {self.cfg.endpoint}: {text[:300]}") from None
                raise CallError(f"HTTP {status}: {text[:500]}") from None
            except openai.OpenAIError as exc:  # e.g. a response the client cannot read
                raise CallError(f"{type(exc).__name__}: {str(exc)[:500]}") from None
            return self._completion(resp)

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
            # only a token with a digit can carry a score: keep the alternatives of those alone
            tokens = tuple(
                Token(t["token"], t["logprob"],
                      tuple((a["token"], a["logprob"]) for a in (t.get("top_logprobs") or ())) if _DIGIT.search(t["token"]) else ())
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
