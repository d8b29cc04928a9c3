"""Shared helpers for the judge tests: a small sample.parquet and a study around it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sampling.pariksha import flatten_responses

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "kasauti" / "demo_data" / "pariksha"
ISO = {"bengali": "bn", "odia": "or", "tamil": "ta"}


def demo_sample(n_per_language: int = 4) -> pd.DataFrame:
    """A sample.parquet-shaped frame (ARCHITECTURE.md schema) from the shipped PARIKSHA subset."""
    raw = flatten_responses(DEMO).reset_index(names="source_row")
    raw = raw.groupby("language", group_keys=False).head(n_per_language).reset_index(drop=True)
    df = pd.DataFrame({
        "item_id": raw["id"],
        "language": raw["language"].map(ISO),
        "task": raw["task"],
        "prompt": raw["prompt"],
        "response": raw["response"],
        "conversation": pd.Series([None] * len(raw), dtype="string"),
        "system_prompt": raw["system_prompt"].astype("string"),
        "source_model": raw["model"],
        "context": pd.Series([None] * len(raw), dtype="string"),
        "length": raw["response"].str.len().astype("int64"),
        "source_row": raw["source_row"].astype("int64"),
    })
    df["stratum"] = df["language"] + "/" + df["task"]
    ranks = df.groupby("stratum")["length"].rank(method="first", pct=True)
    df["length_bin"] = np.ceil(ranks * 5).clip(1, 5).astype("int8")
    return df


def make_study(root: Path, judges: list[dict], sample: pd.DataFrame | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (sample if sample is not None else demo_sample()).to_parquet(root / "sample.parquet", index=False)
    cfg = {"name": "t", "data": {"path": str(DEMO), "format": "pariksha"}, "rubric": "pariksha", "judges": judges}
    (root / "kasauti.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return root


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("OPENAI_API_KEY", None)
    return env


def kasauti_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kasauti", *args]


def modules_loaded(code: str, names) -> list[str]:
    """Which of `names` (modules) are in ``sys.modules`` after `code` runs in a fresh interpreter on this checkout."""
    probe = f"{code}\nimport sys; print('\\n'.join(m for m in {list(names)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout + out.stderr
    return sorted(out.stdout.split())
