"""The vLLM backend without a GPU: request building and parsing of real-shaped vLLM outputs.

The objects below mirror vLLM's own (``vllm/outputs.py`` RequestOutput/CompletionOutput,
``vllm/logprobs.py`` Logprob, ``vllm/sampling_params.py`` SamplingParams and
StructuredOutputsParams / the older GuidedDecodingParams) field for field; the fake
``LLM.chat`` answers like the loopback server does.
"""

import sys
import types
from dataclasses import dataclass

import pytest

import rubrics
from judge import JudgeConfig, Ledger, run_judge
from judge.prompts import hash_messages
from judge.testing import FakeJudgeServer, Faults
from tests.judge_support import demo_sample
from tests.vllm_shapes import CompletionOutput, Logprob, RequestOutput

from .test_judge_faults import check_every_call_once

RS = rubrics.load_rubric_set("pariksha")
SAMPLE = demo_sample(3)


@dataclass
class StructuredOutputsParams:
    json: str | dict | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None


SAMPLING_FIELDS = {"n", "temperature", "top_p", "top_k", "seed", "max_tokens", "logprobs", "structured_outputs", "guided_decoding"}


class SamplingParams:
    def __init__(self, **kw):
        unknown = set(kw) - SAMPLING_FIELDS
        assert not unknown, f"not a SamplingParams field: {unknown}"
        self.__dict__.update(kw)


class FakeLLM:
    """`LLM(model, **engine_args).chat(messages, sampling_params, use_tqdm)` answering like the server."""

    instances: list = []

    def __init__(self, model, **engine_args):
        self.model, self.engine_args, self.calls = model, engine_args, []
        self.server = FakeJudgeServer(FakeLLM.faults)
        self.vocab: dict[str, int] = {}
        FakeLLM.instances.append(self)

    def chat(self, messages, sampling_params, use_tqdm=True):
        assert isinstance(sampling_params, list) and len(sampling_params) == len(messages)
        self.calls.append((messages, sampling_params))
        outs = []
        for conv, sp in zip(messages, sampling_params):
            full = hash_messages(conv)
            n = self.server._seen[full]
            self.server._seen[full] += 1
            self.server.counts[hash_messages(conv[:2])] += 1
            body = self.server.answer({"logprobs": sp.logprobs is not None, "top_logprobs": sp.logprobs or 0}, conv, full, n)
            choice = body["choices"][0]
            content = (choice["logprobs"] or {}).get("content") or []
            ids = [self.tid(t["token"]) for t in content]
            lps = [{self.tid(a["token"]): Logprob(a["logprob"], i + 1, a["token"]) for i, a in enumerate(t["top_logprobs"])}
                   | ({} if self.tid(t["token"]) in {self.tid(a["token"]) for a in t["top_logprobs"]}
                      else {self.tid(t["token"]): Logprob(t["logprob"], 99, t["token"])}) for t in content]
            outs.append(RequestOutput(str(len(outs)), None, list(range(body["usage"]["prompt_tokens"])), None,
                                      [CompletionOutput(0, choice["message"]["content"], ids, None, lps if sp.logprobs else None, "stop")], True))
        return outs

    def tid(self, tok: str) -> int:
        return self.vocab.setdefault(tok, len(self.vocab))


@pytest.fixture(params=["structured_outputs", "guided_decoding"])
def fake_vllm(request, monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, SamplingParams
    sp = types.ModuleType("vllm.sampling_params")
    if request.param == "structured_outputs":
        sp.StructuredOutputsParams = StructuredOutputsParams
    else:
        sp.GuidedDecodingParams = StructuredOutputsParams  # same fields in the older API
    vllm.sampling_params = sp
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    FakeLLM.instances, FakeLLM.faults = [], Faults(rate_out_of_scale=0.3)
    return request.param


def test_vllm_requests_and_outputs(tmp_path, fake_vllm):
    cfg = JudgeConfig(name="local", backend="vllm", model="some/model", temperature=0.0, max_tokens=300, top_logprobs=4,
                      batch_size=4, engine_args={"max_model_len": 8192})
    s = run_judge(SAMPLE, RS, cfg, tmp_path / "l.sqlite")
    (llm,) = FakeLLM.instances
    assert (llm.model, llm.engine_args) == ("some/model", {"max_model_len": 8192})
    first_msgs, first_params = llm.calls[0]
    assert len(first_msgs) == 4 and [m["role"] for m in first_msgs[0]] == ["system", "user"]
    p = first_params[0]
    assert (p.temperature, p.max_tokens, p.logprobs) == (0.0, 300, 4)
    schema = rubrics.judge_response_schema(RS.family_for("x").metrics)
    assert getattr(p, fake_vllm).json == schema
    assert s.reasks > 0 and s.requests == len(SAMPLE) + s.reasks  # out-of-scale answers were re-asked
    df = Ledger(tmp_path / "l.sqlite").judgments()
    check_every_call_once(df, cfg, RS, SAMPLE)
    ok = df[df.status == "ok"]
    assert ok.probs.notna().all() and ok.expected_score.notna().all()
    assert (df.params.str.contains('"backend": "vllm"')).all()
    s2 = run_judge(SAMPLE, RS, cfg, tmp_path / "l.sqlite")
    assert s2.cached == len(SAMPLE) and s2.requests == 0


def test_vllm_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    cfg = JudgeConfig(name="local", backend="vllm", model="m")
    with pytest.raises(ImportError, match=r"kasauti\[vllm\]"):
        run_judge(SAMPLE, RS, cfg, tmp_path / "l.sqlite")
