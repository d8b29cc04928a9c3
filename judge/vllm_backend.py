"""Offline batched judging with vLLM (``pip install 'kasauti[vllm]'``; CUDA GPU required).

``LLM.chat`` takes a batch of conversations with one ``SamplingParams`` each: the answer is
constrained to the rubric's JSON schema (``structured_outputs=StructuredOutputsParams(json=...)``
in current vLLM, ``guided_decoding=GuidedDecodingParams(json=...)`` in releases before it) and
``logprobs=k`` returns, per generated position, a ``{token_id: Logprob(logprob, rank,
decoded_token)}`` mapping that becomes the score distribution.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from .backends import Completion, RequestQueue, Result, register_backend
from .config import JudgeConfig
from .parse import Token


def _vllm():
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise ImportError("the vllm judge backend needs vLLM and a CUDA GPU: pip install 'kasauti[vllm]'") from exc


def structured_json(schema: dict) -> dict:
    """SamplingParams keyword for JSON-schema constrained output, in whichever API this vLLM has."""
    sp = importlib.import_module("vllm.sampling_params")
    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}


@register_backend("vllm")
class VLLMBackend:
    """``batch_size`` requests per ``LLM.chat`` (re-asks join the next batch)."""

    def __init__(self, cfg: JudgeConfig, ledger=None, *, llm=None):
        self.cfg = cfg
        self._llm = llm
        _vllm()  # fail early, with the install hint

    async def run(self, queue: RequestQueue, deliver: Callable[[Result], None]) -> None:
        while reqs := await queue.take(self.cfg.batch_size):
            for req, completion in zip(reqs, self.complete_batch([r.messages for r in reqs], [r.schema for r in reqs])):
                deliver(Result(req, completion, None))

    async def aclose(self) -> None:
        pass

    @property
    def llm(self):
        if self._llm is None:
            self._llm = _vllm().LLM(model=self.cfg.model, **self.cfg.engine_args)
        return self._llm

    def sampling_params(self, schema: dict):
        cfg = self.cfg
        kw = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, **structured_json(schema)}
        if cfg.top_p is not None:
            kw["top_p"] = cfg.top_p
        if cfg.seed is not None:
            kw["seed"] = cfg.seed
        if cfg.logprobs:
            kw["logprobs"] = cfg.top_logprobs
        return _vllm().SamplingParams(**kw)

    def complete_batch(self, convos: Sequence[list[dict]], schemas: Sequence[dict]) -> list[Completion]:
        params = [self.sampling_params(s) for s in schemas]
        outs = self.llm.chat(list(convos), params, use_tqdm=False)
        return [to_completion(o) for o in outs]


def to_completion(out) -> Completion:
    """A vLLM ``RequestOutput`` (first ``CompletionOutput``) as a Completion."""
    c = out.outputs[0]
    tokens = None
    if c.logprobs:
        tokens = tuple(_token(tid, pos) for tid, pos in zip(c.token_ids, c.logprobs))
    return Completion(
        text=c.text,
        tokens=tokens,
        prompt_tokens=len(out.prompt_token_ids) if out.prompt_token_ids is not None else None,
        completion_tokens=len(c.token_ids),
        response_format="json_schema",
    )


def _token(token_id: int, position: dict) -> Token:
    chosen = position[token_id]
    ranked = sorted(position.values(), key=lambda lp: (lp.rank is None, lp.rank or 0))
    return Token(chosen.decoded_token or "", chosen.logprob, tuple((lp.decoded_token or "", lp.logprob) for lp in ranked))
