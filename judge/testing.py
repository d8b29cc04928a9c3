"""A deterministic OpenAI-compatible chat-completions server on 127.0.0.1 that injects faults.

Used by the tests, the benchmark and ``kasauti demo`` (judging with no API key). It reads the
rubric section of the judge prompt (``### metric: Title`` followed by ``- 0 (label): ...`` scale
lines), scores each metric from a hash of the first user message and the metric name, and
answers in the judge's JSON format, with OpenAI-shaped ``logprobs`` when asked. A pairwise
prompt (``## Response A`` / ``## Response B`` / ``#### criterion: Title``) gets a verdict from a
hash of the two texts and the criterion (the same winner in either order), or "A" for a
``position_bias`` share of prompts (:func:`expected_verdict`). Asked without a
JSON schema it answers like a model that copies the prompt's answer example (quoted scores if
the example quotes them).

It also serves the Batch API (``/v1/files``, ``/v1/batches``): a batch's requests are answered
like chat requests, with the batch faults of :class:`Faults` (failed batches, errored and
expired requests, slow completion, 5xx on polls).

Faults are drawn per request from a hash of the request's messages and how many times the
server has seen them, so a run is reproducible and a retried request can succeed.

Run it standalone::

    python -m judge.testing --port 0 --delay 0.02      # prints the base URL, serves until killed

or in code::

    with FakeJudgeServer(Faults(rate_429=0.1)) as srv:   # a background thread
        srv.url                                          # http://127.0.0.1:PORT/v1
    async with FakeJudgeServer() as srv: ...             # in the running event loop
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from .prompts import hash_messages

_SECTION = re.compile(r"^### ([a-z][a-z0-9_]*): ", re.M)
_PAIR = re.compile(r"^## Response A\n(.*?)\n\n## Response B\n(.*?)\n\n## Criterion\n#### ([a-z][a-z0-9_]*): ", re.M | re.S)
VERDICT_SHARES = (0.4, 0.4, 0.2)  # the server's true verdicts: the sorted-first text better, the other, tie
_LEVEL = re.compile(r"^- (-?\d+) \(", re.M)
_TOKENS = re.compile(r"\s*(?:[A-Za-z_]+|\d+|\S)")


@dataclass
class Faults:
    """Probabilities of each fault per request (transport faults first, then content faults)."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_slow: float = 0.0
    rate_drop: float = 0.0
    rate_malformed: float = 0.0
    rate_out_of_scale: float = 0.0
    rate_missing_score: float = 0.0  # pairwise: no verdict (out_of_scale: a verdict "C")
    position_bias: float = 0.0  # pairwise: share of prompts answered "A" (the response shown first) whatever the texts
    retry_after: str | None = "0.05"  # Retry-After header sent with 429 (None: no header)
    slow_s: float = 3.0  # how long a slow answer takes (set past the client's timeout)
    delay_s: float = 0.0  # latency of every answer
    logprobs: bool = True  # return logprobs when asked
    json_schema: bool = True  # accept response_format json_schema (else answer 400 naming it)
    # the Batch API (/v1/files, /v1/batches): 429/500 above become errored requests in the error file
    batch_delay_s: float = 0.0  # a batch completes this long after it was created
    batch_fail: bool = False  # every batch fails (validation), no request is run
    rate_expired: float = 0.0  # requests not run within the window: the batch ends "expired"
    rate_poll_500: float = 0.0  # batches.retrieve answers 500


def _u(*parts) -> float:
    """A deterministic uniform number in [0, 1) from the parts."""
    h = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def rubric_metrics(user_text: str) -> dict[str, list[int]]:
    """Metric name -> scale levels, read from the rubric section of a judge prompt."""
    out = {}
    sections = list(_SECTION.finditer(user_text))
    for i, m in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(user_text)
        out[m.group(1)] = [int(v) for v in _LEVEL.findall(user_text, m.end(), end)]
    return out


def expected_score(user_text: str, metric: str, levels: list[int]) -> int:
    """The score the server gives `metric` for a prompt (tests can compute it independently)."""
    return levels[int(_u("score", user_text, metric) * len(levels))]


def pair_prompt(user_text: str) -> tuple[str, str, str] | None:
    """(text shown first, text shown second, criterion) of a pairwise judge prompt, else None."""
    m = _PAIR.search(user_text)
    return None if m is None else (m.group(1), m.group(2), m.group(3))


