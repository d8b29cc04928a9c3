"""training/: MIDB revision pairs, edit distance and selection, booster examples, the booster trainer.

The trainer tests run a tiny random-init Llama with a byte-level BPE tokenizer trained here on
multilingual text (Devanagari and Tamil included), built once per session, on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.examples import IMPROVE_INSTRUCTION, booster_example, booster_prompt, parse_triple, render_triple
from training.midb import EMPTY_REVISED_RESPONSE, UNCHANGED, MidbError, read_midb
from training.pairs import RevisionPair, Triple, edit_distance, select_top

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    IMPROVE_INSTRUCTION,
    '{"instruction": "", "input": "", "response": ""}',
    "भारत की राजधानी नई दिल्ली है। हिंदी में एक छोटा अनुच्छेद लिखिए।",
    "இந்தியாவின் தலைநகரம் புது தில்லி. தமிழில் ஒரு சிறிய பத்தி எழுதுங்கள்.",
    "Translate the sentence. The capital of France is Paris.",
    "La capital de Francia es París. Resume el texto.",
]


def build_tiny_model(directory: Path) -> Path:
    """A byte-level BPE tokenizer trained on multilingual text, a chat template, a random-init Llama (~0.1M)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(CORPUS * 20, trainers.BpeTrainer(
        vocab_size=700, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, initializer_range=0.1,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def learning_pairs() -> list[RevisionPair]:
    """Five small revisions in Hindi, Tamil, Spanish and English (one will be held out)."""
    rows = [
        ("hi", ("भारत की राजधानी?", "", "दिल्ली"), ("भारत की राजधानी क्या है?", "", "नई दिल्ली।")),
        ("ta", ("இந்தியாவின் தலைநகரம்?", "", "தில்லி"), ("இந்தியாவின் தலைநகரம் எது?", "", "புது தில்லி.")),
        ("es", ("Resume el texto.", "La capital de Francia es París.", "Paris"), ("Resume el texto.", "La capital de Francia es París.", "París es la capital.")),
        ("en", ("Translate", "Paris", "Parris"), ("Translate the sentence.", "Paris", "Paris")),
        ("hi", ("हिंदी में लिखिए", "", "एक छोटा"), ("हिंदी में एक छोटा अनुच्छेद लिखिए।", "", "एक छोटा अनुच्छेद।")),
    ]
    return [RevisionPair(f"item-{i}", lang, Triple(*a), Triple(*b)) for i, (lang, a, b) in enumerate(rows, 1)]


def midb_record(raw: tuple[str, str, str], revised: tuple[str, str, str], distance: int = 100) -> dict:
    keys = ("Instruction", "Input", "Response")
    rec = {f"Raw {k}": v for k, v in zip(keys, raw)}
    rec.update({f"Revised {k}": v for k, v in zip(keys, revised)})
    rec["Distance"] = distance
    return rec


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


# --- MIDB reader ---------------------------------------------------------------------------


def test_midb_reads_pairs_and_sets_aside_what_cannot_teach(tmp_path):
    same = ("Resume el texto.", "Hola mundo", "Hola.")
    path = write_json(tmp_path / "Spanish.json", [
        midb_record(("Traduce", "", "Helo"), ("Traduce al inglés", "", "Hello")),
        midb_record(same, same, distance=206),  # MIDB's Distance says edited; nothing changed
        midb_record(("Resume", "texto", "Un resumen"), ("Resume", "texto", "")),
        midb_record(("Lista tres frutas", "", "manzana"), ("Lista tres frutas", "", "manzana, pera, uva")),
    ])
    got = read_midb(path)
    assert got.language == "es"
    assert got.records == 4
    assert [p.item_id for p in got.pairs] == ["midb/es/1", "midb/es/4"]
    assert got.set_aside == {UNCHANGED: [2], EMPTY_REVISED_RESPONSE: [3]}
    assert got.records == len(got.pairs) + sum(len(v) for v in got.set_aside.values())
    first = got.pairs[0]
    assert first.original == Triple("Traduce", "", "Helo")
    assert first.revised == Triple("Traduce al inglés", "", "Hello")
    assert 0 < first.distance < 1  # computed from the texts, not MIDB's 100


@pytest.mark.parametrize(
    "content, expected",
    [
        ("[{", ["not valid JSON"]),
        ('{"Raw Instruction": "x"}', ["expected a JSON list", "dict"]),
        ([midb_record(("a", "", "b"), ("a", "", "c")), "text"], ["record 2", "expected an object"]),
        ([{k: v for k, v in midb_record(("a", "", "b"), ("a", "", "c")).items() if k != "Revised Response"}],
         ["record 1", "missing key 'Revised Response'"]),
        ([midb_record(("a", "", "b"), ("a", "", "c")), {**midb_record(("a", "", "b"), ("a", "", "c")), "Raw Input": 3}],
         ["record 2", "key 'Raw Input'", "expected text, got int"]),
        ([{**midb_record(("a", "", "b"), ("a", "", "c")), "Revised Respons": "c"}], ["record 1", "unknown key 'Revised Respons'"]),
    ],
)
def test_midb_malformed_file_is_one_line_naming_file_record_and_key(tmp_path, content, expected):
    path = tmp_path / "Japanese.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(MidbError) as err:
        read_midb(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    for part in expected:
        assert part in msg


def test_midb_language_comes_from_the_file_name_or_is_asked_for(tmp_path):
    path = write_json(tmp_path / "pairs.json", [midb_record(("a", "", "b"), ("a", "", "c"))])
    with pytest.raises(MidbError, match="cannot tell the language"):
        read_midb(path)
    assert read_midb(path, language="Tamil").pairs[0].language == "ta"
    with pytest.raises(MidbError, match="file not found"):
        read_midb(tmp_path / "Arabic.json")


# --- edit distance and selection -----------------------------------------------------------


def test_edit_distance_is_normalised_levenshtein_over_the_whole_triple():
    a = Triple("abcd", "", "wxyz")
    assert edit_distance(a, a) == 0
    # one substituted character in the instruction counts, over the joined length (4 + 1 + 0 + 1 + 4)
    assert edit_distance(a, Triple("abcX", "", "wxyz")) == pytest.approx(1 / 10)
    # moving text from the input into the response is an edit even though the concatenation is equal
    assert edit_distance(Triple("i", "ab", "c"), Triple("i", "a", "bc")) > 0
    assert edit_distance(Triple("ab", "", ""), Triple("cd", "", "")) == pytest.approx(2 / 4)


def pair(item_id: str, language: str, revised_response: str) -> RevisionPair:
    return RevisionPair(item_id, language, Triple("i", "", "0123456789"), Triple("i", "", revised_response))


def test_select_top_keeps_the_most_edited_share_per_language_independent_of_order():
    pairs = [
        pair("hi-1", "hi", "0123456789"),  # unchanged: never selected
        pair("hi-2", "hi", "012345678X"),
        pair("hi-3", "hi", "0123XXXXXX"),
        pair("hi-4", "hi", "01234567XX"),
        pair("ta-1", "ta", "XXXXXXXXXX"),
        pair("ta-2", "ta", "0XXXXXXXXX"),
        pair("ta-3", "ta", "0XXXXXXXXX"),  # ties with ta-2: broken by item id
    ]
    top = select_top(pairs, 0.5)
    assert [p.item_id for p in top] == ["hi-3", "hi-4", "ta-1", "ta-2"]
    assert [p.item_id for p in select_top(reversed(pairs), 0.5)] == [p.item_id for p in top]
    assert [p.item_id for p in select_top(pairs, 1.0)] == ["hi-3", "hi-4", "hi-2", "ta-1", "ta-2", "ta-3"]
    assert [p.item_id for p in select_top(pairs, 0.01)] == ["hi-3", "ta-1"]
    with pytest.raises(ValueError, match="top share"):
        select_top(pairs, 0)


# --- examples, split and the output parser -------------------------------------------------


def test_booster_example_is_the_improve_instruction_with_the_original_and_the_revision_as_target():
    p = learning_pairs()[2]
    ex = booster_example(p)
    assert ex["prompt"] == booster_prompt(p.original)
    assert ex["prompt"][0]["role"] == "user" and ex["prompt"][0]["content"].startswith(IMPROVE_INSTRUCTION)
    assert parse_triple(ex["prompt"][0]["content"][len(IMPROVE_INSTRUCTION):]) == p.original
    assert [m["role"] for m in ex["completion"]] == ["assistant"]
    assert parse_triple(ex["completion"][0]["content"]) == p.revised


@pytest.mark.parametrize("item", [
    Triple("", "", "x"),
    Triple('he said "no"\n{"input": 1}', "line1\nline2 \\ tab\t", "### Response\n</response> नई दिल्ली"),
])
def test_parse_triple_reads_back_what_render_wrote_whatever_the_text(item):
    assert parse_triple(f"  {render_triple(item)}\n") == item


@pytest.mark.parametrize("text, reason", [
    ("Here is the item: {}", "not a JSON object"),
    ('```json\n{"instruction": "a", "input": "", "response": "b"}\n```', "not a JSON object"),
    ('{"instruction": "a", "input": "", "response": "b"} trailing', "not a JSON object"),
    ('["a", "", "b"]', "expected a JSON object, got list"),
    ('{"instruction": "a", "response": "b"}', "expected exactly the keys"),
    ('{"instruction": "a", "input": "", "response": "b", "notes": ""}', "expected exactly the keys"),
    ('{"instruction": "a", "input": "", "response": "b", "response": "c"}', "duplicate key"),
    ('{"instruction": "a", "input": null, "response": "b"}', "'input' is NoneType"),
    ('{"instruction": "a", "input": "", "response": "  "}', "response is empty"),
    ('{"instruction": "a", "input": "", "response": "b', "not a JSON object"),  # cut off mid-item
])
def test_parse_triple_refuses_anything_but_one_complete_item(text, reason):
    from training.examples import UnparseableOutput

    with pytest.raises(UnparseableOutput, match=reason):
        parse_triple(text)


def test_held_out_split_is_by_item_seeded_and_independent_of_order():
    from training.examples import split_by_item

    pairs = [RevisionPair(f"item-{i // 2}", "hi", Triple("a", "", "b"), Triple("a", "", f"c{i}")) for i in range(40)]
    train, held = split_by_item(pairs, 0.25, seed=3)
    assert len({p.item_id for p in held}) == 5  # 25% of 20 items; both revisions of an item on one side
    assert not {p.item_id for p in train} & {p.item_id for p in held}
    assert len(train) + len(held) == 40
    assert split_by_item(list(reversed(pairs)), 0.25, seed=3)[1] == list(reversed(held))
    assert {p.item_id for p in split_by_item(pairs, 0.25, seed=4)[1]} != {p.item_id for p in held}
    assert split_by_item(pairs, 0.0, seed=3) == (pairs, [])
    assert len(split_by_item(pairs[:4], 0.1, seed=3)[1]) == 2  # at least one item of two held out


# --- the trainer (tiny model, CPU) ---------------------------------------------------------


@pytest.fixture(scope="module", autouse=False)
def one_thread():
    """Tiny matrices: more CPU threads only add synchronisation (10x slower on a loaded 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def booster_config(base: Path, **kw):
    from training.train import BoosterConfig

    settings = dict(base=str(base), top_share=1.0, eval_share=0.2, batch_size=4, warmup_ratio=0.0,
                    lr_scheduler="constant", lora_rank=16, save_steps=1000, logging_steps=1000)
    return BoosterConfig(**{**settings, **kw})


def greedy(model_dir: Path, original: Triple) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    inputs = tokenizer.apply_chat_template(booster_prompt(original), add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    out = model.generate(**inputs, max_new_tokens=120, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("method, steps, lr", [("lora", 80, 1e-2), ("full", 40, 5e-3)])
def test_booster_learns_to_reproduce_its_targets_and_saves_everything_together(tiny_model, one_thread, tmp_path,
                                                                               method, steps, lr):
    from training.train import train_booster

    long_pair = RevisionPair("item-6", "ta", Triple("a", "", "b"), Triple("a", "", "தமிழ் " * 200))
    pairs = learning_pairs()
    cfg = booster_config(tiny_model, method=method, max_steps=steps, learning_rate=lr, max_length=400)
    result = train_booster(cfg, [*pairs, long_pair], tmp_path)
    m = result.metrics
    assert m["global_step"] == steps and m["train_examples"] == 4 and m["eval_examples"] == 1
    assert m["set_aside_too_long"] == ["item-6"]  # counted, never cut
    assert m["pairs_given"] == m["pairs_selected"] == m["train_examples"] + m["eval_examples"] + 1
    assert m["eval_loss_after"] < m["eval_loss_before"]
    held = set(m["eval_items"])
    for p in pairs:
        if p.item_id not in held:
            assert parse_triple(greedy(result.model_dir, p.original)) == p.revised
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert saved["config"]["method"] == method and saved["config"]["max_steps"] == steps
    assert len(saved["data_hash"]) == 64 and set(saved["libraries"]) >= {"torch", "transformers", "trl", "peft"}
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8")) == m
    assert (result.adapter_dir is not None) == (method == "lora")
    if method == "lora":
        assert (result.adapter_dir / "adapter_config.json").is_file()
        assert json.loads((result.adapter_dir / "adapter_config.json").read_text())["r"] == 16
    from safetensors import safe_open

    with safe_open(str(result.model_dir / "model.safetensors"), "pt") as merged:
        assert not [k for k in merged.keys() if "lora" in k]  # merged: a plain model


@pytest.mark.parametrize("padding_free", [False, True])
def test_prompt_tokens_carry_no_loss(tiny_model, one_thread, tmp_path, padding_free):
    from training.train import booster_examples, build_trainer, load_base

    cfg = booster_config(tiny_model, padding_free=padding_free)
    model, tokenizer = load_base(cfg.base)
    pairs = learning_pairs()
    trainer = build_trainer(cfg, model, tokenizer, booster_examples(pairs), [], tmp_path)
    for p, row in zip(pairs, trainer.train_dataset):
        ex = booster_example(p)
        prompt = tokenizer.apply_chat_template(ex["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], return_dict=True)["input_ids"]
        assert row["input_ids"] == full
        n = len(prompt)
        assert row["labels"][:n] == [-100] * n
        assert row["labels"][n:] == full[n:]  # every target token, the end-of-turn included
        assert tokenizer.decode(full[n:]).startswith(ex["completion"][0]["content"])
    # the collated batch keeps exactly those labels (padding: -100)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(pairs))])["labels"].tolist()
    if padding_free:
        assert batch == [[x for row in trainer.train_dataset for x in row["labels"]]]
    else:
        for row, labels in zip(trainer.train_dataset, batch):
            n = len(row["labels"])
            assert labels == row["labels"] + [-100] * (len(labels) - n)


def test_padding_free_batches_give_the_padded_loss(tiny_model, one_thread, tmp_path):
    """Flattened sequences must not attend across each other (CPU attention has no varlen kernel)."""
    import torch

    from training.train import booster_examples, build_trainer, load_base

    losses = []
    for padding_free in (False, True):
        cfg = booster_config(tiny_model, padding_free=padding_free)
        model, tokenizer = load_base(cfg.base)
        trainer = build_trainer(cfg, model, tokenizer, booster_examples(learning_pairs()), [], tmp_path / str(padding_free))
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(5)])
        assert ("attention_mask" in batch) != padding_free
        with torch.no_grad():
            losses.append(model(**{k: v for k, v in batch.items() if k != "cu_seq_lens"}).loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


RESUME_DRIVER = """
import sys, time
from pathlib import Path
from transformers import TrainerCallback
from tests.test_training import booster_config, learning_pairs
from training.train import train_booster

class StallAfterCheckpoint(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 7:  # checkpoint-6 is on disk
            Path(sys.argv[2], "stalled").write_text("7")
            time.sleep(600)

train_booster(booster_config(Path(sys.argv[1]), **RESUME), learning_pairs(), sys.argv[2], callbacks=[StallAfterCheckpoint()])
"""
RESUME = dict(max_steps=12, save_steps=3, learning_rate=1e-2)


def test_a_killed_run_resumes_from_its_last_complete_checkpoint(tiny_model, one_thread, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from training.train import TrainingError, train_booster

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    driver = RESUME_DRIVER.replace("**RESUME", f"**{RESUME!r}")
    proc = subprocess.Popen([sys.executable, "-c", driver, str(tiny_model), str(out)], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "stalled").exists():
            assert proc.poll() is None, f"the training subprocess ended early: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "the training subprocess never reached step 7"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert (out / "checkpoints/checkpoint-6/trainer_state.json").is_file()
    assert not (out / "metrics.json").exists()
    eval_before = json.loads((out / "run.json").read_text(encoding="utf-8"))["eval_loss_before"]
    # a kill during a save leaves a checkpoint without its trainer state: never resumed from
    (out / "checkpoints/checkpoint-9").mkdir()
    (out / "checkpoints/checkpoint-9/model.safetensors").write_bytes(b"partial")

    result = train_booster(booster_config(tiny_model, **RESUME), learning_pairs(), out)
    assert result.metrics["resumed_from"] == "checkpoint-6"
    assert result.metrics["global_step"] == RESUME["max_steps"]
    assert result.metrics["eval_loss_before"] == eval_before  # measured once, before any training
    assert result.metrics["eval_loss_after"] < eval_before

    with pytest.raises(TrainingError, match="another config or data"):
        train_booster(booster_config(tiny_model, **{**RESUME, "learning_rate": 1e-3}), learning_pairs(), out)


def test_bad_training_input_is_a_clear_error(tiny_model, tmp_path):
    import shutil

    from pydantic import ValidationError

    from training.train import TrainingError, train_booster

    missing = tmp_path / "no-such-model"
    with pytest.raises(TrainingError, match=f"base model '{missing}' not found.*config.json.*gguf.*smollm2"):
        train_booster(booster_config(missing), learning_pairs(), tmp_path / "a")
    unchanged = [RevisionPair(f"i{n}", "hi", Triple("a", "", "b"), Triple("a", "", "b")) for n in range(3)]
    with pytest.raises(TrainingError, match="no revision pair changes anything"):
        train_booster(booster_config(tiny_model), unchanged, tmp_path / "b")
    no_template = shutil.copytree(tiny_model, tmp_path / "no-template")
    (no_template / "chat_template.jinja").unlink()
    with pytest.raises(TrainingError, match="has no chat template"):
        train_booster(booster_config(no_template), learning_pairs(), tmp_path / "c")
    with pytest.raises(TrainingError, match="longer than max_length=16"):
        train_booster(booster_config(tiny_model, max_length=16), learning_pairs(), tmp_path / "d")
    with pytest.raises(ValidationError, match="lora_rnak"):
        booster_config(tiny_model, lora_rnak=8)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
