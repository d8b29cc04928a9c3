"""A small sample.parquet-shaped table from the shipped PARIKSHA demo data plus hand-made Hindi rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from sampling.pariksha import flatten_responses

ROOT = Path(__file__).resolve().parents[1]
DEMO = "kasauti/demo_data/pariksha"
CODES = {"bengali": "bn", "odia": "or", "tamil": "ta"}
HINDI = [
    ("भारत की राजधानी के बारे में तीन वाक्य लिखिए।",
     "नई दिल्ली भारत की राजधानी है। यहाँ संसद भवन और राष्ट्रपति भवन स्थित हैं। यह शहर इतिहास और संस्कृति से भरा है।"),
    ("दीवाली का त्योहार कैसे मनाया जाता है?",
     "दीवाली पर लोग दीये जलाते हैं, रंगोली बनाते हैं, मिठाइयाँ बाँटते हैं और लक्ष्मी पूजा करते हैं।"),
    ("बरसात के मौसम पर एक छोटी कविता लिखिए।",
     "**बादल** गरजे, बूँदें बरसीं,\nधरती ने ओढ़ी हरियाली।\nमिट्टी की सोंधी खुशबू से\nमहक उठी हर डाली।"),
]


def make_sample(per_language: int = 4, hindi: bool = True) -> pd.DataFrame:
    """`per_language` items of each demo language (non-empty responses) plus the Hindi rows."""
    flat = flatten_responses(DEMO)
    flat = flat[flat["response"].str.strip() != ""]
    rows = []
    for lang, group in flat.groupby("language", sort=True):
        for n, (idx, r) in enumerate(group.head(per_language).iterrows()):
            rows.append({"item_id": r["id"], "language": CODES[lang], "task": r["task"], "prompt": r["prompt"],
                         "response": r["response"], "conversation": None, "system_prompt": r["system_prompt"],
                         "source_model": r["model"], "context": None, "stratum": f"{CODES[lang]}/{r['task']}",
                         "source_row": int(idx)})
    if hindi:
        for n, (prompt, response) in enumerate(HINDI):
            conv = json.dumps([{"role": "user", "content": "नमस्ते"}, {"role": "assistant", "content": "नमस्ते! बताइए।"}],
                              ensure_ascii=False) if n == 0 else None
            rows.append({"item_id": f"hi-{n:03d}|hand", "language": "hi", "task": "culture", "prompt": prompt,
                         "response": response, "conversation": conv, "system_prompt": None, "source_model": "hand",
                         "context": None, "stratum": "hi/culture", "source_row": 10_000 + n})
    df = pd.DataFrame(rows)
    df["length"] = df["response"].str.len().astype("int64")
    df["length_bin"] = (df.groupby("stratum")["length"].rank(method="first").astype(int) % 5 + 1).astype("int8")
    return df


def kasauti(*args: str) -> subprocess.CompletedProcess:
    """Run the `kasauti` CLI from the checkout in a subprocess; it must succeed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "kasauti", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def write_study(root: Path, name: str, roster: dict) -> None:
    """kasauti.yaml (embedded server on any free port, 2 submissions per record) and its roster.yaml."""
    (root / "kasauti.yaml").write_text(yaml.safe_dump({
        "name": name, "data": {"path": "unused.jsonl"},
        "annotation": {"port": 0, "min_submitted": 2, "roster": "roster.yaml"},
    }))
    (root / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