def true_verdict(first: str, second: str, criterion: str) -> str:
    """The server's verdict on two texts without position bias: the same winner in either order."""
    lo, hi = sorted((first, second))
    u = _u("pair", criterion, lo, hi)
    if u >= VERDICT_SHARES[0] + VERDICT_SHARES[1]:
        return "tie"
    winner = lo if u < VERDICT_SHARES[0] else hi
    return "A" if winner == first else "B"


def expected_verdict(user_text: str, position_bias: float) -> str:
    """The verdict the server gives a pairwise prompt: "A" for a `position_bias` share of prompts
    (drawn from a hash of the prompt, so both orders of a pair are drawn independently), else
    :func:`true_verdict`."""
    first, second, criterion = pair_prompt(user_text)
    return "A" if _u("position", user_text) < position_bias else true_verdict(first, second, criterion)


@dataclass
class FakeJudgeServer:
    faults: Faults = field(default_factory=Faults)
    host: str = "127.0.0.1"
    port: int = 0
    counts: Counter = field(default_factory=Counter)  # prompt hash (first two messages) -> requests
    events: list = field(default_factory=list)  # (prompt hash, n messages, outcome, monotonic time)

    def __post_init__(self):
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}  # id -> the batch object (its "_created": monotonic time)
        self._seen: Counter = Counter()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    # lifecycle --------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/files", self._file_create)
        app.router.add_get("/v1/files/{id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._batch_create)
        app.router.add_get("/v1/batches/{id}", self._batch_retrieve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeJudgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def __enter__(self) -> FakeJudgeServer:
        started = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-judge-server", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake judge server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        self.counts.clear()
        self.events.clear()

    # the endpoint -----------------------------------------------------------------------------
    def _transport(self, messages: list[dict]) -> tuple[str, str, int]:
        """Count a request and draw its transport outcome: (outcome, hash of the messages, times seen before)."""
        ph = hash_messages(messages[:2])
        full = hash_messages(messages)
        n = self._seen[full]
        self._seen[full] += 1
        self.counts[ph] += 1
        f = self.faults
        u = _u("transport", full, n)
        outcome = "ok"
        for name, rate in (("429", f.rate_429), ("500", f.rate_500), ("slow", f.rate_slow), ("drop", f.rate_drop)):
            if u < rate:
                outcome = name
                break
            u -= rate
        self.events.append((ph, len(messages), outcome, time.monotonic()))
        return outcome, full, n

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body["messages"]
        outcome, full, n = self._transport(messages)
        f = self.faults
        if outcome == "429":
            headers = {"Retry-After": f.retry_after} if f.retry_after is not None else {}
            return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429, headers=headers)
        if outcome == "500":
            return web.json_response({"error": {"message": "internal error", "type": "server_error"}}, status=500)
        if outcome == "drop":
            request.transport.close()
            raise asyncio.CancelledError
        if outcome == "slow":
            await asyncio.sleep(f.slow_s)
        rf = (body.get("response_format") or {}).get("type")
        if rf == "json_schema" and not f.json_schema:
            return web.json_response(
                {"error": {"message": "response_format json_schema is not supported", "type": "invalid_request_error"}}, status=400)
        if f.delay_s:
            await asyncio.sleep(f.delay_s)
        return web.json_response(self.answer(body, messages, full, n))

    # the Batch API ----------------------------------------------------------------------------
    async def _file_create(self, request: web.Request) -> web.Response:
        form = await request.post()
        data = form["file"].file.read()
        fid = f"file-{len(self.files) + 1}"
        self.files[fid] = data
        return web.json_response({"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                  "filename": form["file"].filename, "purpose": form["purpose"], "status": "processed"})

    async def _file_content(self, request: web.Request) -> web.Response:
        fid = request.match_info["id"]
        if fid not in self.files:
            return web.json_response({"error": {"message": f"no file {fid}", "type": "invalid_request_error"}}, status=404)
        return web.Response(body=self.files[fid], content_type="application/octet-stream")

    async def _batch_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("input_file_id") not in self.files:
            return web.json_response({"error": {"message": "no such input file", "type": "invalid_request_error"}}, status=400)
        bid = f"batch_{len(self.batches) + 1}"
        self.batches[bid] = {"id": bid, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
                             "completion_window": body["completion_window"], "created_at": int(time.time()),
                             "status": "validating", "metadata": body.get("metadata"), "_created": time.monotonic(), "_polls": 0}
        return web.json_response(_public(self.batches[bid]))

    async def _batch_retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return web.json_response({"error": {"message": "no such batch", "type": "invalid_request_error"}}, status=404)
        batch["_polls"] += 1
        if _u("poll", batch["id"], batch["_polls"]) < self.faults.rate_poll_500:
            return web.json_response({"error": {"message": "internal error", "type": "server_error"}}, status=500)
        if batch["status"] in ("validating", "in_progress"):
            if time.monotonic() - batch["_created"] >= self.faults.batch_delay_s:
                self._run_batch(batch)
            else:
                batch["status"] = "in_progress"
        return web.json_response(_public(batch))

    def _run_batch(self, batch: dict) -> None:
        """Answer every request of the batch's input file: output and error files, final status."""
        f = self.faults
        if f.batch_fail:
            batch.update(status="failed", errors={"object": "list", "data": [
                {"code": "invalid_request", "message": "the input file could not be validated", "line": 1, "param": None}]})
            return
        out, errs = [], []
        for line in self.files[batch["input_file_id"]].decode().splitlines():
            req = json.loads(line)
            body, cid = req["body"], req["custom_id"]
            if _u("expired", cid, batch["id"]) < f.rate_expired:
                errs.append({"id": f"req-{cid}", "custom_id": cid, "response": None, "error": {
                    "code": "batch_expired", "message": "This request could not be executed before the completion window expired."}})
                continue
            outcome, full, n = self._transport(body["messages"])
            status, answer = 200, None
            if outcome in ("429", "500"):
                status = int(outcome)
                answer = {"error": {"message": "rate limited" if status == 429 else "internal error", "type": "server_error"}}
            elif (body.get("response_format") or {}).get("type") == "json_schema" and not f.json_schema:
                status, answer = 400, {"error": {"message": "response_format json_schema is not supported", "type": "invalid_request_error"}}
            else:
                answer = self.answer(body, body["messages"], full, n)
            line = {"id": f"req-{cid}", "custom_id": cid, "response": {"status_code": status, "request_id": cid, "body": answer}, "error": None}
            (out if status == 200 else errs).append(line)
        for key, lines in (("output_file_id", out), ("error_file_id", errs)):
            if lines:
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = "".join(json.dumps(x) + "\n" for x in lines).encode()
                batch[key] = fid
        expired = any((x.get("error") or {}).get("code") == "batch_expired" for x in errs)
        batch.update(status="expired" if expired else "completed",
                     request_counts={"total": len(out) + len(errs), "completed": len(out), "failed": len(errs)})

    def answer(self, body: dict, messages: list[dict], full: str, n: int) -> dict:
        """The chat.completion body for a request (`full`: hash of its messages, `n`: times seen)."""
        f = self.faults
        user = next(m["content"] for m in messages if m["role"] == "user")
        pair = pair_prompt(user)
        metrics = {} if pair else rubric_metrics(user)
        scores = {m: expected_score(user, m, lv) for m, lv in metrics.items()}
        answer = {m: {"reason": f"Deterministic reason for {m}.", "score": s} for m, s in scores.items()}
        if pair:
            answer = {"reason": f"Deterministic reason for {pair[2]}.", "verdict": expected_verdict(user, f.position_bias)}
        u = _u("content", full, n)
        content_fault = None
        for name, rate in (("malformed", f.rate_malformed), ("out_of_scale", f.rate_out_of_scale), ("missing_score", f.rate_missing_score)):
            if u < rate:
                content_fault = name
                break
            u -= rate
        if pair and content_fault == "out_of_scale":
            answer["verdict"] = "C"
        elif pair and content_fault == "missing_score":
            del answer["verdict"]
        elif metrics and content_fault == "out_of_scale":
            m0 = next(iter(metrics))
            answer[m0]["score"] = max(metrics[m0]) + 5
        elif metrics and content_fault == "missing_score":
            del answer[next(iter(metrics))]["score"]
        if metrics and (body.get("response_format") or {}).get("type") != "json_schema":
            _like_prompt(answer, messages)
        content = json.dumps(answer, ensure_ascii=False)
        if content_fault == "malformed":
            content = content[: len(content) // 2]
        tokens = _TOKENS.findall(content)
        choice: dict = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": None}
        if body.get("logprobs") and f.logprobs:
            choice["logprobs"] = {"content": self._logprobs(tokens, metrics, scores, int(body.get("top_logprobs") or 0), user)}
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        return {
            "id": f"chatcmpl-{full[:12]}-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens), "total_tokens": prompt_tokens + len(tokens)},
        }

    def _logprobs(self, tokens: list[str], metrics: dict, scores: dict, k: int, user: str) -> list[dict]:
        out, acc, current = [], "", None
        for tok in tokens:
            key = re.search(r'"([a-z][a-z0-9_]*)"\s*:\s*\{\s*$', acc)
            if key and key.group(1) in metrics:
                current = key.group(1)
            stripped = tok.strip()
            if re.search(r'"verdict"\s*:\s*"$', acc):
                out.append(self._verdict_token(tok, k, user))
            elif current and stripped.lstrip("-").isdigit() and re.search(r'"score"\s*:\s*$', acc):
                out.append(self._score_token(tok, metrics[current], scores[current], k, user, current))
            else:
                out.append(_tok(tok, -0.0001, [(tok, -0.0001)][:k]))
            acc += tok
        return out

    def _score_token(self, tok: str, levels: list[int], score: int, k: int, user: str, metric: str) -> dict:
        """Top alternatives: every level (the given score most likely) plus one non-level token."""
        prefix = tok[: len(tok) - len(tok.lstrip())]
        sharp = 0.5 + 2.5 * _u("sharpness", user, metric)
        w = {v: math.exp(-sharp * abs(v - score)) for v in levels} if score in levels else {score: 1.0}
        z = sum(w.values()) / 0.97  # 3% of the mass goes to a token that is not a level
        alts = sorted(((f"{prefix}{v}", math.log(p / z)) for v, p in w.items()), key=lambda a: -a[1])
        alts.append(('"', math.log(0.03)))
        chosen = dict(alts)[tok] if tok in dict(alts) else -0.01
        return _tok(tok, chosen, alts[:k])


    @staticmethod
    def _verdict_token(tok: str, k: int, user: str) -> dict:
        """Top alternatives: the three verdicts (the given one most likely) plus one non-verdict token."""
        sure = 0.5 + 0.45 * _u("sure", user)
        rest = [v for v in ("A", "B", "tie") if v != tok]
        alts = [(tok, math.log(0.97 * sure))] + [(v, math.log(0.97 * (1 - sure) / 2)) for v in rest] + [("C", math.log(0.03))]
        return _tok(tok, alts[0][1], alts[:k])


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _like_prompt(answer: dict, messages: list[dict]) -> None:
    """Without a schema a model copies the answer example of the system prompt: a score shown
    quoted there comes back as a string."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    try:
        form = json.loads(system[system.index("{"):])
    except ValueError:
        return
    for metric, part in answer.items():
        if "score" in part and isinstance((form.get(metric) or {}).get("score"), str):
            part["score"] = str(part["score"])


def _tok(tok: str, lp: float, top: list[tuple[str, float]]) -> dict:
    return {
        "token": tok,
        "logprob": lp,
        "bytes": list(tok.encode()),
        "top_logprobs": [{"token": t, "logprob": l, "bytes": list(t.encode())} for t, l in top],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Deterministic OpenAI-compatible judge server on 127.0.0.1 (for demos and tests).")
    p.add_argument("--port", type=int, default=0, help="0 = any free port")
    p.add_argument("--delay", type=float, default=0.0, help="seconds of latency per answer")
    for name in ("429", "500", "slow", "drop", "malformed", "out_of_scale", "missing_score"):
        p.add_argument(f"--rate-{name.replace('_', '-')}", type=float, default=0.0, dest=f"rate_{name}")
    p.add_argument("--position-bias", type=float, default=0.0, help="pairwise: share of prompts answered \"A\" whatever the texts")
    p.add_argument("--no-logprobs", action="store_true")
    p.add_argument("--no-json-schema", action="store_true")
    a = p.parse_args(argv)
    faults = Faults(delay_s=a.delay, position_bias=a.position_bias, logprobs=not a.no_logprobs, json_schema=not a.no_json_schema,
                    **{k: v for k, v in vars(a).items() if k.startswith("rate_")})

    async def serve():
        srv = FakeJudgeServer(faults, port=a.port)
        print(await srv.start(), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await srv.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
