"""Boosting (training/boost.py) and the `kasauti train booster` / `kasauti boost` commands.

The booster is the tiny model of tests/test_training.py, trained through the CLI on MIDB-shaped
pairs (it learns to reproduce its targets), or left random (its outputs never parse).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

import studytables as st
from sampling.pairs import boosted_pairs
from tests.judge_support import ROOT, cli_env, kasauti_cmd
from tests.vllm_shapes import CompletionOutput, RequestOutput
from training.boost import LEDGER_NAME, UNPARSEABLE, BoostItem, GenerationParams, boost
from training.pairs import Triple, edit_distance

from .test_training import build_tiny_model, learning_pairs, midb_record, write_json


def env() -> dict:
    return {**cli_env(), "OMP_NUM_THREADS": "1"}  # tiny matrices: more threads only add synchronisation


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(kasauti_cmd(*args), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def make_study(root: Path, data: Path, booster: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"name": "boost-test", "data": {"path": str(data), "columns": {"context": "context"}}}
    if booster is not None:
        cfg["training"] = {"booster": booster}
    (root / "kasauti.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return root


def write_items(path: Path, triples: list[tuple[str, Triple]]) -> Path:
    rows = [{"id": i, "language": "hi", "task": "qa", "prompt": t.instruction, "context": t.input, "response": t.response}
            for i, t in triples]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def counts(stdout: str) -> dict[str, int]:
    """{'boosted': n, 'unparseable': n, 'cached': n, 'generated': n} from the boost command's line."""
    words = stdout.replace(",", " ").replace("(", " ").split()
    return {w: int(words[i - 1]) for i, w in enumerate(words) if w in {"boosted", "unparseable", "cached", "generated"}}


def ledger_rows(study: Path) -> list[tuple]:
    with sqlite3.connect(study / LEDGER_NAME) as db:
        return db.execute("SELECT item_id, status, raw_text, error FROM outputs ORDER BY item_id").fetchall()


def recorded(study: Path) -> int:
    """Outputs in the ledger of a run under way (0 until it has created its table)."""
    try:
        return len(ledger_rows(study)) if (study / LEDGER_NAME).is_file() else 0
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-booster"))


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory) -> Path:
    """A study whose booster was trained through the CLI on the learning pairs (as a MIDB Hindi file)."""
    root = tmp_path_factory.mktemp("trained")
    pairs = learning_pairs()
    midb = write_json(root / "Hindi.json", [midb_record(tuple(vars(p.original).values()), tuple(vars(p.revised).values()))
                                           for p in pairs])
    data = write_items(root / "items.jsonl", [(p.item_id, p.original) for p in pairs])
    study = make_study(root / "study", data, dict(
        base=str(tiny), top_share=1.0, eval_share=0.2, batch_size=4, warmup_ratio=0.0, lr_scheduler="constant",
        lora_rank=16, save_steps=1000, logging_steps=1000, max_steps=80, learning_rate=1e-2))
    proc = run("train", "booster", str(study), "--pairs", f"midb:{midb}")
    assert "4 training pairs, 1 held out" in proc.stdout
    return study


def test_boost_rewrites_items_links_them_to_their_originals_and_resumes(trained):
    study = trained
    metrics = json.loads((study / "booster" / "metrics.json").read_text(encoding="utf-8"))
    held = {f"item-{m.rsplit('/', 1)[1]}" for m in metrics["eval_items"]}  # midb/hi/N was learning item-N
    data = study.parent / "items.jsonl"
    first = run("boost", str(study), "--booster", str(study / "booster"), "--data", str(data), "--batch-size", "3",
                "--max-new-tokens", "120")
    c = counts(first.stdout)
    assert c["boosted"] + c["unparseable"] == 5 and c["generated"] == 5 and c["cached"] == 0
    boosted = st.read(st.BOOSTED, study / st.BOOSTED.file).set_index("item_id")
    assert len(boosted) == c["boosted"]
    for p in learning_pairs():
        if p.item_id in held:
            continue
        row = boosted.loc[p.item_id]
        assert Triple(row.prompt, row.context, row.response) == p.revised
        assert Triple(row.original_prompt, row.original_context, row.original_response) == p.original
        assert row.edit_distance == pytest.approx(edit_distance(p.original, p.revised)) and row.edit_distance > 0
    assert len(ledger_rows(study)) == 5
    again = counts(run("boost", str(study), "--booster", str(study / "booster"), "--data", str(data), "--batch-size",
                       "3", "--max-new-tokens", "120").stdout)
    assert again == {**c, "cached": 5, "generated": 0}


