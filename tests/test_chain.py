"""The whole training chain through the CLI: export -> train booster -> boost -> train sft -> eval.

A small study (Hindi and Tamil items, human ratings and revisions, written through studytables)
and the tiny model of tests/test_training.py (byte-level BPE on multilingual text, random-init
Llama, chat template); the judge is judge/testing.py's loopback server; the benchmark prompts
are the attributed MIDB subset in tests/data/midb.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import studytables as st
from judge.testing import FakeJudgeServer
from tests.judge_support import ROOT, kasauti_cmd
from tests.test_boost import env as boost_env
from tests.test_boost import one_line_error
from tests.test_export import both, closed_port, ratings, revisions, sample, study
from tests.test_training import build_tiny_model

MIDB_SUBSET = ROOT / "tests" / "data" / "midb"
KEY_ENV = "KASAUTI_TEST_JUDGE_KEY"
RULE = {"accept": [{"metric": "linguistic_acceptability", "at_least": 2, "min_raters": 2},
                   {"metric": "task_quality", "at_least": 1}]}
TRAIN = dict(batch_size=2, warmup_ratio=0.0, lr_scheduler="constant", lora_rank=8, save_steps=1000,
             logging_steps=1000, max_steps=3, learning_rate=1e-3, max_length=512)


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**boost_env(), KEY_ENV: "not-a-real-key", "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}  # no hub
    proc = subprocess.run(kasauti_cmd(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def chain_study(root: Path, base: Path, judge_url: str, **sft) -> Path:
    """Hindi and Tamil items: six accepted (h1-h3, t1-t3), one rejected (h4); revisions of h1, h2 and t1."""
    items = pd.concat([sample(["h1", "h2", "h3", "h4"]), sample(["t1", "t2", "t3"], language="ta")], ignore_index=True)
    items.loc[items["language"] == "ta", "prompt"] = ["இந்தியாவின் தலைநகரம் எது?", "தமிழில் எழுதுங்கள்.", "ஒரு பத்தி."]
    rated = ratings([row for i in ("h1", "h2", "h3", "t1", "t2", "t3") for r in ("a1", "a2") for row in both(i, r, 2, 2)]
                    + both("h4", "a1", 0, 0) + both("h4", "a2", 1, 0))
    revised = revisions([("h1", "a1", "उत्तर: नई दिल्ली भारत की राजधानी है।", "submitted"),
                         ("h2", "a2", "नई दिल्ली।", "submitted"), ("t1", "a1", "புது தில்லி.", "submitted")])
    study(root, items, rated, revised)
    cfg = {"name": "chain", "data": {"path": "data.jsonl"}, "export": RULE,
           "judges": [{"name": "fake", "model": "fake-judge", "base_url": judge_url, "api_key_env": KEY_ENV,
                       "timeout_s": 10, "backoff_base_s": 0.01, "backoff_max_s": 0.05}],
           "training": {"booster": {"base": str(base), **TRAIN, "top_share": 1.0, "eval_share": 0.3},
                        "sft": {"base": str(base), **TRAIN, "eval_share": 0.5, "data": "boosted", **sft},
                        "eval": {"benchmarks_dir": str(MIDB_SUBSET), "prompts_per_language": 2, "max_new_tokens": 8,
                                 "batch_size": 4, "n_boot": 200}}}
    (root / "kasauti.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chain"))


@pytest.fixture(scope="module")
def judge_server():
    with FakeJudgeServer() as srv:
        yield srv


def response_bits_per_byte(model_dir: Path, docs: Path) -> float:
    """Bits per UTF-8 byte of each doc's response given its prompt, computed here with transformers. As in
    lm-evaluation-harness, the whitespace that ends the prompt (the chat template's, after the assistant header)
    is scored with the response; the bytes counted are the response's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    loglikelihood = n_bytes = 0.0
    for doc in map(json.loads, docs.read_text(encoding="utf-8").splitlines()):
        context = tokenizer(doc["prompt"].rstrip(), add_special_tokens=False)["input_ids"]
        whole = tokenizer(doc["prompt"] + doc["text"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0, :-1].double(), -1)
        loglikelihood += sum(logprobs[i - 1, whole[i]].item() for i in range(len(context), len(whole)))
        n_bytes += len(doc["text"].encode("utf-8"))
    return -loglikelihood / n_bytes / math.log(2)


def numbers(text: str) -> dict[str, int]:
    """{'generated': n, 'cached': n, ...}: each word preceded by a number in a command's output."""
    words = text.replace(",", " ").replace(";", " ").replace("(", " ").split()
    return {w: int(words[i - 1]) for i, w in enumerate(words) if i and words[i - 1].isdigit()}


def test_the_whole_chain_runs_through_the_cli_and_a_second_eval_reuses_its_work(tiny, judge_server, tmp_path):
    started = time.monotonic()
    root = chain_study(tmp_path / "study", tiny, judge_server.url)
    run("export", str(root))
    accepted = st.read(st.EXPORT_ACCEPTED, root / st.EXPORT_ACCEPTED.file)
    assert sorted(accepted["item_id"]) == ["h1", "h2", "h3", "t1", "t2", "t3"]

    booster = run("train", "booster", str(root))
    assert "2 training pairs, 1 held out" in booster.stdout, booster.stdout
    boosted = numbers(run("boost", str(root), "--booster", str(root / "booster"), "--max-new-tokens", "16").stdout)
    assert boosted["boosted"] + boosted["unparseable"] == 7 == boosted["generated"]

    sft = run("train", "sft", str(root)).stdout
    m = json.loads((root / "student" / "metrics.json").read_text(encoding="utf-8"))
    assert m["accepted_items"] == 6 == m["boosted_items"] + m["original_items"]
    n_boosted = len(set(st.read(st.BOOSTED, root / st.BOOSTED.file)["item_id"]) & set(accepted["item_id"]))
    assert m["boosted_items"] == n_boosted
    assert m["train_examples"] + m["eval_examples"] + len(m["set_aside_too_long"]) == 6 and m["eval_examples"] == 3
    assert m["global_step"] == 3 and m["eval_loss_before"] is not None and m["eval_loss_after"] is not None
    assert f"{m['train_examples']} training, {m['eval_examples']} held out" in sft
    saved = json.loads((root / "student" / "config.json").read_text(encoding="utf-8"))
    assert saved["config"]["data"] == "boosted" and len(saved["data_hash"]) == 64
    assert (root / "student" / "adapter" / "adapter_config.json").is_file()
    assert (root / "student" / "model" / "model.safetensors").is_file()

    first = run("eval", str(root))
    held = set(m["eval_items"])
    held_languages = set(accepted[accepted["item_id"].isin(held)]["language"])
    answers = st.read(st.EVAL_RESPONSES, root / st.EVAL_RESPONSES.file)
    # 3 held-out items + 2 drawn per benchmark file (Spanish AlpacaEval, MT-Bench; Arabic AlpacaEval has 1 usable)
    assert answers.groupby("benchmark")["prompt_id"].nunique().to_dict() == {"heldout": 3, "alpaca_eval": 3,
                                                                              "mt_bench": 2}
    assert sorted(answers.groupby("model").size().to_dict().items()) == [("base", 8), ("student", 8)]
    c = numbers(first.stdout)
    assert c["generated"] == 16 and c["cached"] == 0
    assert "alpaca_eval: no instruction or first turn: 1" in first.stdout  # the Arabic record with a translated key
    table = st.read(st.EVAL, root / st.EVAL.file)
    lm = table[table["judge"].isna()]
    assert set(lm["metric"]) == {"bits_per_byte", "byte_perplexity", "word_perplexity", "response_bits_per_byte"}
    for language in held_languages:  # both models per language
        rows = lm[lm["language"] == language]
        assert set(rows["model"]) == {"base", "student"} and (rows["value"] > 0).all()
        assert rows["n"].tolist() == [int((accepted[accepted["item_id"].isin(held)]["language"] == language).sum())] * 8
    assert set(lm["language"]) == held_languages
    for model, directory in (("base", tiny), ("student", root / "student" / "model")):
        for language in held_languages:
            expected = response_bits_per_byte(directory, root / "eval" / "lm_eval" / f"heldout_{language}.jsonl")
            got = lm.set_index(["model", "language", "metric"]).loc[(model, language, "response_bits_per_byte"), "value"]
            assert got == pytest.approx(expected, rel=1e-4)
    wins = table[table["metric"] == "win_rate"].set_index(["benchmark", "language"])
    assert set(wins.index) == {("heldout", "all"), *{("heldout", lang) for lang in held_languages},
                               ("alpaca_eval", "all"), ("alpaca_eval", "es"), ("alpaca_eval", "ar"),
                               ("mt_bench", "all"), ("mt_bench", "es")}
    assert wins.loc[("heldout", "all"), "n"] == 2 * 3  # each pair in both orders
    assert ((wins["ci_low"] <= wins["value"]) & (wins["value"] <= wins["ci_high"])).all()
    position = table[table["metric"] == "position_consistency"]
    assert set(position["benchmark"]) == {"heldout", "alpaca_eval", "mt_bench"} and position["value"].between(0, 1).all()
    assert not (root / st.JUDGE_COMPARISONS.file).exists()  # the study's own pairwise judge tables are not touched

    before = judge_server.total
    second = run("eval", str(root))
    c = numbers(second.stdout)
    assert c["generated"] == 0 and c["cached"] == 16 and "lm-evaluation-harness: reused" in second.stdout
    assert judge_server.total == before  # every judge answer came from the ledger
    pd.testing.assert_frame_equal(st.read(st.EVAL, root / st.EVAL.file), table)
    elapsed = time.monotonic() - started
    print(f"the whole chain through the CLI: {elapsed:.1f} s")


def test_bad_input_is_a_one_line_error_with_exit_2_and_keeps_what_was_there(tiny, judge_server, tmp_path):
    root = chain_study(tmp_path / "study", tiny, judge_server.url, eval_share=0.0, data="accepted")
    one_line_error(run("train", "sft", str(root), ok=False), "no accepted items", "kasauti export")
    cfg = yaml.safe_load((root / "kasauti.yaml").read_text(encoding="utf-8"))
    (tmp_path / "no-sft").mkdir()
    (tmp_path / "no-sft" / "kasauti.yaml").write_text(yaml.safe_dump({**cfg, "training": {}}), encoding="utf-8")
    one_line_error(run("train", "sft", str(tmp_path / "no-sft"), ok=False), "no `training: sft:` section")
    run("export", str(root))
    gone = chain_study(tmp_path / "gone", tmp_path / "no-model", judge_server.url, data="accepted")
    run("export", str(gone))
    one_line_error(run("train", "sft", str(gone), ok=False), "no-model", "not found")
    assert not (gone / "student").exists()
    one_line_error(run("eval", str(root), ok=False), "no trained student", "kasauti train sft")

    run("train", "sft", str(root))  # eval_share 0: nothing held out
    one_line_error(run("eval", str(root), ok=False), "no held-out prompts", "eval_share")
    assert not (root / "eval").exists()

    copy = shutil.copytree(tiny, tmp_path / "base-copy")
    cfg["training"]["sft"].update(base=str(copy), eval_share=0.5)
    (root / "kasauti.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    shutil.rmtree(root / "student")
    run("train", "sft", str(root))
    shutil.rmtree(copy)
    one_line_error(run("eval", str(root), ok=False), "base model is gone", "base-copy")
    assert not (root / "eval").exists()
