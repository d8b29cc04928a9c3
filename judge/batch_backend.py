"""The OpenAI Batch API as a judge backend (``backend: openai_batch``): half the price, answers
within the completion window (24 h) instead of at once.

Each round of requests (the first asks, then the re-asks) becomes a JSONL file of
chat-completions requests, ``custom_id`` = request id, uploaded with ``files.create`` and
submitted with ``batches.create``; the batch id and input file id go into the ledger at once
(``Ledger.record_batch``), so a run killed while the batch runs polls that same batch when
started again instead of submitting it anew. ``batches.retrieve`` is polled every
``batch_poll_s`` until the batch ends; then the output and error files are read
(``files.content``). A request that errored (its line in the error file or a non-200 response),
expired, or belongs to a batch that failed or was cancelled is delivered as failed with the
reason; one refused for its answer format (json_schema, logprobs) is sent again in a follow-up
batch in the format the chat backend would step down to. Upload, submit, poll and download are
retried like chat requests (``max_attempts``).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable

import openai

from .backends import (CallError, OpenAIBackend, Request, RequestQueue, Result, TransientError, register_backend, run_all,
                       with_retries)
from .config import JudgeConfig
from .ledger import Ledger, now

_RUNNING = {"validating", "in_progress", "finalizing", "cancelling"}


@register_backend("openai_batch")
class BatchBackend(OpenAIBackend):
    def __init__(self, cfg: JudgeConfig, ledger: Ledger, *, client: openai.AsyncOpenAI | None = None):
        super().__init__(cfg, ledger, client=client)
        self.ledger = ledger

    async def run(self, queue: RequestQueue, deliver: Callable[[Result], None]) -> None:
        # batches submitted by a run that did not finish, newest first (a request sent again is in the newest)
        recorded = self.ledger.open_batches(self.cfg.name)[::-1]
        while reqs := await queue.take(None):
            while reqs:  # again: requests refused for their answer format, sent again in the format stepped down to
                todo, again = {r.id: r for r in reqs}, []
                jobs = []
                for batch_id, ids in recorded:
                    mine = [todo.pop(i) for i in ids if i in todo]
                    if mine:
                        jobs.append(self._collect(batch_id, mine, deliver, again))
                rest = list(todo.values())
                for lo in range(0, len(rest), self.cfg.batch_requests):
                    jobs.append(self._submit_and_collect(rest[lo:lo + self.cfg.batch_requests], deliver, again))
                await run_all(jobs)
                reqs = again

    async def _api(self, fn, *args, gone_ok: bool = False, **kw):
        """One Batch/Files API call with the chat requests' retries; CallError when it cannot
        succeed (with `gone_ok`, also for a 404: a recorded batch or file the provider no longer has)."""
        async def once():
            try:
                out = await fn(*args, **kw)
            except openai.OpenAIError as exc:
                if isinstance(exc, openai.APIStatusError):
                    self.reached = True
                    if gone_ok and exc.status_code == 404:
                        raise CallError(f"not found at {self.cfg.endpoint}: {str(exc)[:300]}") from None
                raise self.error(exc) from None
            self.reached = True
            return out

        return (await with_retries(self.cfg, once, lambda: self.reached))[0]

    async def _submit_and_collect(self, reqs: list[Request], deliver: Callable[[Result], None], again: list[Request]) -> None:
        used = (self.format, self.logprobs)
        lines = [json.dumps({"custom_id": r.id, "method": "POST", "url": "/v1/chat/completions", "body": self.body(r)},
                            ensure_ascii=False) for r in reqs]
        try:
            f = await self._api(self.client.files.create, file=("requests.jsonl", io.BytesIO(("\n".join(lines) + "\n").encode())),
                                purpose="batch")
            batch = await self._api(self.client.batches.create, input_file_id=f.id, endpoint="/v1/chat/completions",
                                    completion_window="24h", metadata={"judge": self.cfg.name})
        except CallError as exc:
            for r in reqs:
                deliver(Result(r, None, f"the batch could not be submitted: {exc}"))
            return
        self.ledger.record_batch(self.cfg.name, batch.id, f.id, [r.id for r in reqs], now())
        await self._collect(batch.id, reqs, deliver, again, used)

    def body(self, req: Request) -> dict:
        """The request's chat-completions body (extra_body merged in, as the client would)."""
        kw = self.request(req.messages, req.schema)
        return {**kw, **kw.pop("extra_body", {})}

    async def _collect(self, batch_id: str, reqs: list[Request], deliver: Callable[[Result], None], again: list[Request],
                       used: tuple[str, bool] | None = None) -> None:
        """Poll the batch until it ends, then deliver each request's answer or why there is none;
        a request refused for its answer format (see ``_step_down``; `used`: the format it was sent
        in) goes to `again` instead."""
        used = used or (self.format, self.logprobs)
        try:
            while (batch := await self._api(self.client.batches.retrieve, batch_id, gone_ok=True)).status in _RUNNING:
                await asyncio.sleep(self.cfg.batch_poll_s)
            lines = {}
            for file_id in (batch.error_file_id, batch.output_file_id):  # output last: it wins
                if file_id:
                    content = await self._api(self.client.files.content, file_id, gone_ok=True)
                    for line in content.text.splitlines():
                        if line.strip():
                            obj = json.loads(line)
                            lines[obj.get("custom_id")] = obj
        except (CallError, ValueError) as exc:
            for r in reqs:
                deliver(Result(r, None, f"batch {batch_id}: {exc}"))
            return
        why = f"batch {batch_id} {batch.status}"
        if batch.errors and batch.errors.data:
            why += ": " + "; ".join(e.message or e.code or "" for e in batch.errors.data)[:300]
        for r in reqs:
            result = self._result(r, lines.get(r.id), why, used)
            if result is None:
                again.append(r)
            else:
                deliver(result)

    def _result(self, req: Request, line: dict | None, why: str, used: tuple[str, bool]) -> Result | None:
        """The answer on the request's line of the output or error file; None: send it again."""
        if line is None:
            return Result(req, None, f"{why}: no answer for this request")
        if line.get("error"):
            err = line["error"]
            return Result(req, None, f"{err.get('code')}: {err.get('message')}"[:500])
        resp = line.get("response") or {}
        status, body = resp.get("status_code"), resp.get("body") or {}
        if status != 200:
            msg = (body.get("error") or {}).get("message") if isinstance(body, dict) else body
            if status in (400, 422) and self._step_down(str(msg), used):
                return None
            return Result(req, None, f"HTTP {status}: {msg}"[:500])
        try:
            return Result(req, self._completion(body), None)
        except TransientError as exc:
            return Result(req, None, str(exc))