RANDOM_ITEMS = [(f"r{i:02d}", Triple(f"प्रश्न {i}", "", f"उत्तर {i}")) for i in range(12)]


def test_unparseable_outputs_are_recorded_with_status_and_raw_text(tiny, tmp_path):
    study = make_study(tmp_path / "study", write_items(tmp_path / "items.jsonl", RANDOM_ITEMS[:4]))
    c = counts(run("boost", str(study), "--booster", str(tiny), "--max-new-tokens", "12",
                   "--data", str(tmp_path / "items.jsonl")).stdout)
    assert c == {"boosted": 0, "unparseable": 4, "cached": 0, "generated": 4}
    rows = ledger_rows(study)
    assert [r[0] for r in rows] == [i for i, _ in RANDOM_ITEMS[:4]]
    for _, status, raw, error in rows:
        assert status == UNPARSEABLE and raw.strip() and error
    assert st.read(st.BOOSTED, study / st.BOOSTED.file).empty


def test_batches_hold_prompts_of_similar_token_counts(tiny, tmp_path):
    """Batches follow the prompts' token counts (not their characters): the ledger records them in
    generation order, shortest prompt first."""
    from training.boost import TransformersGenerator, plan_batches
    from training.examples import booster_prompt

    assert plan_batches([5, 100, 6, 101, 5], 2) == [[0, 4], [2, 1], [3]]
    # Devanagari the tokenizer knows: many characters, few tokens; unseen Han: few characters, many byte tokens
    items = [BoostItem("known", "hi", None, Triple("भारत की राजधानी नई दिल्ली है। " * 2, "", "दिल्ली")),
             BoostItem("unseen", "hi", None, Triple("漢字" * 8, "", "zz")),
             BoostItem("short", "hi", None, Triple("", "", "x"))]
    lengths = TransformersGenerator(tiny, GenerationParams(max_new_tokens=2)).prompt_tokens(
        [booster_prompt(it.original) for it in items])
    chars = [len(it.original.joined()) for it in items]
    assert lengths[0] < lengths[1] and chars[0] > chars[1]
    boost(tiny, items, tmp_path / "boosted.parquet", batch_size=1, params=GenerationParams(max_new_tokens=2))
    with sqlite3.connect(tmp_path / LEDGER_NAME) as db:
        order = [i for (i,) in db.execute("SELECT item_id FROM outputs ORDER BY rowid")]
    assert order == [items[i].item_id for i in sorted(range(3), key=lengths.__getitem__)]


