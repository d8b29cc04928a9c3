"""GPU benchmark of booster training and boosting: tokens/s, peak GPU memory and MFU.

A script, not a test (CI runs only its ``--dry-run``). Nothing is downloaded: the script builds a
random-init Llama from a config (``--size 1b``: TinyLlama-1.1B's shape, 22 layers, hidden 2048,
32 heads / 4 KV heads, vocab 32000, SDPA attention) and the test suite's byte-level BPE tokenizer
with its chat template (``tests.test_training.build_tiny_model``), and synthetic multilingual
revision pairs of about ``--seq-len`` tokens each.

Training runs kasauti's own trainer code path (``training.train.booster_data`` and
``build_trainer``: TRL's SFTTrainer, bf16 autocast on a GPU with bf16, loss on the revised item
only) for ``--steps`` optimizer steps, full fine-tune and LoRA (rank 64, alpha 32). Per method:
non-padding tokens/s over the steps after ``--warmup`` (timed at each step's end after a CUDA
synchronise), peak GPU memory (``torch.cuda.max_memory_allocated``, reset before the method) and
MFU = 6 * N * tokens/s / peak dense bf16 FLOP/s of the detected GPU (N = every parameter of the
base model, embeddings included; :data:`PEAK_BF16_TFLOPS`, or ``--peak-tflops``). A LoRA step
computes no gradients of the frozen weights (about 4 * N FLOPs per token), so its 6N MFU
overstates the work done; ``mfu_4n`` is given beside it.

Boosting: ``training.boost.boost`` rewrites ``--boost-items`` items with the random model saved
as a booster directory: vLLM (``backend="vllm"``) when it imports and a GPU is there, else batched
transformers (``--boost-batch``), and one item at a time (the same code, batch size 1) over
``--boost-single`` items: items/s and generated tokens/s of each.

usage: python benchmarks/bench_train_gpu.py [--size 1b] [--steps 20] [--warmup 3] [--batch 8] [--seq-len 2048]
           [--methods full,lora] [--boost-items 256] [--boost-batch 64] [--boost-tokens 256] [--boost-single 8]
           [--peak-tflops T] [--json FILE]
       python benchmarks/bench_train_gpu.py --dry-run   # = --device cpu --size tiny, a few steps: ~15 s of CPU
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's data sheets; the first name contained
# in torch.cuda.get_device_name() wins, so the more specific names come first.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H200", 989.0),
    ("H100", 989.0),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)
SIZES = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000, max_position_embeddings=4096),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024, max_position_embeddings=1024),
}


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak of a GPU by its name, or None when it is not in the table."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in device_name), None)


def build_tokenizer(directory: Path):
    """The test suite's multilingual byte-level BPE tokenizer with its chat template."""
    from transformers import AutoTokenizer

    from tests.test_training import build_tiny_model

    return AutoTokenizer.from_pretrained(build_tiny_model(directory))


def build_model(size: str, tokenizer, device: str):
    """A random-init Llama of `size` (float32 weights, SDPA attention) on `device`, and its parameter count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = dict(SIZES[size])
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    config = LlamaConfig(**shape, tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None, attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, sum(p.numel() for p in model.parameters())


def synthetic_pairs(tokenizer, n: int, seq_len: int, seed: int = 0):
    """`n` revision pairs whose booster examples are about 0.5 to 0.95 of `seq_len` tokens long."""
    from tests.test_training import CORPUS
    from training import RevisionPair, Triple
    from training.train import booster_examples, example_length

    rng = random.Random(seed)
    sentences = CORPUS[2:]
    per = sum(len(tokenizer(s)["input_ids"]) for s in sentences) / len(sentences)
    pairs = []
    for i in range(n):
        # the example holds the item twice (original, revised): each response gets about half the budget
        words = max(1, int(rng.uniform(0.5, 0.95) * seq_len / per / 2) - 4)
        text = " ".join(rng.choice(sentences) for _ in range(words))
        pairs.append(RevisionPair(f"item-{i}", rng.choice(["hi", "ta", "es"]), Triple("Write a paragraph.", "", text),
                                  Triple("Write one paragraph.", "", text + " " + rng.choice(sentences))))
    return pairs, max(example_length(tokenizer, e) for e in booster_examples(pairs))


class Meter:
    """A TrainerCallback recording (time, non-padding tokens seen) at every step's end, after a CUDA sync."""

    def __init__(self, torch):
        from transformers import TrainerCallback

        self.torch, self.marks = torch, []
        meter = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if meter.torch.cuda.is_available():
                    meter.torch.cuda.synchronize()
                meter.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

        self.callback = _Callback()

    def rate(self, warmup: int) -> tuple[float, int, float]:
        """(tokens/s, tokens, seconds) over the steps after the first `warmup`."""
        (t0, n0), (t1, n1) = self.marks[min(warmup, len(self.marks) - 2)], self.marks[-1]
        return (n1 - n0) / (t1 - t0), n1 - n0, t1 - t0


