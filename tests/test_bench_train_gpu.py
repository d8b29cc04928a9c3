"""benchmarks/bench_train_gpu.py cannot rot: its CPU dry run goes through every part (kasauti's trainer,
full and LoRA, and boosting batched and one at a time), and its GPU peak table picks the right entry."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_train_gpu.py"

pytest.importorskip("trl")


def load_script():
    spec = importlib.util.spec_from_file_location("bench_train_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
                                        ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.0),
                                        ("Tesla T4", None)])
def test_peak_table_by_device_name(name, peak):
    assert load_script().peak_tflops(name) == peak


def test_dry_run_runs_every_part_on_cpu(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--json", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    r = json.loads(out.read_text())
    assert r["device"] == "cpu" and r["size"] == "tiny" and r["peak_bf16_tflops"] is None
    assert [t["method"] for t in r["train"]] == ["full", "lora"]
    for t in r["train"]:
        assert t["steps"] == 3 and t["timed_steps"] == 1 and t["timed_tokens"] > 0 and t["tokens_per_s"] > 0
        assert t["attention"] == "sdpa" and t["bf16"] is False and t["mfu"] is None and t["peak_gpu_memory_gib"] is None
        assert t["set_aside_too_long"] == 0 and t["params"] > 0
    b = r["boost"]
    assert b["backend"] == "transformers"
    assert (b["batched"]["batch_size"], b["batched"]["items"], b["one_at_a_time"]["batch_size"]) == (4, 4, 1)
    for part in ("batched", "one_at_a_time"):
        assert b[part]["boosted"] + b[part]["unparseable"] == b[part]["items"] and b[part]["items_per_s"] > 0
    assert "train full:" in run.stdout and "boost speed-up" in run.stdout
    gpu = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert gpu.returncode == 1 and "no CUDA GPU; run with --dry-run" in gpu.stderr and "Traceback" not in gpu.stderr