def test_min_new_tokens_holds_off_the_end_of_sequence(tiny, tmp_path):
    """A booster whose first greedy token ends the sequence writes one token; with min_new_tokens it writes
    exactly max_new_tokens (fixed-length outputs, as throughput benchmarks need); min above max is refused."""
    import shutil

    from training.boost import BoostError, TransformersGenerator
    from training.examples import booster_prompt

    model = shutil.copytree(tiny, tmp_path / "model")
    prompt = booster_prompt(RANDOM_ITEMS[0][1])
    gen = TransformersGenerator(model, GenerationParams(max_new_tokens=1))
    enc = gen.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    first = int(gen.model.generate(**enc, max_new_tokens=1, do_sample=False)[0, -1])
    config = json.loads((model / "generation_config.json").read_text(encoding="utf-8"))
    (model / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": [first]}), encoding="utf-8")

    def generated(params: GenerationParams) -> list[int]:
        g = TransformersGenerator(model, params)
        return g.tokenizer(g([prompt])[0], add_special_tokens=False)["input_ids"]

    assert generated(GenerationParams(max_new_tokens=6)) == [first]
    fixed = generated(GenerationParams(max_new_tokens=6, min_new_tokens=6))
    assert first not in fixed[:1] and len(gen.tokenizer.decode(fixed)) > len(gen.tokenizer.decode([first]))
    with pytest.raises(BoostError, match="min_new_tokens must be between 0 and max_new_tokens"):
        boost(tiny, [BoostItem("a", "hi", None, RANDOM_ITEMS[0][1])], tmp_path / "b.parquet",
              params=GenerationParams(max_new_tokens=4, min_new_tokens=5))


def test_a_killed_boost_resumes_exactly_the_missing_items(tiny, tmp_path):
    data = write_items(tmp_path / "items.jsonl", RANDOM_ITEMS)
    study = make_study(tmp_path / "study", data)
    args = ("boost", str(study), "--booster", str(tiny), "--data", str(data), "--batch-size", "1",
            "--max-new-tokens", "60")
    proc = subprocess.Popen(kasauti_cmd(*args), cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and recorded(study) < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed"
    before = len(ledger_rows(study))
    assert 2 <= before < len(RANDOM_ITEMS)
    c = counts(run(*args).stdout)
    assert c["cached"] == before and c["generated"] == len(RANDOM_ITEMS) - before
    assert sorted(r[0] for r in ledger_rows(study)) == [i for i, _ in RANDOM_ITEMS]


def one_line_error(proc: subprocess.CompletedProcess, *parts: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for part in parts:
        assert part in proc.stderr


def test_bad_input_is_a_one_line_error_with_exit_2(tiny, tmp_path):
    data = write_items(tmp_path / "items.jsonl", RANDOM_ITEMS[:2])
    study = make_study(tmp_path / "study", data)
    one_line_error(run("boost", str(study), "--booster", str(tmp_path / "nowhere"), "--data", str(data), ok=False),
                   "nowhere", "not found")
    one_line_error(run("boost", str(study), "--booster", str(tiny), "--data", str(tmp_path / "missing.jsonl"), ok=False),
                   "missing.jsonl", "no such data file")
    one_line_error(run("boost", str(study), "--booster", str(tiny), ok=False), "no sample", "--data")
    one_line_error(run("boost", str(study), "--booster", str(tiny), "--data", str(data), "--backend", "tpu", ok=False),
                   "unknown backend 'tpu'")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.read_text(encoding="utf-8") + json.dumps({"id": "x", "language": "hi", "prompt": "p"}) + "\n",
                   encoding="utf-8")
    one_line_error(run("boost", str(study), "--booster", str(tiny), "--data", str(bad), ok=False),
                   "bad.jsonl", "row 3", "'response'")
    one_line_error(run("train", "booster", str(study), ok=False), "no `training: booster:` section")
    extra = make_study(tmp_path / "extra", data, {"base": str(tiny), "lora_rnak": 8})
    one_line_error(run("train", "booster", str(extra), ok=False), "training.booster.lora_rnak", "Extra inputs")
    trainable = make_study(tmp_path / "trainable", data, {"base": str(tiny)})
    one_line_error(run("train", "booster", str(trainable), ok=False), "no revision pairs", "kasauti export")
    (tmp_path / "Hindi.json").write_text("[{", encoding="utf-8")
    one_line_error(run("train", "booster", str(trainable), "--pairs", f"midb:{tmp_path / 'Hindi.json'}", ok=False),
                   "Hindi.json", "not valid JSON")
    assert not (study / st.BOOSTED.file).exists()


def test_booster_pairs_come_from_the_study_export_or_a_midb_file(tmp_path):
    from training import TrainingError
    from training.train import booster_pairs

    pairs = learning_pairs()
    rows = [(p.item_id, "ann", "study", p.language, None, *vars(p.original).values(), *vars(p.revised).values(),
             p.distance, None, None) for p in pairs]
    path = tmp_path / st.EXPORT_REVISIONS.file
    path.parent.mkdir(parents=True)
    st.write(st.EXPORT_REVISIONS, pd.DataFrame(rows, columns=st.EXPORT_REVISIONS.names), path)
    assert booster_pairs(tmp_path) == pairs
    midb = write_json(tmp_path / "Hindi.json", [midb_record(tuple(vars(p.original).values()),
                                                            tuple(vars(p.revised).values())) for p in pairs])
    assert [(p.original, p.revised) for p in booster_pairs(tmp_path, f"midb:{midb}")] == \
        [(p.original, p.revised) for p in pairs]
    with pytest.raises(TrainingError, match="give `export` or `midb:FILE`"):
        booster_pairs(tmp_path, "revisions")


def test_the_study_template_shows_a_training_section_that_validates_once_uncommented(tmp_path):
    from kasauti.study import Study

    data = write_items(tmp_path / "items.jsonl", RANDOM_ITEMS[:1])
    run("init", str(tmp_path / "s"), "--data", str(data))
    path = tmp_path / "s" / "kasauti.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("# training:")
    end = lines.index("", start)
    path.write_text("\n".join(lines[:start] + [line[2:] for line in lines[start:end]] + lines[end:]) + "\n",
                    encoding="utf-8")
    booster = Study(path.parent).config.training.booster
    assert booster is not None and booster.base == "smollm2" and booster.max_steps == 200


# --- the vLLM path, with objects shaped like vLLM's (vllm/outputs.py, vllm/lora/request.py) ----


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


class SamplingParams:
    def __init__(self, **kw):
        assert set(kw) <= {"max_tokens", "min_tokens", "temperature", "top_p", "seed"}, kw
        self.__dict__.update(kw)


class FakeLLM:
    """`LLM(model, **engine_args).chat(messages, sampling_params, use_tqdm, lora_request)`: answers each item's
    revision when it knows one, else text that is no item."""

    instances: list = []

    def __init__(self, model, **engine_args):
        self.model, self.engine_args, self.calls = model, engine_args, []
        FakeLLM.instances.append(self)
        self.answers = {json.dumps(p.original.__dict__, ensure_ascii=False)[1:-1]: p.revised for p in learning_pairs()}

    def chat(self, messages, sampling_params, use_tqdm=True, lora_request=None):
        self.calls.append((messages, sampling_params, lora_request))
        outs = []
        for conv in messages:
            known = [r for k, r in self.answers.items() if k in conv[-1]["content"]]
            text = json.dumps(known[0].__dict__, ensure_ascii=False) if known else "I cannot improve this."
            outs.append(RequestOutput(str(len(outs)), None, [1, 2], None, [CompletionOutput(0, text, [3], None, None, "stop")], True))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, SamplingParams
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    FakeLLM.instances = []


def test_vllm_backend_serves_the_base_with_the_booster_lora(tiny, tmp_path, fake_vllm):
    booster = tmp_path / "booster"
    (booster / "model").mkdir(parents=True)
    (booster / "model" / "config.json").write_text("{}", encoding="utf-8")
    (booster / "adapter").mkdir()
    (booster / "adapter" / "adapter_config.json").write_text('{"r": 64}', encoding="utf-8")
    (booster / "config.json").write_text(json.dumps({"base_resolved": [str(tiny), None]}), encoding="utf-8")
    pairs = learning_pairs()
    items = [BoostItem(p.item_id, p.language, None, p.original) for p in pairs] + [
        BoostItem("new", "hi", None, Triple("नया", "", "नहीं"))]
    result = boost(booster, items, tmp_path / "boosted.parquet", batch_size=4, backend="vllm",
                   params=GenerationParams(max_new_tokens=256, min_new_tokens=8))
    (llm,) = FakeLLM.instances
    assert llm.model == str(tiny) and llm.engine_args == {"enable_lora": True, "max_lora_rank": 64}
    assert [len(m) for m, _, _ in llm.calls] == [4, 2]
    _, sampling, lora = llm.calls[0]
    assert vars(sampling) == {"max_tokens": 256, "min_tokens": 8, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    assert lora == LoRARequest("booster", 1, str(booster / "adapter"))
    assert (result.boosted, result.unparseable, result.generated) == (5, 1, 6)
    out = st.read(st.BOOSTED, tmp_path / "boosted.parquet").set_index("item_id")
    for p in pairs:
        assert out.loc[p.item_id, "response"] == p.revised.response
    assert "new" not in out.index
    sample = pd.DataFrame([(it.item_id, it.language, "qa", it.original.instruction, it.original.response, "m")
                           for it in items], columns=["item_id", "language", "task", "prompt", "response", "source_model"])
    compared = boosted_pairs(sample, out.reset_index())
    assert compared.attrs["counts"]["pairs"] == 5 and set(compared["item_a"]) == {p.item_id for p in pairs}