def bench_method(args, method: str, tokenizer, pairs, peak: float | None) -> dict:
    """One training run of `method` through kasauti's trainer: tokens/s, peak memory, MFU."""
    import torch

    from training import BoosterConfig
    from training.train import booster_data, build_trainer

    cfg = BoosterConfig(base="random-init", method=method, max_steps=args.steps, batch_size=args.batch,
                        max_length=args.seq_len, warmup_ratio=0.0, save_steps=10**9, logging_steps=10**9,
                        top_share=1.0, eval_share=0.0, padding_free=args.padding_free,
                        gradient_checkpointing=args.gradient_checkpointing)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model, n_params = build_model(args.size, tokenizer, args.device)
    data = booster_data(cfg, pairs, tokenizer)
    meter = Meter(torch)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(cfg, model, tokenizer, data.train, [], Path(tmp), callbacks=[meter.callback])
        trainer.train()
    rate, tokens, seconds = meter.rate(args.warmup)
    out = {"method": method, "params": n_params, "steps": trainer.state.global_step, "train_examples": len(data.train),
           "set_aside_too_long": len(data.too_long), "timed_steps": len(meter.marks) - min(args.warmup, len(meter.marks) - 2) - 1,
           "timed_tokens": tokens, "timed_s": round(seconds, 3), "tokens_per_s": round(rate, 1),
           "bf16": bool(trainer.args.bf16), "attention": model.config._attn_implementation,
           "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}
    flops = 6 * n_params * rate
    out["mfu"] = round(flops / (peak * 1e12), 4) if peak else None
    if method == "lora" and peak:
        out["mfu_4n"] = round(4 * n_params * rate / (peak * 1e12), 4)
    del trainer, model
    gc.collect()
    return out


def bench_boost(args, tokenizer, pairs) -> dict:
    """Boosting throughput of the random model: vLLM or batched transformers, and one item at a time."""
    import importlib.util

    import torch

    from benchmarks.bench_train import generated_tokens
    from training.boost import LEDGER_NAME, BoostItem, GenerationParams, boost

    backend = "vllm" if args.device == "cuda" and importlib.util.find_spec("vllm") else "transformers"
    items = [BoostItem(p.item_id, p.language, None, p.original) for p in pairs]
    params = GenerationParams(max_new_tokens=args.boost_tokens)
    out = {"backend": backend, "max_new_tokens": args.boost_tokens}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "booster"
        model, _ = build_model(args.size, tokenizer, "cpu")
        model.to(torch.bfloat16 if args.device == "cuda" else torch.float32).save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        del model
        gc.collect()
        runs = [("batched", backend, items[:args.boost_items], args.boost_batch),
                ("one_at_a_time", "transformers", items[:args.boost_single], 1)]
        for name, how, todo, batch in runs:
            target = Path(tmp) / name / "boosted.parquet"
            start = time.perf_counter()
            result = boost(model_dir, todo, target, batch_size=batch, backend=how, params=params)
            wall = time.perf_counter() - start
            tokens = generated_tokens(model_dir, target.with_name(LEDGER_NAME))
            out[name] = {"backend": how, "batch_size": batch, "items": len(todo), "boosted": result.boosted,
                         "unparseable": result.unparseable, "seconds": round(wall, 3),
                         "items_per_s": round(len(todo) / wall, 3), "tokens_per_s": round(tokens / wall, 1)}
            if args.device == "cuda":
                torch.cuda.empty_cache()
    out["speedup_items_per_s"] = round(out["batched"]["items_per_s"] / out["one_at_a_time"]["items_per_s"], 2)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--size", choices=sorted(SIZES), default="1b")
    ap.add_argument("--dry-run", action="store_true", help="--device cpu --size tiny and a few short steps (CI)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="steps left out of the timing")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--methods", default="full,lora")
    ap.add_argument("--padding-free", action="store_true")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s (default: by GPU name)")
    ap.add_argument("--boost-items", type=int, default=256)
    ap.add_argument("--boost-batch", type=int, default=64)
    ap.add_argument("--boost-tokens", type=int, default=256)
    ap.add_argument("--boost-single", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.device, args.size = "cpu", "tiny"
        args.steps, args.warmup, args.batch, args.seq_len = 3, 1, 2, 256
        args.boost_items, args.boost_batch, args.boost_tokens, args.boost_single = 4, 4, 8, 2
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")  # CUDA is initialised before vLLM starts

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU; run with --dry-run (or --device cpu --size tiny) on a CPU")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    peak = args.peak_tflops or (peak_tflops(name) if args.device == "cuda" else None)
    results = {"device": name, "peak_bf16_tflops": peak, "size": args.size, "seq_len": args.seq_len, "batch": args.batch,
               "torch": torch.__version__, "train": [], "boost": None}
    print(f"device {name}; peak dense bf16 {peak or 'unknown (give --peak-tflops)'} TFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp) / "tokenizer")
    n = args.steps * args.batch
    pairs, longest = synthetic_pairs(tokenizer, max(n, args.boost_items, args.boost_single), args.seq_len)
    print(f"{len(pairs)} synthetic pairs, longest example {longest} tokens (cut-off {args.seq_len})", flush=True)
    for method in [m for m in args.methods.split(",") if m]:
        r = bench_method(args, method, tokenizer, pairs[:n], peak)
        results["train"].append(r)
        print(f"train {method}: {r['params'] / 1e9:.3f}B params, {r['steps']} steps, {r['tokens_per_s']:.1f} tokens/s over "
              f"{r['timed_steps']} timed steps, peak memory {r['peak_gpu_memory_gib']} GiB, MFU {r['mfu']}"
              + (f" (4N: {r['mfu_4n']})" if "mfu_4n" in r else "") + f", bf16 {r['bf16']}, {r['attention']}", flush=True)
    b = results["boost"] = bench_boost(args, tokenizer, pairs)
    for name_ in ("batched", "one_at_a_time"):
        r = b[name_]
        print(f"boost {name_} ({r['backend']}, batch {r['batch_size']}): {r['items']} items in {r['seconds']:.1f} s = "
              f"{r['items_per_s']:.2f} items/s, {r['tokens_per_s']:.1f} tokens/s", flush=True)
    print(f"boost speed-up, items/s batched / one at a time: {b['speedup_items_per_s']}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
