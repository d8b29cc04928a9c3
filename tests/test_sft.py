"""Student fine-tuning data (training.train.sft_examples), its config, and the evaluation prompts (training.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import studytables as st
from tests.test_export import sample
from tests.test_training import build_tiny_model

MIDB_SUBSET = Path(__file__).resolve().parent / "data" / "midb"


def accepted(ids: list[str]) -> pd.DataFrame:
    items = sample(ids)
    items["system_prompt"] = [None, "आप सहायक हैं।", None][: len(ids)]
    items["conversation"] = [None, None, json.dumps([{"role": "user", "content": "नमस्ते"},
                                                     {"role": "assistant", "content": "नमस्ते!"}], ensure_ascii=False)][:len(ids)]
    return items.assign(decided_by="humans", accepted_by="rule", evidence="{}")[st.EXPORT_ACCEPTED.names]


def write_accepted(root: Path, ids: list[str]) -> pd.DataFrame:
    frame = accepted(ids)
    (root / st.EXPORT_ACCEPTED.file).parent.mkdir(parents=True)
    st.write(st.EXPORT_ACCEPTED, frame, root / st.EXPORT_ACCEPTED.file)
    return frame


def test_sft_examples_are_chat_prompts_to_responses_and_take_boosted_versions_when_asked(tmp_path):
    from training.train import sft_examples

    frame = write_accepted(tmp_path, ["a", "b", "c"])
    boosted = pd.DataFrame([("b", "hi", "qa", "बेहतर प्रश्न", "", "बेहतर उत्तर", *frame.loc[1, ["prompt"]], "", "x", 0.5,
                             "m1", "hash", "{}"),
                            ("z", "hi", "qa", "p", "", "r", "p0", "", "r0", 0.1, None, "hash", "{}")],
                           columns=st.BOOSTED.names)
    st.write(st.BOOSTED, boosted, tmp_path / st.BOOSTED.file)

    examples, counts = sft_examples(tmp_path)
    assert counts == {"accepted_items": 3, "boosted_items": 0, "original_items": 3}
    a, b, c = examples
    assert a.prompt == [{"role": "user", "content": f"{frame.loc[0, 'prompt']}\n\n{frame.loc[0, 'context']}"}]
    assert a.completion == [{"role": "assistant", "content": frame.loc[0, "response"]}]
    assert b.prompt == [{"role": "system", "content": "आप सहायक हैं।"}, {"role": "user", "content": frame.loc[1, "prompt"]}]
    assert [m["role"] for m in c.prompt] == ["user", "assistant", "user"] and c.prompt[-1]["content"].endswith(
        frame.loc[2, "context"])

    examples, counts = sft_examples(tmp_path, "boosted")
    assert counts == {"accepted_items": 3, "boosted_items": 1, "original_items": 2}  # z is not accepted: not used
    assert examples[1].prompt[-1] == {"role": "user", "content": "बेहतर प्रश्न"}
    assert examples[1].completion[0]["content"] == "बेहतर उत्तर"
    assert [e.prompt for e in examples[::2]] == [a.prompt, c.prompt]


def test_sft_without_accepted_items_or_boosted_table_says_what_to_run(tmp_path):
    from training import TrainingError
    from training.train import sft_examples

    with pytest.raises(TrainingError, match="no accepted items; run `kasauti export"):
        sft_examples(tmp_path)
    write_accepted(tmp_path, ["a"])
    with pytest.raises(TrainingError, match="boosted.parquet: not found.*kasauti boost"):
        sft_examples(tmp_path, "boosted")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / st.EXPORT_ACCEPTED.file).parent.mkdir(parents=True)
    st.write(st.EXPORT_ACCEPTED, accepted([]), empty / st.EXPORT_ACCEPTED.file)
    with pytest.raises(TrainingError, match="no accepted items to train a student on"):
        sft_examples(empty)


def test_student_examples_carry_loss_on_the_response_only(tmp_path):
    from training.train import SftConfig, build_trainer, load_base, sft_examples

    write_accepted(tmp_path, ["a", "b", "c"])
    base = build_tiny_model(tmp_path / "tiny")
    model, tokenizer = load_base(str(base))
    examples, _ = sft_examples(tmp_path)
    trainer = build_trainer(SftConfig(base=str(base), lora_rank=4), model, tokenizer, examples, [], tmp_path / "run")
    for e, row in zip(examples, trainer.train_dataset):
        n = len(tokenizer.apply_chat_template(e.prompt, add_generation_prompt=True, return_dict=True)["input_ids"])
        assert row["labels"][:n] == [-100] * n
        assert tokenizer.decode(row["input_ids"][n:]).startswith(e.completion[0]["content"])
        assert all(x != -100 for x in row["labels"][n:])


def test_training_sft_and_eval_sections_refuse_unknown_keys(tmp_path):
    from kasauti.study import Study, StudyError

    for section, key in (("sft", "lora_rnak"), ("eval", "prompts_per_lang")):
        body = {"base": "smollm2", key: 1} if section == "sft" else {key: 1}
        (tmp_path / "kasauti.yaml").write_text(yaml.safe_dump({"name": "s", "data": {"path": "d.jsonl"},
                                                               "training": {section: body}}), encoding="utf-8")
        with pytest.raises(StudyError, match=f"training.{section}.{key}: Extra inputs"):
            Study(tmp_path)


def test_sample_items_read_a_missing_context_as_empty(tmp_path):
    from training.boost import sample_items

    st.write(st.SAMPLE, sample(["a", "b"]), tmp_path / "sample.parquet")
    items = sample_items(st.read(st.SAMPLE, tmp_path / "sample.parquet"))
    assert [it.original.input for it in items] == ["संदर्भ 0", ""]


def test_benchmark_prompts_are_a_seeded_draw_per_file_and_count_what_is_set_aside():
    from training.evaluate import benchmark_prompts

    prompts, set_aside = benchmark_prompts(MIDB_SUBSET, ["alpaca_eval", "mt_bench"], 2, seed=0)
    spanish = json.loads((MIDB_SUBSET / "alpaca_eval" / "Spanish.json").read_text(encoding="utf-8"))
    turns = json.loads((MIDB_SUBSET / "mt_bench" / "Spanish.json").read_text(encoding="utf-8"))
    by_id = {p.prompt_id: p for p in prompts}
    assert sorted(by_id) == sorted(["alpaca_eval/ar/1", "mt_bench/es/1", "mt_bench/es/2",
                                    *[i for i in by_id if i.startswith("alpaca_eval/es/")]])
    assert len([i for i in by_id if i.startswith("alpaca_eval/es/")]) == 2
    for pid, p in by_id.items():
        bench, language, number = pid.split("/")
        assert (p.benchmark, p.language, p.task) == (bench, language, bench)
        if pid.startswith("alpaca_eval/es/"):
            assert p.messages == [{"role": "user", "content": spanish[int(number) - 1]["instruction"]}]
    assert by_id["mt_bench/es/2"].messages[0]["content"] == turns[1]["turns"][0]  # the first turn only
    # 3 Spanish (1 not drawn) + 2 Arabic (1 with a translated key) + 2 MT-Bench records
    assert set_aside == {"alpaca_eval: no instruction or first turn": 1, "alpaca_eval: not drawn": 1}
    assert len(prompts) + sum(set_aside.values()) == 3 + 2 + 2
    assert benchmark_prompts(MIDB_SUBSET, ["alpaca_eval"], 2, seed=0)[0] == [p for p in prompts
                                                                             if p.benchmark == "alpaca_eval"]


def test_benchmark_dir_errors_name_the_path(tmp_path):
    from training.evaluate import EvalError, benchmark_prompts

    with pytest.raises(EvalError, match="is not a directory"):
        benchmark_prompts(tmp_path / "nowhere", ["alpaca_eval"], 2, 0)
    with pytest.raises(EvalError, match="no <Language>.json files"):
        benchmark_prompts(tmp_path, ["alpaca_eval"], 2, 0)
    (tmp_path / "alpaca_eval").mkdir()
    (tmp_path / "alpaca_eval" / "Spanish.json").write_text('{"instruction": "x"}', encoding="utf-8")
    with pytest.raises(EvalError, match="Spanish.json: expected a JSON list"):
        benchmark_prompts(tmp_path, ["alpaca_eval"], 2, 0)


def test_eval_judges_are_the_named_ones_or_all_and_never_none():
    from judge.config import JudgeConfig
    from training.evaluate import EvalConfig, EvalError, eval_judges

    judges = [JudgeConfig(name=n, model="m") for n in ("a", "b")]
    assert eval_judges(EvalConfig(), judges) == judges
    assert eval_judges(EvalConfig(judges=["b"]), judges) == judges[1:]
    with pytest.raises(EvalError, match=r"unknown judge\(s\) \['c'\]; the study configures \['a', 'b'\]"):
        eval_judges(EvalConfig(judges=["c"]), judges)
    with pytest.raises(EvalError, match="no judge to compare the models"):
        eval_judges(EvalConfig(), [])
